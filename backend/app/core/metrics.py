"""Prometheus metrics: requests by route and status; per model (a `model` label) tokens, queue
depth, latencies, speculative decoding's proposed and accepted tokens and whether it is loaded;
with METRICS_PER_USER, requests and tokens per user (a `user` label: the account's name) and
model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("llm_http_requests_total", "HTTP requests by route and status.", ["route", "status"])
# Per model: each carries a `model` label.
PROMPT_TOKENS = Counter(
    "llm_prompt_tokens_total", "Prompt tokens of requests that started answering.", ["model"]
)
# vLLM's names: prompt tokens looked up in the prefix cache, and those found there.
PREFIX_QUERIES = Counter(
    "llm_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.", ["model"]
)
PREFIX_HITS = Counter(
    "llm_prefix_cache_hits_total", "Prompt tokens whose keys came from the prefix cache.", ["model"]
)
GENERATED_TOKENS = Counter("llm_generation_tokens_total", "Tokens generated.", ["model"])
# Per user and model, counted when a request ends; empty unless METRICS_PER_USER is true.
USER_REQUESTS = Counter(
    "llm_user_requests_total",
    "Generation and embedding requests per user (METRICS_PER_USER).",
    ["user", "model"],
)
USER_PROMPT_TOKENS = Counter(
    "llm_user_prompt_tokens_total",
    "Prompt (or embedded input) tokens per user (METRICS_PER_USER).",
    ["user", "model"],
)
USER_GENERATED_TOKENS = Counter(
    "llm_user_generation_tokens_total", "Tokens generated per user (METRICS_PER_USER).", ["user", "model"]
)
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT = Histogram(
    "llm_time_to_first_token_seconds", "Time to first token.", ["model"], buckets=_LATENCY_BUCKETS
)
ITL = Histogram(
    "llm_inter_token_latency_seconds",
    "Time between streamed outputs.",
    ["model"],
    buckets=(0.005, *_LATENCY_BUCKETS[:8]),
)
E2E = Histogram(
    "llm_request_latency_seconds",
    "Time from submission to the last token.",
    ["model"],
    buckets=_LATENCY_BUCKETS,
)
# Streamed answers kept for a client that may come back (X-Message-Id), and reads of them by
# GET /v1/stream/{conversation_id}/{message_id} (serving/resumable.py).
RESUMABLE_STREAMS = Counter("llm_resumable_streams_total", "Streamed answers kept for resuming.")
RESUMED_STREAMS = Counter("llm_resumed_streams_total", "Kept answers read again (resumed).")


@dataclass(frozen=True)
class ModelGauges:
    """What one loaded model reports when /metrics is read: its engine's (chat) or its
    embedder's (embedding) figures, the others None."""

    loaded: bool
    running: float | None = None
    waiting: float | None = None
    kv_usage: float | None = None
    embedding_waiting: float | None = None
    embedded: float | None = None  # read from the embedder's own count: it only grows
    embedding_batches: float | None = None
    # Speculative decoding, by proposer: (tokens proposed, of which accepted) since loaded.
    speculation: dict[str, tuple[int, int]] | None = None


# (metric, help, ModelGauges field)
_GAUGES = (
    ("llm_model_loaded", "1 while the model is loaded (MODELS_DIR, MODELS_FILE), else 0.", "loaded"),
    ("llm_running_sequences", "Sequences in the running batch.", "running"),
    ("llm_waiting_requests", "Requests waiting for a slot.", "waiting"),
    ("llm_kv_cache_usage_ratio", "Share of the KV cache's blocks held by running requests.", "kv_usage"),
    ("llm_embedding_requests", "Embedding requests queued or being embedded.", "embedding_waiting"),
    ("llm_embedded_inputs", "Inputs embedded since the model was loaded.", "embedded"),
    (
        "llm_embedding_batches",
        "Forward passes of the embedding model since it was loaded.",
        "embedding_batches",
    ),
)


class ModelsCollector(Collector):
    """The models' gauges, read from them at each scrape (`read`: model name -> its gauges)."""

    def __init__(self) -> None:
        self.read: Callable[[], dict[str, ModelGauges]] = dict

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        models = self.read()
        for name, documentation, attribute in _GAUGES:
            family = GaugeMetricFamily(name, documentation, labels=["model"])
            for model, gauges in models.items():
                value = getattr(gauges, attribute)
                if value is not None:
                    family.add_metric([model], float(value))
            yield family
        # Counted by the engine since the model was loaded (a reload starts them again, which
        # Prometheus's rate() reads as a counter reset); the acceptance rate is their ratio.
        proposed = CounterMetricFamily(
            "llm_spec_proposed_tokens",
            "Tokens proposed for speculative decoding.",
            labels=["model", "proposer"],
        )
        accepted = CounterMetricFamily(
            "llm_spec_accepted_tokens",
            "Proposed tokens the model generated too (speculative decoding).",
            labels=["model", "proposer"],
        )
        for model, gauges in models.items():
            for proposer, (n_proposed, n_accepted) in (gauges.speculation or {}).items():
                proposed.add_metric([model, proposer], n_proposed)
                accepted.add_metric([model, proposer], n_accepted)
        yield proposed
        yield accepted


MODELS = ModelsCollector()
REGISTRY.register(MODELS)


def track_models(read: Callable[[], dict[str, ModelGauges]]) -> None:
    MODELS.read = read


class RequestMetrics:
    """Counts every HTTP response by its route template (not the raw path) and status."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 499  # nginx's "client closed request": no response was started

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            route = scope.get("route")
            REQUESTS.labels(getattr(route, "path", "other"), str(status)).inc()


router = APIRouter()


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

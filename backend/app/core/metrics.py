"""Prometheus metrics: requests by route and status, tokens, queue depth, latencies."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUESTS = Counter("llm_http_requests_total", "HTTP requests by route and status.", ["route", "status"])
PROMPT_TOKENS = Counter("llm_prompt_tokens_total", "Prompt tokens of requests that started answering.")
# vLLM's names: prompt tokens looked up in the prefix cache, and those found there.
PREFIX_QUERIES = Counter("llm_prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.")
PREFIX_HITS = Counter("llm_prefix_cache_hits_total", "Prompt tokens whose keys came from the prefix cache.")
KV_USAGE = Gauge("llm_kv_cache_usage_ratio", "Share of the KV cache's blocks held by running requests.")
GENERATED_TOKENS = Counter("llm_generation_tokens_total", "Tokens generated.")
RUNNING = Gauge("llm_running_sequences", "Sequences in the running batch.")
WAITING = Gauge("llm_waiting_requests", "Requests waiting for a slot.")
EMBEDDING_WAITING = Gauge("llm_embedding_requests", "Embedding requests queued or being embedded.")
# A gauge read from the embedder's own count (counters cannot read a function); it only grows.
EMBEDDED = Gauge("llm_embedded_inputs", "Inputs embedded since start-up.")
EMBEDDING_BATCHES = Gauge("llm_embedding_batches", "Forward passes of the embedding model since start-up.")
_LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
TTFT = Histogram("llm_time_to_first_token_seconds", "Time to first token.", buckets=_LATENCY_BUCKETS)
ITL = Histogram(
    "llm_inter_token_latency_seconds",
    "Time between streamed outputs.",
    buckets=(0.005, *_LATENCY_BUCKETS[:8]),
)
E2E = Histogram(
    "llm_request_latency_seconds", "Time from submission to the last token.", buckets=_LATENCY_BUCKETS
)


def track_engine(
    running: Callable[[], float], waiting: Callable[[], float], kv_usage: Callable[[], float]
) -> None:
    RUNNING.set_function(running)
    WAITING.set_function(waiting)
    KV_USAGE.set_function(kv_usage)


def track_embeddings(
    waiting: Callable[[], float], embedded: Callable[[], float], batches: Callable[[], float]
) -> None:
    EMBEDDING_WAITING.set_function(waiting)
    EMBEDDED.set_function(embedded)
    EMBEDDING_BATCHES.set_function(batches)


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

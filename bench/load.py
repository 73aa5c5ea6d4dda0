"""The load generator: concurrent SSE chat streams over httpx, timed on the client side.

Every system is driven through the same OpenAI chat route with the same prompts, so the
numbers differ only by server. Each stream records when it sent its request, when each
content chunk arrived and how many tokens the server says it generated.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

# Builds the JSON body for one request: (messages, max_tokens) -> body. Each server family
# spells "fixed-length greedy answer" differently, so the system supplies this.
BodyFactory = Callable[[list[dict[str, str]], int], dict[str, object]]
CAPPED = "time cap reached"
CHAT_PATH = "/v1/chat/completions"


@dataclass
class StreamResult:
    sent: float
    end: float = 0.0
    first: float | None = None
    arrivals: list[float] = field(default_factory=list)
    completion_tokens: int = 0
    prompt_tokens: int | None = None
    # Prompt tokens the server reused from its prompt cache (usage.prompt_tokens_details), when
    # it reports them.
    cached_tokens: int | None = None
    text: str = ""  # the answer as returned, for a conversation's next turn
    finish_reason: str | None = None
    error: str | None = None

    @property
    def ttft(self) -> float | None:
        return None if self.first is None else self.first - self.sent

    @property
    def gaps(self) -> list[float]:
        return [b - a for a, b in zip(self.arrivals, self.arrivals[1:], strict=False)]


@dataclass
class LevelResult:
    concurrency: int
    wall_s: float
    streams: list[StreamResult]
    peak_rss_mb: float | None = None

    @property
    def tokens(self) -> int:
        return sum(s.completion_tokens for s in self.streams)

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def errors(self) -> list[str]:
        return [s.error for s in self.streams if s.error]

    @property
    def capped(self) -> bool:
        return any(s.error == CAPPED for s in self.streams)

    def summary(self) -> dict[str, object]:
        # A stream cut off by the time cap before its first token still waited that long: its
        # TTFT is recorded as its whole wait (a lower bound) and counted as censored, so a slow
        # server's percentiles are not computed over only its lucky first users.
        ttfts = [s.ttft if s.ttft is not None else s.end - s.sent for s in self.streams]
        gaps = [g for s in self.streams for g in s.gaps]
        return {
            "concurrency": self.concurrency,
            "wall_s": self.wall_s,
            "tokens": self.tokens,
            "tokens_per_s": self.tokens_per_s,
            "ttft_s": ttfts,
            "ttft_censored": sum(1 for s in self.streams if s.ttft is None),
            "itl_s": gaps,
            "peak_rss_mb": self.peak_rss_mb,
            "errors": self.errors,
            "prompt_tokens": [s.prompt_tokens for s in self.streams],
        }


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile; None for no data (a failed level shows as a dash)."""
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1] if q < 100 else max(values)


async def stream_chat(
    client: httpx.AsyncClient,
    url: str,
    body: dict[str, object],
    max_tokens: int,
    deadline: float,
    stop: asyncio.Event | None = None,
    apply: EventParser | None = None,
) -> StreamResult:
    """One streamed request; never raises, so one failure does not hide the others' figures.
    `stop` ends it early, at its next event (background streams of a load that has finished).
    `apply` reads each event's data into the result: chat's chunks unless another API's."""
    apply = apply or apply_chat_event
    result = StreamResult(sent=time.perf_counter())
    try:
        async with asyncio.timeout(max(0.1, deadline - time.monotonic())):
            async with client.stream("POST", url, json=body) as response:
                if response.status_code != 200:
                    text = (await response.aread()).decode(errors="replace")[:200]
                    result.error = f"HTTP {response.status_code}: {text}"
                    return result
                async for line in response.aiter_lines():
                    if not line.startswith("data:"):
                        continue
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        break
                    apply(result, json.loads(payload), time.perf_counter())
                    if stop is not None and stop.is_set():
                        break
    except TimeoutError:
        result.error = CAPPED
    except (httpx.HTTPError, json.JSONDecodeError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    finally:
        result.end = time.perf_counter()
    if result.completion_tokens == 0:
        # Servers without usage in the stream (transformers serve): an answer that ran to its
        # length limit has exactly max_tokens tokens (EOS is disabled); otherwise count chunks.
        finished_at_length = result.finish_reason == "length" and result.error is None
        result.completion_tokens = max_tokens if finished_at_length else len(result.arrivals)
    return result


def arrived(result: StreamResult, text: str, now: float) -> None:
    """Answer text arrived at `now`."""
    result.text += text
    result.arrivals.append(now)
    if result.first is None:
        result.first = now


# Reads one event's data into a stream's result, at the time it arrived.
EventParser = Callable[[StreamResult, dict[str, Any], float], None]


def apply_chat_event(result: StreamResult, event: dict[str, Any], now: float) -> None:
    if "error" in event and not event.get("choices"):
        result.error = str(event["error"])[:200]
        return
    for choice in event.get("choices") or []:
        assert isinstance(choice, dict)
        delta = choice.get("delta") or {}
        if delta.get("content"):
            arrived(result, str(delta["content"]), now)
        if choice.get("finish_reason"):
            result.finish_reason = str(choice["finish_reason"])
    usage = event.get("usage")
    if isinstance(usage, dict):
        result.completion_tokens = int(usage.get("completion_tokens") or 0)
        result.prompt_tokens = usage.get("prompt_tokens")
        details = usage.get("prompt_tokens_details")
        if isinstance(details, dict) and details.get("cached_tokens") is not None:
            result.cached_tokens = int(details["cached_tokens"])


async def run_level(
    base_url: str,
    make_body: BodyFactory,
    prompts: list[list[dict[str, str]]],
    max_tokens: int,
    time_cap_s: float,
    rss_probe: Callable[[], float] | None = None,
    path: str = CHAT_PATH,
    apply: EventParser | None = None,
) -> LevelResult:
    """All prompts at once (a burst of users), one stream each; returns when all have ended.
    `path` and `apply`: another streaming API than chat's, and its events' parser."""
    limits = httpx.Limits(max_connections=len(prompts) + 4, max_keepalive_connections=len(prompts) + 4)
    timeout = httpx.Timeout(time_cap_s + 5, connect=10)
    peak = 0.0
    done = asyncio.Event()

    async def sample_rss() -> None:
        nonlocal peak
        while rss_probe is not None and not done.is_set():
            peak = max(peak, rss_probe())
            await asyncio.sleep(0.25)

    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=timeout) as client:
        sampler = asyncio.create_task(sample_rss())
        deadline = time.monotonic() + time_cap_s
        start = time.perf_counter()
        streams = await asyncio.gather(
            *(
                stream_chat(client, path, make_body(p, max_tokens), max_tokens, deadline, apply=apply)
                for p in prompts
            )
        )
        wall = max(s.end for s in streams) - start
        done.set()
        await sampler
    return LevelResult(len(prompts), wall, list(streams), peak if rss_probe is not None else None)

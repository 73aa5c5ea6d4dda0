"""From engine streams to HTTP: merging n choices, the first output, SSE framing, disconnects;
and the metrics and usage of each generation when it ends."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from sse_starlette import EventSourceResponse

from ..accounts.usage import Meter, current_meter
from ..core.errors import OpenAIError, server_busy
from ..core.metrics import E2E, GENERATED_TOKENS, ITL, PREFIX_HITS, PREFIX_QUERIES, PROMPT_TOKENS, TTFT
from ..engine.engine import (
    Engine,
    EngineBusy,
    EngineUnavailable,
    GenerationStream,
    RequestOutput,
    RequestTooLarge,
)
from ..engine.sampling import SamplingParams

log = logging.getLogger(__name__)

Outputs = AsyncIterator[tuple[int, RequestOutput]]


class GenerationTimer:
    """Times one generation stream of `model` and counts its tokens, output by output."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.start = self.last = time.monotonic()
        self.first = True
        self.prompt_tokens = 0  # known from the first output: none if cut short before it
        self.completion_tokens = 0

    def record(self, out: RequestOutput) -> None:
        now = time.monotonic()
        model = self.model
        if out.token_ids:
            if self.first:
                TTFT.labels(model).observe(now - self.start)
                PROMPT_TOKENS.labels(model).inc(out.prompt_tokens)
                PREFIX_QUERIES.labels(model).inc(out.prompt_tokens)
                PREFIX_HITS.labels(model).inc(out.cached_tokens)
                self.first = False
                self.prompt_tokens = out.prompt_tokens
            else:
                ITL.labels(model).observe(now - self.last)
            GENERATED_TOKENS.labels(model).inc(len(out.token_ids))
            self.completion_tokens += len(out.token_ids)
            self.last = now
        if out.finish_reason in ("stop", "length"):
            E2E.labels(model).observe(now - self.start)


def record_usage(meter: Meter | None, model: str, timers: list[GenerationTimer], per_prompt: int) -> None:
    """A request's usage as its response counts it: each prompt once however many choices it
    has, every token generated; nothing if no prompt was read (it never left the queue)."""
    prompt = sum(
        max(t.prompt_tokens for t in timers[i : i + per_prompt]) for i in range(0, len(timers), per_prompt)
    )
    if meter is not None and prompt:
        meter.record(model, prompt, sum(t.completion_tokens for t in timers))


async def merge_streams(
    streams: list[GenerationStream], model: str, per_prompt: int, meter: Meter | None
) -> Outputs:
    """Interleave the outputs of n choices (`per_prompt` per prompt) as they come; closing this
    aborts them all, and records the request's usage against `meter`."""
    queue: asyncio.Queue[tuple[int, RequestOutput]] = asyncio.Queue()
    timers = [GenerationTimer(model) for _ in streams]

    async def pump(index: int) -> None:
        async for out in streams[index]:
            await queue.put((index, out))

    tasks = [asyncio.create_task(pump(i)) for i in range(len(streams))]
    try:
        while any(not s.finished for s in streams) or not queue.empty():
            index, out = await queue.get()
            timers[index].record(out)
            yield index, out
    finally:
        for task in tasks:
            task.cancel()
        for stream in streams:
            stream.cancel()
        record_usage(meter, model, timers, per_prompt)


def start_generation(
    engine: Engine,
    model: str,
    jobs: list[tuple[list[int], SamplingParams]],
    prompt_param: str,
    per_prompt: int,
) -> Outputs:
    """Submit every job at once (all or none), as one merged stream of (job index, output).
    Its usage counts against the current request's sender, known here (not when the stream is
    closed, which may happen elsewhere)."""
    streams: list[GenerationStream] = []
    try:
        for ids, params in jobs:
            streams.append(engine.generate(ids, params))
    except (EngineBusy, EngineUnavailable, RequestTooLarge) as exc:
        for stream in streams:  # n > 1 and only some got in: none of them may run
            stream.cancel()
        if isinstance(exc, RequestTooLarge):
            raise OpenAIError(400, str(exc), param=prompt_param, code="context_length_exceeded") from exc
        if isinstance(exc, EngineBusy):
            raise server_busy(str(exc)) from exc
        raise OpenAIError(503, str(exc), type="server_error", code="service_unavailable") from exc
    return merge_streams(streams, model, per_prompt, current_meter())


async def first_output(outputs: Outputs, patience: float | None) -> asyncio.Task[tuple[int, RequestOutput]]:
    """Wait up to `patience` seconds for the first output before answering.

    A request that fails in that time (a queue timeout, say) still gets a real status code; a
    stream that must wait longer starts anyway, so keep-alive comments flow while it waits.
    """
    first = asyncio.ensure_future(anext(outputs))
    await asyncio.wait({first}, timeout=patience)
    if first.done():
        error = first.exception()
        if error is None and first.result()[1].error is not None:
            error = OpenAIError(
                503, str(first.result()[1].error), type="server_error", code="service_unavailable"
            )
        if error is not None:
            await outputs.aclose()  # type: ignore[attr-defined]
            raise error
    return first


async def with_first(first: asyncio.Task[tuple[int, RequestOutput]], rest: Outputs) -> Outputs:
    try:
        yield await first
        async for item in rest:
            yield item
    finally:
        first.cancel()
        await rest.aclose()  # type: ignore[attr-defined]


def stream_error_event(message: str) -> str:
    return json.dumps(
        {"error": {"message": message, "type": "server_error", "param": None, "code": "generation_failed"}}
    )


def sse_response(events: AsyncIterator[str], ping_s: float, named: bool = False) -> EventSourceResponse:
    """Server-Sent Events, `\n` separators, no caching or proxy buffering. OpenAI's chat and text
    completions: `data: …` lines, then `data: [DONE]`. `named` (the Responses and Messages APIs):
    each event is named (`event: …`) by the `type` of its JSON data, and the last one ends the
    stream."""

    async def framed() -> AsyncIterator[dict[str, str]]:
        async for data in events:
            yield {"event": json.loads(data)["type"], "data": data} if named else {"data": data}
        if not named:
            yield {"data": "[DONE]"}

    return EventSourceResponse(
        framed(), ping=ping_s, sep="\n", headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    )


async def until_disconnected(request: Request, work: Callable[[], Awaitable[Response]]) -> Response:
    """Run a non-streaming request, cancelling it (and so its generation) if the client leaves.

    A client hanging up is no error: the request ends with one DEBUG line and a 499 that nobody
    reads (uvicorn drops what is sent on a closed connection; the metrics count it as nginx's
    "client closed request"). Letting the work's CancelledError out instead would reach uvicorn
    as an "Exception in ASGI application" with a traceback."""
    task = asyncio.create_task(work())

    async def watch() -> None:
        while not task.done():
            if await request.is_disconnected():
                task.cancel()
                return
            await asyncio.sleep(0.25)

    watcher = asyncio.create_task(watch())
    try:
        return await task
    except asyncio.CancelledError:
        this = asyncio.current_task()
        if this is None or this.cancelling():
            raise  # this request itself is being cancelled (not the watcher's doing): let it end
        log.debug("client closed the connection: %s %s cancelled", request.method, request.url.path)
        return Response(status_code=499)
    finally:
        watcher.cancel()


async def until_set(outputs: Outputs, stop: asyncio.Event) -> Outputs:
    """`outputs` until `stop` is set (a cancel from another request): then they end early, and
    closing them aborts the generation."""
    stopped = asyncio.ensure_future(stop.wait())
    step: asyncio.Future[tuple[int, RequestOutput]] | None = None
    try:
        while True:
            step = asyncio.ensure_future(anext(outputs))
            await asyncio.wait({step, stopped}, return_when=asyncio.FIRST_COMPLETED)
            if not step.done():
                return
            try:
                yield step.result()
            except StopAsyncIteration:
                return
    finally:
        stopped.cancel()
        # Stopped, or this reader cancelled (its client gone) mid-wait: the generator must be idle
        # before it is closed, else aclose() raises "asynchronous generator is already running".
        if step is not None and not step.done():
            step.cancel()
            await asyncio.wait({step})
        await outputs.aclose()  # type: ignore[attr-defined]

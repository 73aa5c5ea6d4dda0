"""What chat and text completions share: limits, sampling settings, token texts, streams."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse
from transformers import PreTrainedTokenizerBase

from ..core.errors import OpenAIError
from ..core.metrics import GenerationTimer
from ..engine.engine import Engine, EngineBusy, EngineUnavailable, GenerationStream, RequestOutput
from ..engine.sampling import SamplingParams, TokenLogprobs
from ..protocol import CompletionUsage, FinishReason, SamplingRequest

# Fields declared in the request models but not implemented: (field, allowed values).
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "tools": (None, []),
    "tool_choice": (None, "none"),
    "functions": (None, []),
    "function_call": (None, "none"),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "moderation": (None,),
    "suffix": (None, ""),
    "store": (None, False),
    "modalities": (None, ["text"]),
}


def refuse_unsupported(request: BaseModel) -> None:
    for name, allowed in UNSUPPORTED.items():
        value = getattr(request, name, None)
        if value not in allowed:
            raise OpenAIError(
                400,
                f"'{name}' is not supported by this server (the local model has no such feature); "
                "remove it from the request.",
                param=name,
                code="unsupported_parameter",
            )


def refuse_stream_options_without_stream(request: SamplingRequest) -> None:
    # As OpenAI does: the option would silently do nothing.
    if request.stream_options is not None and not request.stream:
        raise OpenAIError(400, "stream_options is only allowed when stream is true.", param="stream_options")


@dataclass
class ModelContext:
    """The chat model as the serving layer sees it: its engine, tokenizer and limits."""

    name: str
    engine: Engine
    tokenizer: PreTrainedTokenizerBase
    max_context: int
    fingerprint: str
    sse_ping_s: float
    tokens: TokenTexts = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenTexts(self.tokenizer)

    def check_model(self, requested: str) -> None:
        if requested != self.name:
            raise model_not_found(requested)

    def sampling_params(
        self,
        request: SamplingRequest,
        prompt_len: int,
        requested_max: int | None,
        index: int,
        default_max: int | None = None,
        **extra: Any,
    ) -> SamplingParams:
        """Settings for one choice; `default_max` is an implicit cap, clamped to the room left."""
        room = self.max_context - prompt_len
        if room < 1 or (requested_max is not None and requested_max > room):
            asked = f" + {requested_max} for the completion" if requested_max is not None else ""
            raise OpenAIError(
                400,
                f"This model's maximum context length is {self.max_context} tokens. However, you requested "
                f"{prompt_len + (requested_max or 0)} tokens ({prompt_len} in the prompt{asked}). "
                "Shorten the prompt or lower max_tokens.",
                param="messages" if "messages" in type(request).model_fields else "prompt",
                code="context_length_exceeded",
            )
        vocab = len(self.tokenizer)
        bias: dict[int, float] = {}
        for key, value in (request.logit_bias or {}).items():
            if not key.isdigit() or int(key) >= vocab:
                raise OpenAIError(
                    400,
                    f"logit_bias key {key!r} is not a token id of this model (0..{vocab - 1}).",
                    param="logit_bias",
                )
            bias[int(key)] = value
        stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
        return SamplingParams(
            max_tokens=requested_max if requested_max is not None else min(default_max or room, room),
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=min(max(0, request.top_k or 0), vocab),
            presence_penalty=request.presence_penalty or 0.0,
            frequency_penalty=request.frequency_penalty or 0.0,
            repetition_penalty=request.repetition_penalty or 1.0,
            stop=tuple(s for s in stop if s),
            # Each of n choices gets its own stream, reproducible from the one seed.
            seed=None if request.seed is None else (request.seed + index) % 2**64,
            ignore_eos=request.ignore_eos,
            logit_bias=bias,
            **extra,
        )


def model_not_found(name: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model '{name}' does not exist. GET /v1/models lists the models served here.",
        param="model",
        code="model_not_found",
    )


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


class TokenTexts:
    """The text and raw bytes of single tokens, as logprobs report them."""

    def __init__(self, tokenizer: PreTrainedTokenizerBase) -> None:
        self.tokenizer = tokenizer
        decoder = tokenizer.backend_tokenizer.decoder if hasattr(tokenizer, "backend_tokenizer") else None
        self.byte_level = type(decoder).__name__ == "ByteLevel"
        self.byte_of = {ch: b for b, ch in _bytes_to_unicode().items()}

    @lru_cache(maxsize=65536)  # noqa: B019 - one instance per served model, lives as long as the app
    def get(self, token_id: int) -> tuple[str, list[int]]:
        piece = self.tokenizer.convert_ids_to_tokens(token_id)
        if self.byte_level and isinstance(piece, str) and all(c in self.byte_of for c in piece):
            raw = bytes(self.byte_of[c] for c in piece)
        elif isinstance(piece, str) and len(piece) == 6 and piece.startswith("<0x") and piece.endswith(">"):
            raw = bytes([int(piece[3:5], 16)])  # sentencepiece byte fallback
        else:
            raw = self.tokenizer.decode([token_id]).encode()
        try:
            text = raw.decode()
        except UnicodeDecodeError:
            # Part of a multi-byte character: spelled out as vLLM does, the bytes field has them too.
            text = "bytes:" + "".join(f"\\x{b:02x}" for b in raw)
        return text, list(raw)


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters, used by byte-level BPE."""
    printable = [
        *range(ord("!"), ord("~") + 1),
        *range(ord("¡"), ord("¬") + 1),
        *range(ord("®"), ord("ÿ") + 1),
    ]
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars), strict=True))


async def merge_streams(streams: list[GenerationStream]) -> AsyncIterator[tuple[int, RequestOutput]]:
    """Interleave the outputs of n choices as they come; closing this aborts them all."""
    queue: asyncio.Queue[tuple[int, RequestOutput]] = asyncio.Queue()
    timers = [GenerationTimer() for _ in streams]

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


def start_generation(
    ctx: ModelContext, prompts: list[tuple[list[int], SamplingParams]]
) -> AsyncIterator[tuple[int, RequestOutput]]:
    streams: list[GenerationStream] = []
    try:
        for ids, params in prompts:
            streams.append(ctx.engine.generate(ids, params))
    except (EngineBusy, EngineUnavailable) as exc:
        for stream in streams:  # n > 1 and only some got in: none of them may run
            stream.cancel()
        if isinstance(exc, EngineBusy):
            raise OpenAIError(
                429,
                str(exc),
                type="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": "1"},
            ) from exc
        raise OpenAIError(503, str(exc), type="server_error", code="service_unavailable") from exc
    return merge_streams(streams)


async def first_output(
    outputs: AsyncIterator[tuple[int, RequestOutput]], patience: float | None
) -> asyncio.Task[tuple[int, RequestOutput]]:
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


async def with_first(
    first: asyncio.Task[tuple[int, RequestOutput]], rest: AsyncIterator[tuple[int, RequestOutput]]
) -> AsyncIterator[tuple[int, RequestOutput]]:
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


def sse_response(events: AsyncIterator[str], ping_s: float) -> EventSourceResponse:
    """OpenAI's framing: `data: …` lines, `\\n` separators; no caching or proxy buffering."""

    async def framed() -> AsyncIterator[dict[str, str]]:
        async for data in events:
            yield {"data": data}
        yield {"data": "[DONE]"}

    return EventSourceResponse(
        framed(),
        ping=ping_s,
        sep="\n",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


async def until_disconnected(request: Request, work: Callable[[], Awaitable[JSONResponse]]) -> JSONResponse:
    """Run a non-streaming request, cancelling it (and so its generation) if the client leaves."""
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
    finally:
        watcher.cancel()


@dataclass
class Choice:
    """One choice's progress, fed output by output, for a stream and a collected body alike."""

    text: str = ""
    # Each token's logprobs with the offset in `text` where the token's text begins.
    logprobs: list[tuple[TokenLogprobs, int]] = field(default_factory=list)
    finish_reason: FinishReason = "length"
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, out: RequestOutput) -> None:
        self.logprobs.extend((entry, len(self.text)) for entry in out.logprobs)
        self.text += out.text
        self.prompt_tokens, self.completion_tokens = out.prompt_tokens, out.completion_tokens
        if out.finish_reason is not None:
            self.finish_reason = "stop" if out.finish_reason == "stop" else "length"


def usage_of(choices: list[Choice], per_prompt: int) -> CompletionUsage:
    """Each prompt counts once, however many choices (`per_prompt`) it has."""
    prompt = sum(c.prompt_tokens for c in choices[::per_prompt])
    completion = sum(c.completion_tokens for c in choices)
    return CompletionUsage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
    )


async def collect_choices(
    outputs: AsyncIterator[tuple[int, RequestOutput]], texts: list[str]
) -> list[Choice]:
    """Every choice to its end; `texts` are what each choice's text starts with (an echo, or "")."""
    choices = [Choice(text=text) for text in texts]
    async for index, out in outputs:
        if out.error is not None:
            raise OpenAIError(500, out.error, type="server_error")
        choices[index].add(out)
    return choices


class GenerationService:
    """What chat and text completions share: checks, submitting every choice, waiting for the
    first output, then a stream or one collected body."""

    id_prefix: str

    def __init__(self, ctx: ModelContext) -> None:
        self.ctx = ctx
        self.tokens = ctx.tokens

    def check(self, request: SamplingRequest) -> None:
        self.ctx.check_model(request.model)
        refuse_unsupported(request)
        refuse_stream_options_without_stream(request)

    async def respond(
        self,
        request: SamplingRequest,
        raw: Request,
        jobs: list[tuple[list[int], SamplingParams]],
        stream: Callable[..., AsyncIterator[str]],
        collect: Callable[..., Awaitable[JSONResponse]],
    ) -> Response:
        outputs = start_generation(self.ctx, jobs)
        first = await first_output(outputs, self.ctx.sse_ping_s if request.stream else None)
        ordered = with_first(first, outputs)
        response_id, created = new_id(self.id_prefix), int(time.time())
        if request.stream:
            include_usage = bool(request.stream_options and request.stream_options.include_usage)
            events = stream(ordered, response_id, created, include_usage=include_usage)
            return sse_response(events, self.ctx.sse_ping_s)
        return await until_disconnected(raw, lambda: collect(ordered, response_id, created))

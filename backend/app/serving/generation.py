"""What chat and text completions share: the served model, each request's sampling settings and
limits, and the way from a request to a stream or one collected body.

An endpoint subclasses GenerationService and says what is its own: its prompts, its logprobs
settings, and how its chunks and bodies look (`stream`, `collect`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fastapi import Request
from fastapi.responses import Response
from transformers import PreTrainedTokenizerBase

from ..core.errors import OpenAIError, model_not_found
from ..engine.engine import Engine
from ..engine.grammar import Grammar
from ..engine.sampling import SamplingParams
from ..protocol import SamplingRequest
from .resumable import Key, ResumableStream, key_of
from .streams import Outputs, first_output, sse_response, start_generation, until_disconnected, with_first
from .tokens import TokenTexts
from .unsupported import refuse_stream_options_without_stream, refuse_unsupported


@dataclass
class ModelContext:
    """The chat model as the serving layer sees it: its engine, tokenizer and names."""

    name: str
    engine: Engine
    tokenizer: PreTrainedTokenizerBase
    fingerprint: str
    sse_ping_s: float
    tokens: TokenTexts = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = TokenTexts(self.tokenizer)

    @property
    def max_context(self) -> int:
        return self.engine.max_context

    def check_model(self, requested: str) -> None:
        if requested != self.name:
            raise model_not_found(requested)


RequestT = TypeVar("RequestT", bound=SamplingRequest)
# The page's id for the conversation a request belongs to (Nginx routes on it too: deploy/).
CONVERSATION_HEADER = "X-Conversation-Id"
# With it, the answer's id in that conversation: a streamed answer then outlives its client (resumable.py).
MESSAGE_HEADER = "X-Message-Id"


def resumable_key(raw: Request, stream: bool | None) -> Key | None:
    """Where a streamed answer sent with both headers is kept for a client that comes back."""
    conversation, message = raw.headers.get(CONVERSATION_HEADER), raw.headers.get(MESSAGE_HEADER)
    return key_of(raw, conversation, message) if stream and conversation and message else None


@dataclass
class Reply(Generic[RequestT]):
    """One request on its way to a response: what its chunks and body need besides the outputs."""

    request: RequestT
    n: int  # choices per prompt
    echoes: list[str]  # for each choice, the text it starts with (a completion's echo, or "")
    id: str
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def include_usage(self) -> bool:
        options = self.request.stream_options
        return bool(options and options.include_usage)


class GenerationService(ABC, Generic[RequestT]):
    id_prefix: str
    # max_tokens when the request sets none: a number, or None for the rest of the context.
    default_max_tokens: int | None

    def __init__(self, ctx: ModelContext) -> None:
        self.ctx = ctx
        self.tokens = ctx.tokens

    # ---- what each endpoint says -------------------------------------------------------------

    @abstractmethod
    def prompts(self, request: RequestT) -> list[list[int]]:
        """The token ids of each prompt, after the endpoint's own checks."""

    @abstractmethod
    def logprobs(self, request: RequestT) -> tuple[bool, int]:
        """Whether to return logprobs, and how many alternatives per token."""

    def grammar(self, request: RequestT) -> Grammar | None:
        """The grammar every choice must follow, compiled (runs in a worker thread)."""
        return None

    def conversation(self, request: RequestT, raw: Request) -> bool:
        """Whether the request is a conversation's turn, so its answer likely starts the next."""
        return False

    def echo(self, request: RequestT, prompt_ids: list[int]) -> str:
        """The text a choice of this prompt starts with."""
        return ""

    @abstractmethod
    def stream(self, reply: Reply[RequestT], outputs: Outputs) -> AsyncIterator[str]:
        """The SSE events' data, [DONE] excepted."""

    @abstractmethod
    async def collect(self, reply: Reply[RequestT], outputs: Outputs) -> Response:
        """The whole body, once every choice has ended."""

    # ---- shared ------------------------------------------------------------------------------

    async def create(self, request: RequestT, raw: Request, kept: ResumableStream | None = None) -> Response:
        """`kept`: where a streamed answer is kept for a client that comes back (resumable_key)."""
        reply, outputs = await self.start(request, raw)
        if request.stream:
            return self.sse(reply, outputs, kept)
        return await until_disconnected(raw, lambda: self.collect(reply, outputs))

    async def start(self, request: RequestT, raw: Request) -> tuple[Reply[RequestT], Outputs]:
        """Checks the request, submits its generations and waits for the first output (so a
        request that fails early gets a real status code); the outputs follow in order."""
        self.ctx.check_model(request.model)
        refuse_unsupported(request)
        refuse_stream_options_without_stream(request)
        # Chat templates and tokenisation of a long body take seconds, compiling a grammar up to
        # a second: not on the event loop (nor in the engine's step).
        prompts = await asyncio.to_thread(self.prompts, request)
        n = request.n or 1
        self.check_admissible(len(prompts), n)
        grammar = await asyncio.to_thread(self.grammar, request)
        logprobs, top_logprobs = self.logprobs(request)
        extra = {
            "logprobs": logprobs,
            "top_logprobs": top_logprobs,
            "grammar": grammar,
            "conversation": self.conversation(request, raw),
        }
        jobs = [
            (ids, self.sampling_params(request, len(ids), i, **extra)) for ids in prompts for i in range(n)
        ]
        reply = Reply(
            request,
            n,
            [self.echo(request, ids) for ids in prompts for _ in range(n)],
            f"{self.id_prefix}-{uuid.uuid4().hex}",
        )
        outputs = start_generation(self.ctx.engine, self.ctx.name, jobs, self.prompt_param(request), n)
        first = await first_output(outputs, self.ctx.sse_ping_s if request.stream else None)
        return reply, with_first(first, outputs)

    def sse(self, reply: Reply[RequestT], outputs: Outputs, kept: ResumableStream | None) -> Response:
        """The streamed response: `stream`'s events, framed as OpenAI frames them, and `kept`."""
        events = self.stream(reply, outputs)
        return sse_response(events if kept is None else kept.begin(events), self.ctx.sse_ping_s)

    @staticmethod
    def prompt_param(request: RequestT) -> str:
        return "messages" if "messages" in type(request).model_fields else "prompt"

    def check_admissible(self, num_prompts: int, n: int) -> None:
        """A request needing more sequences than the engine ever holds (running plus waiting)
        could only get 429s forever: it is a 400 naming what to shrink."""
        config = self.ctx.engine.config
        capacity = config.max_num_seqs + config.max_waiting
        if num_prompts * n <= capacity:
            return
        raise OpenAIError(
            400,
            f"This request needs {num_prompts * n} sequences ({num_prompts} prompts x n={n}), but this "
            f"server holds at most {capacity} at once (MAX_NUM_SEQS + MAX_WAITING). "
            "Send fewer prompts per request or a smaller n.",
            param="prompt" if num_prompts > capacity else "n",
        )

    def sampling_params(self, request: RequestT, prompt_len: int, index: int, **extra: Any) -> SamplingParams:
        """Settings for choice `index` of one prompt: the request's limits, checked, in one place.

        max_tokens: what the request asks (refused if it does not fit the context), else the
        endpoint's default, clamped to the room the prompt leaves."""
        ctx = self.ctx
        room = ctx.max_context - prompt_len
        requested = request.requested_max_tokens()
        if room < 1 or (requested is not None and requested > room):
            asked = f" + {requested} for the completion" if requested is not None else ""
            raise OpenAIError(
                400,
                f"This model's maximum context length is {ctx.max_context} tokens. However, you requested "
                f"{prompt_len + (requested or 0)} tokens ({prompt_len} in the prompt{asked}). "
                "Shorten the prompt or lower max_tokens.",
                param=self.prompt_param(request),
                code="context_length_exceeded",
            )
        vocab = len(ctx.tokenizer)
        bias: dict[int, float] = {}
        for key, value in (request.logit_bias or {}).items():
            # ASCII digits only: str.isdigit() also takes "²" and "٣", which int() refuses or reads.
            if not (key.isascii() and key.isdigit()) or int(key) >= vocab:
                raise OpenAIError(
                    400,
                    f"logit_bias key {key!r} is not a token id of this model (0..{vocab - 1}).",
                    param="logit_bias",
                )
            bias[int(key)] = value
        stop = (request.stop,) if isinstance(request.stop, str) else tuple(request.stop or ())
        # Only what the request sets: SamplingParams holds the defaults.
        given = {
            "temperature": request.temperature,
            "top_p": request.top_p,
            "top_k": None if request.top_k is None else min(max(0, request.top_k), vocab),
            "presence_penalty": request.presence_penalty,
            "frequency_penalty": request.frequency_penalty,
            "repetition_penalty": request.repetition_penalty,
            # Each of n choices gets its own stream, reproducible from the one seed.
            "seed": None if request.seed is None else (request.seed + index) % 2**64,
        }
        default = self.default_max_tokens
        return SamplingParams(
            max_tokens=requested if requested is not None else min(default or room, room),
            stop=tuple(s for s in stop if s),
            ignore_eos=request.ignore_eos,
            logit_bias=bias,
            **{name: value for name, value in given.items() if value is not None},
            **extra,
        )

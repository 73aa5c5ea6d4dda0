"""POST /v1/messages and /v1/messages/count_tokens, Anthropic's Messages API.

A request is read as the chat completion it amounts to (messages_input.py) and served by chat's
own prompts, grammar and answer parser (thinking, then tool calls); only the answer's shape is
Anthropic's: content blocks, stop_reason, usage, and named stream events.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..engine.grammar import Grammar
from ..protocol import ChatCompletionRequest
from ..protocol_anthropic import (
    AnthropicErrorDetail,
    AnthropicErrorResponse,
    ContentBlock,
    ContentBlockDeltaEvent,
    ContentBlockStartEvent,
    ContentBlockStopEvent,
    CountTokensRequest,
    CountTokensResponse,
    InputJSONDelta,
    Message,
    MessageDelta,
    MessageDeltaEvent,
    MessagesRequest,
    MessageStartEvent,
    MessageStopEvent,
    PingEvent,
    StopReason,
    StreamEvent,
    TextBlock,
    TextDelta,
    ThinkingBlock,
    ThinkingDelta,
    ToolUseBlock,
    Usage,
)
from .chat import AnswerParser, ChatService
from .choices import Choice, collect_choices
from .generation import GenerationService, Reply
from .messages_input import chat_request
from .resumable import ResumableStream
from .streams import Outputs, sse_response
from .tools import CallDelta


def _usage(choice: Choice) -> Usage:
    return Usage(
        input_tokens=choice.prompt_tokens - choice.cached_tokens,
        output_tokens=choice.completion_tokens,
        cache_read_input_tokens=choice.cached_tokens,
    )


def _stop(choice: Choice, parser: AnswerParser) -> tuple[StopReason, str | None]:
    """stop_reason and stop_sequence."""
    if choice.finish_reason == "length":
        return "max_tokens", None
    if parser.tools is not None and parser.tools.calls:
        return "tool_use", None
    if choice.stop_sequence is not None:
        return "stop_sequence", choice.stop_sequence
    return "end_turn", None


def _input(arguments: str) -> dict[str, Any]:
    # A call cut by max_tokens has partial arguments; Anthropic's input is an object all the same
    # (stop_reason "max_tokens" says it was cut).
    try:
        value = json.loads(arguments)
    except json.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


@dataclass
class _Blocks:
    """A streamed answer's content blocks, each started when its first piece comes and stopped
    when another kind of piece (or the end) does: thinking, text, then one per tool call."""

    stopped: int = 0  # blocks stopped so far: the open block's index
    open: str | None = None  # the open block's type

    def feed(self, thought: str, text: str, calls: list[CallDelta]) -> list[StreamEvent]:
        events: list[StreamEvent] = []
        if thought:
            if self.open != "thinking":
                events += self._start(ThinkingBlock(thinking=""))
            events.append(ContentBlockDeltaEvent(index=self.stopped, delta=ThinkingDelta(thinking=thought)))
        if text:
            if self.open != "text":
                events += self._start(TextBlock(text=""))
            events.append(ContentBlockDeltaEvent(index=self.stopped, delta=TextDelta(text=text)))
        for call in calls:
            if call.id is not None:  # a call's first piece: its id and name
                events += self._start(ToolUseBlock(id=call.id, name=call.name or "", input={}))
            if call.arguments:
                delta = InputJSONDelta(partial_json=call.arguments)
                events.append(ContentBlockDeltaEvent(index=self.stopped, delta=delta))
        return events

    def stop(self) -> list[StreamEvent]:
        if self.open is None:
            return []
        self.open = None
        self.stopped += 1
        return [ContentBlockStopEvent(index=self.stopped - 1)]

    def _start(self, block: ContentBlock) -> list[StreamEvent]:
        events = self.stop()
        self.open = block.type
        return [*events, ContentBlockStartEvent(index=self.stopped, content_block=block)]


class MessagesService(GenerationService[ChatCompletionRequest]):
    id_prefix = "msg"
    default_max_tokens = None  # max_tokens is required

    def __init__(self, chat: ChatService) -> None:
        super().__init__(chat.ctx)
        self.chat = chat

    async def message(self, body: MessagesRequest, raw: Request) -> Response:
        self.ctx.check_model(body.model)  # before the messages' checks, as chat does
        return await self.create(await asyncio.to_thread(chat_request, body), raw)

    async def count_tokens(self, body: CountTokensRequest) -> CountTokensResponse:
        """The prompt's tokens, as a create with the same input reads them."""
        self.ctx.check_model(body.model)
        prompts = await asyncio.to_thread(lambda: self.prompts(chat_request(body)))
        return CountTokensResponse(input_tokens=len(prompts[0]))

    # ---- chat's own reading of the request ---------------------------------------------------

    def prompts(self, request: ChatCompletionRequest) -> list[list[int]]:
        return self.chat.prompts(request)

    def grammar(self, request: ChatCompletionRequest) -> Grammar | None:
        return self.chat.grammar(request)

    def conversation(self, request: ChatCompletionRequest, raw: Request) -> bool:
        return self.chat.conversation(request, raw)

    def logprobs(self, request: ChatCompletionRequest) -> tuple[bool, int]:
        return False, 0  # the Messages API has none

    # ---- Anthropic's answer --------------------------------------------------------------------

    async def collect(self, reply: Reply[ChatCompletionRequest], outputs: Outputs) -> JSONResponse:
        [choice] = await collect_choices(outputs, reply.echoes)
        parser = self.chat.parser(reply.request)
        thought, text, _ = parser.feed(choice.text, last=True)
        content: list[ContentBlock] = [ThinkingBlock(thinking=thought)] if thought else []
        if text:
            content.append(TextBlock(text=text))
        for call in parser.tools.calls if parser.tools is not None else ():
            content.append(ToolUseBlock(id=call.id, name=call.name, input=_input(call.arguments)))
        stop_reason, stop_sequence = _stop(choice, parser)
        body = Message(
            id=reply.id,
            model=self.ctx.name,
            content=content,
            stop_reason=stop_reason,
            stop_sequence=stop_sequence,
            usage=_usage(choice),
        )
        return JSONResponse(body.model_dump())

    async def stream(self, reply: Reply[ChatCompletionRequest], outputs: Outputs) -> AsyncIterator[str]:
        choice = Choice()
        parser = self.chat.parser(reply.request)
        blocks = _Blocks()
        async for _, out in outputs:
            if out.error is not None:
                yield AnthropicErrorResponse(
                    error=AnthropicErrorDetail(type="api_error", message=out.error)
                ).model_dump_json()
                return
            first = not choice.marks
            choice.add(out)
            events: list[StreamEvent] = []
            if first:  # the prompt's usage is known from the first output
                start = Message(
                    id=reply.id,
                    model=self.ctx.name,
                    content=[],
                    stop_reason=None,
                    stop_sequence=None,
                    usage=_usage(choice).model_copy(update={"output_tokens": 0}),
                )
                events += [MessageStartEvent(message=start), PingEvent()]
            events += blocks.feed(*parser.feed(out.text, last=out.finish_reason is not None))
            if out.finish_reason is not None:
                stop_reason, stop_sequence = _stop(choice, parser)
                events += [
                    *blocks.stop(),
                    MessageDeltaEvent(
                        delta=MessageDelta(stop_reason=stop_reason, stop_sequence=stop_sequence),
                        usage=_usage(choice),
                    ),
                    MessageStopEvent(),
                ]
            for event in events:
                yield event.model_dump_json()

    def sse(
        self, reply: Reply[ChatCompletionRequest], outputs: Outputs, kept: ResumableStream | None
    ) -> Response:
        # Never kept for resuming (routes.py passes no `kept`): GET /v1/stream replays OpenAI's chunks.
        return sse_response(self.stream(reply, outputs), self.ctx.sse_ping_s, named=True)

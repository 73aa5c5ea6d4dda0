"""POST /v1/responses, OpenAI's Responses API, on the chat-completions machinery.

A request becomes a chat request (input items as messages, the previous responses' conversation
before them, function tools, text.format as response_format), which ChatService checks, renders
and generates as any chat request: same sampling, grammar, prefix cache, batching and
cancellation. Its answer, split by the chat AnswerParser into thinking, text and calls, becomes
output items: one builder makes them for a collected body and a stream alike.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..core.errors import OpenAIError
from ..protocol import (
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequest,
    ChatCompletionTool,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
    FunctionName,
    JSONSchema,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
)
from ..protocol_responses import (
    BuiltinTool,
    FunctionCallItem,
    FunctionCallOutputItem,
    FunctionTool,
    IncompleteDetails,
    InputMessage,
    InputTokensDetails,
    OtherInputContent,
    OutputFunctionCall,
    OutputItem,
    OutputMessage,
    OutputReasoning,
    OutputText,
    OutputTokensDetails,
    ReasoningInputItem,
    ReasoningText,
    ResponseError,
    ResponseObject,
    ResponsesRequest,
    ResponseUsage,
    TextFormatJsonObject,
    TextFormatJsonSchema,
    ToolChoiceFunction,
)
from .chat import AnswerParser, ChatService
from .choices import Choice
from .generation import Reply
from .response_store import ResponseStore, StoredResponse
from .streams import Outputs, sse_response, until_disconnected, until_set
from .tools import CallDelta

Event = dict[str, Any]


def _refuse(param: str, what: str) -> OpenAIError:
    return OpenAIError(
        400,
        f"{what} is not supported by this server; remove '{param}' from the request.",
        param=param,
        code="unsupported_parameter",
    )


def check_supported(request: ResponsesRequest) -> None:
    """Fields this server cannot honour are a 400 naming them, never ignored."""
    if request.background:
        raise _refuse("background", "Background mode (background: true)")
    for i, value in enumerate(request.include or ()):
        raise _refuse(f"include[{i}]", f"include value '{value}'")
    for name in ("reasoning", "conversation", "prompt"):
        if getattr(request, name) is not None:
            raise _refuse(name, f"'{name}'")
    if request.top_logprobs:
        raise _refuse("top_logprobs", "Log probabilities")
    if request.text is not None and request.text.verbosity is not None:
        raise _refuse("text.verbosity", "'text.verbosity'")
    for i, tool in enumerate(request.tools or ()):
        if isinstance(tool, BuiltinTool):
            raise _refuse(f"tools[{i}].type", f"The built-in tool '{tool.type}' (only function tools are)")


def _text(content: str | list[Any], param: str) -> str:
    if isinstance(content, str):
        return content
    for j, part in enumerate(content):
        if isinstance(part, OtherInputContent):
            raise OpenAIError(
                400,
                f"Content of type '{part.type}' is not supported: this model reads text only. Send "
                "input_text parts or a string.",
                param=f"{param}[{j}]",
                code="unsupported_content",
            )
    return "".join(part.text for part in content)


def input_messages(items: str | list[Any]) -> list[ChatMessage]:
    """The input as chat messages: a function call joins the assistant message before it (calls
    made together are one turn), a reasoning item the assistant turn after it."""
    if isinstance(items, str):
        return [ChatMessage(role="user", content=items)]
    out: list[ChatMessage] = []
    thought: str | None = None
    for i, item in enumerate(items):
        if isinstance(item, ReasoningInputItem):
            thought = "".join(part.text for part in item.content or ())
            after = items[i + 1] if i + 1 < len(items) else None
            if not (
                isinstance(after, FunctionCallItem)
                or (isinstance(after, InputMessage) and after.role == "assistant")
            ):
                raise OpenAIError(
                    400,
                    "A reasoning item must be followed by the assistant message or function call it led to.",
                    param=f"input[{i}]",
                )
        elif isinstance(item, InputMessage):
            text = _text(item.content, f"input[{i}].content")
            if item.role == "assistant":
                out.append(ChatMessage(role="assistant", content=text, reasoning_content=thought))
                thought = None
            else:
                out.append(ChatMessage(role=item.role, content=text))
        elif isinstance(item, FunctionCallItem):
            call = ChatCompletionMessageToolCall(
                id=item.call_id, function=FunctionCall(name=item.name, arguments=item.arguments)
            )
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and thought is None:
                last.tool_calls = [*(last.tool_calls or ()), call]
            else:
                out.append(ChatMessage(role="assistant", tool_calls=[call], reasoning_content=thought))
                thought = None
        elif isinstance(item, FunctionCallOutputItem):
            text = _text(item.output, f"input[{i}].output")
            out.append(ChatMessage(role="tool", tool_call_id=item.call_id, content=text))
    return out


def chat_request(request: ResponsesRequest, messages: list[ChatMessage]) -> ChatCompletionRequest:
    tools = [
        ChatCompletionTool(
            type="function",
            function=FunctionDefinition(
                name=t.name, description=t.description, parameters=t.parameters, strict=t.strict
            ),
        )
        for t in request.tools or ()
        if isinstance(t, FunctionTool)
    ]
    choice = request.tool_choice
    fmt = request.text.format if request.text is not None else None
    response_format: ResponseFormatJsonObject | ResponseFormatJsonSchema | None = None
    if isinstance(fmt, TextFormatJsonSchema):
        response_format = ResponseFormatJsonSchema(
            type="json_schema",
            json_schema=JSONSchema(
                name=fmt.name, description=fmt.description, schema=fmt.schema_, strict=fmt.strict
            ),
        )
    elif isinstance(fmt, TextFormatJsonObject):
        response_format = ResponseFormatJsonObject(type="json_object")
    return ChatCompletionRequest(
        model=request.model,
        messages=messages,
        max_completion_tokens=request.max_output_tokens,
        temperature=request.temperature,
        top_p=request.top_p,
        tools=tools or None,
        tool_choice=ChatCompletionNamedToolChoice(type="function", function=FunctionName(name=choice.name))
        if isinstance(choice, ToolChoiceFunction)
        else choice,
        parallel_tool_calls=request.parallel_tool_calls,
        response_format=response_format,
        stream=request.stream,
        user=request.user,
    )


# Chat's names for the fields of an error, in Responses terms.
_PARAMS = {
    "messages": "input",
    "response_format": "text.format",
    "max_tokens": "max_output_tokens",
    "max_completion_tokens": "max_output_tokens",
}


def renamed(error: OpenAIError) -> OpenAIError:
    """`error` in Responses terms: its param, and the fields its message tells the client to change."""
    head = (error.param or "").split(".")[0].split("[")[0]
    if head in _PARAMS:
        error.param = _PARAMS[head]
    error.message = re.sub(
        r"\b(max_tokens|max_completion_tokens|response_format)\b", lambda m: _PARAMS[m[1]], error.message
    )
    return error


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


class OutputItems:
    """One answer's output items as its pieces arrive, and the stream events that build them
    (without sequence numbers). An item stays open while the same kind of piece follows."""

    def __init__(self) -> None:
        self.items: list[OutputItem] = []
        self.open: OutputItem | None = None

    def feed(self, thought: str, content: str, calls: list[CallDelta]) -> list[Event]:
        events: list[Event] = []
        if thought:
            events += self._text(OutputReasoning, thought)
        if content:
            events += self._text(OutputMessage, content)
        for call in calls:
            if call.id is not None:  # a new call: its id and name come first
                events += self._close("completed")
                item = OutputFunctionCall(
                    id=_new_id("fc"),
                    call_id=call.id,
                    name=call.name or "",
                    arguments="",
                    status="in_progress",
                )
                events += self._add(item)
            if call.arguments and isinstance(self.open, OutputFunctionCall):
                self.open.arguments += call.arguments
                events.append(
                    {
                        "type": "response.function_call_arguments.delta",
                        **self._where(),
                        "delta": call.arguments,
                    }
                )
        return events

    def close(self, status: str) -> list[Event]:
        return self._close(status)

    def _where(self) -> Event:
        assert self.open is not None
        return {"item_id": self.open.id, "output_index": len(self.items) - 1}

    def _add(self, item: OutputItem) -> list[Event]:
        self.items.append(item)
        self.open = item
        return [
            {
                "type": "response.output_item.added",
                "output_index": len(self.items) - 1,
                "item": item.model_dump(),
            }
        ]

    def _text(self, kind: type[OutputMessage] | type[OutputReasoning], delta: str) -> list[Event]:
        events: list[Event] = []
        if not isinstance(self.open, kind):
            events += self._close("completed")
            if kind is OutputMessage:
                message = OutputMessage(id=_new_id("msg"), status="in_progress", content=[])
                events += self._add(message)
                message.content.append(OutputText(text=""))
                events.append(
                    {
                        "type": "response.content_part.added",
                        **self._where(),
                        "content_index": 0,
                        "part": message.content[0].model_dump(),
                    }
                )
            else:
                reasoning = OutputReasoning(id=_new_id("rs"), status="in_progress", content=[])
                events += self._add(reasoning)
                reasoning.content.append(ReasoningText(text=""))
        assert isinstance(self.open, OutputMessage | OutputReasoning)
        self.open.content[0].text += delta
        if isinstance(self.open, OutputMessage):
            events.append(
                {
                    "type": "response.output_text.delta",
                    **self._where(),
                    "content_index": 0,
                    "delta": delta,
                    "logprobs": [],
                }
            )
        else:
            events.append(
                {"type": "response.reasoning_text.delta", **self._where(), "content_index": 0, "delta": delta}
            )
        return events

    def _close(self, status: str) -> list[Event]:
        item = self.open
        if item is None:
            return []
        events: list[Event] = []
        where = self._where()
        if isinstance(item, OutputMessage):
            part = item.content[0]
            events.append(
                {
                    "type": "response.output_text.done",
                    **where,
                    "content_index": 0,
                    "text": part.text,
                    "logprobs": [],
                }
            )
            events.append(
                {"type": "response.content_part.done", **where, "content_index": 0, "part": part.model_dump()}
            )
        elif isinstance(item, OutputReasoning):
            events.append(
                {
                    "type": "response.reasoning_text.done",
                    **where,
                    "content_index": 0,
                    "text": item.content[0].text,
                }
            )
        else:
            events.append(
                {
                    "type": "response.function_call_arguments.done",
                    **where,
                    "name": item.name,
                    "arguments": item.arguments,
                }
            )
        item.status = status  # type: ignore[assignment]
        self.open = None
        events.append(
            {
                "type": "response.output_item.done",
                "output_index": where["output_index"],
                "item": item.model_dump(),
            }
        )
        return events

    def assistant_message(self) -> ChatMessage:
        """The answer as the next turn's history holds it."""
        thought = "".join(i.content[0].text for i in self.items if isinstance(i, OutputReasoning))
        text = "".join(i.content[0].text for i in self.items if isinstance(i, OutputMessage))
        calls = [
            ChatCompletionMessageToolCall(
                id=i.call_id, function=FunctionCall(name=i.name, arguments=i.arguments)
            )
            for i in self.items
            if isinstance(i, OutputFunctionCall)
        ]
        return ChatMessage(
            role="assistant",
            content=text or None,
            tool_calls=calls or None,
            reasoning_content=thought or None,
        )


class ResponsesService:
    def __init__(self, chat: ChatService, store: ResponseStore) -> None:
        self.chat = chat
        self.store = store

    def conversation(self, request: ResponsesRequest) -> list[ChatMessage]:
        """The earlier turns (from previous_response_id) and this request's input."""
        earlier: list[ChatMessage] = []
        if request.previous_response_id is not None:
            previous = self.store.get(request.previous_response_id, param="previous_response_id")
            if previous.running:
                raise OpenAIError(
                    400,
                    f"Response '{request.previous_response_id}' is still running; wait for it to end.",
                    param="previous_response_id",
                )
            earlier = previous.messages
        return [*earlier, *input_messages(request.input)]

    async def create(self, request: ResponsesRequest, raw: Request) -> Response:
        check_supported(request)
        history = self.conversation(request)
        system = [ChatMessage(role="system", content=request.instructions)] if request.instructions else []
        chat = chat_request(request, [*system, *history])
        entry = StoredResponse(self._body(request, _new_id("resp"), "in_progress", []), history)
        if request.store:
            self.store.put(entry)  # cancellable while it waits for its first token
        try:
            reply, outputs = await self.chat.start(chat, raw)
        except OpenAIError as exc:
            self.store.discard(entry)
            raise renamed(exc) from None
        except BaseException:
            self.store.discard(entry)
            raise
        run = _Run(self, entry, reply, until_set(outputs, entry.cancelled))
        if request.stream:
            return sse_response(run.events(), self.chat.ctx.sse_ping_s, named=True)
        return await until_disconnected(raw, run.collect)

    def _body(
        self, request: ResponsesRequest, response_id: str, status: str, output: list[OutputItem]
    ) -> ResponseObject:
        fmt = request.text.format if request.text is not None and request.text.format else None
        return ResponseObject(
            id=response_id,
            created_at=int(time.time()),
            status=status,  # type: ignore[arg-type]
            instructions=request.instructions,
            model=self.chat.ctx.name,
            output=output,
            parallel_tool_calls=request.parallel_tool_calls is not False,
            previous_response_id=request.previous_response_id,
            max_output_tokens=request.max_output_tokens,
            metadata=request.metadata or {},
            temperature=request.temperature,
            top_p=request.top_p,
            tools=[t for t in request.tools or () if isinstance(t, FunctionTool)],
            tool_choice=request.tool_choice or "auto",
            text={"format": fmt.model_dump(by_alias=True, exclude_none=True) if fmt else {"type": "text"}},
            store=request.store,
            user=request.user,
        )


class _Run:
    """One response from its first output to its end, collected or streamed; the stored entry
    follows it (in_progress, then completed, incomplete, cancelled or failed)."""

    def __init__(
        self,
        service: ResponsesService,
        entry: StoredResponse,
        reply: Reply[ChatCompletionRequest],
        outputs: Outputs,
    ) -> None:
        self.entry = entry
        self.store = service.store
        self.outputs = outputs
        self.choice = Choice()
        self.parser: AnswerParser = service.chat.parser(reply.request)
        self.items = OutputItems()
        self.body = entry.body
        self.body.output = self.items.items

    async def feed(self) -> AsyncIterator[list[Event]]:
        """The events of each output, until the answer ends, fails or is cancelled."""
        async for _, out in self.outputs:
            if out.error is not None:
                self.body.error = ResponseError(code="server_error", message=out.error)
                return
            self.choice.add(out)
            thought, content, calls = self.parser.feed(out.text, last=out.finish_reason is not None)
            yield self.items.feed(thought, content, calls)

    def finish(self) -> list[Event]:
        """Closes the open item and sets the final status and usage."""
        body, choice = self.body, self.choice
        if body.error is not None:
            body.status = "failed"
        elif self.entry.cancelled.is_set():
            body.status = "cancelled"
        elif choice.finish_reason == "length":
            body.status, body.incomplete_details = "incomplete", IncompleteDetails(reason="max_output_tokens")
        else:
            body.status, body.completed_at = "completed", int(time.time())
        events = self.items.close("completed" if body.status == "completed" else "incomplete")
        thought = self.parser.reasoning_tokens(choice) if self.parser.reasoning is not None else 0
        body.usage = ResponseUsage(
            input_tokens=choice.prompt_tokens,
            input_tokens_details=InputTokensDetails(cached_tokens=choice.cached_tokens),
            output_tokens=choice.completion_tokens,
            output_tokens_details=OutputTokensDetails(reasoning_tokens=thought),
            total_tokens=choice.prompt_tokens + choice.completion_tokens,
        )
        self.entry.messages = [*self.entry.messages, self.items.assistant_message()]
        return events

    def _ended(self) -> None:
        # A client that left mid-answer cancelled it: the stored response says so.
        if self.body.status == "in_progress":
            self.body.status = "cancelled"
            self.items.close("incomplete")
        self.entry.finished.set()

    async def collect(self) -> JSONResponse:
        try:
            async for _ in self.feed():
                pass
            self.finish()
            if self.body.status == "failed":
                raise OpenAIError(
                    500, self.body.error.message if self.body.error else "", type="server_error"
                )
            return JSONResponse(self.body.model_dump())
        finally:
            self._ended()

    async def events(self) -> AsyncIterator[str]:
        sequence = 0

        def sse(event: Event) -> str:
            nonlocal sequence
            sequence += 1
            return json.dumps({**event, "sequence_number": sequence - 1})

        try:
            snapshot = self.body.model_dump()
            yield sse({"type": "response.created", "response": snapshot})
            yield sse({"type": "response.in_progress", "response": snapshot})
            async for events in self.feed():
                for event in events:
                    yield sse(event)
            for event in self.finish():
                yield sse(event)
            kind = {"completed": "response.completed", "failed": "response.failed"}.get(
                self.body.status, "response.incomplete"
            )
            yield sse({"type": kind, "response": self.body.model_dump()})
        finally:
            self._ended()

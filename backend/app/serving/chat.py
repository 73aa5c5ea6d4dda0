"""POST /v1/chat/completions: chat template, engine calls, and the response or SSE stream."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from functools import cached_property

from fastapi import Request
from fastapi.responses import JSONResponse

from ..core.config import ReasoningFormat
from ..core.errors import OpenAIError
from ..engine.grammar import Grammar, GrammarError
from ..engine.sampling import TokenLogprobs
from ..protocol import (
    ChatCompletionChoice,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseMessage,
    ChatCompletionStreamChoice,
    ChatCompletionStreamResponse,
    ChatCompletionTokenLogprob,
    ChatCompletionTool,
    ChatCompletionTopLogprob,
    ChoiceLogprobs,
    CompletionUsage,
    DeltaFunctionCall,
    DeltaMessage,
    DeltaToolCall,
    FinishReason,
    ResponseFormatJsonObject,
    ResponseFormatJsonSchema,
    ResponseFunctionCall,
    ResponseToolCall,
    TextContentPart,
)
from .choices import Choice, collect_choices, usage_of
from .generation import CONVERSATION_HEADER, GenerationService, ModelContext, Reply
from .reasoning import ReasoningParser, ThinkingStart, thinking_start
from .streams import Outputs, stream_error_event
from .structured import json_grammar, tool_calls_grammar
from .tools import (
    CallDelta,
    CallParser,
    LeadingCallParser,
    ToolCallParser,
    ToolFormat,
    conversation,
    template_renders_tools,
    template_takes_system,
    tool_format,
)


def _continues_final_message(request: ChatCompletionRequest) -> bool:
    """vLLM's `continue_final_message`: the final assistant message is left open, not closed."""
    if not request.continue_final_message:
        return False
    if request.add_generation_prompt:
        raise OpenAIError(
            400,
            "continue_final_message and add_generation_prompt cannot both be true: set "
            "add_generation_prompt to false to continue the final assistant message.",
            param="add_generation_prompt",
        )
    last = len(request.messages) - 1
    if request.messages[last].role != "assistant":
        raise OpenAIError(
            400,
            "continue_final_message continues the final message, which must then be an assistant "
            f"message; messages[{last}] is a '{request.messages[last].role}' message.",
            param=f"messages[{last}].role",
        )
    return True


@dataclass
class AnswerParser:
    """One choice's answer as it streams: the thinking split out first, then tool calls read from
    the rest (a call written while thinking is part of the thought)."""

    reasoning: ReasoningParser | None
    tools: CallParser | None

    def feed(self, text: str, last: bool) -> tuple[str, str, list[CallDelta]]:
        """New reasoning, new content and call deltas in `text`; `last`: the answer ends with it."""
        thought, content = ("", text) if self.reasoning is None else self.reasoning.feed(text)
        if last and self.reasoning is not None:
            more_thought, more = self.reasoning.finish()
            thought, content = thought + more_thought, content + more
        if self.tools is None:
            return thought, content, []
        content, deltas = self.tools.feed(content)
        if last:
            rest, more_deltas = self.tools.finish()
            content, deltas = content + rest, deltas + more_deltas
        return thought, content, deltas

    def reasoning_tokens(self, choice: Choice) -> int:
        """How many of the tokens of `choice`, the answer fed whole, were thinking."""
        end = self.reasoning.reasoning_end if self.reasoning is not None else None
        return choice.tokens_through(end or 0)


class ChatService(GenerationService[ChatCompletionRequest]):
    id_prefix = "chatcmpl"
    default_max_tokens = None  # the rest of the context

    def __init__(self, ctx: ModelContext, reasoning_format: ReasoningFormat) -> None:
        super().__init__(ctx)
        # Where the model's thinking opens, or None: answers are not split (REASONING_FORMAT).
        self.thinking: ThinkingStart | None = thinking_start(ctx.tokenizer, reasoning_format)

    @cached_property
    def native_tools(self) -> bool:
        """The model's own template renders tools (else the generic tool prompt is used)."""
        return template_renders_tools(self.ctx.tokenizer)

    @cached_property
    def system_role(self) -> bool:
        """The template takes a system message (where the generic tool prompt goes)."""
        return template_takes_system(self.ctx.tokenizer)

    @cached_property
    def tool_format(self) -> ToolFormat:
        """How the model writes calls: its family's format when its template renders tools, else
        the Hermes blocks the generic tool prompt asks for."""
        return tool_format(self.ctx.tokenizer) if self.native_tools else "hermes"

    @staticmethod
    def offered_tools(request: ChatCompletionRequest) -> list[ChatCompletionTool]:
        """The tools the model may call in this answer: none when tool_choice is "none"."""
        choice = request.tool_choice
        if not request.tools or choice == "none":
            return []
        if isinstance(choice, ChatCompletionNamedToolChoice):
            return [t for t in request.tools if t.function.name == choice.function.name]
        return request.tools

    @staticmethod
    def forced_call(request: ChatCompletionRequest) -> bool:
        """tool_choice "required" or a named function: the answer is a call, by grammar."""
        choice = request.tool_choice
        return choice == "required" or isinstance(choice, ChatCompletionNamedToolChoice)

    @classmethod
    def constrained(cls, request: ChatCompletionRequest) -> bool:
        """A grammar writes the answer from its first token: JSON, or the forced calls."""
        json = isinstance(request.response_format, ResponseFormatJsonObject | ResponseFormatJsonSchema)
        return json or cls.forced_call(request)

    def prompts(self, request: ChatCompletionRequest) -> list[list[int]]:
        if request.top_logprobs and not request.logprobs:
            raise OpenAIError(400, "top_logprobs requires logprobs to be true.", param="top_logprobs")
        self._check_tools(request)
        for i, message in enumerate(request.messages):
            for name in ("function_call", "audio"):
                if getattr(message, name) is not None:
                    raise OpenAIError(
                        400,
                        f"Assistant messages with '{name}' are not supported by this server.",
                        param=f"messages[{i}].{name}",
                    )
            for name in ("tool_calls", "reasoning_content", "reasoning"):
                if getattr(message, name) is not None and message.role != "assistant":
                    raise OpenAIError(
                        400, f"Only assistant messages carry {name}.", param=f"messages[{i}].{name}"
                    )
            both = message.reasoning_content is not None and message.reasoning is not None
            if both and message.reasoning_content != message.reasoning:
                raise OpenAIError(
                    400,
                    "reasoning_content and reasoning are two names for the same thinking; they differ "
                    "here. Send one of them.",
                    param=f"messages[{i}].reasoning",
                )
            if message.role == "tool" and message.tool_call_id is None:
                raise OpenAIError(
                    400,
                    "A message with role 'tool' needs the tool_call_id of the call it answers.",
                    param=f"messages[{i}].tool_call_id",
                )
            for j, part in enumerate(message.content if isinstance(message.content, list) else ()):
                if not isinstance(part, TextContentPart):
                    raise OpenAIError(
                        400,
                        f"Content parts of type '{part.type}' are not supported: this model reads text "
                        "only. Send the message as a string or as {'type': 'text', 'text': ...} parts.",
                        param=f"messages[{i}].content[{j}]",
                        code="unsupported_content",
                    )
            if message.content is None and message.role != "assistant":
                raise OpenAIError(400, f"Message {i} has no content.", param=f"messages[{i}].content")
        tools = self.offered_tools(request)
        native = self.native_tools
        extra = {"tools": [t.model_dump(exclude_none=True) for t in tools]} if tools and native else {}
        messages = conversation(request.messages, tools, native, self.tool_format, self.system_role)
        continue_final = _continues_final_message(request)
        try:
            text = self.ctx.tokenizer.apply_chat_template(
                messages,
                tokenize=False,
                add_generation_prompt=request.add_generation_prompt,
                continue_final_message=continue_final,
                **extra,
            )
        except Exception as exc:  # templates raise on conversations they do not accept
            raise OpenAIError(
                400, f"The model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        return [self.ctx.tokenizer.encode(text, add_special_tokens=False)]

    @staticmethod
    def _check_tools(request: ChatCompletionRequest) -> None:
        names = [t.function.name for t in request.tools or ()]
        if len(set(names)) != len(names):
            raise OpenAIError(
                400, "Two tools have the same function name; names must be unique.", param="tools"
            )
        choice = request.tool_choice
        if isinstance(choice, ChatCompletionNamedToolChoice) and choice.function.name not in names:
            raise OpenAIError(
                400,
                f"tool_choice names the function '{choice.function.name}', which is not in tools.",
                param="tool_choice",
            )
        if choice == "required" and not names:
            raise OpenAIError(
                400, "tool_choice 'required' needs at least one tool in tools.", param="tool_choice"
            )
        if ChatService.forced_call(request) and isinstance(
            request.response_format, ResponseFormatJsonObject | ResponseFormatJsonSchema
        ):
            raise OpenAIError(
                400,
                "response_format cannot be combined with a forced tool_choice: the answer is the tool "
                "call. Drop one of them.",
                param="response_format",
            )

    def grammar(self, request: ChatCompletionRequest) -> Grammar | None:
        fmt = request.response_format
        choice = request.tool_choice
        if isinstance(fmt, ResponseFormatJsonSchema):
            lark, param = json_grammar(fmt.json_schema.schema_), "response_format"
        elif isinstance(fmt, ResponseFormatJsonObject):
            lark, param = json_grammar(None), "response_format"
        elif self.forced_call(request):
            several = request.parallel_tool_calls is not False and choice == "required"
            lark, param = tool_calls_grammar(self.offered_tools(request), several), "tools"
        else:
            return None  # "auto": the model chooses; its calls are parsed from the text
        try:
            return self.ctx.engine.grammars.compile(lark)
        except GrammarError as exc:
            raise OpenAIError(
                400,
                f"This schema cannot be enforced: {exc}. Remove or rewrite the unsupported part.",
                param=param,
                code="invalid_schema",
            ) from exc

    def parser(self, request: ChatCompletionRequest) -> AnswerParser:
        reasoning = tools = None
        if self.thinking is not None and not self.constrained(request):
            # A continued final message has no generation prompt to open the thinking.
            reasoning = ReasoningParser(in_prompt=self.thinking == "prompt" and request.add_generation_prompt)
        if offered := self.offered_tools(request):
            names = {t.function.name for t in offered}
            most = None if request.parallel_tool_calls is not False else 1
            # A forced call is written by the grammar, in Hermes blocks whatever the family.
            if self.tool_format == "hermes" or self.forced_call(request):
                tools = ToolCallParser(names, most, enforced=self.forced_call(request))
            else:
                tools = LeadingCallParser(names, self.tool_format, most)
        return AnswerParser(reasoning, tools)

    @staticmethod
    def _usage(choices: list[Choice], parsers: list[AnswerParser], per_prompt: int) -> CompletionUsage:
        if parsers[0].reasoning is None:  # no thinking: no reasoning_tokens to report
            return usage_of(choices, per_prompt)
        thought = sum(p.reasoning_tokens(c) for c, p in zip(choices, parsers, strict=True))
        return usage_of(choices, per_prompt, thought)

    def conversation(self, request: ChatCompletionRequest, raw: Request) -> bool:
        # A later turn sends earlier answers back; the page marks every turn, the first too.
        return bool(raw.headers.get(CONVERSATION_HEADER)) or any(
            message.role == "assistant" for message in request.messages
        )

    def logprobs(self, request: ChatCompletionRequest) -> tuple[bool, int]:
        return bool(request.logprobs), request.top_logprobs or 0

    def _logprobs(
        self, request: ChatCompletionRequest, entries: list[TokenLogprobs]
    ) -> ChoiceLogprobs | None:
        if not request.logprobs:
            return None
        content = []
        for entry in entries:
            text, raw = self.tokens.get(entry.token_id)
            top = [
                ChatCompletionTopLogprob(token=t, logprob=lp, bytes=b)
                for t, b, lp in ((*self.tokens.get(tid), lp) for tid, lp in entry.top)
            ]
            content.append(
                ChatCompletionTokenLogprob(token=text, logprob=entry.logprob, bytes=raw, top_logprobs=top)
            )
        return ChoiceLogprobs(content=content)

    @staticmethod
    def _finish_reason(choice: Choice, parser: AnswerParser) -> FinishReason:
        if parser.tools is not None and parser.tools.calls and choice.finish_reason == "stop":
            return "tool_calls"
        return choice.finish_reason

    async def collect(self, reply: Reply[ChatCompletionRequest], outputs: Outputs) -> JSONResponse:
        choices = await collect_choices(outputs, reply.echoes)
        parsers = [self.parser(reply.request) for _ in choices]
        messages = []
        for choice, parser in zip(choices, parsers, strict=True):
            thought, content, _ = parser.feed(choice.text, last=True)
            calls = parser.tools.calls if parser.tools is not None else []
            messages.append(
                (
                    ChatCompletionResponseMessage(
                        # With tools or thinking, no text is null (a call cut before its name, or
                        # thinking cut by max_tokens, leaves none).
                        content=content if content or (parser.tools is None and not thought) else None,
                        reasoning_content=thought or None,
                        reasoning=thought or None,
                        tool_calls=[
                            ResponseToolCall(
                                id=c.id, function=ResponseFunctionCall(name=c.name, arguments=c.arguments)
                            )
                            for c in calls
                        ]
                        or None,
                    ),
                    self._finish_reason(choice, parser),
                )
            )
        body = ChatCompletionResponse(
            id=reply.id,
            created=reply.created,
            model=self.ctx.name,
            system_fingerprint=self.ctx.fingerprint,
            choices=[
                ChatCompletionChoice(
                    index=i,
                    message=message,
                    logprobs=self._logprobs(reply.request, [e for e, _ in choice.logprobs]),
                    finish_reason=finish_reason,
                )
                for i, (choice, (message, finish_reason)) in enumerate(zip(choices, messages, strict=True))
            ],
            usage=self._usage(choices, parsers, reply.n),
        )
        return JSONResponse(body.model_dump())

    async def stream(self, reply: Reply[ChatCompletionRequest], outputs: Outputs) -> AsyncIterator[str]:
        def chunk(choices: list[ChatCompletionStreamChoice], usage: CompletionUsage | None = None) -> str:
            body = ChatCompletionStreamResponse(
                id=reply.id,
                created=reply.created,
                model=self.ctx.name,
                choices=choices,
                system_fingerprint=self.ctx.fingerprint,
                usage=usage,
            )
            return body.model_dump_json(exclude=None if reply.include_usage else {"usage"})

        def deltas(
            index: int, thought: str, content: str, calls: list[CallDelta], logprobs: list[TokenLogprobs]
        ) -> Iterator[str]:
            if thought or content or logprobs:
                delta = DeltaMessage(
                    content=content if content or not thought else None,
                    reasoning_content=thought or None,
                    reasoning=thought or None,
                )
                yield chunk(
                    [
                        ChatCompletionStreamChoice(
                            index=index, delta=delta, logprobs=self._logprobs(reply.request, logprobs)
                        )
                    ]
                )
            # As OpenAI streams a call: id, type and name first, then its arguments in pieces.
            for call in calls:
                piece = DeltaToolCall(
                    index=call.index,
                    id=call.id,
                    type="function" if call.id is not None else None,
                    function=DeltaFunctionCall(name=call.name, arguments=call.arguments),
                )
                yield chunk([ChatCompletionStreamChoice(index=index, delta=DeltaMessage(tool_calls=[piece]))])

        choices = [Choice() for _ in reply.echoes]
        parsers = [self.parser(reply.request) for _ in reply.echoes]
        for i in range(len(choices)):
            yield chunk(
                [ChatCompletionStreamChoice(index=i, delta=DeltaMessage(role="assistant", content=""))]
            )
        async for index, out in outputs:
            if out.error is not None:
                yield stream_error_event(out.error)
                return
            choices[index].add(out)
            parser = parsers[index]
            thought, content, calls = parser.feed(out.text, last=out.finish_reason is not None)
            for event in deltas(index, thought, content, calls, out.logprobs):
                yield event
            if out.finish_reason is not None:
                yield chunk(
                    [
                        ChatCompletionStreamChoice(
                            index=index,
                            delta=DeltaMessage(),
                            finish_reason=self._finish_reason(choices[index], parser),
                        )
                    ]
                )
        if reply.include_usage:
            yield chunk([], self._usage(choices, parsers, reply.n))

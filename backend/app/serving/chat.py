"""POST /v1/chat/completions: chat template, engine calls, and the response or SSE stream."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse

from ..core.errors import OpenAIError
from ..engine.sampling import TokenLogprobs
from ..protocol import (
    ChatCompletionChoice,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatCompletionResponseMessage,
    ChatCompletionStreamChoice,
    ChatCompletionStreamResponse,
    ChatCompletionTokenLogprob,
    ChatCompletionTopLogprob,
    ChoiceLogprobs,
    CompletionUsage,
    DeltaMessage,
    TextContentPart,
)
from .choices import Choice, collect_choices, usage_of
from .generation import GenerationService, Reply
from .streams import Outputs, stream_error_event


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


class ChatService(GenerationService[ChatCompletionRequest]):
    id_prefix = "chatcmpl"
    default_max_tokens = None  # the rest of the context

    def prompts(self, request: ChatCompletionRequest) -> list[list[int]]:
        fmt = (request.response_format or {}).get("type", "text")
        if fmt != "text":
            raise OpenAIError(
                400,
                f"response_format type '{fmt}' is not supported; only 'text' is.",
                param="response_format",
            )
        if request.top_logprobs and not request.logprobs:
            raise OpenAIError(400, "top_logprobs requires logprobs to be true.", param="top_logprobs")
        for i, message in enumerate(request.messages):
            for name in ("tool_calls", "function_call", "audio"):
                if getattr(message, name) is not None:
                    raise OpenAIError(
                        400,
                        f"Assistant messages with '{name}' are not supported by this server.",
                        param=f"messages[{i}].{name}",
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
        # OpenAI's "developer" role is the system role of models that predate it.
        conversation = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in request.messages
        ]
        continue_final = _continues_final_message(request)
        try:
            text = self.ctx.tokenizer.apply_chat_template(
                conversation,
                tokenize=False,
                add_generation_prompt=request.add_generation_prompt,
                continue_final_message=continue_final,
            )
        except Exception as exc:  # templates raise on conversations they do not accept
            raise OpenAIError(
                400, f"The model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        return [self.ctx.tokenizer.encode(text, add_special_tokens=False)]

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

    async def collect(self, reply: Reply[ChatCompletionRequest], outputs: Outputs) -> JSONResponse:
        choices = await collect_choices(outputs, reply.echoes)
        body = ChatCompletionResponse(
            id=reply.id,
            created=reply.created,
            model=self.ctx.name,
            system_fingerprint=self.ctx.fingerprint,
            choices=[
                ChatCompletionChoice(
                    index=i,
                    message=ChatCompletionResponseMessage(content=choice.text),
                    logprobs=self._logprobs(reply.request, [e for e, _ in choice.logprobs]),
                    finish_reason=choice.finish_reason,
                )
                for i, choice in enumerate(choices)
            ],
            usage=usage_of(choices, reply.n),
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

        choices = [Choice() for _ in reply.echoes]
        for i in range(len(choices)):
            yield chunk(
                [ChatCompletionStreamChoice(index=i, delta=DeltaMessage(role="assistant", content=""))]
            )
        async for index, out in outputs:
            if out.error is not None:
                yield stream_error_event(out.error)
                return
            choices[index].add(out)
            if out.text or out.logprobs:
                yield chunk(
                    [
                        ChatCompletionStreamChoice(
                            index=index,
                            delta=DeltaMessage(content=out.text),
                            logprobs=self._logprobs(reply.request, out.logprobs),
                        )
                    ]
                )
            if out.finish_reason is not None:
                yield chunk(
                    [
                        ChatCompletionStreamChoice(
                            index=index, delta=DeltaMessage(), finish_reason=choices[index].finish_reason
                        )
                    ]
                )
        if reply.include_usage:
            yield chunk([], usage_of(choices, reply.n))

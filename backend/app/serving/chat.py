"""POST /v1/chat/completions: chat template, engine calls, and the response or SSE stream."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..core.errors import OpenAIError
from ..engine.engine import RequestOutput
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
)
from .common import Choice, GenerationService, collect_choices, stream_error_event, usage_of


class ChatService(GenerationService):
    id_prefix = "chatcmpl"

    def _prompt_ids(self, request: ChatCompletionRequest) -> list[int]:
        for i, message in enumerate(request.messages):
            for field in ("tool_calls", "function_call", "audio"):
                if getattr(message, field) is not None:
                    raise OpenAIError(
                        400,
                        f"Assistant messages with '{field}' are not supported by this server.",
                        param=f"messages[{i}].{field}",
                    )
            if message.content is None and message.role != "assistant":
                raise OpenAIError(400, f"Message {i} has no content.", param=f"messages[{i}].content")
        # OpenAI's "developer" role is the system role of models that predate it.
        conversation = [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in request.messages
        ]
        try:
            text = self.ctx.tokenizer.apply_chat_template(
                conversation, tokenize=False, add_generation_prompt=True
            )
        except Exception as exc:  # templates raise on conversations they do not accept
            raise OpenAIError(
                400, f"The model's chat template rejected the messages: {exc}", param="messages"
            ) from exc
        return self.ctx.tokenizer.encode(text, add_special_tokens=False)

    async def create(self, request: ChatCompletionRequest, raw: Request) -> Response:
        self.check(request)
        fmt = (request.response_format or {}).get("type", "text")
        if fmt != "text":
            raise OpenAIError(
                400,
                f"response_format type '{fmt}' is not supported; only 'text' is.",
                param="response_format",
            )
        if request.top_logprobs and not request.logprobs:
            raise OpenAIError(400, "top_logprobs requires logprobs to be true.", param="top_logprobs")
        prompt_ids = self._prompt_ids(request)
        max_tokens = request.max_completion_tokens or request.max_tokens
        n = request.n or 1
        prompts = [
            (
                prompt_ids,
                self.ctx.sampling_params(
                    request,
                    len(prompt_ids),
                    max_tokens,
                    i,
                    logprobs=bool(request.logprobs),
                    top_logprobs=request.top_logprobs or 0,
                ),
            )
            for i in range(n)
        ]
        return await self.respond(
            request,
            raw,
            prompts,
            partial(self._stream, request=request, n=n),
            partial(self._collect, request=request, n=n),
        )

    def _logprobs(self, entries: list[TokenLogprobs]) -> list[ChatCompletionTokenLogprob]:
        result = []
        for entry in entries:
            text, raw = self.tokens.get(entry.token_id)
            top = [
                ChatCompletionTopLogprob(token=t, logprob=lp, bytes=b)
                for t, b, lp in ((*self.tokens.get(tid), lp) for tid, lp in entry.top)
            ]
            result.append(
                ChatCompletionTokenLogprob(token=text, logprob=entry.logprob, bytes=raw, top_logprobs=top)
            )
        return result

    async def _collect(
        self,
        outputs: AsyncIterator[tuple[int, RequestOutput]],
        response_id: str,
        created: int,
        request: ChatCompletionRequest,
        n: int,
    ) -> JSONResponse:
        choices = await collect_choices(outputs, [""] * n)
        body = ChatCompletionResponse(
            id=response_id,
            created=created,
            model=self.ctx.name,
            system_fingerprint=self.ctx.fingerprint,
            choices=[
                ChatCompletionChoice(
                    index=i,
                    message=ChatCompletionResponseMessage(content=choice.text),
                    logprobs=ChoiceLogprobs(content=self._logprobs([e for e, _ in choice.logprobs]))
                    if request.logprobs
                    else None,
                    finish_reason=choice.finish_reason,
                )
                for i, choice in enumerate(choices)
            ],
            usage=usage_of(choices, n),
        )
        return JSONResponse(body.model_dump())

    async def _stream(
        self,
        outputs: AsyncIterator[tuple[int, RequestOutput]],
        response_id: str,
        created: int,
        request: ChatCompletionRequest,
        n: int,
        include_usage: bool,
    ) -> AsyncIterator[str]:
        def chunk(choices: list[ChatCompletionStreamChoice], usage: CompletionUsage | None = None) -> str:
            body = ChatCompletionStreamResponse(
                id=response_id,
                created=created,
                model=self.ctx.name,
                choices=choices,
                system_fingerprint=self.ctx.fingerprint,
                usage=usage,
            )
            return body.model_dump_json(exclude=None if include_usage else {"usage"})

        choices = [Choice() for _ in range(n)]
        for i in range(n):
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
                            logprobs=ChoiceLogprobs(content=self._logprobs(out.logprobs))
                            if request.logprobs
                            else None,
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
        if include_usage:
            yield chunk([], usage_of(choices, n))

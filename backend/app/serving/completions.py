"""POST /v1/completions: raw prompts (text or token ids), no chat template."""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi.responses import JSONResponse

from ..core.errors import OpenAIError
from ..engine.sampling import TokenLogprobs
from ..protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    CompletionUsage,
)
from .choices import Choice, collect_choices, usage_of
from .generation import GenerationService, Reply
from .streams import Outputs, stream_error_event


class CompletionService(GenerationService[CompletionRequest]):
    id_prefix = "cmpl"
    default_max_tokens = 16  # OpenAI's, for completions

    def prompts(self, request: CompletionRequest) -> list[list[int]]:
        n = request.n or 1
        if request.best_of is not None and request.best_of != n:
            raise OpenAIError(400, "best_of must equal n here (no server-side ranking).", param="best_of")
        if request.echo and request.logprobs is not None:
            raise OpenAIError(400, "echo with logprobs (prompt logprobs) is not supported.", param="echo")
        prompt = request.prompt
        if isinstance(prompt, str):
            prompt = [prompt]
        if isinstance(prompt[0], int):
            prompt = [prompt]  # type: ignore[list-item]
        vocab = len(self.ctx.tokenizer)
        result = []
        for i, item in enumerate(prompt):
            if isinstance(item, str):
                ids = self.ctx.tokenizer.encode(item)
            else:
                ids = list(item)  # type: ignore[arg-type]
                if max(ids) >= vocab:
                    raise OpenAIError(
                        400, f"prompt[{i}] holds token ids beyond the vocabulary ({vocab}).", param="prompt"
                    )
            if not ids:
                raise OpenAIError(400, f"prompt[{i}] is empty.", param="prompt")
            result.append(ids)
        return result

    def logprobs(self, request: CompletionRequest) -> tuple[bool, int]:
        return request.logprobs is not None, request.logprobs or 0

    def echo(self, request: CompletionRequest, prompt_ids: list[int]) -> str:
        return self.ctx.tokenizer.decode(prompt_ids) if request.echo else ""

    def _logprobs(
        self, request: CompletionRequest, entries: list[tuple[TokenLogprobs, int]]
    ) -> CompletionLogprobs | None:
        """Legacy logprobs; each entry comes with the offset in the text where its token's text begins."""
        if request.logprobs is None:
            return None
        result = CompletionLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
        for entry, offset in entries:
            result.tokens.append(self.tokens.get(entry.token_id)[0])
            result.token_logprobs.append(entry.logprob)
            result.top_logprobs.append({self.tokens.get(tid)[0]: lp for tid, lp in entry.top})
            result.text_offset.append(offset)
        return result

    def _response(
        self, reply: Reply[CompletionRequest], choices: list[CompletionChoice], usage: CompletionUsage | None
    ) -> CompletionResponse:
        return CompletionResponse(
            id=reply.id,
            created=reply.created,
            model=self.ctx.name,
            choices=choices,
            usage=usage,
            system_fingerprint=self.ctx.fingerprint,
        )

    async def collect(self, reply: Reply[CompletionRequest], outputs: Outputs) -> JSONResponse:
        choices = await collect_choices(outputs, reply.echoes)
        body = self._response(
            reply,
            [
                CompletionChoice(
                    index=i,
                    text=choice.text,
                    logprobs=self._logprobs(reply.request, choice.logprobs),
                    finish_reason=choice.finish_reason,
                )
                for i, choice in enumerate(choices)
            ],
            usage_of(choices, reply.n),
        )
        return JSONResponse(body.model_dump())

    async def stream(self, reply: Reply[CompletionRequest], outputs: Outputs) -> AsyncIterator[str]:
        def chunk(choices: list[CompletionChoice], usage: CompletionUsage | None = None) -> str:
            return self._response(reply, choices, usage).model_dump_json(
                exclude=None if reply.include_usage else {"usage"}
            )

        choices = [Choice(text=echo) for echo in reply.echoes]
        for i, echo in enumerate(reply.echoes):
            if echo:
                yield chunk([CompletionChoice(index=i, text=echo, finish_reason=None)])
        async for index, out in outputs:
            if out.error is not None:
                yield stream_error_event(out.error)
                return
            choice = choices[index]
            offset = len(choice.text)
            choice.add(out)
            if out.text or out.logprobs or out.finish_reason is not None:
                logprobs = self._logprobs(reply.request, [(entry, offset) for entry in out.logprobs])
                reason = choice.finish_reason if out.finish_reason is not None else None
                yield chunk(
                    [CompletionChoice(index=index, text=out.text, logprobs=logprobs, finish_reason=reason)]
                )
        if reply.include_usage:
            yield chunk([], usage_of(choices, reply.n))

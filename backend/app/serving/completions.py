"""POST /v1/completions: raw prompts (text or token ids), no chat template."""

from __future__ import annotations

from collections.abc import AsyncIterator
from functools import partial

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from ..core.errors import OpenAIError
from ..engine.engine import RequestOutput
from ..engine.sampling import TokenLogprobs
from ..protocol import (
    CompletionChoice,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    CompletionUsage,
)
from .common import Choice, GenerationService, collect_choices, stream_error_event, usage_of


class CompletionService(GenerationService):
    id_prefix = "cmpl"

    def _prompts(self, request: CompletionRequest) -> list[list[int]]:
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

    async def create(self, request: CompletionRequest, raw: Request) -> Response:
        self.check(request)
        n = request.n or 1
        if request.best_of is not None and request.best_of != n:
            raise OpenAIError(400, "best_of must equal n here (no server-side ranking).", param="best_of")
        if request.echo and request.logprobs is not None:
            raise OpenAIError(400, "echo with logprobs (prompt logprobs) is not supported.", param="echo")
        prompts = self._prompts(request)
        jobs = [
            (
                ids,
                self.ctx.sampling_params(
                    request,
                    len(ids),
                    request.max_tokens if "max_tokens" in request.model_fields_set else None,
                    i,
                    default_max=request.max_tokens,
                    logprobs=request.logprobs is not None,
                    top_logprobs=request.logprobs or 0,
                ),
            )
            for ids in prompts
            for i in range(n)
        ]
        echoes = [self.ctx.tokenizer.decode(ids) if request.echo else "" for ids in prompts for _ in range(n)]
        return await self.respond(
            request,
            raw,
            jobs,
            partial(self._stream, request=request, echoes=echoes),
            partial(self._collect, request=request, echoes=echoes),
        )

    def _logprobs(self, entries: list[tuple[TokenLogprobs, int]]) -> CompletionLogprobs:
        """Legacy logprobs; each entry comes with the offset in the text where its token's text begins."""
        result = CompletionLogprobs(tokens=[], token_logprobs=[], top_logprobs=[], text_offset=[])
        for entry, offset in entries:
            result.tokens.append(self.tokens.get(entry.token_id)[0])
            result.token_logprobs.append(entry.logprob)
            result.top_logprobs.append({self.tokens.get(tid)[0]: lp for tid, lp in entry.top})
            result.text_offset.append(offset)
        return result

    def _response(
        self, response_id: str, created: int, choices: list[CompletionChoice], usage: CompletionUsage | None
    ):
        return CompletionResponse(
            id=response_id,
            created=created,
            model=self.ctx.name,
            choices=choices,
            usage=usage,
            system_fingerprint=self.ctx.fingerprint,
        )

    async def _collect(
        self,
        outputs: AsyncIterator[tuple[int, RequestOutput]],
        response_id: str,
        created: int,
        request: CompletionRequest,
        echoes: list[str],
    ) -> JSONResponse:
        choices = await collect_choices(outputs, echoes)
        body = self._response(
            response_id,
            created,
            [
                CompletionChoice(
                    index=i,
                    text=choice.text,
                    logprobs=self._logprobs(choice.logprobs) if request.logprobs is not None else None,
                    finish_reason=choice.finish_reason,
                )
                for i, choice in enumerate(choices)
            ],
            usage_of(choices, request.n or 1),
        )
        return JSONResponse(body.model_dump())

    async def _stream(
        self,
        outputs: AsyncIterator[tuple[int, RequestOutput]],
        response_id: str,
        created: int,
        request: CompletionRequest,
        echoes: list[str],
        include_usage: bool,
    ) -> AsyncIterator[str]:
        def chunk(choices: list[CompletionChoice], usage: CompletionUsage | None = None) -> str:
            return self._response(response_id, created, choices, usage).model_dump_json(
                exclude=None if include_usage else {"usage"}
            )

        choices = [Choice(text=echo) for echo in echoes]
        for i, echo in enumerate(echoes):
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
                logprobs = (
                    self._logprobs([(entry, offset) for entry in out.logprobs])
                    if request.logprobs is not None
                    else None
                )
                reason = choice.finish_reason if out.finish_reason is not None else None
                yield chunk(
                    [CompletionChoice(index=index, text=out.text, logprobs=logprobs, finish_reason=reason)]
                )
        if include_usage:
            yield chunk([], usage_of(choices, request.n or 1))

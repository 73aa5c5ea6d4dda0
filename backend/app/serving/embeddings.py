"""POST /v1/embeddings: inputs checked and tokenised off the event loop, a bounded queue, and
the response rendered off it too (2,048 vectors make megabytes of JSON)."""

from __future__ import annotations

import asyncio
import base64

import torch
from fastapi.responses import Response

from ..accounts.usage import current_meter
from ..core.errors import OpenAIError, model_not_found, server_busy
from ..engine.embedder import Embedder, EmbedderBusy
from ..protocol import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage


class EmbeddingService:
    def __init__(self, name: str, embedder: Embedder, max_tokens: int) -> None:
        self.name = name
        self.embedder = embedder
        self.max_tokens = max_tokens  # per request, all inputs together

    def _inputs(self, request: EmbeddingRequest) -> list[list[int]]:
        items = request.input
        if isinstance(items, str):
            items = [items]
        if isinstance(items[0], int):
            items = [items]  # type: ignore[list-item]
        texts = [i for i in items if isinstance(i, str)]
        if any(not t for t in texts):
            raise OpenAIError(400, "input must not contain empty strings.", param="input")
        encoded = iter(self.embedder.tokenize(texts)) if texts else iter(())
        inputs = [next(encoded) if isinstance(item, str) else list(item) for item in items]  # type: ignore[arg-type]
        vocab = len(self.embedder.tokenizer)
        for i, ids in enumerate(inputs):
            if len(ids) > self.embedder.max_tokens:
                raise OpenAIError(
                    400,
                    f"input[{i}] has {len(ids)} tokens; this embedding model takes at most "
                    f"{self.embedder.max_tokens}. Split the text into smaller pieces.",
                    param="input",
                    code="context_length_exceeded",
                )
            if max(ids) >= vocab:
                raise OpenAIError(
                    400, f"input[{i}] holds token ids beyond the vocabulary ({vocab}).", param="input"
                )
        total = sum(len(ids) for ids in inputs)
        if total > self.max_tokens:
            raise OpenAIError(
                400,
                f"The inputs hold {total} tokens in all; one request may hold at most {self.max_tokens} "
                "(MAX_EMBEDDING_TOKENS). Send them in several requests.",
                param="input",
                code="max_tokens_per_request",
            )
        return inputs

    def _response(
        self, request: EmbeddingRequest, inputs: list[list[int]], vectors: torch.Tensor
    ) -> Response:
        """The body, rendered one vector at a time: one call dumping 2,048 x 384 floats would hold
        the GIL (and so the event loop) for a second, even in a worker thread."""
        items = []
        for i, vector in enumerate(vectors):
            if request.encoding_format == "base64":
                payload: list[float] | str = base64.b64encode(vector.numpy().astype("<f4").tobytes()).decode()
            else:
                payload = vector.tolist()
            items.append(Embedding(index=i, embedding=payload).model_dump_json())
        tokens = sum(len(ids) for ids in inputs)
        usage = EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        envelope = EmbeddingResponse(data=[], model=self.name, usage=usage).model_dump_json()
        head, tail = envelope.split('"data":[]', 1)
        return Response(f'{head}"data":[{",".join(items)}]{tail}', media_type="application/json")

    async def create(self, request: EmbeddingRequest) -> Response:
        if request.model != self.name:
            raise model_not_found(request.model)
        if request.dimensions is not None and request.dimensions != self.embedder.dimensions:
            raise OpenAIError(
                400,
                f"This model returns {self.embedder.dimensions}-dimensional vectors and cannot shorten them; "
                "omit 'dimensions'.",
                param="dimensions",
            )
        inputs = await asyncio.to_thread(self._inputs, request)
        try:
            vectors = await self.embedder.embed(inputs)
        except EmbedderBusy as exc:
            raise server_busy(str(exc)) from exc
        meter = current_meter()
        if meter is not None:
            meter.record(self.name, sum(len(ids) for ids in inputs))
        return await asyncio.to_thread(self._response, request, inputs, vectors)

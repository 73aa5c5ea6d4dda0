"""POST /v1/embeddings."""

from __future__ import annotations

import base64

from fastapi.responses import JSONResponse

from ..core.errors import OpenAIError, model_not_found
from ..engine.embedder import Embedder
from ..protocol import Embedding, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage


class EmbeddingService:
    def __init__(self, name: str, embedder: Embedder) -> None:
        self.name = name
        self.embedder = embedder

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
        return inputs

    async def create(self, request: EmbeddingRequest) -> JSONResponse:
        if request.model != self.name:
            raise model_not_found(request.model)
        if request.dimensions is not None and request.dimensions != self.embedder.dimensions:
            raise OpenAIError(
                400,
                f"This model returns {self.embedder.dimensions}-dimensional vectors and cannot shorten them; "
                "omit 'dimensions'.",
                param="dimensions",
            )
        inputs = self._inputs(request)
        vectors = await self.embedder.embed(inputs)
        data = []
        for i, vector in enumerate(vectors):
            if request.encoding_format == "base64":
                payload: list[float] | str = base64.b64encode(vector.numpy().astype("<f4").tobytes()).decode()
            else:
                payload = vector.tolist()
            data.append(Embedding(index=i, embedding=payload))
        tokens = sum(len(ids) for ids in inputs)
        body = EmbeddingResponse(
            data=data, model=self.name, usage=EmbeddingUsage(prompt_tokens=tokens, total_tokens=tokens)
        )
        return JSONResponse(body.model_dump())

"""HTTP routes: validate, hand over to a serving module, return what it gives."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response

from ..core.errors import model_not_found
from ..protocol import ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ModelCard, ModelList
from ..services import Services
from .deps import require_api_key, services

v1 = APIRouter(prefix="/v1", dependencies=[Depends(require_api_key)])
Loaded = Annotated[Services, Depends(services)]


@v1.get("/models")
async def list_models(s: Loaded) -> ModelList:
    return ModelList(data=s.models)


@v1.get("/models/{model_id:path}")
async def get_model(model_id: str, s: Loaded) -> ModelCard:
    for card in s.models:
        if card.id == model_id:
            return card
    raise model_not_found(model_id)


@v1.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, s: Loaded) -> Response:
    return await s.chat.create(body, request)


@v1.post("/completions")
async def completions(body: CompletionRequest, request: Request, s: Loaded) -> Response:
    return await s.completions.create(body, request)


@v1.post("/embeddings")
async def embeddings(body: EmbeddingRequest, s: Loaded) -> Response:
    if s.embeddings is None:
        raise model_not_found(body.model)
    return await s.embeddings.create(body)


health = APIRouter()


@health.get("/health")
async def get_health(request: Request) -> JSONResponse:
    loaded: Services | None = getattr(request.app.state, "services", None)
    engine = loaded.engine if loaded else None
    body = {
        "status": "ok",
        "model_loaded": loaded is not None,
        "engine_alive": bool(engine and engine.alive),
        "accepting": bool(engine and engine.accepting),
        "running": engine.stats.running if engine else 0,
        "waiting": engine.stats.waiting if engine else 0,
    }
    if engine is None or not engine.alive or not engine.accepting:
        body["status"] = "loading" if engine is None else "draining" if engine.alive else "dead"
        if engine is not None and engine.error:
            body["error"] = engine.error
        return JSONResponse(body, status_code=503)
    return JSONResponse(body)

"""HTTP routes: validate, hand over to a serving module, return what it gives.

Bodies are parsed off the event loop (body.py); the API key is checked before that, in
core.auth. Every error a route can answer is documented with OpenAI's error schema, or on
Anthropic's Messages API routes with Anthropic's.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from sse_starlette import EventSourceResponse

from ..protocol import (
    ChatCompletionRequest,
    ChatCompletionResponse,
    CompletionRequest,
    CompletionResponse,
    DetokenizeRequest,
    DetokenizeResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    ErrorResponse,
    ModelCard,
    ModelList,
    ModelLoadEvent,
    ModelLoadRequest,
    ModelUnloadRequest,
    TokenizeRequest,
    TokenizeResponse,
)
from ..protocol_anthropic import (
    AnthropicErrorResponse,
    CountTokensRequest,
    CountTokensResponse,
    Message,
    MessagesRequest,
)
from ..protocol_responses import DeletedResponse, ResponseObject, ResponsesRequest
from ..services import ChatModel, EmbeddingModel, Services, card
from ..serving.generation import resumable_key
from ..serving.resumable import key_of
from ..serving.streams import until_disconnected
from .body import documented_body, json_body
from .deps import services

ERRORS = {
    400: "Invalid request; `param` names the field and the message says what to change.",
    401: "Missing or wrong API key (only when the server has API_KEY set).",
    404: "No such model (`code` model_not_found).",
    413: "The body is larger than MAX_REQUEST_BYTES.",
    429: "The queue is full, or (with accounts) the user is over a limit; retry after the Retry-After "
    "header's seconds.",
    500: "A bug; the message carries no details.",
    503: "The model is loading, or the server is shutting down.",
}


def errors(*statuses: int, shape: type[BaseModel] = ErrorResponse) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": shape, "description": ERRORS[status]} for status in (*statuses, 500)}


# One Server-Sent Event, as OpenAPI 3.2 reads a text/event-stream schema (each event, not the whole
# body) and schemathesis validates it: `data` is a JSON chunk, or "[DONE]" last.
SSE_EVENT = {
    "type": "object",
    "properties": {
        "data": {"type": "string"},
        "event": {"type": "string"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
    "required": ["data"],
}


def generated(
    request: type[BaseModel],
    response: type[BaseModel],
    *statuses: int,
    shape: type[BaseModel] = ErrorResponse,
) -> dict[str, Any]:
    """The documentation of an endpoint that takes `request` and answers `response` (or SSE),
    its errors in `shape`."""
    return {
        "responses": {
            200: {
                "model": response,
                "description": "The answer; with `stream: true`, Server-Sent Events of its chunks.",
                "content": {"text/event-stream": {"schema": SSE_EVENT}},
            },
            **errors(*statuses, shape=shape),
        },
        "openapi_extra": documented_body(request),
    }


v1 = APIRouter(prefix="/v1", responses=errors(401, 503))
Loaded = Annotated[Services, Depends(services)]


@v1.get("/models")
async def list_models(s: Loaded) -> ModelList:
    return ModelList(data=s.cards())


@v1.get("/models/{model_id:path}", responses=errors(404))
async def get_model(model_id: str, s: Loaded) -> ModelCard:
    return card(s.registry.entry(model_id))


@v1.post("/chat/completions", **generated(ChatCompletionRequest, ChatCompletionResponse, 400, 404, 413, 429))
async def chat_completions(
    body: Annotated[ChatCompletionRequest, Depends(json_body(ChatCompletionRequest))],
    request: Request,
    s: Loaded,
) -> Response:
    # Kept before the model is even loaded: a client back meanwhile waits for the answer.
    with s.streams.reserved(resumable_key(request, body.stream)) as kept:
        async with s.chat(body.model, body.keep_alive) as m:
            return await m.chat.create(body, request, kept)


@v1.post("/responses", **generated(ResponsesRequest, ResponseObject, 400, 404, 413, 429))
async def create_response(
    body: Annotated[ResponsesRequest, Depends(json_body(ResponsesRequest))], request: Request, s: Loaded
) -> Response:
    async with s.chat(body.model, body.keep_alive) as m:
        return await m.responses.create(body, request)


STORED = errors(404)
STORED[404] = {**STORED[404], "description": "No such response stored here (`code` response_not_found)."}


@v1.get("/responses/{response_id}", responses=STORED)
async def get_response(response_id: str, s: Loaded) -> ResponseObject:
    return s.store.get(response_id).body


@v1.delete("/responses/{response_id}", responses=STORED)
async def delete_response(response_id: str, s: Loaded) -> DeletedResponse:
    s.store.delete(response_id)
    return DeletedResponse(id=response_id)


@v1.post("/responses/{response_id}/cancel", responses={**STORED, **errors(400)})
async def cancel_response(response_id: str, s: Loaded) -> ResponseObject:
    return await s.store.cancel(response_id)


KEPT = errors(404)
KEPT[404] = {**KEPT[404], "description": "No such answer kept here (`code` stream_not_found)."}


@v1.get(
    "/stream/{conversation_id}/{message_id}",
    responses={
        200: {
            "description": "Server-Sent Events: every chunk of the answer so far, then the rest as it "
            "is generated, then `data: [DONE]`.",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **KEPT,
    },
)
async def resume_stream(conversation_id: str, message_id: str, request: Request, s: Loaded) -> Response:
    """A streamed chat or text completion that was sent with X-Conversation-Id and X-Message-Id,
    replayed from its first chunk (llama-server's /v1/stream, per message): its client may have
    left, the answer went on (STREAM_RESUME_S)."""
    return s.streams.resume(key_of(request, conversation_id, message_id))


@v1.delete("/stream/{conversation_id}/{message_id}", status_code=204, responses=KEPT)
async def stop_stream(conversation_id: str, message_id: str, request: Request, s: Loaded) -> Response:
    """Stops a kept answer (a Stop button: hanging up no longer stops it); it is forgotten, and
    its readers get what was generated, then `[DONE]`."""
    s.streams.stop(key_of(request, conversation_id, message_id))
    return Response(status_code=204)


@v1.post("/completions", **generated(CompletionRequest, CompletionResponse, 400, 404, 413, 429))
async def completions(
    body: Annotated[CompletionRequest, Depends(json_body(CompletionRequest))], request: Request, s: Loaded
) -> Response:
    with s.streams.reserved(resumable_key(request, body.stream)) as kept:
        async with s.chat(body.model, body.keep_alive) as m:
            return await m.completions.create(body, request, kept)


@v1.post("/embeddings", **generated(EmbeddingRequest, EmbeddingResponse, 400, 404, 413, 429))
async def embeddings(
    body: Annotated[EmbeddingRequest, Depends(json_body(EmbeddingRequest))], request: Request, s: Loaded
) -> Response:
    async with s.embedder(body.model, body.keep_alive) as m:
        return await until_disconnected(request, lambda: m.embeddings.create(body))


# llama-server's router mode: an operator loads and unloads models (behind the API key).
models = APIRouter(responses=errors(401, 503))


@models.post(
    "/models/load",
    responses={
        200: {
            "model": ModelCard,
            "description": "The model, loaded; with `stream: true`, Server-Sent Events of ModelLoadEvent "
            "(its state and progress) ending with state loaded or failed.",
            "content": {"text/event-stream": {"schema": SSE_EVENT}},
        },
        **errors(400, 404, 413),
    },
    openapi_extra=documented_body(ModelLoadRequest),
)
async def load_model(
    body: Annotated[ModelLoadRequest, Depends(json_body(ModelLoadRequest))], s: Loaded
) -> Response:
    entry = s.registry.entry(body.model)
    load = s.registry.retry_load(entry)
    if not body.stream:
        await load
        return JSONResponse(card(entry).model_dump())

    async def events() -> AsyncIterator[str]:
        async for state, progress in s.registry.watch(entry):
            event = ModelLoadEvent(model=entry.spec.name, state=state, progress=progress, error=entry.error)
            yield event.model_dump_json(exclude_none=True)

    return EventSourceResponse(events())


@models.post(
    "/models/unload", responses=errors(400, 404, 413), openapi_extra=documented_body(ModelUnloadRequest)
)
async def unload_model(
    body: Annotated[ModelUnloadRequest, Depends(json_body(ModelUnloadRequest))], s: Loaded
) -> ModelCard:
    """Unloads the model once its running requests have finished."""
    return card(await s.registry.unload(body.model))


# vLLM's paths, outside /v1 (they are not OpenAI's).
tokenizer = APIRouter(responses=errors(401, 503))


@tokenizer.post("/tokenize", responses=errors(400, 404, 413), openapi_extra=documented_body(TokenizeRequest))
async def tokenize(
    body: Annotated[TokenizeRequest, Depends(json_body(TokenizeRequest))], s: Loaded
) -> TokenizeResponse:
    async with s.chat(body.model) as m:
        return await m.tokenize.tokenize(body)


@tokenizer.post(
    "/detokenize", responses=errors(400, 404, 413), openapi_extra=documented_body(DetokenizeRequest)
)
async def detokenize(
    body: Annotated[DetokenizeRequest, Depends(json_body(DetokenizeRequest))], s: Loaded
) -> DetokenizeResponse:
    async with s.chat(body.model) as m:
        return await m.tokenize.detokenize(body)


# Anthropic's Messages API, its errors in Anthropic's shape (core/errors.py).
anthropic = APIRouter(prefix="/v1", responses=errors(401, 503, shape=AnthropicErrorResponse))


@anthropic.post(
    "/messages",
    **generated(MessagesRequest, Message, 400, 404, 413, 429, shape=AnthropicErrorResponse),
)
async def messages(
    body: Annotated[MessagesRequest, Depends(json_body(MessagesRequest))], request: Request, s: Loaded
) -> Response:
    async with s.chat(body.model, body.keep_alive) as m:
        return await m.messages.message(body, request)


@anthropic.post(
    "/messages/count_tokens",
    responses=errors(400, 404, 413, shape=AnthropicErrorResponse),
    openapi_extra=documented_body(CountTokensRequest),
)
async def count_tokens(
    body: Annotated[CountTokensRequest, Depends(json_body(CountTokensRequest))], s: Loaded
) -> CountTokensResponse:
    async with s.chat(body.model) as m:
        return await m.messages.count_tokens(body)


class Health(BaseModel):
    status: str
    model_loaded: bool
    engine_alive: bool
    accepting: bool
    running: int
    waiting: int
    embedding_waiting: int
    error: str | None = None


health = APIRouter()


@health.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "Loading, draining, or an engine died."}},
)
async def get_health(request: Request) -> JSONResponse:
    """Every loaded model's engine together: the pinned ones (CHAT_MODEL_PATH) at least, once
    start-up has loaded them; models loaded on demand count while they are loaded."""
    loaded: Services | None = getattr(request.app.state, "services", None)
    models = loaded.registry.entries.values() if loaded else ()
    engines = [e.model.engine for e in models if isinstance(e.model, ChatModel)]
    embedders = [e.model.embeddings.embedder for e in models if isinstance(e.model, EmbeddingModel)]
    dead = [engine for engine in engines if not engine.alive]
    body = Health(
        status="ok",
        model_loaded=loaded is not None,
        engine_alive=loaded is not None and not dead,
        accepting=loaded is not None and all(engine.accepting for engine in engines),
        running=sum(engine.stats.running for engine in engines),
        waiting=sum(engine.stats.waiting for engine in engines),
        embedding_waiting=sum(embedder.waiting for embedder in embedders),
    )
    if loaded is None or dead or not body.accepting:
        body.status = "loading" if loaded is None else "dead" if dead else "draining"
        body.error = dead[0].error if dead else None
        return JSONResponse(body.model_dump(exclude_none=True), status_code=503)
    return JSONResponse(body.model_dump(exclude_none=True))

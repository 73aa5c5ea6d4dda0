"""Loading the models once at start-up and wiring them to the serving modules."""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

import torch

from .core.config import Settings
from .engine.config import EngineConfig, ModelOptions
from .engine.embedder import Embedder
from .engine.engine import Engine
from .engine.loader import check_model_folder, load_chat_model, loading
from .engine.quantization import quantization_of
from .protocol import ModelCard
from .serving.chat import ChatService
from .serving.completions import CompletionService
from .serving.embeddings import EmbeddingService
from .serving.generation import ModelContext
from .serving.messages import MessagesService
from .serving.response_store import ResponseStore
from .serving.responses import ResponsesService
from .serving.tokenize import TokenizeService

log = logging.getLogger(__name__)


@dataclass
class Services:
    engine: Engine
    chat: ChatService
    responses: ResponsesService
    completions: CompletionService
    embeddings: EmbeddingService | None
    models: list[ModelCard]
    tokenize: TokenizeService
    messages: MessagesService


def load_services(settings: Settings) -> Services:
    started = time.monotonic()
    # Every folder is checked before the slow load, so a wrong path fails at once.
    if settings.embedding_model_path is not None:
        check_model_folder(settings.embedding_model_path, "Embedding")
    model, tokenizer = load_chat_model(ModelOptions.of(settings))
    device = model.device
    engine = Engine(model, tokenizer, EngineConfig.of(settings))
    engine.start()
    fingerprint = (
        "fp_"
        + hashlib.sha256(
            f"{settings.chat_model_name}|{model.dtype}|{quantization_of(model)}|{settings.dense_prefill}|"
            f"{device.type}|{torch.__version__}".encode()
        ).hexdigest()[:10]
    )
    ctx = ModelContext(settings.chat_model_name, engine, tokenizer, fingerprint, settings.sse_ping_s)
    created = int(time.time())
    models = [
        ModelCard(
            id=ctx.name,
            created=created,
            capabilities=["chat", "completions", "responses", "messages", "continue_final_message"],
            max_model_len=engine.max_context,
        )
    ]
    log.info("chat model ready in %.1f s (context %d tokens)", time.monotonic() - started, engine.max_context)
    embeddings = None
    if settings.embedding_model_path is not None:
        with loading("Embedding", settings.embedding_model_path):
            embedder = Embedder(
                settings.embedding_model_path,
                device,
                torch.float32 if device.type == "cpu" else model.dtype,
                max_waiting=settings.embedding_max_waiting,
            )
        embeddings = EmbeddingService(settings.embedding_model_name, embedder, settings.max_embedding_tokens)
        models.append(
            ModelCard(
                id=settings.embedding_model_name,
                created=created,
                capabilities=["embeddings"],
                max_model_len=embedder.max_tokens,
            )
        )
        log.info("embedding model ready: %s", settings.embedding_model_path)
    chat = ChatService(ctx, settings.reasoning_format)
    return Services(
        engine,
        chat,
        ResponsesService(chat, ResponseStore(settings.max_stored_responses)),
        CompletionService(ctx),
        embeddings,
        models,
        TokenizeService(chat),
        MessagesService(chat),
    )

"""Loading the models once at start-up and wiring them to the serving modules."""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from .core.config import Settings
from .engine.embedder import Embedder
from .engine.engine import Engine
from .engine.loader import (
    ModelLoadError,
    check_model_folder,
    check_quantization,
    pin_cpu_kernels,
    resolve_attention,
    resolve_device,
    resolve_dtype,
    resolve_quantization,
)
from .engine.memory import trim_heap
from .engine.quantization import quantization_of, quantize_model
from .protocol import ModelCard
from .serving.chat import ChatService
from .serving.common import ModelContext
from .serving.completions import CompletionService
from .serving.embeddings import EmbeddingService

log = logging.getLogger(__name__)


@dataclass
class Services:
    ctx: ModelContext
    chat: ChatService
    completions: CompletionService
    embeddings: EmbeddingService | None
    models: list[ModelCard]


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    attention: str


def preflight(settings: Settings) -> Placement:
    """Everything that can be checked before loading: fails with one line saying what to fix."""
    check_model_folder(settings.chat_model_path, "Chat")
    if settings.embedding_model_path is not None:
        check_model_folder(settings.embedding_model_path, "Embedding")
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    check_quantization(settings.quantization, device, dtype)
    return Placement(device, dtype, resolve_attention(settings.attention, device))


def load_chat_model(settings: Settings) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    place = preflight(settings)
    pin_cpu_kernels(place.device, place.attention)
    # Loading runs single-threaded: a second OpenMP thread team beside the engine's (whose thread
    # count is NUM_THREADS) makes libgomp throttle its spin-waits, which halved decode speed here.
    torch.set_num_threads(1)
    log.info(
        "loading chat model %s on %s (%s, %s attention)",
        settings.chat_model_path,
        place.device,
        place.dtype,
        place.attention,
    )
    with loading("Chat", settings.chat_model_path):
        tokenizer = AutoTokenizer.from_pretrained(settings.chat_model_path, local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(
            settings.chat_model_path,
            local_files_only=True,
            dtype=place.dtype,
            attn_implementation=place.attention,
            device_map=settings.device_map,
        )
        if settings.device_map is None:
            model = model.to(place.device)
    quantization = resolve_quantization(settings.quantization, model)
    if quantization != "none":
        count = quantize_model(model, quantization, keep_dense=settings.dense_prefill)
        trim_heap()  # the float copies quantising made, and the weights it replaced (unless kept)
        log.info(
            "quantised %d linear layers to %s (weight-only%s)",
            count,
            quantization,
            ", dense weights kept for prefill" if settings.dense_prefill else "",
        )
    return model.eval(), tokenizer


@contextmanager
def loading(what: str, path: Path) -> Iterator[None]:
    """Turn any failure to read a model folder into one line naming the folder and the fix."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        raise ModelLoadError(
            f"{what} model folder {path} could not be loaded ({type(exc).__name__}: {first_line[:200]}). "
            "Run `make models` for the default models, or point the setting at a complete model folder."
        ) from exc


def load_services(settings: Settings) -> Services:
    started = time.monotonic()
    model, tokenizer = load_chat_model(settings)
    device = model.device
    text_config = model.config.get_text_config()
    max_context = getattr(text_config, "max_position_embeddings", None) or 2048
    if settings.max_model_len:
        max_context = min(max_context, settings.max_model_len)
    engine = Engine(
        model,
        tokenizer,
        max_context=max_context,
        max_num_seqs=settings.max_num_seqs,
        max_waiting=settings.max_waiting,
        max_num_batched_tokens=settings.max_num_batched_tokens,
        queue_timeout_s=settings.queue_timeout_s,
        fast_path=settings.fast_path,
        num_threads=settings.num_threads,
    )
    engine.start()
    fingerprint = (
        "fp_"
        + hashlib.sha256(
            f"{settings.chat_model_name}|{model.dtype}|{quantization_of(model)}|{settings.dense_prefill}|"
            f"{device.type}|{torch.__version__}".encode()
        ).hexdigest()[:10]
    )
    ctx = ModelContext(
        settings.chat_model_name, engine, tokenizer, max_context, fingerprint, settings.sse_ping_s
    )
    created = int(time.time())
    models = [
        ModelCard(
            id=ctx.name, created=created, capabilities=["chat", "completions"], max_model_len=max_context
        )
    ]
    log.info("chat model ready in %.1f s (context %d tokens)", time.monotonic() - started, max_context)
    embeddings = None
    if settings.embedding_model_path is not None:
        with loading("Embedding", settings.embedding_model_path):
            embedder = Embedder(
                settings.embedding_model_path, device, torch.float32 if device.type == "cpu" else model.dtype
            )
        embeddings = EmbeddingService(settings.embedding_model_name, embedder)
        models.append(
            ModelCard(
                id=settings.embedding_model_name,
                created=created,
                capabilities=["embeddings"],
                max_model_len=embedder.max_tokens,
            )
        )
        log.info("embedding model ready: %s", settings.embedding_model_path)
    return Services(ctx, ChatService(ctx), CompletionService(ctx), embeddings, models)

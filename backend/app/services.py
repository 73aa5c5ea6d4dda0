"""The models the settings name, wired to the serving modules: what loading one means (its own
engine, KV cache and prefix cache, or its own embedder) and what unloading it frees. When they
load is the registry's (registry.py)."""

from __future__ import annotations

import dataclasses
import functools
import gc
import hashlib
import logging
import math
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import torch
import transformers.core_model_loading as hf_loading
from safetensors import SafetensorError, safe_open
from torch import nn

from .core.config import Settings
from .core.metrics import ModelGauges
from .engine import gguf
from .engine.config import EngineConfig, ModelOptions
from .engine.embedder import Embedder
from .engine.engine import Engine
from .engine.loader import check_model_folder, load_chat_model, loading, resolve_device, resolve_dtype
from .engine.memory import trim_heap
from .engine.quantization import quantization_of
from .protocol import ModelCard
from .registry import (
    Entry,
    KeepAlive,
    ModelSpec,
    Progress,
    Registry,
    keep_alive_seconds,
    read_models_file,
    scan_models_dir,
)
from .serving.chat import ChatService
from .serving.completions import CompletionService
from .serving.embeddings import EmbeddingService
from .serving.generation import ModelContext
from .serving.messages import MessagesService
from .serving.response_store import ResponseStore
from .serving.responses import ResponsesService
from .serving.resumable import ResumableStreams
from .serving.tokenize import TokenizeService

log = logging.getLogger(__name__)

CHAT_CAPABILITIES = ["chat", "completions", "responses", "messages", "continue_final_message", "tools"]
# The share of a load's progress that reading the weights stands for; quantising and starting
# the engine take the rest.
WEIGHTS_SHARE = 0.9


@dataclass
class ChatModel:
    """A loaded chat model: its engine and the services over it."""

    engine: Engine
    chat: ChatService
    responses: ResponsesService
    completions: CompletionService
    tokenize: TokenizeService
    messages: MessagesService
    memory_bytes: int
    grace_s: float
    quantization: str  # what QUANTIZATION (or a GGUF file's types) made of its weights

    @property
    def busy(self) -> bool:
        return not self.engine.idle

    def close(self) -> None:
        self.engine.stop_admitting()
        self.engine.shutdown(self.grace_s)


@dataclass
class EmbeddingModel:
    embeddings: EmbeddingService
    memory_bytes: int

    @property
    def busy(self) -> bool:
        return self.embeddings.embedder.waiting > 0

    def close(self) -> None:
        self.embeddings.embedder.close()


@dataclass
class Services:
    registry: Registry
    store: ResponseStore  # every chat model's stored responses, for GET, DELETE and cancel
    streams: ResumableStreams  # every chat model's answers kept for a client that comes back

    def cards(self) -> list[ModelCard]:
        return [card(entry) for entry in self.registry.entries.values()]

    @asynccontextmanager
    async def chat(self, name: str, keep_alive: KeepAlive = None) -> AsyncIterator[ChatModel]:
        """The chat model `name`, loaded, held for the block (registry.use)."""
        async with self.registry.use(name, "chat", keep_alive) as model:
            assert isinstance(model, ChatModel)
            yield model

    @asynccontextmanager
    async def embedder(self, name: str, keep_alive: KeepAlive = None) -> AsyncIterator[EmbeddingModel]:
        async with self.registry.use(name, "embedding", keep_alive) as model:
            assert isinstance(model, EmbeddingModel)
            yield model

    def drain(self) -> list[Engine]:
        """Shutting down: no more loads, and the loaded engines admit no more requests (returned,
        to wait for)."""
        self.registry.draining = True
        engines = [e.model.engine for e in self.registry.entries.values() if isinstance(e.model, ChatModel)]
        for engine in engines:
            engine.stop_admitting()
        return engines

    def gauges(self) -> dict[str, ModelGauges]:
        """Each model's gauges for /metrics."""
        read = {}
        for name, entry in self.registry.entries.items():
            model = entry.model
            if isinstance(model, ChatModel):
                engine = model.engine
                read[name] = ModelGauges(
                    True,
                    engine.stats.running,
                    engine.stats.waiting,
                    engine.blocks.in_use / engine.blocks.usable,
                    speculation=engine.speculation,
                )
            elif isinstance(model, EmbeddingModel):
                embedder = model.embeddings.embedder
                read[name] = ModelGauges(
                    True,
                    embedding_waiting=embedder.waiting,
                    embedded=embedder.embedded,
                    embedding_batches=embedder.batches,
                )
            else:
                read[name] = ModelGauges(False)
        return read


def card(entry: Entry) -> ModelCard:
    model = entry.model
    if isinstance(model, ChatModel):
        max_len: int | None = model.engine.max_context
    elif isinstance(model, EmbeddingModel):
        max_len = model.embeddings.embedder.max_tokens
    else:
        max_len = entry.spec.options.get("max_model_len") or None
    # Known once loaded; before, only where the model's own options name it.
    named = entry.spec.options.get("quantization")
    if isinstance(model, ChatModel):
        quantization: str | None = model.quantization
    else:
        quantization = None if named is None else str(named)
    capabilities = CHAT_CAPABILITIES if entry.spec.kind == "chat" else ["embeddings"]
    # Whether its template thinks is known once its tokenizer is loaded.
    if isinstance(model, ChatModel) and model.chat.thinking is not None:
        capabilities = [*capabilities, "reasoning"]
    return ModelCard(
        id=entry.spec.name,
        created=int(entry.spec.path.stat().st_mtime) if entry.spec.path.exists() else 0,
        capabilities=capabilities,  # type: ignore[arg-type]
        max_model_len=max_len,
        state=entry.state,
        kind=entry.spec.kind,
        size_bytes=entry.spec.size_bytes,
        parameters=parameter_count(entry.spec.path),
        quantization=quantization,
        memory_bytes=entry.memory_bytes,
        progress=entry.progress if entry.state == "loading" else None,
        error=entry.error,
    )


@functools.cache
def parameter_count(path: Path) -> int | None:
    """The parameters the weight files hold, from their headers alone (safetensors or GGUF; None for
    other formats or unreadable files). Cached: a picker lists the models often, the files stay."""
    try:
        if gguf.is_gguf(path):
            return sum(math.prod(t.shape) for t in gguf.read_header(path).tensors)
        files = sorted(path.glob("*.safetensors")) if path.is_dir() else []
        total = 0
        for file in files:
            with safe_open(file, framework="pt") as f:
                total += sum(math.prod(f.get_slice(name).get_shape()) for name in f.keys())  # noqa: SIM118
        return total or None
    except (OSError, ValueError, SafetensorError) as exc:
        log.debug("no parameter count for %s: %s", path, exc)
        return None


def model_specs(settings: Settings) -> list[ModelSpec]:
    """The one-model shorthand first (pinned), then MODELS_FILE's models, then MODELS_DIR's: a
    name already taken keeps its first model."""
    ttl = keep_alive_seconds(settings.keep_alive)
    specs = []
    if settings.chat_model_path is not None:
        specs.append(ModelSpec(settings.chat_model_name, settings.chat_model_path, "chat", pinned=True))
    if settings.embedding_model_path is not None:
        specs.append(
            ModelSpec(settings.embedding_model_name, settings.embedding_model_path, "embedding", pinned=True)
        )
    if settings.models_file is not None:
        specs += read_models_file(settings.models_file, ttl)
    if settings.models_dir is not None:
        specs += scan_models_dir(settings.models_dir, ttl)
    return specs


def memory_budget(settings: Settings) -> int:
    if settings.models_memory_gb > 0:
        return int(settings.models_memory_gb * 2**30)
    device = resolve_device(settings.device)
    if device.type == "cuda":
        return int(0.8 * torch.cuda.get_device_properties(device).total_memory)
    return psutil.virtual_memory().total // 2


def build_services(settings: Settings) -> Services:
    """The registry of every configured model, nothing loaded yet (Registry.start loads the pinned)."""
    # Every pinned folder is checked before the slow loads, so a wrong path fails at once.
    if settings.embedding_model_path is not None:
        check_model_folder(settings.embedding_model_path, "Embedding")
    draft = settings.speculative_draft_model
    if settings.speculative == "draft" and draft is None:
        raise ValueError(
            "SPECULATIVE=draft needs SPECULATIVE_DRAFT_MODEL: a small model with the chat model's "
            "tokenizer (a Hugging Face folder or a .gguf file); or set SPECULATIVE=ngram or auto."
        )
    if draft is not None and not gguf.is_gguf(draft):
        check_model_folder(draft, "Draft (SPECULATIVE_DRAFT_MODEL)")
    store = ResponseStore(settings.max_stored_responses)
    streams = ResumableStreams(
        settings.stream_resume_s,
        settings.max_resumable_streams,
        settings.stream_resume_max_bytes,
        settings.sse_ping_s,
    )

    def load(spec: ModelSpec, progress: Progress) -> ChatModel | EmbeddingModel:
        if spec.kind == "chat":
            return load_chat(settings, spec, store, progress)
        return load_embedder(settings, spec, progress)

    registry = Registry(
        model_specs(settings), load, memory_budget(settings), settings.queue_timeout_s, free_memory
    )
    return Services(registry, store, streams)


def load_chat(settings: Settings, spec: ModelSpec, store: ResponseStore, progress: Progress) -> ChatModel:
    started = time.monotonic()
    options = {k: v for k, v in spec.options.items() if k in ("quantization", "dtype")}
    engine_options = {k: v for k, v in spec.options.items() if k == "max_model_len"}
    with weights_progress(progress):
        model, tokenizer = load_chat_model(
            dataclasses.replace(ModelOptions.of(settings), chat_model_path=spec.path, **options)
        )
    # The draft model drafts for the one-model shorthand's chat model (its vocabulary's).
    draft = None
    if spec.pinned and settings.speculative_draft_model and settings.speculative in ("draft", "auto"):
        draft = load_chat_model(
            dataclasses.replace(ModelOptions.of(settings), chat_model_path=settings.speculative_draft_model)
        )
    elif settings.speculative == "draft":
        engine_options["speculative"] = "ngram"  # another model: its own prompt lookup instead
    engine = Engine(model, tokenizer, dataclasses.replace(EngineConfig.of(settings), **engine_options), draft)
    engine.start()
    fingerprint = (
        "fp_"
        + hashlib.sha256(
            f"{spec.name}|{model.dtype}|{quantization_of(model)}|{settings.dense_prefill}|"
            f"{model.device.type}|{torch.__version__}".encode()
        ).hexdigest()[:10]
    )
    ctx = ModelContext(spec.name, engine, tokenizer, fingerprint, settings.sse_ping_s)
    chat = ChatService(ctx, settings.reasoning_format)
    log.info(
        "chat model %s ready in %.1f s (context %d tokens)",
        spec.name,
        time.monotonic() - started,
        engine.max_context,
    )
    return ChatModel(
        engine,
        chat,
        ResponsesService(chat, store),
        CompletionService(ctx),
        TokenizeService(chat),
        MessagesService(chat),
        tensor_bytes(model) + (tensor_bytes(draft[0]) if draft else 0),
        settings.shutdown_grace_s,
        quantization_of(model),
    )


def load_embedder(settings: Settings, spec: ModelSpec, progress: Progress) -> EmbeddingModel:
    device = resolve_device(settings.device)
    check_model_folder(spec.path, "Embedding")
    with loading("Embedding", spec.path), weights_progress(progress):
        embedder = Embedder(
            spec.path,
            device,
            # float32 on a CPU, as before; the chat model's dtype on a GPU.
            torch.float32 if device.type == "cpu" else resolve_dtype(settings.dtype, device),
            max_waiting=settings.embedding_max_waiting,
        )
    log.info("embedding model %s ready: %s", spec.name, spec.path)
    service = EmbeddingService(spec.name, embedder, settings.max_embedding_tokens)
    return EmbeddingModel(service, tensor_bytes(embedder.model))


def tensor_bytes(model: nn.Module) -> int:
    """The bytes of the model's tensors, each storage once: parameters, buffers, and the tensors
    of what its layers hold besides (a native kernel's packed weights)."""
    storages: dict[int, int] = {}

    def count(tensor: object) -> None:
        if isinstance(tensor, torch.Tensor) and not tensor.is_meta:
            storage = tensor.untyped_storage()
            storages[storage.data_ptr()] = storage.nbytes()

    for module in model.modules():
        for tensor in [*module.parameters(recurse=False), *module.buffers(recurse=False)]:
            count(tensor)
        for held in vars(module).values():
            count(held)
            if hasattr(held, "__dict__") and not isinstance(held, nn.Module | torch.Tensor):
                for inner in vars(held).values():
                    count(inner)
    return sum(storages.values())


def free_memory() -> None:
    """Returns an unloaded model's memory (once nothing refers to it): its cycles collected,
    glibc's freed blocks unmapped."""
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    trim_heap()


# ---- load progress: transformers' own "Loading weights" loop, reported per loading thread -------

_reporting = threading.local()


class _WeightsBar:
    """transformers' progress bar over the weights it loads, which also reports the share done to
    the loading thread's callback (loads run one per thread)."""

    def __init__(self, bar: Any) -> None:
        self.bar = bar

    def __call__(self, iterable: Any = None, *args: Any, **kwargs: Any) -> Any:
        bar = self.bar(iterable, *args, **kwargs)
        report: Progress | None = getattr(_reporting, "progress", None)
        if report is None or not hasattr(iterable, "__len__") or not len(iterable):
            return bar
        return _reported(bar, len(iterable), report)


def _reported(bar: Iterable[Any], total: int, report: Progress) -> Iterator[Any]:
    for done, item in enumerate(bar, 1):
        yield item
        report(WEIGHTS_SHARE * done / total)


if not isinstance(getattr(hf_loading, "tqdm", None), _WeightsBar) and hasattr(hf_loading, "tqdm"):
    hf_loading.tqdm = _WeightsBar(hf_loading.tqdm)  # type: ignore[attr-defined]


@contextmanager
def weights_progress(progress: Progress) -> Iterator[None]:
    _reporting.progress = progress
    try:
        yield
    finally:
        _reporting.progress = None

"""The models this server knows, each unloaded, loading, loaded or failed: loaded when a request
names one, unloaded when idle past its keep-alive, or to make room for another within the memory
budget (the least recently used idle one first).

What loading a model means (an engine, an embedder) is services.py's; this module only decides
when, keeps one load per model however many requests wait for it, and runs loads and unloads
off the event loop, one at a time (so the memory they measure is their own).
"""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import psutil
import yaml

from .core.errors import OpenAIError

log = logging.getLogger(__name__)

Kind = Literal["chat", "embedding"]
State = Literal["unloaded", "loading", "loaded", "failed"]
KeepAlive = str | int | float | None
# How often idle models are checked against their keep-alive.
REAP_INTERVAL_S = 0.25
WEIGHT_FILES = ("*.safetensors", "*.bin", "*.pt", "*.gguf")

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_S = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def keep_alive_seconds(value: str | int | float) -> float | None:
    """Ollama's keep_alive: a number of seconds or a Go duration ("5m", "1h30m"); negative keeps
    the model loaded for good (None), 0 unloads it as soon as it is idle."""
    if isinstance(value, bool):
        raise ValueError(f"keep_alive {value!r} is not a duration")
    if isinstance(value, int | float):
        # An int past float's range is forever one way or the other.
        seconds = float(value) if abs(value) < 1e300 else math.inf if value > 0 else -math.inf
    else:
        text = value.strip()
        sign = -1.0 if text.startswith("-") else 1.0
        body = text.lstrip("+-")
        try:
            seconds = sign * float(body)
        except ValueError:
            parts = _DURATION.findall(body)
            if not body or "".join(n + u for n, u in parts) != body:
                raise ValueError(
                    f"keep_alive {value!r} is not a duration: use seconds (300), a duration such as "
                    '"5m" or "1h30m", 0 to unload after the request, or -1 to keep the model loaded'
                ) from None
            seconds = sign * sum(float(n) * _UNIT_S[u] for n, u in parts)
    if math.isnan(seconds):
        raise ValueError(f"keep_alive {value!r} is not a duration")
    return None if seconds < 0 else seconds


@dataclass(frozen=True)
class ModelSpec:
    """One model as configured: where it is, what it serves, and its own options (quantization,
    dtype, max_model_len), which override the server's settings for it."""

    name: str
    path: Path
    kind: Kind
    options: dict[str, Any] = field(default_factory=dict)
    keep_alive: float | None = None  # seconds idle before unloading; None: never
    pinned: bool = False  # the one-model shorthand: loaded at start-up, never unloaded

    @property
    def size_bytes(self) -> int:
        """The weights on disk (0 when the path is missing)."""
        if self.path.is_file():
            return self.path.stat().st_size
        if not self.path.is_dir():
            return 0
        # A sharded checkpoint's .bin copies are skipped when safetensors are there.
        for pattern in WEIGHT_FILES:
            files = list(self.path.glob(pattern))
            if files:
                return sum(f.stat().st_size for f in files)
        return 0


def folder_kind(path: Path) -> Kind:
    """A sentence-transformers folder, or an encoder without a language-model head, embeds."""
    if (path / "modules.json").is_file():
        return "embedding"
    try:
        architectures = yaml.safe_load((path / "config.json").read_text()).get("architectures") or []
    except (OSError, yaml.YAMLError, AttributeError):
        return "chat"  # unreadable: loading it will say what is wrong
    generates = ("ForCausalLM", "ForConditionalGeneration", "LMHeadModel")
    return "chat" if not architectures or any(a.endswith(generates) for a in architectures) else "embedding"


def scan_models_dir(folder: Path, keep_alive: float | None) -> list[ModelSpec]:
    """Hugging Face folders (with config.json) and .gguf files directly in `folder`, named after
    the folder or the file's stem."""
    if not folder.is_dir():
        raise ValueError(f"MODELS_DIR {folder} is not a folder: create it or unset MODELS_DIR.")
    specs = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and (entry / "config.json").is_file():
            specs.append(ModelSpec(entry.name, entry, folder_kind(entry), keep_alive=keep_alive))
        elif entry.is_file() and entry.suffix == ".gguf":
            specs.append(ModelSpec(entry.stem, entry, "chat", keep_alive=keep_alive))
    return specs


MODEL_OPTIONS = ("quantization", "dtype", "max_model_len")


def read_models_file(path: Path, keep_alive: float | None) -> list[ModelSpec]:
    """MODELS_FILE: a YAML list (or a `models:` key holding one) of name, path, kind and options;
    relative paths are relative to the file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"MODELS_FILE {path} could not be read: {exc}") from exc
    items = data.get("models") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise ValueError(f"MODELS_FILE {path} must hold a list of models (name, path, kind, options).")
    specs = []
    for i, item in enumerate(items):
        where = f"MODELS_FILE {path}, model {i + 1}"
        if not isinstance(item, dict) or not item.get("name") or not item.get("path"):
            raise ValueError(f"{where}: each model needs a `name` and a `path`.")
        unknown = set(item) - {"name", "path", "kind", "keep_alive", *MODEL_OPTIONS}
        if unknown:
            raise ValueError(
                f"{where}: unknown keys {sorted(unknown)}; a model takes name, path, kind, keep_alive, "
                + ", ".join(MODEL_OPTIONS)
                + "."
            )
        kind = item.get("kind", "chat")
        if kind not in ("chat", "embedding"):
            raise ValueError(f"{where}: kind must be chat or embedding, not {kind!r}.")
        model_path = Path(item["path"]).expanduser()
        ttl = keep_alive_seconds(item["keep_alive"]) if "keep_alive" in item else keep_alive
        options = {k: item[k] for k in MODEL_OPTIONS if k in item}
        specs.append(ModelSpec(str(item["name"]), path.parent / model_path, kind, options, ttl))
    return specs


class LoadedModel(Protocol):
    """What services.py makes of a loaded model."""

    memory_bytes: int  # its tensors' bytes, as loaded (quantised, on its device)

    @property
    def busy(self) -> bool: ...

    def close(self) -> None:
        """Stop its threads and drop its weights (blocking; runs off the event loop)."""


Progress = Callable[[float], None]
Loader = Callable[[ModelSpec, Progress], LoadedModel]


@dataclass
class Entry:
    spec: ModelSpec
    state: State = "unloaded"
    progress: float = 0.0
    error: str | None = None
    model: LoadedModel | None = None
    users: int = 0  # requests holding the model or waiting for it
    last_used: float = field(default_factory=time.monotonic)
    keep_alive: float | None = None
    memory_bytes: int | None = None  # measured at its last load
    load: asyncio.Task[LoadedModel] | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def idle(self) -> bool:
        return self.users == 0 and not (self.model is not None and self.model.busy)

    @property
    def needs_bytes(self) -> int:
        """Its memory when last loaded, else its weights' size on disk."""
        return self.memory_bytes if self.memory_bytes is not None else self.spec.size_bytes


def gib(count: int) -> str:
    return f"{count / 2**30:.2f} GiB"


class Registry:
    def __init__(
        self,
        specs: list[ModelSpec],
        loader: Loader,
        budget_bytes: int,
        load_timeout_s: float,
        release: Callable[[], None] = lambda: None,
    ) -> None:
        self.entries: dict[str, Entry] = {}
        for spec in specs:
            if spec.name in self.entries:
                log.warning("model %s at %s skipped: that name is taken", spec.name, spec.path)
                continue
            self.entries[spec.name] = Entry(spec, keep_alive=spec.keep_alive)
        self.loader = loader
        self.budget_bytes = budget_bytes
        self.load_timeout_s = load_timeout_s
        self.release = release  # returns what an unloaded model's last reference held
        self._lock = asyncio.Lock()  # one load or unload at a time
        # Loads and unloads run on their own thread, off the event loop (bench/model_load.py
        # measures the running streams meanwhile). Not at a lower priority: the engine a load
        # starts inherits its thread's nice value, and decoded 25x slower at nice 19 on a busy CPU.
        self._worker = ThreadPoolExecutor(1, thread_name_prefix="model-load")
        self._reaper: asyncio.Task[None] | None = None
        self.draining = False  # shutting down: nothing more is loaded

    # ---- lifetime ----------------------------------------------------------------------------

    def load_pinned(self) -> None:
        """Loads the start-up models here and now (before the server listens); a failure raises
        the loader's error, which ends start-up as it always has."""
        for entry in self.entries.values():
            if entry.spec.pinned and entry.model is None:
                entry.model = self.loader(entry.spec, lambda share: None)
                entry.memory_bytes = entry.model.memory_bytes
                entry.state, entry.progress = "loaded", 1.0

    async def start(self) -> None:
        """Loads the start-up models if that is not done yet, and starts unloading idle ones."""
        await asyncio.to_thread(self.load_pinned)
        self._reaper = asyncio.create_task(self._reap_forever())

    async def stop(self) -> None:
        if self._reaper is not None:
            self._reaper.cancel()
        # Together: each drains its requests within SHUTDOWN_GRACE_S.
        loaded = [e.model for e in self.entries.values() if e.model is not None]
        await asyncio.gather(*(asyncio.to_thread(model.close) for model in loaded))
        self._worker.shutdown(wait=False)

    # ---- requests ----------------------------------------------------------------------------

    def entry(self, name: str) -> Entry:
        found = self.entries.get(name)
        if found is None:
            known = ", ".join(self.entries) or "none"
            raise OpenAIError(
                404,
                f"The model '{name}' does not exist. Models served here: {known} (GET /v1/models).",
                param="model",
                code="model_not_found",
            )
        return found

    @asynccontextmanager
    async def use(self, name: str, kind: Kind, keep_alive: KeepAlive = None) -> AsyncIterator[LoadedModel]:
        """The model named `name`, loaded if it is not (waiting up to QUEUE_TIMEOUT_S), held
        loaded until the block ends; `keep_alive` (the request's) then applies to it."""
        entry = self.entry(name)
        if entry.spec.kind != kind:
            raise wrong_kind(entry.spec, kind)
        ttl = request_keep_alive(keep_alive)
        entry.users += 1
        try:
            yield await self._loaded(entry)
        finally:
            entry.users -= 1
            entry.last_used = time.monotonic()
            if keep_alive is not None and not entry.spec.pinned:
                entry.keep_alive = ttl

    async def _loaded(self, entry: Entry) -> LoadedModel:
        if entry.model is not None:
            return entry.model
        if entry.state == "failed":
            raise load_failed(entry)
        if self.draining:
            raise OpenAIError(
                503,
                "The server is shutting down; retry on another replica or later.",
                type="server_error",
                code="service_unavailable",
            )
        try:
            return await asyncio.wait_for(asyncio.shield(self.start_load(entry)), self.load_timeout_s)
        except TimeoutError:
            raise OpenAIError(
                503,
                f"The model '{entry.spec.name}' is still loading after {self.load_timeout_s:.0f} s "
                "(QUEUE_TIMEOUT_S); retry shortly.",
                type="server_error",
                code="model_loading",
            ) from None

    def start_load(self, entry: Entry) -> asyncio.Task[LoadedModel]:
        """The model's load: the one running, or a new one; every caller shares it."""
        if entry.load is None or entry.load.done():
            entry.load = asyncio.create_task(self._load_or_raise(entry))
            # Its failure is each waiter's to answer; nobody may be waiting (a streamed load).
            entry.load.add_done_callback(lambda task: task.cancelled() or task.exception())
        return entry.load

    def retry_load(self, entry: Entry) -> asyncio.Task[LoadedModel]:
        """An operator's load (POST /models/load): a model that failed is tried again."""
        if entry.state == "failed" and (entry.load is None or entry.load.done()):
            entry.state, entry.error = "unloaded", None
        return self.start_load(entry)

    async def _load_or_raise(self, entry: Entry) -> LoadedModel:
        await self._load(entry)
        if entry.model is None:
            raise load_failed(entry) if entry.state == "failed" else self._no_room(entry)
        return entry.model

    async def _load(self, entry: Entry) -> None:
        async with self._lock:
            if entry.model is not None:
                return
            need = entry.needs_bytes
            if need > self.budget_bytes:
                await self._set(
                    entry,
                    "failed",
                    error=f"The model '{entry.spec.name}' needs about {gib(need)} but the models' memory "
                    f"budget is {gib(self.budget_bytes)} (MODELS_MEMORY_GB): raise the budget, or "
                    "use a smaller or quantised model.",
                )
                return
            if not await self._make_room(entry, need):
                return
            await self._set(entry, "loading", progress=0.0, error=None)
            loop = asyncio.get_running_loop()

            def progress(share: float) -> None:
                loop.call_soon_threadsafe(lambda: loop.create_task(self._progress(entry, share)))

            before = rss()
            started = time.monotonic()
            try:
                model = await loop.run_in_executor(self._worker, self.loader, entry.spec, progress)
            except Exception as exc:
                # Its own line, a warning: a bad model file is the operator's to fix, not a bug.
                log.warning("model %s failed to load: %s", entry.spec.name, exc)
                await self._set(entry, "failed", error=str(exc))
                return
            entry.model = model
            entry.memory_bytes = model.memory_bytes
            entry.last_used = time.monotonic()
            log.info(
                "model %s loaded in %.1f s (%s; RSS %s -> %s)",
                entry.spec.name,
                time.monotonic() - started,
                gib(entry.memory_bytes),
                gib(before),
                gib(rss()),
            )
            await self._set(entry, "loaded", progress=1.0)

    async def _make_room(self, entry: Entry, need: int) -> bool:
        """Unloads the least recently used idle models until `need` fits the budget."""
        while self.used_bytes() + need > self.budget_bytes:
            idle = [e for e in self.entries.values() if e.model is not None and e.idle and not e.spec.pinned]
            if not idle:
                return False
            victim = min(idle, key=lambda e: e.last_used)
            log.info("unloading %s to make room for %s", victim.spec.name, entry.spec.name)
            await self._close(victim)
        return True

    def _no_room(self, entry: Entry) -> OpenAIError:
        busy = [e.spec.name for e in self.entries.values() if e.model is not None]
        return OpenAIError(
            503,
            f"The model '{entry.spec.name}' needs about {gib(entry.needs_bytes)} and the models' memory "
            f"budget ({gib(self.budget_bytes)}, MODELS_MEMORY_GB) is held by models in use "
            f"({', '.join(busy)}); retry when they finish, or raise the budget.",
            type="server_error",
            code="model_memory_full",
        )

    def used_bytes(self) -> int:
        return sum(
            e.needs_bytes for e in self.entries.values() if e.model is not None or e.state == "loading"
        )

    # ---- unloading ---------------------------------------------------------------------------

    async def unload(self, name: str) -> Entry:
        """Unloads the model once its requests have finished (new ones keep it loaded longer)."""
        entry = self.entry(name)
        if entry.spec.pinned:
            raise OpenAIError(
                400,
                f"The model '{name}' is loaded at start-up (CHAT_MODEL_PATH or EMBEDDING_MODEL_PATH) and "
                "stays loaded; list it in MODELS_DIR or MODELS_FILE instead to load and unload it here.",
                param="model",
            )
        if entry.load is not None and not entry.load.done():
            await asyncio.wait([entry.load])
        entry.keep_alive = 0.0
        async with entry.changed:
            await entry.changed.wait_for(lambda: entry.model is None)
        return entry

    async def _reap_forever(self) -> None:
        while True:
            await asyncio.sleep(REAP_INTERVAL_S)
            now = time.monotonic()
            for entry in list(self.entries.values()):
                if entry.model is None or entry.spec.pinned:
                    continue
                if not entry.idle:
                    entry.last_used = now  # idle time counts from the end of the last request
                elif entry.keep_alive is not None and now - entry.last_used >= entry.keep_alive:
                    async with self._lock:
                        if entry.model is not None and entry.idle:
                            await self._close(entry)

    async def _close(self, entry: Entry) -> None:
        model, entry.model = entry.model, None
        entry.load = None  # its result holds the model too
        assert model is not None
        before = rss()
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._worker, model.close)
        del model
        # Only now is nothing left holding its tensors: freed, their memory can go back.
        await loop.run_in_executor(self._worker, self.release)
        entry.keep_alive = entry.spec.keep_alive  # a request's keep_alive lasts one load
        log.info("model %s unloaded (RSS %s -> %s)", entry.spec.name, gib(before), gib(rss()))
        await self._set(entry, "unloaded", progress=0.0)

    # ---- state changes, watched by POST /models/load's stream ---------------------------------

    async def _set(self, entry: Entry, state: State, **fields: Any) -> None:
        async with entry.changed:
            entry.state = state
            for name, value in fields.items():
                setattr(entry, name, value)
            entry.changed.notify_all()

    async def _progress(self, entry: Entry, share: float) -> None:
        if entry.state == "loading" and share > entry.progress:
            await self._set(entry, "loading", progress=share)

    async def watch(self, entry: Entry) -> AsyncIterator[tuple[State, float]]:
        """The entry's state and progress now and at each change, until it is loaded or failed."""
        seen: tuple[State, float] | None = None
        while True:
            async with entry.changed:
                await entry.changed.wait_for(lambda last=seen: (entry.state, entry.progress) != last)
                seen = (entry.state, entry.progress)
            yield seen
            if seen[0] in ("loaded", "failed"):
                return


def request_keep_alive(value: KeepAlive) -> float | None:
    if value is None:
        return None
    try:
        return keep_alive_seconds(value)
    except ValueError as exc:
        raise OpenAIError(400, str(exc), param="keep_alive") from None


def wrong_kind(spec: ModelSpec, wanted: Kind) -> OpenAIError:
    # 404 as OpenAI answers a model that does not serve the endpoint.
    where = "POST /v1/embeddings" if spec.kind == "embedding" else "chat, completions, responses or messages"
    return OpenAIError(
        404,
        f"The model '{spec.name}' is a {spec.kind} model, not a {wanted} model: send it to {where}.",
        param="model",
        code="model_not_found",
    )


def load_failed(entry: Entry) -> OpenAIError:
    return OpenAIError(
        503,
        f"The model '{entry.spec.name}' failed to load: {entry.error} "
        "Fix it, then POST /models/load to try again.",
        type="server_error",
        code="model_load_failed",
    )


def rss() -> int:
    return int(psutil.Process().memory_info().rss)

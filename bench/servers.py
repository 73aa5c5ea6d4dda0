"""The systems under test: how to start each server, wait for it, size it and stop it.

All servers listen on 127.0.0.1 only, run one at a time (they would otherwise fight for the
two cores), and log to .cache/bench/logs so a failed start can be read afterwards.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from .load import BodyFactory

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
MODEL_DIR = REPO / "models" / "SmolLM2-135M-Instruct"
LOG_DIR = REPO / ".cache" / "bench" / "logs"
# A token this model never emits greedily in 64 steps (the last id of its vocabulary): used as
# the EOS id for `transformers serve`, which has no ignore_eos, so answers run to max_tokens.
NEVER_EMITTED_TOKEN = 49151


def openai_body(model_id: str, fixed_length: bool = True) -> BodyFactory:
    """Our server and llama-server: greedy; fixed length through the ignore_eos extension, or
    at most max_tokens as a chat page asks."""

    def make(messages: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
        body: dict[str, object] = {
            "model": model_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if fixed_length:
            body["ignore_eos"] = True
        return body

    return make


def transformers_body(model_id: str) -> BodyFactory:
    """`transformers serve` rejects stream_options and has no ignore_eos; its own
    `generation_config` field gives a greedy answer of exactly max_tokens instead."""

    def make(messages: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
        config = {
            "do_sample": False,
            "max_new_tokens": max_tokens,
            "min_new_tokens": max_tokens,
            "eos_token_id": NEVER_EMITTED_TOKEN,
            "pad_token_id": 2,
        }
        return {
            "model": model_id,
            "messages": messages,
            "max_tokens": max_tokens,
            "stream": True,
            "generation_config": json.dumps(config),
        }

    return make


@dataclass(frozen=True)
class Sizing:
    """What one server instance must hold at once: servers that size their KV cache at start
    (llama-server) are started for it."""

    slots: int  # concurrent requests
    longest: int = 2048  # tokens (prompt + answer) of the longest request
    total: int = 8192  # tokens of all requests together


@dataclass
class System:
    """One configuration to benchmark. `command(port, sizing)` gives argv and env."""

    key: str
    label: str
    family: str  # "ours", "transformers" or "llama.cpp": decides the request body
    command: Callable[[int, Sizing], tuple[list[str], dict[str, str]]]
    # llama-server fixes its slots and KV cache at start (-np, -c), so it restarts for each load.
    restart_per_level: bool = False
    max_concurrency: int = 1 << 30
    # The transformers servers run in the first repetition only by default: they are the slow
    # part of the run, issue 3 compares against them once, issue 7 asks two runs of ours and
    # llama-server.
    reps: int = 1 << 30
    notes: list[str] = field(default_factory=list)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A started system; use as a context manager so a crash in the bench still stops it."""

    def __init__(self, system: System, sizing: Sizing, tag: str) -> None:
        self.system = system
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        argv, env = system.command(self.port, sizing)
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{system.key}-{tag}.log"
        self._log = self.log_path.open("w")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            argv,
            cwd=REPO,
            env={**os.environ, **env},
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stop() reaches worker children too
        )
        self.model_id = "default"

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def wait_ready(self, timeout_s: float = 240.0) -> float:
        """Poll /v1/models until it lists a model; returns the start-up time in seconds."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.system.key} exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                r = httpx.get(f"{self.base_url}/v1/models", timeout=2)
                if r.status_code == 200 and r.json().get("data"):
                    self.model_id = r.json()["data"][0]["id"]
                    return time.monotonic() - self.started
            except (httpx.HTTPError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.system.key} not ready after {timeout_s:.0f} s; see {self.log_path}")

    def rss_mb(self) -> float:
        """Resident memory of the server and its children (a CPU server keeps it all in RAM)."""
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0.0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self._log.close()

    def body_factory(self, fixed_length: bool = True) -> BodyFactory:
        if self.system.family == "transformers":
            return transformers_body(self.model_id)
        return openai_body(self.model_id, fixed_length)


# A mode's last part that turns DENSE_PREFILL off: "bfloat16+int4+packed-prefill".
PACKED_PREFILL = "packed-prefill"


def split_mode(mode: str) -> tuple[str, str]:
    """A precision mode, "bfloat16", "bfloat16+int4" or "bfloat16+int4+packed-prefill", as
    (DTYPE, QUANTIZATION)."""
    parts = mode.split("+")
    return parts[0], parts[1] if len(parts) > 1 else "none"


def mode_name(dtype: str, quantization: str, packed_prefill: bool = False) -> str:
    name = dtype if quantization == "none" else f"{dtype}+{quantization}"
    # Only the int kernels keep dense weights for prefill; fp16 never does.
    return f"{name}+{PACKED_PREFILL}" if packed_prefill and quantization in ("int8", "int4") else name


def normal_mode(mode: str) -> str:
    """The one spelling of a mode ("bfloat16+none" is "bfloat16")."""
    return mode_name(*split_mode(mode), packed_prefill=mode.endswith(f"+{PACKED_PREFILL}"))


def mode_env(mode: str) -> dict[str, str]:
    dtype, quantization = split_mode(mode)
    env = {"DTYPE": dtype, "QUANTIZATION": quantization}
    if normal_mode(mode).endswith(f"+{PACKED_PREFILL}"):
        env["DENSE_PREFILL"] = "false"
    return env


def mode_label(mode: str) -> str:
    return " ".join(f"{name}={value}" for name, value in mode_env(mode).items())


def default_mode() -> str:
    """The precision mode our server picks with DTYPE and QUANTIZATION unset, decided by its own
    code on the default model (QUANTIZATION=auto looks at the weights)."""
    from app.core.config import Settings
    from app.engine.config import ModelOptions
    from app.engine.loader import load_chat_model
    from app.engine.quantization import dense_capable, quantization_of

    model, _ = load_chat_model(ModelOptions.of(Settings()))
    dtype = str(model.dtype).removeprefix("torch.")
    return mode_name(dtype, quantization_of(model), packed_prefill=not dense_capable(model))


def ours(key: str, label: str, mode: str | None) -> System:
    """Our server; mode None leaves DTYPE and QUANTIZATION to its defaults."""

    def command(port: int, _sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        env = mode_env(mode) if mode else {}
        return [str(VENV_BIN / "python"), "-m", "app", "--host", "127.0.0.1", "--port", str(port)], env

    return System(key, label, "ours", command)


def transformers_serve(
    continuous_batching: bool, max_concurrency: int, reps: int, cache_tokens: int = 0
) -> System:
    """`cache_tokens` > 0 sizes the paged cache (256-token pages) instead of CB's default of 60 %
    of free RAM; its CPU attention masks over the whole cache, so the default is very slow."""

    def command(port: int, _sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        argv = [str(VENV_BIN / "transformers"), "serve", str(MODEL_DIR)]
        argv += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--log-level", "warning"]
        if continuous_batching:
            argv.append("--continuous-batching")
        if cache_tokens:
            argv += ["--cb-num-blocks", str(cache_tokens // 256), "--cb-max-batch-tokens", "512"]
        return argv, {"HF_HUB_OFFLINE": "1"}

    if not continuous_batching:
        key, label = "tserve", "transformers serve"
    elif cache_tokens:
        key, label = (
            "tserve-cb-sized",
            f"transformers serve --continuous-batching, {cache_tokens}-token cache",
        )
    else:
        key, label = "tserve-cb", "transformers serve --continuous-batching"
    return System(key, label, "transformers", command, max_concurrency=max_concurrency, reps=reps)


def _round_up(tokens: int, step: int = 256) -> int:
    return -(-tokens // step) * step


def llama_server(binary: Path, gguf: Path, threads: int, unified: bool) -> System:
    """llama-server with its prompt cache as it ships (on). Unified: one KV pool that any slot
    may fill (`--kv-unified`), at least 8k tokens, so a long prompt fits beside short chats.
    Per slot: `-c` split evenly between the `-np` slots, at least 2k tokens each (the issue 13
    configuration, `-np 16 -c 32768`), faster at 8-16 short streams on this CPU."""

    def command(port: int, sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        # -t and -tb are the core count, as a user would set them.
        argv = [str(binary), "-m", str(gguf), "--host", "127.0.0.1", "--port", str(port)]
        argv += ["-t", str(threads), "-tb", str(threads), "-np", str(sizing.slots), "--no-webui"]
        if unified:
            argv += ["-c", str(_round_up(max(8192, sizing.total), 1024)), "--kv-unified"]
        else:
            argv += ["-c", str(sizing.slots * _round_up(max(2048, sizing.longest))), "--no-kv-unified"]
        return argv, {}

    if unified:
        key, label = "llama", "llama-server (Q4_1 GGUF), unified KV"
    else:
        key, label = "llama-slots", "llama-server (Q4_1 GGUF), KV per slot"
    return System(key, label, "llama.cpp", command, restart_per_level=True)

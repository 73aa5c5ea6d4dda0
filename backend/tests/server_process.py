"""Real `python -m app` servers for tests: started on a free loopback port with the default
models, waited for until healthy, stopped with SIGTERM. The API tests use it, and so do the
deploy tests (deploy/tests/support.py), so every test server starts the same way."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

BACKEND_DIR = Path(__file__).resolve().parents[1]
REPO_ROOT = BACKEND_DIR.parent
CHAT_MODEL = "SmolLM2-135M-Instruct"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
CHAT_MODEL_DIR = REPO_ROOT / "models" / CHAT_MODEL
EMBEDDING_MODEL_DIR = REPO_ROOT / "models" / EMBEDDING_MODEL
STARTUP_TIMEOUT_S = 300.0

# The log of every process started, so it can be shown when a test failed.
LOGS: list[Path] = []


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def log_tail(path: Path, lines: int = 80) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "<no log>"


# An ERROR or CRITICAL record, as uvicorn ("ERROR:    …") or the app ("<date> <time> ERROR name: …")
# writes it, or a traceback.
PROBLEM = re.compile(r"^(ERROR|CRITICAL):|^\S+ \S+ (ERROR|CRITICAL) |Traceback \(most recent call last\)")


def log_problems(text: str) -> list[str]:
    """The lines of a server's log that report an error."""
    return [line for line in text.splitlines() if PROBLEM.search(line)]


def server_env(**overrides: str) -> dict[str, str]:
    """Environment for a server under test: explicit models and names, so a developer's .env
    cannot change what the tests talk to."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        TOKENIZERS_PARALLELISM="false",
        CHAT_MODEL_PATH=str(CHAT_MODEL_DIR),
        CHAT_MODEL_NAME=CHAT_MODEL,
        EMBEDDING_MODEL_PATH=str(EMBEDDING_MODEL_DIR),
        EMBEDDING_MODEL_NAME=EMBEDDING_MODEL,
        API_KEY="",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


@dataclass
class ServerProcess:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    api_key: str | None = None
    _log: Any = field(repr=False, default=None)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def kill(self) -> None:
        """As a crash would: SIGKILL, no draining."""
        if self.alive:
            self.proc.kill()
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.alive:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()
            self._log = None


def launch(log_path: Path, port: int | None = None, api_key: str | None = None, **env: str) -> ServerProcess:
    """Starts `python -m app` (not waiting for it); `env` overrides settings."""
    port = port or free_port()
    log = log_path.open("wb")
    LOGS.append(log_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BACKEND_DIR,
        env=server_env(API_KEY=api_key or "", **env),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    return ServerProcess(proc, port, log_path, api_key, log)


def wait_healthy(servers: list[ServerProcess], timeout: float = STARTUP_TIMEOUT_S) -> None:
    """Until every server's /health answers 200; fails with the log of one that exited or hung."""
    deadline = time.monotonic() + timeout
    pending = list(servers)
    while pending:
        for server in list(pending):
            if not server.alive:
                raise RuntimeError(
                    f"server on port {server.port} exited with {server.proc.returncode} during start-up:\n"
                    f"{log_tail(server.log_path)}"
                )
            try:
                if httpx.get(f"{server.url}/health", timeout=5).status_code == 200:
                    pending.remove(server)
            except httpx.TransportError:
                pass
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"server on port {pending[0].port} not healthy after {timeout:.0f}s:\n"
                    f"{log_tail(pending[0].log_path)}"
                )
            time.sleep(0.5)


def start_server(log_path: Path, api_key: str | None = None, **env: str) -> ServerProcess:
    """Starts `python -m app` on a free port and waits until it is healthy."""
    server = launch(log_path, api_key=api_key, **env)
    try:
        wait_healthy([server])
    except RuntimeError:
        server.stop()
        raise
    return server

"""Real processes for the deploy tests: backend replicas (the real model) and a real Nginx with
deploy/nginx.conf rendered for loopback ports. Everything listens on 127.0.0.1 only and is
stopped by the fixture that started it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from server_process import (
    CHAT_MODEL,
    LOGS,
    ServerProcess,
    free_port,
    launch,
    log_tail,
    wait_healthy,
)

import render_nginx

DEPLOY_DIR = Path(__file__).resolve().parents[1]
REPO = DEPLOY_DIR.parent

# The built page; DEPLOY_TEST_DIST may point at another build (e.g. while frontend/ is in flux).
DIST = Path(os.environ.get("DEPLOY_TEST_DIST", REPO / "frontend" / "dist"))


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if found is None:
        raise RuntimeError("Nginx is not installed: `make sysdeps` (Debian package nginx)")
    return found


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def make_run_dir(prefix: str) -> Path:
    """A folder Nginx's workers can read (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=f"localchat-{prefix}-"))
    path.chmod(0o755)
    return path


def release_copy(dest: Path) -> Path:
    """frontend/dist copied to an html folder, as a release would be."""
    if not (DIST / "index.html").is_file():
        raise RuntimeError(f"{DIST}/index.html not found: run `make frontend` first")
    shutil.copytree(DIST, dest)
    for p in [dest, *dest.rglob("*")]:
        p.chmod(0o755 if p.is_dir() else 0o644)
    return dest


def start_replica(port: int, log_path: Path, **env: str) -> ServerProcess:
    """A backend replica: two of them share this machine's cores, so one thread each."""
    return launch(log_path, port=port, DEVICE="cpu", NUM_THREADS="1", **env)


def restart_replica(
    site_url: str, replicas: list[ServerProcess], index: int, log_path: Path, http: httpx.Client
) -> None:
    """Start replica `index` again on its port (as systemd would after a crash or a restart) and
    wait until Nginx sends it requests again through both upstream groups: plain requests, and
    conversations (X-Conversation-Id). Each group keeps its own record of a failed server and
    retries it only after fail_timeout, so a replica back in one may still be skipped by the other."""
    chat = "/v1/chat/completions"
    old = replicas[index]
    old.proc.wait(timeout=60)
    restarted = start_replica(old.port, log_path)
    replicas[index] = restarted
    wait_healthy([restarted])
    deadline = time.monotonic() + 30
    # Plain requests, then conversations under ever new ids: some of them hash to this replica.
    for group in ("plain", "conversation"):
        before = replica_requests(restarted, chat)
        probe = 0
        while replica_requests(restarted, chat) == before and time.monotonic() < deadline:
            headers = {"X-Conversation-Id": f"restart-probe-{probe}"} if group == "conversation" else {}
            probe += 1
            resp = http.post(f"{site_url}{chat}", json=chat_body("Hi.", 2), headers=headers)
            assert resp.status_code == 200, resp.text
            time.sleep(0.5)
        assert replica_requests(restarted, chat) > before, f"the restarted replica got no {group} request"


@dataclass
class Nginx:
    port: int
    run_dir: Path
    proc: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def access_log(self) -> Path:
        return self.run_dir / "logs" / "access.log"

    @property
    def error_log(self) -> Path:
        return self.run_dir / "logs" / "error.log"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)  # graceful: finish open requests
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def start_nginx(run_dir: Path, html: Path, upstreams: list[str], *, rate_limit: bool = False) -> Nginx:
    nginx = nginx_binary()
    port = free_port()
    render_nginx.render(
        run_dir=run_dir,
        listen=f"127.0.0.1:{port}",
        root=html,
        upstreams=upstreams,
        rate_limit=rate_limit,
        nginx=nginx,
        worker_processes=1,
    )
    cmd = render_nginx.nginx_command(run_dir, nginx)
    check = subprocess.run([*cmd, "-t", "-q"], capture_output=True, text=True)
    if check.returncode != 0:
        raise RuntimeError(f"nginx -t failed:\n{check.stderr}")
    LOGS.append(run_dir / "logs" / "error.log")
    proc = subprocess.Popen([*cmd, "-g", "daemon off;"], stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not port_open(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"Nginx did not start:\n{log_tail(run_dir / 'logs' / 'error.log')}")
        time.sleep(0.05)
    return Nginx(port=port, run_dir=run_dir, proc=proc)


# --- SSE ---------------------------------------------------------------------------------------


@dataclass
class TimedStream:
    status: int
    headers: httpx.Headers
    # (seconds since the request was sent, content delta) for each content delta, in order.
    deltas: list[tuple[float, str]]
    t_done: float  # when `data: [DONE]` arrived
    t_end: float  # when the body ended
    raw: bytes

    @property
    def ttft(self) -> float:
        return self.deltas[0][0]

    @property
    def text(self) -> str:
        return "".join(d for _, d in self.deltas)


def timed_chat_stream(
    client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None
) -> TimedStream:
    """POST a streamed chat completion and time each content delta as the bytes arrive."""
    deltas: list[tuple[float, str]] = []
    raw = bytearray()
    buf = b""
    t_done = float("nan")
    start = time.perf_counter()
    with client.stream("POST", url, json={**body, "stream": True}, headers=headers) as resp:
        for chunk in resp.iter_raw():
            now = time.perf_counter() - start
            raw += chunk
            buf += chunk
            while b"\n\n" in buf:
                event, buf = buf.split(b"\n\n", 1)
                for line in event.split(b"\n"):
                    if not line.startswith(b"data:"):
                        continue
                    data = line[5:].strip()
                    if data == b"[DONE]":
                        t_done = now
                        continue
                    obj = json.loads(data)
                    for choice in obj.get("choices", []):
                        content = (choice.get("delta") or {}).get("content")
                        if content:
                            deltas.append((now, content))
        t_end = time.perf_counter() - start
        return TimedStream(resp.status_code, resp.headers, deltas, t_done, t_end, bytes(raw))


def openai_error(resp: httpx.Response, status: int) -> dict[str, Any]:
    """The `error` of an answer in OpenAI's error shape, after checking that shape and `status`."""
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    body = resp.json()
    assert set(body) == {"error"}, body
    err: dict[str, Any] = body["error"]
    assert set(err) == {"message", "type", "param", "code"}, err
    assert isinstance(err["message"], str) and err["message"]
    assert isinstance(err["type"], str) and err["type"]
    assert err["param"] is None
    assert isinstance(err["code"], str)
    return err


# --- what each replica says about itself ---------------------------------------------------------


def replica_requests(replica: ServerProcess, route: str, status: str = "200") -> float:
    """The replica's own count of answered requests (Prometheus counter on its /metrics)."""
    text = httpx.get(f"{replica.url}/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if (
            line.startswith("llm_http_requests_total{")
            and f'route="{route}"' in line
            and f'status="{status}"' in line
        ):
            total += float(line.rsplit(" ", 1)[1])
    return total


def replica_metric(replica: ServerProcess, name: str) -> float:
    """A counter or gauge from the replica's /metrics, summed over its labels (per model)."""
    samples = [
        float(line.rsplit(maxsplit=1)[1])
        for line in httpx.get(f"{replica.url}/metrics", timeout=10).text.splitlines()
        if line.startswith((f"{name} ", f"{name}{{"))
    ]
    if not samples:
        raise AssertionError(f"{name} not in {replica.url}/metrics")
    return sum(samples)


def replica_running(replica: ServerProcess) -> int:
    """Sequences the replica is generating right now (its /health)."""
    return int(httpx.get(f"{replica.url}/health", timeout=10).json()["running"])


def chat_body(prompt: str, max_tokens: int, **extra: Any) -> dict[str, Any]:
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        **extra,
    }

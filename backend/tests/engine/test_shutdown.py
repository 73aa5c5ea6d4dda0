"""SIGTERM: stop admitting (503), let running streams finish, then exit cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

BACKEND = Path(__file__).resolve().parents[2]
MODEL = "SmolLM2-135M-Instruct"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sigterm_drains_running_streams_and_refuses_new_ones(tmp_path: Path) -> None:
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    log = (tmp_path / "server.log").open("w")
    env = {**os.environ, "EMBEDDING_MODEL_PATH": "", "SHUTDOWN_GRACE_S": "60", "API_KEY": ""}
    server = subprocess.Popen(
        [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(port)],
        cwd=BACKEND,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, (tmp_path / "server.log").read_text()
            try:
                if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.5)

        body = {
            "model": MODEL,
            "messages": [{"role": "user", "content": "Tell me a story."}],
            "max_tokens": 40,
            "ignore_eos": True,
            "stream": True,
        }
        with (
            httpx.Client(timeout=120) as client,
            client.stream("POST", f"{base}/v1/chat/completions", json=body) as stream,
        ):
            lines = stream.iter_lines()
            events = []
            for line in lines:
                if line.startswith("data: "):
                    events.append(line[6:])
                if len(events) >= 3:
                    break
            server.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            refused = httpx.post(
                f"{base}/v1/chat/completions",
                json={"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
                timeout=30,
            )
            assert refused.status_code == 503
            assert refused.json()["error"]["code"] == "service_unavailable"
            assert httpx.get(f"{base}/health", timeout=10).status_code == 503
            events += [line[6:] for line in lines if line.startswith("data: ")]

        assert events[-1] == "[DONE]"
        chunks = [json.loads(e) for e in events[:-1]]
        assert chunks[-1]["choices"][0]["finish_reason"] == "length"
        text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
        assert text
        # uvicorn re-raises the signal after a clean shutdown, as systemd and Docker expect.
        assert server.wait(timeout=60) in (0, -signal.SIGTERM)
        log.flush()
        assert "Application shutdown complete" in (tmp_path / "server.log").read_text()
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
        log.close()

"""SIGTERM: stop admitting (503), let running streams finish, then exit cleanly."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import httpx
from server_process import CHAT_MODEL, start_server


def test_sigterm_drains_running_streams_and_refuses_new_ones(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log", EMBEDDING_MODEL_PATH="", SHUTDOWN_GRACE_S="60")
    base = server.url
    try:
        body = {
            "model": CHAT_MODEL,
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
            server.proc.send_signal(signal.SIGTERM)
            time.sleep(0.5)
            refused = httpx.post(
                f"{base}/v1/chat/completions",
                json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2},
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
        assert server.proc.wait(timeout=60) in (0, -signal.SIGTERM)
        assert "Application shutdown complete" in (tmp_path / "server.log").read_text()
    finally:
        server.stop()

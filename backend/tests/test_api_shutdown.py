"""SIGTERM: a stream still running when the grace period ends gets one error event and [DONE]
(not a cut connection), and a stop that was asked for exits with status 0, drained or not."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
from pathlib import Path

import httpx
import pytest
from api_support import REQUEST_TIMEOUT_S, parse_sse, schema_validator
from server_process import CHAT_MODEL, ServerProcess, start_server


def long_stream(max_tokens: int) -> dict[str, object]:
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Tell a long story."}],
        "max_tokens": max_tokens,
        "ignore_eos": True,
        "stream": True,
    }


def stream_through_sigterm(server: ServerProcess, max_tokens: int) -> list[str]:
    """Starts a stream, sends SIGTERM once its first token arrived, returns every data event."""
    raw: list[str] = []
    started = threading.Event()

    def read() -> None:
        with httpx.stream(
            "POST",
            f"{server.url}/v1/chat/completions",
            json=long_stream(max_tokens),
            timeout=REQUEST_TIMEOUT_S,
        ) as resp:
            assert resp.status_code == 200
            for text in resp.iter_text():
                raw.append(text)
                if '"content":"' in text and '"content":""' not in text:
                    started.set()
        started.set()

    reader = threading.Thread(target=read)
    reader.start()
    assert started.wait(REQUEST_TIMEOUT_S), "the stream never started"
    server.proc.send_signal(signal.SIGTERM)
    reader.join(REQUEST_TIMEOUT_S)
    data, _ = parse_sse("".join(raw))
    return data


def exit_status(server: ServerProcess) -> int:
    try:
        return server.proc.wait(timeout=REQUEST_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        pytest.fail("the server did not exit after SIGTERM")


def test_stream_cut_by_the_grace_period_ends_with_an_error_and_done(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log", SHUTDOWN_GRACE_S="1")
    try:
        data = stream_through_sigterm(server, max_tokens=4000)
        status = exit_status(server)
    finally:
        server.stop()
    assert data[-1] == "[DONE]", data[-3:]
    error = json.loads(data[-2])
    schema_validator().validate("ErrorResponse", error)
    assert all("error" not in json.loads(d) for d in data[:-2]), data
    assert status == 0, status


def test_clean_drain_finishes_the_stream_and_exits_0(tmp_path: Path) -> None:
    server = start_server(tmp_path / "server.log")  # the default grace period, 30 s
    try:
        data = stream_through_sigterm(server, max_tokens=24)
        status = exit_status(server)
    finally:
        server.stop()
    assert data[-1] == "[DONE]", data[-3:]
    chunks = [json.loads(d) for d in data[:-1]]
    assert all("error" not in c for c in chunks), chunks
    assert chunks[-1]["choices"][0]["finish_reason"] == "length", chunks[-1]
    assert status == 0, status

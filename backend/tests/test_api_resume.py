"""Answers that outlive their client (serving/resumable.py), over HTTP on the session's server: a
stream sent with X-Conversation-Id and X-Message-Id goes on after its client hangs up, and
GET /v1/stream/{conversation_id}/{message_id} replays all of it; without X-Message-Id nothing is
kept (a client's leaving stops its answer, tests/test_api_limits.py)."""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx
from api_support import SSEStream, assert_error, chat_stream_text, finish_reasons, parse_sse
from server_process import CHAT_MODEL

BODY = {
    "model": CHAT_MODEL,
    "messages": [{"role": "user", "content": "Tell me about the sea."}],
    "max_tokens": 40,
    "temperature": 0,
    "ignore_eos": True,
}


def ids() -> tuple[str, str]:
    return f"conv-{uuid.uuid4().hex}", f"msg-{uuid.uuid4().hex}"


def hang_up_after_first_chunk(http: httpx.Client, headers: dict[str, str], max_tokens: int = 40) -> None:
    body = {**BODY, "max_tokens": max_tokens, "stream": True}
    with http.stream("POST", "/v1/chat/completions", json=body, headers=headers) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("data:"):
                break  # the page reloads with most of the answer still to come


def resume(http: httpx.Client, conversation: str, message: str) -> SSEStream:
    with http.stream("GET", f"/v1/stream/{conversation}/{message}") as resp:
        raw = "".join(resp.iter_text())
    assert resp.status_code == 200, raw
    data, comments = parse_sse(raw)
    return SSEStream(resp.status_code, resp.headers, data, comments, raw)


def metric(http: httpx.Client, name: str) -> float:
    line = next(line for line in http.get("/metrics").text.splitlines() if line.startswith(name + " "))
    return float(line.split()[1])


def test_left_answer_runs_on_and_is_replayed_whole(http: httpx.Client) -> None:
    plain: dict[str, Any] = http.post("/v1/chat/completions", json=BODY).json()
    conversation, message = ids()
    resumed_before = metric(http, "llm_resumed_streams_total")
    hang_up_after_first_chunk(http, {"X-Conversation-Id": conversation, "X-Message-Id": message})

    resumed = resume(http, conversation, message)  # the chunks so far, then the rest live
    assert resumed.headers["content-type"].startswith("text/event-stream")
    chunks = resumed.chunks
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert chat_stream_text(chunks) == plain["choices"][0]["message"]["content"]
    assert finish_reasons(chunks) == ["length"]
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}
    # Ended, it stays readable (by any number of readers) until STREAM_RESUME_S has passed.
    assert resume(http, conversation, message).data == resumed.data
    assert metric(http, "llm_resumed_streams_total") == resumed_before + 2


def test_answer_without_a_message_id_is_not_kept(http: httpx.Client) -> None:
    conversation, message = ids()
    hang_up_after_first_chunk(http, {"X-Conversation-Id": conversation})
    error = assert_error(http.get(f"/v1/stream/{conversation}/{message}"), 404, code="stream_not_found")
    assert "no longer kept" in error["message"] and "X-Message-Id" in error["message"]


def test_stop_ends_a_kept_answer(http: httpx.Client) -> None:
    """Hanging up no longer stops a kept answer: DELETE does (the page's Stop button)."""
    conversation, message = ids()
    # Long enough (10 s or more here) to be still running unless stopped.
    hang_up_after_first_chunk(http, {"X-Conversation-Id": conversation, "X-Message-Id": message}, 500)
    path = f"/v1/stream/{conversation}/{message}"
    assert http.delete(path).status_code == 204
    assert_error(http.get(path), 404, code="stream_not_found")
    assert_error(http.delete(path), 404, code="stream_not_found")
    deadline = time.monotonic() + 5
    while http.get("/health").json()["running"] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert http.get("/health").json()["running"] == 0, "the stopped answer still holds its slot"

"""A second server with other settings: a 256-token context (context_length_exceeded, generation
up to the remaining context), no API key, its own served name, and one sequence at a time with a
short keep-alive interval and queue timeout (comments while a stream waits, then an error that
arrives after the stream has started)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from api_support import (
    REQUEST_TIMEOUT_S,
    SSEStream,
    assert_error,
    chat_prompt_len,
    post_stream,
    schema_validator,
    stream_in_background,
)
from server_process import CHAT_MODEL, EMBEDDING_MODEL, ServerProcess, log_problems, start_server

CONTEXT = 256
NAME = "smol-ctx256"
QUEUE_TIMEOUT_S = 1.5
LEFT = 12  # tokens of context left after the "nearly full" prompts


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("small") / "server.log",
        api_key=None,
        CHAT_MODEL_NAME=NAME,
        MAX_MODEL_LEN=str(CONTEXT),
        MAX_NUM_SEQS="1",
        SSE_PING_S="0.2",
        QUEUE_TIMEOUT_S=str(QUEUE_TIMEOUT_S),
        STREAM_RESUME_S="0",  # a client's leaving stops its answer even with X-Message-Id
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def small_http(small: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=small.url, timeout=REQUEST_TIMEOUT_S) as c:
        yield c


def test_no_key_needed_when_none_is_set(small: ServerProcess) -> None:
    sdk = openai.OpenAI(base_url=f"{small.url}/v1", api_key="anything", max_retries=0)
    assert {m.id for m in sdk.models.list()} == {NAME, EMBEDDING_MODEL}
    resp = httpx.get(f"{small.url}/v1/models", timeout=30)  # no Authorization header at all
    assert resp.status_code == 200


def test_served_name_comes_from_settings(small_http: httpx.Client) -> None:
    resp = small_http.post(
        "/v1/chat/completions",
        json={"model": NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["model"] == NAME
    assert_error(
        small_http.post(
            "/v1/chat/completions",
            json={"model": CHAT_MODEL, "messages": [{"role": "user", "content": "Hi"}]},
        ),
        404,
        code="model_not_found",
    )


def words(n: int) -> str:
    return "apple " * n


def nearly_full(length: Any) -> str:
    """The shortest run of words whose prompt leaves at most LEFT tokens of the context."""
    n = 1
    while length(words(n)) < CONTEXT - LEFT:
        n += 1
    return words(n)


def test_chat_prompt_over_the_context_is_refused(small_http: httpx.Client, tokenizer: Any) -> None:
    messages = [{"role": "user", "content": words(CONTEXT)}]
    n_prompt = chat_prompt_len(tokenizer, messages)
    assert n_prompt > CONTEXT
    error = assert_error(
        small_http.post("/v1/chat/completions", json={"model": NAME, "messages": messages, "max_tokens": 4}),
        400,
        code="context_length_exceeded",
    )
    assert str(n_prompt) in error["message"], error
    assert str(CONTEXT) in error["message"], error


def test_streamed_prompt_over_the_context_is_refused_before_streaming(small_http: httpx.Client) -> None:
    messages = [{"role": "user", "content": words(CONTEXT + 10)}]
    resp = small_http.post(
        "/v1/chat/completions", json={"model": NAME, "messages": messages, "max_tokens": 4, "stream": True}
    )
    assert_error(resp, 400, code="context_length_exceeded")


def test_completion_prompt_over_the_context_is_refused(small_http: httpx.Client, tokenizer: Any) -> None:
    prompt = words(CONTEXT + 1)
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert n_prompt > CONTEXT
    error = assert_error(
        small_http.post("/v1/completions", json={"model": NAME, "prompt": prompt, "max_tokens": 1}),
        400,
        code="context_length_exceeded",
    )
    assert str(n_prompt) in error["message"], error
    assert str(CONTEXT) in error["message"], error


def test_chat_without_max_tokens_fills_the_remaining_context(
    small_http: httpx.Client, tokenizer: Any
) -> None:
    content = nearly_full(lambda text: chat_prompt_len(tokenizer, [{"role": "user", "content": text}]))
    messages = [{"role": "user", "content": content}]
    n_prompt = chat_prompt_len(tokenizer, messages)
    resp = small_http.post(
        "/v1/chat/completions",
        json={"model": NAME, "messages": messages, "temperature": 0, "ignore_eos": True},
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["usage"]["prompt_tokens"] == n_prompt
    assert body["usage"]["completion_tokens"] == CONTEXT - n_prompt
    assert body["choices"][0]["finish_reason"] == "length"


def test_completions_without_max_tokens_fill_the_remaining_context(
    small_http: httpx.Client, tokenizer: Any
) -> None:
    # Fewer tokens are left than OpenAI's legacy default of 16, so either reading gives this count.
    prompt = nearly_full(lambda text: len(tokenizer(text)["input_ids"]))
    n_prompt = len(tokenizer(prompt)["input_ids"])
    resp = small_http.post(
        "/v1/completions", json={"model": NAME, "prompt": prompt, "temperature": 0, "ignore_eos": True}
    )
    assert resp.status_code == 200, resp.text
    assert resp.json()["usage"]["completion_tokens"] == CONTEXT - n_prompt
    assert resp.json()["choices"][0]["finish_reason"] == "length"


def long_answer(**extra: Any) -> dict[str, Any]:
    return {
        "model": NAME,
        "prompt": "Once",
        "max_tokens": CONTEXT - 8,
        "temperature": 0,
        "ignore_eos": True,
        **extra,
    }


def next_request_is_served(small_http: httpx.Client) -> None:
    # One slot, a 1.5 s queue timeout, and a long answer takes several seconds: a 200 here means
    # the abandoned generation gave its slot back at once.
    resp = small_http.post("/v1/completions", json={"model": NAME, "prompt": "Hi", "max_tokens": 2})
    assert resp.status_code == 200, f"the abandoned generation still holds the slot: {resp.text}"


@pytest.mark.parametrize("resumable", [False, True], ids=["plain", "with-message-id"])
def test_hanging_up_a_stream_frees_its_slot(small_http: httpx.Client, resumable: bool) -> None:
    """With STREAM_RESUME_S=0, a stream sent with X-Conversation-Id and X-Message-Id stops with
    its client too, and is not kept for GET /v1/stream."""
    headers = {"X-Conversation-Id": "c1", "X-Message-Id": "m1"} if resumable else {}
    with small_http.stream("POST", "/v1/completions", json=long_answer(stream=True), headers=headers) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if line.startswith("data:"):
                break
    next_request_is_served(small_http)
    if resumable:
        assert_error(small_http.get("/v1/stream/c1/m1"), 404, code="stream_not_found")


def requests_counted(small_http: httpx.Client, route: str, status: int) -> float:
    """The server's own count of `route`'s requests that ended with `status` (its /metrics)."""
    labels = f'route="{route}",status="{status}"'
    for line in small_http.get("/metrics").text.splitlines():
        if line.startswith("llm_http_requests_total{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


@pytest.mark.parametrize(
    ("route", "body"),
    [
        ("/v1/completions", long_answer()),
        (
            "/v1/chat/completions",
            {
                "model": NAME,
                "messages": [{"role": "user", "content": "Once"}],
                "max_tokens": CONTEXT // 2,
                "ignore_eos": True,
            },
        ),
    ],
    ids=["completions", "chat"],
)
def test_hanging_up_a_plain_request_frees_its_slot_quietly(
    small: ServerProcess, small_http: httpx.Client, route: str, body: dict[str, Any]
) -> None:
    """A client that closes its connection before a non-streamed answer is done: the generation
    is cancelled at once (the one slot serves the next request), and the server logs no error or
    traceback for what is normal, not a failure."""
    logged = small.log_path.stat().st_size
    hung_up = requests_counted(small_http, route, 499)
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{small.url}{route}", json=body, timeout=1.0)
    # Counted as nginx's "client closed request" once the server has ended it (and logged it).
    deadline = time.monotonic() + 30
    while requests_counted(small_http, route, 499) == hung_up:
        assert time.monotonic() < deadline, "the server never noticed the client had gone"
        time.sleep(0.1)
    next_request_is_served(small_http)
    with small.log_path.open(errors="replace") as log:
        log.seek(logged)
        assert not log_problems(log.read())


@pytest.fixture(scope="module")
def waited_stream(small: ServerProcess, small_http: httpx.Client) -> SSEStream:
    """A stream that waits behind a long request for the only slot until its queue timeout."""
    # The long request holds the slot until the block ends, so the wait does not hang on speed.
    with stream_in_background(
        small.url,
        "/v1/completions",
        {**long_answer(), "stream": True},
        started_within=REQUEST_TIMEOUT_S,
        timeout=REQUEST_TIMEOUT_S,
    ):
        return post_stream(
            small_http,
            "/v1/chat/completions",
            {"model": NAME, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 2, "stream": True},
        )


def test_keep_alive_comments_while_a_stream_waits(waited_stream: SSEStream) -> None:
    assert waited_stream.status == 200, waited_stream.raw
    assert waited_stream.headers["content-type"].startswith("text/event-stream")
    assert waited_stream.comments, f"no SSE comment while waiting: {waited_stream.raw[:300]!r}"


def test_error_after_the_stream_started_is_one_event_then_done(waited_stream: SSEStream) -> None:
    data = waited_stream.data
    assert data[-1] == "[DONE]", data
    errors = [d for d in data[:-1] if "error" in json.loads(d)]
    assert len(errors) == 1, data
    # The error is the last event before [DONE], shaped as every other error.
    assert data[-2] == errors[0]
    schema_validator().validate("ErrorResponse", json.loads(errors[0]))

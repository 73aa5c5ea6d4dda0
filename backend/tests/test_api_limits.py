"""A second server with other settings: a 64-token context (context_length_exceeded, and generation
up to the remaining context), no API key, its own served name, one sequence at a time and a short
SSE keep-alive interval (comments while a stream waits)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from api_support import (
    EMBEDDING_MODEL,
    REQUEST_TIMEOUT_S,
    ServerProcess,
    assert_error,
    chat_prompt_len,
    post_stream,
    start_server,
)

CONTEXT = 64
NAME = "smol-ctx64"


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("small") / "server.log",
        api_key=None,
        CHAT_MODEL_NAME=NAME,
        MAX_MODEL_LEN=str(CONTEXT),
        MAX_NUM_SEQS="1",
        SSE_PING_S="0.2",
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
            json={"model": "SmolLM2-135M-Instruct", "messages": [{"role": "user", "content": "Hi"}]},
        ),
        404,
        code="model_not_found",
    )


def test_chat_prompt_over_the_context_is_refused(small_http: httpx.Client, tokenizer: Any) -> None:
    messages = [{"role": "user", "content": "Tell me everything about the history of the sea. " * 4}]
    n_prompt = chat_prompt_len(tokenizer, messages)
    assert n_prompt > CONTEXT
    error = assert_error(
        small_http.post("/v1/chat/completions", json={"model": NAME, "messages": messages, "max_tokens": 4}),
        400,
        code="context_length_exceeded",
    )
    assert str(n_prompt) in error["message"], error
    assert str(CONTEXT) in error["message"], error


def test_streamed_prompt_over_the_context_is_refused_before_streaming(
    small_http: httpx.Client, tokenizer: Any
) -> None:
    messages = [{"role": "user", "content": "word " * 80}]
    resp = small_http.post(
        "/v1/chat/completions", json={"model": NAME, "messages": messages, "max_tokens": 4, "stream": True}
    )
    assert_error(resp, 400, code="context_length_exceeded")


def test_completion_prompt_over_the_context_is_refused(small_http: httpx.Client, tokenizer: Any) -> None:
    prompt = "one two three four five six seven eight nine ten " * 8
    n_prompt = len(tokenizer(prompt)["input_ids"])
    assert n_prompt > CONTEXT
    error = assert_error(
        small_http.post("/v1/completions", json={"model": NAME, "prompt": prompt, "max_tokens": 1}),
        400,
        code="context_length_exceeded",
    )
    assert str(n_prompt) in error["message"], error
    assert str(CONTEXT) in error["message"], error


def test_without_max_tokens_generation_fills_the_remaining_context(
    small_http: httpx.Client, tokenizer: Any
) -> None:
    messages = [{"role": "user", "content": "Count from one to one hundred."}]
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


def test_completions_without_max_tokens_uses_the_openai_default(small_http: httpx.Client) -> None:
    # OpenAI's legacy completions default max_tokens to 16; within the context here either way.
    resp = small_http.post(
        "/v1/completions",
        json={"model": NAME, "prompt": "Once upon a time", "temperature": 0, "ignore_eos": True},
    )
    assert resp.status_code == 200, resp.text
    assert 1 <= resp.json()["usage"]["completion_tokens"] <= CONTEXT


def test_keep_alive_comments_while_a_stream_waits(small: ServerProcess, small_http: httpx.Client) -> None:
    # With one sequence at a time, a second stream waits for the first; it must send SSE comments.
    busy = {
        "model": NAME,
        "prompt": "Once upon a time",
        "max_tokens": 48,
        "temperature": 0,
        "ignore_eos": True,
    }
    done: list[int] = []

    def occupy() -> None:
        with httpx.Client(base_url=small.url, timeout=REQUEST_TIMEOUT_S) as other:
            done.append(other.post("/v1/completions", json=busy).status_code)

    worker = threading.Thread(target=occupy)
    worker.start()
    time.sleep(0.5)  # let the busy request take the only slot first
    try:
        stream = post_stream(
            small_http,
            "/v1/completions",
            {"model": NAME, "prompt": "Hello", "max_tokens": 2, "temperature": 0, "stream": True},
        )
    finally:
        worker.join(timeout=REQUEST_TIMEOUT_S)
    assert done == [200]
    assert stream.status == 200, stream.raw
    assert stream.comments, f"no SSE comment while waiting: {stream.raw[:300]!r}"
    assert stream.data[-1] == "[DONE]"

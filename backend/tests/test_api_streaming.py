"""SSE streaming of chat and completions: framing, headers, chunk schema, usage chunk, [DONE]."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest
from api_support import (
    API_KEY,
    SchemaValidator,
    SSEStream,
    assert_serves,
    chat_stream_text,
    completion_stream_text,
    finish_reasons,
    post_stream,
)
from server_process import CHAT_MODEL

MESSAGES = [{"role": "user", "content": "Write a short poem about the sea."}]
PROMPT = "The capital of France is"


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "messages": MESSAGES, "max_tokens": 8, "temperature": 0, **extra}


def completion_body(**extra: Any) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "prompt": PROMPT, "max_tokens": 8, "temperature": 0, **extra}


def assert_sse_headers(stream: SSEStream) -> None:
    assert stream.status == 200, stream.raw
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert "no-cache" in stream.headers.get("cache-control", "")
    assert stream.headers.get("x-accel-buffering") == "no"
    assert stream.raw.endswith("\n\n"), "the last event is not terminated by a blank line"


def assert_one_identity(chunks: list[dict[str, Any]], obj: str) -> None:
    assert chunks
    assert {c["id"] for c in chunks} == {chunks[0]["id"]}, "chunks carry different ids"
    assert {c["created"] for c in chunks} == {chunks[0]["created"]}
    assert {c["model"] for c in chunks} == {CHAT_MODEL}
    assert {c["object"] for c in chunks} == {obj}


@pytest.fixture(scope="module")
def chat_stream(http: httpx.Client) -> SSEStream:
    return post_stream(http, "/v1/chat/completions", chat_body(stream=True))


@pytest.fixture(scope="module")
def chat_stream_with_usage(http: httpx.Client) -> SSEStream:
    return post_stream(
        http, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True})
    )


@pytest.fixture(scope="module")
def chat_plain(http: httpx.Client) -> dict[str, Any]:
    resp = http.post("/v1/chat/completions", json=chat_body())
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_chat_stream_headers_and_framing(chat_stream: SSEStream, schemas: SchemaValidator) -> None:
    assert_sse_headers(chat_stream)
    chunks = chat_stream.chunks  # asserts the single trailing `data: [DONE]`
    for chunk in chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    assert_one_identity(chunks, "chat.completion.chunk")


def test_chat_stream_order_role_content_finish(chat_stream: SSEStream) -> None:
    chunks = chat_stream.chunks
    assert chunks[0]["choices"][0]["delta"].get("role") == "assistant"
    assert all("role" not in c["choices"][0]["delta"] or c is chunks[0] for c in chunks), "role sent twice"
    contents = [c["choices"][0]["delta"].get("content") for c in chunks]
    assert sum(1 for c in contents if c) >= 2, "expected several content deltas"
    # Exactly one finish_reason, on the last chunk (no usage chunk was asked for).
    assert finish_reasons(chunks) == ["length"]
    assert chunks[-1]["choices"][0]["finish_reason"] == "length"
    assert all(c.get("usage") is None for c in chunks), "usage sent without include_usage"


def test_chat_stream_text_equals_non_streamed(chat_stream: SSEStream, chat_plain: dict[str, Any]) -> None:
    assert chat_stream_text(chat_stream.chunks) == chat_plain["choices"][0]["message"]["content"]


def test_chat_stream_include_usage(
    chat_stream_with_usage: SSEStream, chat_plain: dict[str, Any], schemas: SchemaValidator
) -> None:
    assert_sse_headers(chat_stream_with_usage)
    chunks = chat_stream_with_usage.chunks
    for chunk in chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    assert_one_identity(chunks, "chat.completion.chunk")
    last = chunks[-1]
    assert last["choices"] == []
    assert last["usage"] == {
        **last["usage"],
        "prompt_tokens": chat_plain["usage"]["prompt_tokens"],
        "completion_tokens": chat_plain["usage"]["completion_tokens"],
        "total_tokens": chat_plain["usage"]["total_tokens"],
    }
    # Every chunk before the last has usage null (or absent), per the spec's description.
    assert all(c.get("usage") is None for c in chunks[:-1])
    assert finish_reasons(chunks[:-1]) == ["length"]


def test_completion_stream(http: httpx.Client, schemas: SchemaValidator) -> None:
    plain = http.post("/v1/completions", json=completion_body())
    assert plain.status_code == 200, plain.text
    stream = post_stream(
        http, "/v1/completions", completion_body(stream=True, stream_options={"include_usage": True})
    )
    assert_sse_headers(stream)
    chunks = stream.chunks
    for chunk in chunks[:-1]:
        schemas.validate("_CompletionStreamChunk", chunk)
    assert_one_identity(chunks, "text_completion")
    assert completion_stream_text(chunks) == plain.json()["choices"][0]["text"]
    assert finish_reasons(chunks) == ["length"]
    last = chunks[-1]
    assert last["choices"] == []
    usage = plain.json()["usage"]
    assert {k: last["usage"][k] for k in usage if k.endswith("_tokens")} == {
        k: v for k, v in usage.items() if k.endswith("_tokens")
    }


def test_sdk_chat_stream(client: openai.OpenAI, chat_plain: dict[str, Any]) -> None:
    stream = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=MESSAGES,  # type: ignore[arg-type]
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == chat_plain["choices"][0]["message"]["content"]
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == chat_plain["usage"]["completion_tokens"]


def test_sdk_completion_stream(client: openai.OpenAI) -> None:
    plain = client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=6, temperature=0)
    chunks = list(
        client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=6, temperature=0, stream=True)
    )
    assert "".join(c.choices[0].text for c in chunks if c.choices) == plain.choices[0].text
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "length"
    ]


def test_stream_natural_stop_finish_reason(http: httpx.Client) -> None:
    stream = post_stream(
        http,
        "/v1/chat/completions",
        {
            "model": CHAT_MODEL,
            "messages": [{"role": "user", "content": "What is 2+2? Answer with a number only."}],
            "max_tokens": 16,
            "temperature": 0,
            "stream": True,
        },
    )
    chunks = stream.chunks
    assert finish_reasons(chunks) == ["stop"]
    assert "<|im_end|>" not in chat_stream_text(chunks)


def test_client_hanging_up_mid_stream_leaves_the_server_serving(http: httpx.Client) -> None:
    body = chat_body(max_tokens=200, stream=True, ignore_eos=True)
    with http.stream("POST", "/v1/chat/completions", json=body) as resp:
        assert resp.status_code == 200
        events = 0
        for line in resp.iter_lines():
            events += line.startswith("data:")
            if events == 2:
                break  # hang up with most of the answer still to come
    assert_serves(http)


def test_client_timing_out_on_a_long_answer_leaves_the_server_serving(
    base_url: str, http: httpx.Client
) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{base_url}/v1/chat/completions",
            json=chat_body(max_tokens=200, ignore_eos=True),
            headers={"Authorization": f"Bearer {API_KEY}"},
            timeout=0.5,
        )
    assert_serves(http)

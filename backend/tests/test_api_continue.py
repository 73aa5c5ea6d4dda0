"""vLLM's `continue_final_message` extension: an answer cut by max_tokens carried on in place."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from api_support import (
    REQUEST_TIMEOUT_S,
    SchemaValidator,
    assert_error,
    chat_stream_text,
    finish_reasons,
    post_stream,
)
from server_process import CHAT_MODEL, start_server

QUESTION = {"role": "user", "content": "Tell me a short story about a lighthouse keeper."}
CUT = 12


def chat(http: httpx.Client, messages: list[dict[str, Any]], max_tokens: int, **extra: Any) -> dict[str, Any]:
    resp = http.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": messages, "max_tokens": max_tokens, "temperature": 0, **extra},
    )
    assert resp.status_code == 200, resp.text
    return resp.json()


def continuing(partial: str) -> list[dict[str, Any]]:
    return [QUESTION, {"role": "assistant", "content": partial}]


CONTINUE = {"continue_final_message": True, "add_generation_prompt": False}


@pytest.fixture(scope="module")
def http(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """A server that computes prompts with the weights it decodes with (DENSE_PREFILL=false; the
    default already where no dense weights are kept, e.g. fp16): only then is the greedy
    continuation of a cut answer exactly the uncut answer. With dense bf16 prefill beside int4
    decode, the cut answer's tokens are read back with other numbers and may continue otherwise."""
    proc = start_server(tmp_path_factory.mktemp("continue") / "server.log", DENSE_PREFILL="false")
    try:
        with httpx.Client(base_url=proc.url, timeout=REQUEST_TIMEOUT_S) as client:
            yield client
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def whole(http: httpx.Client) -> str:
    """The greedy answer of 2 * CUT tokens in one go."""
    body = chat(http, [QUESTION], 2 * CUT, ignore_eos=True)
    assert body["choices"][0]["finish_reason"] == "length"
    return body["choices"][0]["message"]["content"]


@pytest.fixture(scope="module")
def cut(http: httpx.Client) -> str:
    """The same answer cut at CUT tokens, as a page shows it with finish_reason 'length'."""
    body = chat(http, [QUESTION], CUT, ignore_eos=True)
    assert body["choices"][0]["finish_reason"] == "length"
    assert body["usage"]["completion_tokens"] == CUT
    return body["choices"][0]["message"]["content"]


def test_models_offer_the_extension(http: httpx.Client) -> None:
    cards = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    assert "continue_final_message" in cards[CHAT_MODEL]["capabilities"]


def test_continuation_carries_on_the_same_message(
    http: httpx.Client, schemas: SchemaValidator, tokenizer: Any, whole: str, cut: str
) -> None:
    body = chat(http, continuing(cut), CUT, ignore_eos=True, **CONTINUE)
    schemas.validate("CreateChatCompletionResponse", body)
    rest = body["choices"][0]["message"]["content"]
    # Greedy decoding from the open message gives what the uncut answer said next.
    assert whole.startswith(cut)
    assert cut + rest == whole
    # The prompt is the template with the assistant message left open: no end-of-turn after it
    # and no new assistant header.
    open_prompt = tokenizer.apply_chat_template(
        continuing(cut), tokenize=False, add_generation_prompt=False, continue_final_message=True
    )
    assert open_prompt.endswith(cut)
    assert body["usage"]["prompt_tokens"] == len(tokenizer.encode(open_prompt, add_special_tokens=False))


def test_streamed_continuation(http: httpx.Client, schemas: SchemaValidator, whole: str, cut: str) -> None:
    stream = post_stream(
        http,
        "/v1/chat/completions",
        {
            "model": CHAT_MODEL,
            "messages": continuing(cut),
            "max_tokens": CUT,
            "temperature": 0,
            "ignore_eos": True,
            "stream": True,
            "stream_options": {"include_usage": True},
            **CONTINUE,
        },
    )
    assert stream.status == 200, stream.raw
    chunks = stream.chunks
    for chunk in chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    assert cut + chat_stream_text(chunks) == whole
    assert finish_reasons(chunks) == ["length"]
    assert chunks[-1]["usage"]["completion_tokens"] == CUT


def test_without_the_extension_the_message_is_closed(http: httpx.Client, cut: str, whole: str) -> None:
    """The default (a new assistant turn after the partial one) does not carry on the text."""
    body = chat(http, continuing(cut), CUT, ignore_eos=True)
    assert cut + body["choices"][0]["message"]["content"] != whole


def test_both_true_is_refused_naming_the_fields(http: httpx.Client, cut: str) -> None:
    resp = http.post(
        "/v1/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": continuing(cut),
            "max_tokens": 1,
            "continue_final_message": True,
        },
    )
    error = assert_error(resp, 400, param="add_generation_prompt")
    assert "continue_final_message" in error["message"] and "add_generation_prompt" in error["message"]


def test_continuing_a_user_message_is_refused(http: httpx.Client) -> None:
    resp = http.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": [QUESTION], "max_tokens": 1, **CONTINUE},
    )
    error = assert_error(resp, 400, param="messages[0].role")
    assert "assistant" in error["message"]


@pytest.mark.parametrize("field", ["continue_final_message", "add_generation_prompt"])
def test_fields_are_strict_booleans(http: httpx.Client, field: str) -> None:
    resp = http.post(
        "/v1/chat/completions",
        json={"model": CHAT_MODEL, "messages": [QUESTION], "max_tokens": 1, field: "yes"},
    )
    assert_error(resp, 400, param_prefix=field)

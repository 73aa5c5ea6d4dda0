"""Multi-byte text is never split: SmolLM2 spells Chinese characters with several byte tokens, so
small max_tokens cut in the middle of a character. Streamed deltas never hold U+FFFD, and at
temperature 0 the concatenated stream equals the non-streamed text exactly."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from api_support import chat_stream_text, completion_stream_text, post_stream
from server_process import CHAT_MODEL

CHAT_MESSAGES = [{"role": "user", "content": "请用中文介绍一下北京。"}]
COMPLETION_PROMPT = "北京是中国的首都，"
# Greedy output starts with characters of 2-4 byte tokens each, so these cut mid-character.
MAX_TOKENS = [1, 2, 3, 5, 7, 12]
REPLACEMENT = "\ufffd"


def has_cjk(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text)


@pytest.mark.parametrize("max_tokens", MAX_TOKENS)
def test_chat_chinese_stream_equals_non_stream(http: httpx.Client, max_tokens: int) -> None:
    body: dict[str, Any] = {
        "model": CHAT_MODEL,
        "messages": CHAT_MESSAGES,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    plain = http.post("/v1/chat/completions", json=body)
    assert plain.status_code == 200, plain.text
    content = plain.json()["choices"][0]["message"]["content"]
    assert REPLACEMENT not in content
    stream = post_stream(http, "/v1/chat/completions", {**body, "stream": True})
    deltas = [c["delta"].get("content") or "" for ch in stream.chunks for c in ch["choices"]]
    assert all(REPLACEMENT not in d for d in deltas), deltas
    assert chat_stream_text(stream.chunks) == content
    if max_tokens >= 5:
        assert has_cjk(content), f"expected Chinese output to make this test meaningful: {content!r}"


@pytest.mark.parametrize("max_tokens", MAX_TOKENS)
def test_completion_chinese_stream_equals_non_stream(http: httpx.Client, max_tokens: int) -> None:
    body: dict[str, Any] = {
        "model": CHAT_MODEL,
        "prompt": COMPLETION_PROMPT,
        "max_tokens": max_tokens,
        "temperature": 0,
    }
    plain = http.post("/v1/completions", json=body)
    assert plain.status_code == 200, plain.text
    text = plain.json()["choices"][0]["text"]
    assert REPLACEMENT not in text
    stream = post_stream(http, "/v1/completions", {**body, "stream": True})
    deltas = [c["text"] for ch in stream.chunks for c in ch["choices"]]
    assert all(REPLACEMENT not in d for d in deltas), deltas
    assert completion_stream_text(stream.chunks) == text
    if max_tokens >= 5:
        assert has_cjk(text), f"expected Chinese output to make this test meaningful: {text!r}"


def test_chinese_stream_with_stop_and_usage(http: httpx.Client) -> None:
    # A stop string made of Chinese characters is matched on whole characters, never on bytes.
    body: dict[str, Any] = {
        "model": CHAT_MODEL,
        "prompt": COMPLETION_PROMPT,
        "max_tokens": 16,
        "temperature": 0,
    }
    full = http.post("/v1/completions", json=body).json()["choices"][0]["text"]
    stop = next(ch for ch in full[1:] if has_cjk(ch))
    cut = full[: full.find(stop)]
    plain = http.post("/v1/completions", json={**body, "stop": stop}).json()
    assert plain["choices"][0]["text"] == cut
    stream = post_stream(http, "/v1/completions", {**body, "stop": stop, "stream": True})
    assert completion_stream_text(stream.chunks) == cut
    assert all(REPLACEMENT not in c["text"] for ch in stream.chunks for c in ch["choices"])


def test_chat_logprob_bytes_spell_the_chinese_content(http: httpx.Client) -> None:
    # Tokens that are parts of a character show as U+FFFD, but their bytes are the real ones.
    resp = http.post(
        "/v1/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": CHAT_MESSAGES,
            "max_tokens": 8,
            "temperature": 0,
            "logprobs": True,
        },
    )
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    spelled = bytes(b for entry in choice["logprobs"]["content"] for b in entry["bytes"])
    assert spelled.decode("utf-8") == choice["message"]["content"]
    assert has_cjk(choice["message"]["content"])


def test_completion_logprob_offsets_stay_inside_the_text(http: httpx.Client) -> None:
    resp = http.post(
        "/v1/completions",
        json={
            "model": CHAT_MODEL,
            "prompt": COMPLETION_PROMPT,
            "max_tokens": 6,
            "temperature": 0,
            "logprobs": 1,
        },
    )
    assert resp.status_code == 200, resp.text
    choice = resp.json()["choices"][0]
    offsets = choice["logprobs"]["text_offset"]
    assert REPLACEMENT not in choice["text"]
    assert offsets == sorted(offsets)
    # Offsets count characters of the returned text (from wherever it starts), so none lies past its end.
    assert all(o - offsets[0] <= len(choice["text"]) for o in offsets), (offsets, choice["text"])

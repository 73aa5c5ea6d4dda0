"""Per-request sampling settings really change what is sampled: temperature, top_p, top_k, seed,
n, penalties, logprobs."""

from __future__ import annotations

import math
from typing import Any

import httpx
import openai
import pytest
from api_support import SchemaValidator, chat_stream_text, finish_reasons, post_stream
from server_process import CHAT_MODEL

POEM = [{"role": "user", "content": "Write a short poem about the sea."}]
# Greedy decoding of this prompt falls into repeating tokens, which the penalties must break.
REPETITIVE_PROMPT = "我爱"


def chat_text(client: openai.OpenAI, max_tokens: int = 10, **kwargs: Any) -> str:
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=POEM, max_tokens=max_tokens, **kwargs)
    return resp.choices[0].message.content or ""


@pytest.fixture(scope="module")
def greedy(client: openai.OpenAI) -> str:
    return chat_text(client, temperature=0)


def test_temperature_zero_is_deterministic(client: openai.OpenAI, greedy: str) -> None:
    assert chat_text(client, temperature=0) == greedy


def test_temperature_one_samples(client: openai.OpenAI, greedy: str) -> None:
    texts = {chat_text(client, temperature=1.5) for _ in range(4)}
    # Four unseeded samples at a high temperature, 10 tokens each, are not all the greedy text.
    assert len(texts | {greedy}) > 1


@pytest.mark.parametrize("temperature", [1e-300, 5e-324, 1e-6])
def test_a_vanishing_temperature_is_greedy(client: openai.OpenAI, greedy: str, temperature: float) -> None:
    # logits / 1e-300 overflow; such a row used to sample <|endoftext|> at once (an empty answer).
    assert chat_text(client, temperature=temperature) == greedy
    assert greedy


def test_tiny_top_p_keeps_only_the_most_likely_token(client: openai.OpenAI, greedy: str) -> None:
    for _ in range(3):
        assert chat_text(client, temperature=1.5, top_p=1e-6) == greedy


def test_top_k_one_is_greedy(client: openai.OpenAI, greedy: str) -> None:
    for _ in range(3):
        assert chat_text(client, temperature=1.5, extra_body={"top_k": 1}) == greedy


def test_same_seed_same_sample(client: openai.OpenAI) -> None:
    first = chat_text(client, max_tokens=8, temperature=1, seed=1234)
    second = chat_text(client, max_tokens=8, temperature=1, seed=1234)
    assert first == second


def test_different_seeds_give_different_samples(client: openai.OpenAI) -> None:
    texts = {chat_text(client, max_tokens=8, temperature=1, seed=seed) for seed in (1, 2, 3, 4)}
    assert len(texts) >= 2, texts


def test_n_2_returns_two_choices(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=POEM, max_tokens=4, temperature=0, n=2, extra_body={"ignore_eos": True}
    )
    assert [c.index for c in resp.choices] == [0, 1]
    assert all(c.finish_reason == "length" for c in resp.choices)
    assert resp.usage is not None
    # Usage counts the tokens of both choices; the prompt only once.
    assert resp.usage.completion_tokens == 8
    assert resp.choices[0].message.content == resp.choices[1].message.content  # greedy: the same text


def test_n_2_samples_independently(client: openai.OpenAI) -> None:
    pairs = []
    for seed in (7, 8, 9):
        resp = client.chat.completions.create(
            model=CHAT_MODEL, messages=POEM, max_tokens=6, temperature=1, n=2, seed=seed
        )
        pairs.append((resp.choices[0].message.content, resp.choices[1].message.content))
    assert any(a != b for a, b in pairs), f"n=2 gave the same text twice every time: {pairs}"


def test_n_2_streamed(http: httpx.Client, schemas: SchemaValidator) -> None:
    stream = post_stream(
        http,
        "/v1/chat/completions",
        {"model": CHAT_MODEL, "messages": POEM, "max_tokens": 3, "temperature": 0, "n": 2, "stream": True},
    )
    assert stream.status == 200, stream.raw
    chunks = stream.chunks
    for chunk in chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    for index in (0, 1):
        first = next(c for ch in chunks for c in ch["choices"] if c["index"] == index)
        assert first["delta"].get("role") == "assistant"
        assert finish_reasons(chunks, index) == ["length"]
        assert chat_stream_text(chunks, index)
    assert chat_stream_text(chunks, 0) == chat_stream_text(chunks, 1)


@pytest.mark.parametrize(
    "penalty",
    [{"frequency_penalty": 2.0}, {"presence_penalty": 2.0}, {"repetition_penalty": 1.5}],
    ids=["frequency", "presence", "repetition"],
)
def test_penalties_change_repetitive_output(client: openai.OpenAI, penalty: dict[str, float]) -> None:
    def complete(**extra: Any) -> str:
        resp = client.completions.create(
            model=CHAT_MODEL,
            prompt=REPETITIVE_PROMPT,
            max_tokens=12,
            temperature=0,
            extra_body={"ignore_eos": True, **extra},
        )
        return resp.choices[0].text

    baseline = complete()
    # The baseline must repeat itself, or this test would prove nothing.
    assert len(set(baseline)) < len(baseline) / 2, baseline
    penalised = complete(**penalty)
    assert penalised != baseline


def test_zero_penalties_are_accepted_and_neutral(client: openai.OpenAI, greedy: str) -> None:
    assert (
        chat_text(
            client,
            temperature=0,
            presence_penalty=0,
            frequency_penalty=0,
            extra_body={"repetition_penalty": 1.0},
        )
        == greedy
    )


def test_chat_logprobs_shape_and_greedy_consistency(client: openai.OpenAI, schemas: SchemaValidator) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=POEM, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3
    )
    body = raw.http_response.json()
    schemas.validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    entries = choice["logprobs"]["content"]
    assert len(entries) == body["usage"]["completion_tokens"] == 6
    for entry in entries:
        assert entry["logprob"] <= 0
        assert len(entry["top_logprobs"]) == 3
        tops = [t["logprob"] for t in entry["top_logprobs"]]
        assert tops == sorted(tops, reverse=True)
        # Greedy: the chosen token is the most likely one.
        assert entry["top_logprobs"][0]["token"] == entry["token"]
        assert math.isclose(entry["top_logprobs"][0]["logprob"], entry["logprob"], abs_tol=1e-4)
    # The tokens' bytes spell the content exactly.
    spelled = b"".join(bytes(e["bytes"]) for e in entries).decode("utf-8")
    assert spelled == choice["message"]["content"]


def test_chat_logprobs_without_top_logprobs(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=POEM, max_tokens=3, temperature=0, logprobs=True
    )
    logprobs = resp.choices[0].logprobs
    assert logprobs is not None and logprobs.content is not None
    assert len(logprobs.content) == 3
    assert all(e.top_logprobs == [] for e in logprobs.content)


def test_chat_logprobs_streamed(http: httpx.Client, schemas: SchemaValidator) -> None:
    stream = post_stream(
        http,
        "/v1/chat/completions",
        {
            "model": CHAT_MODEL,
            "messages": POEM,
            "max_tokens": 4,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 2,
            "stream": True,
        },
    )
    assert stream.status == 200, stream.raw
    entries = []
    for chunk in stream.chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
        for choice in chunk["choices"]:
            if choice.get("logprobs"):
                entries.extend(choice["logprobs"]["content"] or [])
    assert len(entries) == 4
    assert all(len(e["top_logprobs"]) == 2 for e in entries)


def test_completion_logprobs_shape(client: openai.OpenAI, schemas: SchemaValidator) -> None:
    prompt = "The capital of France is"
    raw = client.completions.with_raw_response.create(
        model=CHAT_MODEL, prompt=prompt, max_tokens=5, temperature=0, logprobs=2
    )
    body = raw.http_response.json()
    schemas.validate("CreateCompletionResponse", body)
    choice = body["choices"][0]
    lp = choice["logprobs"]
    n = body["usage"]["completion_tokens"]
    assert (
        len(lp["tokens"])
        == len(lp["token_logprobs"])
        == len(lp["top_logprobs"])
        == len(lp["text_offset"])
        == n
    )
    assert "".join(lp["tokens"]) == choice["text"]
    assert all(v <= 0 for v in lp["token_logprobs"])
    for token, top in zip(lp["tokens"], lp["top_logprobs"], strict=True):
        assert 1 <= len(top) <= 2
        # Greedy: the chosen token is among the top ones, with the highest logprob.
        assert max(top, key=top.get) == token
    # Each offset advances by the length of the token before it.
    steps = [b - a for a, b in zip(lp["text_offset"], lp["text_offset"][1:], strict=False)]
    assert steps == [len(t) for t in lp["tokens"][:-1]]

"""POST /v1/completions, non-streamed: schema, usage, lengths."""

from __future__ import annotations

from typing import Any

import openai
from api_support import SchemaValidator
from server_process import CHAT_MODEL

PROMPT = "The capital of France is"


def test_response_matches_schema(client: openai.OpenAI, schemas: SchemaValidator) -> None:
    raw = client.completions.with_raw_response.create(
        model=CHAT_MODEL, prompt=PROMPT, max_tokens=4, temperature=0
    )
    body = raw.http_response.json()
    schemas.validate("CreateCompletionResponse", body)
    assert body["object"] == "text_completion"
    assert body["model"] == CHAT_MODEL
    choice = body["choices"][0]
    assert "logprobs" in choice and choice["logprobs"] is None
    assert choice["index"] == 0
    # Greedy SmolLM2 knows this one.
    assert "Paris" in choice["text"]
    assert raw.parse().choices[0].text == choice["text"]


def test_usage_is_exact(client: openai.OpenAI, tokenizer: Any) -> None:
    resp = client.completions.create(
        model=CHAT_MODEL, prompt=PROMPT, max_tokens=7, temperature=0, extra_body={"ignore_eos": True}
    )
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == len(tokenizer(PROMPT)["input_ids"])
    assert resp.usage.completion_tokens == 7
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + 7
    assert resp.choices[0].finish_reason == "length"


def test_max_tokens_counts_tokens_not_characters(client: openai.OpenAI, tokenizer: Any) -> None:
    resp = client.completions.create(model=CHAT_MODEL, prompt=PROMPT, max_tokens=5, temperature=0)
    # Greedy text re-tokenises to the same 5 tokens (plain ASCII here).
    assert len(tokenizer(resp.choices[0].text, add_special_tokens=False)["input_ids"]) == 5


def test_no_chat_template_is_applied(client: openai.OpenAI, tokenizer: Any) -> None:
    prompt = "<|im_start|>user\nWhat is 2+2? Answer with a number only.<|im_end|>\n<|im_start|>assistant\n"
    resp = client.completions.create(model=CHAT_MODEL, prompt=prompt, max_tokens=16, temperature=0)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == len(tokenizer(prompt)["input_ids"])
    # The raw prompt is what the model sees, so it ends its turn by itself.
    assert resp.choices[0].finish_reason == "stop"
    assert "4" in resp.choices[0].text


def test_n_2_completions(client: openai.OpenAI) -> None:
    resp = client.completions.create(
        model=CHAT_MODEL, prompt=PROMPT, max_tokens=3, temperature=0, n=2, extra_body={"ignore_eos": True}
    )
    assert [c.index for c in resp.choices] == [0, 1]
    assert resp.usage is not None and resp.usage.completion_tokens == 6


def test_seed_reproducible_for_completions(client: openai.OpenAI) -> None:
    def sample(seed: int) -> str:
        # An open-ended prompt: "The capital of France is" is too predictable to tell seeds apart.
        resp = client.completions.create(
            model=CHAT_MODEL, prompt="Once upon a time", max_tokens=6, temperature=1, seed=seed
        )
        return resp.choices[0].text

    first = sample(42)
    assert sample(42) == first
    assert len({first, sample(43), sample(44)}) >= 2

"""The prefix cache seen through the API: usage.prompt_tokens_details.cached_tokens and /metrics."""

from __future__ import annotations

import uuid

import httpx
from api_support import SchemaValidator
from server_process import CHAT_MODEL


def metric(http: httpx.Client, name: str) -> float:
    for line in http.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} not in /metrics")


def test_a_repeated_prompt_reports_its_cached_tokens(http: httpx.Client, schemas: SchemaValidator) -> None:
    system = f"[{uuid.uuid4().hex}] You answer briefly and kindly. " * 8
    body = {
        "model": CHAT_MODEL,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": "Hello"}],
        "max_tokens": 2,
    }
    hits_before = metric(http, "llm_prefix_cache_hits_total")
    queries_before = metric(http, "llm_prefix_cache_queries_total")
    first = http.post("/v1/chat/completions", json=body).json()
    second = http.post("/v1/chat/completions", json=body).json()
    for response in (first, second):
        schemas.validate("CreateChatCompletionResponse", response)
    prompt = first["usage"]["prompt_tokens"]
    assert first["usage"]["prompt_tokens_details"] == {"cached_tokens": 0}
    cached = second["usage"]["prompt_tokens_details"]["cached_tokens"]
    # Whole 16-token blocks, short of the last prompt token (which is always computed).
    assert cached == (prompt - 1) // 16 * 16
    assert metric(http, "llm_prefix_cache_queries_total") - queries_before == 2 * prompt
    assert metric(http, "llm_prefix_cache_hits_total") - hits_before == cached


def test_streamed_usage_reports_cached_tokens(http: httpx.Client) -> None:
    body = {
        "model": CHAT_MODEL,
        "prompt": f"{uuid.uuid4().hex} Once upon a time, " * 6,
        "max_tokens": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    usages = []
    for _ in range(2):
        with http.stream("POST", "/v1/completions", json=body) as resp:
            lines = [line for line in resp.iter_lines() if line.startswith("data: {")]
        usages.append(httpx.Response(200, content=lines[-1][6:]).json()["usage"])
    assert usages[0]["prompt_tokens_details"]["cached_tokens"] == 0
    assert usages[1]["prompt_tokens_details"]["cached_tokens"] == (usages[1]["prompt_tokens"] - 1) // 16 * 16


def test_the_next_turn_reuses_a_conversation_turns_answer(http: httpx.Client) -> None:
    """A chat turn that carries an assistant message is a conversation's: its answer is cached as
    it is generated (in 32-token pieces, engine.py), so the turn after it, which sends it back,
    finds more than its previous prompt in the cache. A first turn's answer is not."""
    messages = [
        {"role": "system", "content": f"[{uuid.uuid4().hex}] You tell long stories."},
        {"role": "user", "content": "Tell me a story about a lighthouse keeper."},
    ]
    body = {"model": CHAT_MODEL, "max_tokens": 64, "temperature": 0, "ignore_eos": True}
    turns = []
    for question in ("And then?", "How did it end?"):
        turns.append(http.post("/v1/chat/completions", json={**body, "messages": messages}).json())
        messages += [turns[-1]["choices"][0]["message"], {"role": "user", "content": question}]
    third = http.post("/v1/chat/completions", json={**body, "messages": messages}).json()
    first_prompt, second_prompt = (turn["usage"]["prompt_tokens"] for turn in turns)
    assert turns[1]["usage"]["prompt_tokens_details"]["cached_tokens"] <= first_prompt  # not cached
    cached = third["usage"]["prompt_tokens_details"]["cached_tokens"]
    # At least the answer's first piece: the last may still be computing when the next turn comes.
    assert cached >= second_prompt // 16 * 16 + 32 > second_prompt

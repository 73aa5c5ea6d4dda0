"""The prefix cache seen through the API: usage.prompt_tokens_details.cached_tokens and /metrics."""

from __future__ import annotations

import uuid

import httpx
from api_support import SchemaValidator
from server_process import CHAT_MODEL

from app.engine import native
from app.engine.loader import resolve_dense_prefill


def metric(http: httpx.Client, name: str) -> float:
    values = []
    for line in http.get("/metrics").text.splitlines():
        # Summed over its labels (the model's), so the figures of every model count.
        if line.startswith((name + " ", name + "{")):
            values.append(float(line.rsplit(" ", 1)[1]))
    if not values:
        raise AssertionError(f"{name} not in /metrics")
    return sum(values)


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


def conversation_turns(http: httpx.Client, headers: dict[str, str]) -> list[dict]:
    """Three turns of one chat, each sending the earlier answers back, as the page does."""
    messages = [
        {"role": "system", "content": f"[{uuid.uuid4().hex}] You tell long stories."},
        {"role": "user", "content": "Tell me a story about a lighthouse keeper."},
    ]
    # Answers end as the model ends them: one that ran on past its end-of-turn token (ignore_eos)
    # would come back without it, as text that no longer matches the tokens generated.
    body = {"model": CHAT_MODEL, "max_tokens": 64, "temperature": 0}
    turns: list[dict] = []
    for question in ("", "And then?", "How did it end?"):
        if turns:
            messages += [turns[-1]["choices"][0]["message"], {"role": "user", "content": question}]
        turns.append(
            http.post("/v1/chat/completions", json={**body, "messages": messages}, headers=headers).json()
        )
    return turns


def answer_reused(turns: list[dict], index: int) -> bool:
    """Whether turn `index` found the previous turn's answer cached: the block where the previous
    prompt ends, at least (the last of the answer may still be computing when the next turn comes)."""
    previous = turns[index - 1]["usage"]["prompt_tokens"]
    cached = turns[index]["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert cached >= previous // 16 * 16  # the previous prompt, at least
    return cached >= previous // 16 * 16 + 16


# Whether the server names answers' blocks as they are generated (prefix_cache.py, PrefixCache.name_answers):
# with the native kernels and prompts computed with the decoding weights, as on CPUs without AMX.
ANSWERS_NAMED = native.kernels() is not None and not resolve_dense_prefill("auto")


def test_the_next_turn_reuses_a_conversation_turns_answer(http: httpx.Client) -> None:
    """The turn after an answer, which sends it back, finds more than its previous prompt in the
    cache. Where answers are named as generated, every answer is cached, a first turn's too;
    elsewhere a turn is a conversation's when it carries an assistant message, and only its
    answer is cached (recomputed in 32-token pieces, engine.py)."""
    turns = conversation_turns(http, {})
    assert answer_reused(turns, 1) == ANSWERS_NAMED
    assert answer_reused(turns, 2)


def test_the_pages_conversation_header_marks_a_first_turn_too(http: httpx.Client) -> None:
    turns = conversation_turns(http, {"X-Conversation-Id": uuid.uuid4().hex})
    assert answer_reused(turns, 1) and answer_reused(turns, 2)

"""Reasoning models over HTTP: a tiny model whose chat template opens `<think>` (thinking_model.py)
served by one real server. Its thinking comes apart from the answer as `reasoning_content` and
`reasoning`, streamed or not, before tool calls, cut by max_tokens, counted in usage; and earlier
thinking sent back in the history reaches the chat template."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
import thinking_model
from api_support import REQUEST_TIMEOUT_S, SchemaValidator, assert_error, chat_stream_text, post_stream
from server_process import ServerProcess, start_server
from thinking_model import ANSWER, NAME, THOUGHT

MESSAGES = [{"role": "user", "content": "Hi"}]
NOW = {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}}
# "\n", "Let", " me", " think", ".", "</think>": the tokens through the end of the thinking.
THOUGHT_TOKENS = 6


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("thinker") / NAME
    thinking_model.build(path)
    return path


@pytest.fixture(scope="module")
def tokenizer(folder: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


@pytest.fixture(scope="module")
def thinker(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    server: ServerProcess = start_server(
        tmp_path_factory.mktemp("thinker-server") / "server.log",
        CHAT_MODEL_PATH=str(folder),
        CHAT_MODEL_NAME=NAME,
        EMBEDDING_MODEL_PATH="",
    )
    with httpx.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
        yield client
    server.stop()


def chat_body(**extra: Any) -> dict[str, Any]:
    return {"model": NAME, "messages": MESSAGES, "max_tokens": 24, "temperature": 0} | extra


def chat(http: httpx.Client, **extra: Any) -> dict[str, Any]:
    resp = http.post("/v1/chat/completions", json=chat_body(**extra))
    assert resp.status_code == 200, resp.text
    return resp.json()


def streamed(http: httpx.Client, schemas: SchemaValidator, **extra: Any) -> list[dict[str, Any]]:
    stream = post_stream(
        http, "/v1/chat/completions", chat_body(stream=True, stream_options={"include_usage": True}, **extra)
    )
    assert stream.status == 200, stream.raw
    for chunk in stream.chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    return stream.chunks


def deltas(chunks: list[dict[str, Any]], name: str) -> list[str]:
    return [c["delta"][name] for ch in chunks for c in ch["choices"] if c["delta"].get(name)]


def test_the_model_lists_reasoning_among_its_capabilities(thinker: httpx.Client) -> None:
    card = thinker.get(f"/v1/models/{NAME}").json()
    assert {"reasoning", "tools", "chat"} <= set(card["capabilities"]), card


def test_the_thinking_comes_apart_from_the_answer(thinker: httpx.Client, schemas: SchemaValidator) -> None:
    body = chat(thinker)
    schemas.validate("CreateChatCompletionResponse", body)
    choice = body["choices"][0]
    message = choice["message"]
    assert message["content"] == ANSWER
    assert message["reasoning_content"] == message["reasoning"] == THOUGHT
    assert choice["finish_reason"] == "stop"
    usage = body["usage"]
    assert usage["completion_tokens_details"] == {"reasoning_tokens": THOUGHT_TOKENS}
    assert usage["completion_tokens"] > THOUGHT_TOKENS


def test_the_thinking_streams_as_its_own_deltas(thinker: httpx.Client, schemas: SchemaValidator) -> None:
    whole = chat(thinker)
    chunks = streamed(thinker, schemas)
    thought = deltas(chunks, "reasoning_content")
    assert deltas(chunks, "reasoning") == thought
    assert "".join(thought) == THOUGHT
    assert chat_stream_text(chunks) == ANSWER
    # The thinking first, then the answer: no delta carries both or goes back.
    parts = [
        "reasoning" if c["delta"].get("reasoning_content") else "content"
        for ch in chunks
        for c in ch["choices"]
        if c["delta"].get("reasoning_content") or c["delta"].get("content")
    ]
    assert parts == ["reasoning"] * parts.count("reasoning") + ["content"] * parts.count("content")
    assert not any("think>" in text for text in thought + deltas(chunks, "content"))
    assert chunks[-1]["usage"] == whole["usage"]


def test_an_answer_cut_while_thinking_is_all_reasoning(thinker: httpx.Client) -> None:
    choice = chat(thinker, max_tokens=3)["choices"][0]
    assert choice["message"]["content"] is None
    assert choice["message"]["reasoning_content"] == THOUGHT.rsplit(" ", 1)[0]  # "\n", "Let", " me"
    assert choice["finish_reason"] == "length"


@pytest.mark.parametrize("stream", [False, True])
def test_a_tool_call_after_the_thinking(
    thinker: httpx.Client, tokenizer: Any, schemas: SchemaValidator, stream: bool
) -> None:
    # Against the answer's first token, the model calls `now` after thinking (thinking_model.py).
    (first,) = tokenizer.encode("\n\n")
    extra = {"tools": [NOW], "logit_bias": {str(first): -100}}
    if stream:
        chunks = streamed(thinker, schemas, **extra)
        assert "".join(deltas(chunks, "reasoning_content")) == THOUGHT
        assert chat_stream_text(chunks) == ""
        calls = [call for ch in chunks for c in ch["choices"] for call in c["delta"].get("tool_calls") or ()]
        assert [c["function"].get("name") for c in calls if c.get("id")] == ["now"]
        assert "".join(c["function"].get("arguments") or "" for c in calls) == "{}"
        assert [c["finish_reason"] for ch in chunks for c in ch["choices"] if c["finish_reason"]] == [
            "tool_calls"
        ]
        return
    choice = chat(thinker, **extra)["choices"][0]
    assert choice["message"]["reasoning_content"] == THOUGHT
    assert choice["message"]["content"] is None
    assert [(c["function"]["name"], c["function"]["arguments"]) for c in choice["message"]["tool_calls"]] == [
        ("now", "{}")
    ]
    assert choice["finish_reason"] == "tool_calls"


def test_messages_stream_the_thinking_as_a_thinking_block(thinker: httpx.Client) -> None:
    claude = anthropic.Anthropic(base_url=str(thinker.base_url), api_key="unused", max_retries=0)
    with claude.messages.stream(
        model=NAME, max_tokens=24, messages=MESSAGES, extra_body={"temperature": 0}
    ) as stream:
        events = list(stream)
        message = stream.get_final_message()
    deltas = [e.delta.type for e in events if e.type == "content_block_delta"]
    assert deltas == ["thinking_delta"] * deltas.count("thinking_delta") + ["text_delta"] * deltas.count(
        "text_delta"
    )
    assert [(b.type, getattr(b, "thinking", None) or getattr(b, "text", None)) for b in message.content] == [
        ("thinking", THOUGHT),
        ("text", ANSWER),
    ]
    assert message.stop_reason == "end_turn"


def test_responses_carry_the_thinking_as_a_reasoning_item(
    thinker: httpx.Client, schemas: SchemaValidator
) -> None:
    body = {"model": NAME, "input": "Hi", "max_output_tokens": 24, "temperature": 0}
    resp = thinker.post("/v1/responses", json=body)
    assert resp.status_code == 200, resp.text
    schemas.validate("Response", resp.json())
    client = openai.OpenAI(
        base_url=f"{str(thinker.base_url).rstrip('/')}/v1", api_key="unused", max_retries=0
    )
    response = client.responses.create(**body)
    reasoning, message = response.output
    assert reasoning.type == "reasoning" and [c.text for c in reasoning.content or ()] == [THOUGHT]
    assert message.type == "message" and response.output_text == ANSWER
    assert response.usage.output_tokens_details.reasoning_tokens == THOUGHT_TOKENS
    with client.responses.stream(**body) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    thinking = [k for k in kinds if k == "response.reasoning_text.delta"]
    assert thinking and kinds.index(thinking[0]) < kinds.index("response.output_text.delta")
    assert [item.type for item in final.output] == ["reasoning", "message"]
    assert final.output_text == ANSWER


def history(name: str) -> list[dict[str, Any]]:
    """A conversation whose earlier answer carries its thinking under `name`."""
    answer = {"role": "assistant", "content": ANSWER, name: "I thought."}
    return [*MESSAGES, answer, {"role": "user", "content": "And?"}]


@pytest.mark.parametrize("name", ["reasoning_content", "reasoning"])
def test_earlier_thinking_reaches_the_chat_template(thinker: httpx.Client, tokenizer: Any, name: str) -> None:
    resp = thinker.post("/tokenize", json={"model": NAME, "messages": history(name)})
    assert resp.status_code == 200, resp.text
    # The template renders it as Qwen3's does: under the name `reasoning_content`.
    rendered = tokenizer.apply_chat_template(
        history("reasoning_content"), add_generation_prompt=True, tokenize=False
    )
    assert "<think>\nI thought.\n</think>" in rendered
    assert resp.json()["tokens"] == tokenizer.encode(rendered, add_special_tokens=False)
    assert chat(thinker, messages=history(name), max_tokens=1)["choices"][0]["finish_reason"] == "length"


def test_thinking_in_the_history_is_checked(thinker: httpx.Client) -> None:
    on_user = [{"role": "user", "content": "Hi", "reasoning": "No."}]
    resp = thinker.post("/v1/chat/completions", json=chat_body(messages=on_user))
    assert_error(resp, 400, param="messages[0].reasoning")
    both = {"role": "assistant", "content": "Hi", "reasoning_content": "A", "reasoning": "B"}
    resp = thinker.post("/v1/chat/completions", json=chat_body(messages=[*MESSAGES, both]))
    assert_error(resp, 400, param="messages[1].reasoning")

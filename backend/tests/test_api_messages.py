"""Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens) against the real server
and model, through the official `anthropic` SDK: answers, streams and their event order, tool use
and a tool_result round trip, token counts, the prefix cache, and errors as the SDK's own
exceptions. One shared server (conftest.py), few requests, small max_tokens."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import openai
import pytest
from api_support import API_KEY, REQUEST_TIMEOUT_S
from server_process import CHAT_MODEL

GREEDY = {"extra_body": {"temperature": 0}}  # the SDK no longer takes temperature as an argument
HI = [{"role": "user", "content": "Hi"}]
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    },
}
ASK_WEATHER = [{"role": "user", "content": "What's the weather in Paris?"}]


@pytest.fixture(scope="module")
def claude(base_url: str) -> anthropic.Anthropic:
    # No retries: a retried request would hide a failure of the first one.
    return anthropic.Anthropic(base_url=base_url, api_key=API_KEY, max_retries=0, timeout=REQUEST_TIMEOUT_S)


def sse_events(http: httpx.Client, body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A streamed answer's events as sent: (the `event:` name, the JSON data)."""
    events, name = [], None
    with http.stream("POST", "/v1/messages", json=body) as resp:
        assert resp.status_code == 200, resp.read()
        for line in resp.iter_lines():
            if line.startswith("event:"):
                name = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                data = json.loads(line.removeprefix("data:"))
                assert data["type"] == name, (name, data)
                events.append((name, data))
    return events


def assert_documented_order(types: list[str]) -> None:
    """message_start, then each block as start, deltas, stop, then message_delta and message_stop;
    pings anywhere after message_start."""
    types = [t for t in types if t != "ping"]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"], types
    body, i = types[1:-2], 0
    while i < len(body):
        assert body[i] == "content_block_start", types
        i += 1
        while body[i] == "content_block_delta":
            i += 1
        assert body[i] == "content_block_stop", types
        i += 1


def test_create_answers_as_chat_does(claude: anthropic.Anthropic, client: openai.OpenAI) -> None:
    message = claude.messages.create(model=CHAT_MODEL, max_tokens=6, messages=HI, **GREEDY)
    assert message.type == "message" and message.role == "assistant" and message.model == CHAT_MODEL
    [block] = message.content
    assert block.type == "text" and block.text
    chat = client.chat.completions.create(model=CHAT_MODEL, max_tokens=6, messages=HI, temperature=0)
    # The same pipeline: the same prompt, the same greedy answer, the same counts.
    assert block.text == chat.choices[0].message.content
    assert message.stop_reason == {"length": "max_tokens", "stop": "end_turn"}[chat.choices[0].finish_reason]
    assert message.stop_sequence is None
    usage = message.usage
    assert usage.output_tokens == chat.usage.completion_tokens
    assert usage.input_tokens + usage.cache_read_input_tokens == chat.usage.prompt_tokens

    # A stop sequence the answer writes ends it there, and is named.
    word = block.text.split()[1] if len(block.text.split()) > 1 else block.text[1:]
    stopped = claude.messages.create(
        model=CHAT_MODEL, max_tokens=6, messages=HI, stop_sequences=["zzz", word], **GREEDY
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == word
    assert block.text.startswith(stopped.content[0].text) and word not in stopped.content[0].text


def test_a_stream_sends_the_documented_events(http: httpx.Client, claude: anthropic.Anthropic) -> None:
    body = {"model": CHAT_MODEL, "max_tokens": 6, "messages": HI, "temperature": 0, "stream": True}
    events = sse_events(http, body)  # with `Authorization: Bearer`, as OpenAI clients send the key
    types = [name for name, _ in events]
    assert_documented_order(types)
    assert types[1] == "ping"
    start = events[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None and start["usage"]["output_tokens"] == 0
    assert events[2][1]["content_block"] == {"type": "text", "text": ""}
    text = "".join(data["delta"]["text"] for name, data in events if name == "content_block_delta")
    final = events[-2][1]
    assert final["delta"]["stop_reason"] in ("end_turn", "max_tokens")

    # The SDK's stream helper puts the same answer together.
    with claude.messages.stream(model=CHAT_MODEL, max_tokens=6, messages=HI, **GREEDY) as stream:
        message = stream.get_final_message()
    assert message.content[0].text == text
    assert message.usage.output_tokens == final["usage"]["output_tokens"]


def test_tool_use_streams_and_its_result_comes_back(claude: anthropic.Anthropic) -> None:
    with claude.messages.create(
        model=CHAT_MODEL,
        max_tokens=30,
        messages=ASK_WEATHER,
        tools=[WEATHER],
        tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        stream=True,
        **GREEDY,
    ) as stream:
        events = list(stream)
    types = [e.type for e in events]
    assert_documented_order(types)
    starts = [e.content_block for e in events if e.type == "content_block_start"]
    assert [(b.type, b.name) for b in starts] == [("tool_use", "get_weather")]
    partial = "".join(
        e.delta.partial_json
        for e in events
        if e.type == "content_block_delta" and e.delta.type == "input_json_delta"
    )
    call = json.loads(partial)
    assert isinstance(call["city"], str)
    assert [e.delta.stop_reason for e in events if e.type == "message_delta"] == ["tool_use"]

    # The call and its result, sent back: the model answers, and count_tokens counts that input
    # as the answer's usage does.
    conversation = [
        *ASK_WEATHER,
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": starts[0].id, "name": "get_weather", "input": call}],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": starts[0].id, "content": "Sunny, 22 °C"}],
        },
    ]
    answer = claude.messages.create(
        model=CHAT_MODEL, max_tokens=4, messages=conversation, tools=[WEATHER], **GREEDY
    )
    assert answer.stop_reason in ("end_turn", "max_tokens", "tool_use")
    counted = claude.messages.count_tokens(model=CHAT_MODEL, messages=conversation, tools=[WEATHER])
    assert counted.input_tokens == answer.usage.input_tokens + answer.usage.cache_read_input_tokens
    assert (
        counted.input_tokens
        > claude.messages.count_tokens(model=CHAT_MODEL, messages=ASK_WEATHER).input_tokens
    )


def test_a_repeated_long_system_prompt_is_read_from_the_cache(claude: anthropic.Anthropic) -> None:
    system = "You answer questions about the weather in European cities. " * 30
    first, second = (
        claude.messages.create(model=CHAT_MODEL, max_tokens=1, system=system, messages=HI, **GREEDY)
        for _ in range(2)
    )
    whole = first.usage.input_tokens + first.usage.cache_read_input_tokens
    assert second.usage.cache_read_input_tokens > 300
    assert second.usage.input_tokens + second.usage.cache_read_input_tokens == whole
    counted = claude.messages.count_tokens(
        model=CHAT_MODEL, system=[{"type": "text", "text": system}], messages=HI
    )
    assert counted.input_tokens == whole


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        (
            {"messages": [{"role": "user", "content": [{"type": "image", "source": {}}]}]},
            "messages[0].content[0]",
        ),
        ({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}, "tools[0]"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, "thinking"),
        ({"mcp_servers": [{"type": "url", "url": "http://x", "name": "x"}]}, "mcp_servers"),
        ({"container": "c"}, "container"),
        ({"temperature": 1.5}, "temperature"),
        ({"messages": [{"role": "user", "content": [{"type": "text"}]}]}, "messages[0].content[0].text"),
        ({"tool_choice": {"type": "any"}}, "tool_choice"),
        ({"citations_please": True}, "citations_please"),
    ],
)
def test_bad_input_is_a_bad_request_naming_the_field(
    claude: anthropic.Anthropic, extra: dict[str, Any], named: str
) -> None:
    messages = extra.get("messages", HI)
    rest = {name: value for name, value in extra.items() if name != "messages"}
    with pytest.raises(anthropic.BadRequestError) as caught:
        claude.messages.create(model=CHAT_MODEL, max_tokens=1, messages=messages, extra_body=rest)
    assert caught.value.status_code == 400
    assert caught.value.body["type"] == "error"
    assert caught.value.body["error"]["type"] == "invalid_request_error"
    assert named in caught.value.body["error"]["message"]


def test_errors_are_the_sdks_own(claude: anthropic.Anthropic, base_url: str, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="no-such-model", max_tokens=1, messages=HI)
    assert missing.value.body["error"]["type"] == "not_found_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.count_tokens(model="no-such-model", messages=HI)
    wrong = anthropic.Anthropic(base_url=base_url, api_key="wrong", max_retries=0)
    with pytest.raises(anthropic.AuthenticationError) as denied:
        wrong.messages.create(model=CHAT_MODEL, max_tokens=1, messages=HI)
    assert denied.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": denied.value.body["error"]["message"]},
    }
    # Validation errors, outside the SDK's own checks, in the same shape.
    for body in (
        {"model": CHAT_MODEL, "messages": HI},
        {"model": CHAT_MODEL, "max_tokens": "1", "messages": HI},
    ):
        resp = http.post("/v1/messages", json=body)
        assert resp.status_code == 400, resp.text
        error = resp.json()
        assert error["type"] == "error" and error["error"]["type"] == "invalid_request_error"
        assert "max_tokens" in error["error"]["message"]
    # The other routes keep OpenAI's shape.
    assert "type" not in http.post("/v1/chat/completions", json={}).json()


def test_models_and_openapi_list_the_routes(http: httpx.Client) -> None:
    cards = http.get("/v1/models").json()["data"]
    assert "messages" in next(c for c in cards if c["id"] == CHAT_MODEL)["capabilities"]
    spec = http.get("/openapi.json").json()
    for path in ("/v1/messages", "/v1/messages/count_tokens"):
        operation = spec["paths"][path]["post"]
        assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
            "$ref": "#/components/schemas/AnthropicErrorResponse"
        }
    assert "MessagesRequest" in spec["components"]["schemas"]

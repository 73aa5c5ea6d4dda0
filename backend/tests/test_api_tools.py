"""Tool calling with the real model through the official SDK: tools, tool_choice,
parallel_tool_calls, streamed call deltas equal to the non-streamed answer, and tool history."""

from __future__ import annotations

import json
from typing import Any

import httpx
import jsonschema
import openai
import pytest
from api_support import SchemaValidator, assert_error, post_stream
from server_process import CHAT_MODEL

WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 30}, "unit": {"enum": ["celsius", "fahrenheit"]}},
    "required": ["city", "unit"],
    "additionalProperties": False,
}
TOOLS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Current weather in a city",
            "parameters": WEATHER,
        },
    },
    {
        "type": "function",
        "function": {
            "name": "add",
            "description": "Add two integers",
            "parameters": {
                "type": "object",
                "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
                "required": ["a", "b"],
            },
        },
    },
    {"type": "function", "function": {"name": "get_time", "description": "The current time"}},
]
PARAMETERS = {t["function"]["name"]: t["function"].get("parameters", {"type": "object"}) for t in TOOLS}
ASK = [{"role": "user", "content": "What's the weather in Paris?"}]


def past_call(i: int, city: str) -> dict[str, Any]:
    arguments = json.dumps({"city": city, "unit": "celsius"})
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": f"call_{i}",
                "type": "function",
                "function": {"name": "get_weather", "arguments": arguments},
            }
        ],
    }


# Two earlier turns that called the tool: with them, the 135M model calls it by itself ("auto").
TWO_SHOT = [
    {"role": "user", "content": "Weather in Paris?"},
    past_call(1, "Paris"),
    {"role": "user", "content": "Weather in Rome?"},
    past_call(2, "Rome"),
    {"role": "user", "content": "Weather in London?"},
]


def create(client: openai.OpenAI, **extra: Any) -> Any:
    body = {"model": CHAT_MODEL, "messages": ASK, "tools": TOOLS, "max_tokens": 80, "temperature": 0, **extra}
    return client.chat.completions.create(**body)


def streamed_calls(
    client: openai.OpenAI, **extra: Any
) -> tuple[str | None, list[dict[str, Any]], str | None]:
    """Content, calls and finish_reason put together from the stream's deltas, by call index."""
    content: str | None = None
    calls: dict[int, dict[str, Any]] = {}
    finish = None
    for chunk in create(client, stream=True, **extra):
        for choice in chunk.choices:
            delta = choice.delta
            if delta.content:
                content = (content or "") + delta.content
            for piece in delta.tool_calls or ():
                call = calls.setdefault(piece.index, {"id": None, "name": None, "arguments": ""})
                if piece.id is not None:
                    assert call["id"] is None, "a call's id came twice"
                    call["id"] = piece.id
                if piece.function and piece.function.name is not None:
                    assert call["name"] is None, "a call's name came twice"
                    call["name"] = piece.function.name
                if piece.function and piece.function.arguments:
                    call["arguments"] += piece.function.arguments
            finish = choice.finish_reason or finish
    return content, [calls[i] for i in sorted(calls)], finish


def assert_valid_call(name: str, arguments: str) -> None:
    jsonschema.validate(json.loads(arguments), PARAMETERS[name])


def test_required_single_call_validates_and_streams_the_same(client: openai.OpenAI) -> None:
    resp = create(client, tool_choice="required", parallel_tool_calls=False)
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.id.startswith("call_")
    assert_valid_call(call.function.name, call.function.arguments)

    content, calls, finish = streamed_calls(client, tool_choice="required", parallel_tool_calls=False)
    assert finish == "tool_calls" and content is None
    assert [(c["name"], c["arguments"]) for c in calls] == [(call.function.name, call.function.arguments)]
    assert calls[0]["id"].startswith("call_")


def test_named_function_is_the_one_called(client: openai.OpenAI) -> None:
    for name in ("add", "get_weather"):
        resp = create(client, tool_choice={"type": "function", "function": {"name": name}})
        (call,) = resp.choices[0].message.tool_calls
        assert call.function.name == name
        assert_valid_call(name, call.function.arguments)
        assert resp.choices[0].finish_reason == "tool_calls"


def test_function_without_parameters_gets_empty_arguments(client: openai.OpenAI) -> None:
    choice = {"type": "function", "function": {"name": "get_time"}}
    resp = create(client, tool_choice=choice)
    (call,) = resp.choices[0].message.tool_calls
    assert call.function.arguments == "{}"
    _, calls, finish = streamed_calls(client, tool_choice=choice)
    assert [(c["name"], c["arguments"]) for c in calls] == [("get_time", "{}")]
    assert finish == "tool_calls"


def test_parallel_calls_each_validate(client: openai.OpenAI) -> None:
    """parallel_tool_calls (the default) lets the model write several calls; each is valid, even
    when max_tokens cuts the answer after some of them."""
    resp = create(client, tool_choice="required", max_tokens=120)
    choice = resp.choices[0]
    assert choice.message.tool_calls
    for call in choice.message.tool_calls:
        assert_valid_call(call.function.name, call.function.arguments)
    assert choice.finish_reason in ("tool_calls", "length")
    assert len({c.id for c in choice.message.tool_calls}) == len(choice.message.tool_calls)


def tag_tool(value: str) -> dict[str, Any]:
    parameters = {
        "type": "object",
        "properties": {"tag": {"type": "string", "enum": [value]}},
        "required": ["tag"],
        "additionalProperties": False,
    }
    return {
        "type": "function",
        "function": {"name": "tag", "description": "Tag the text", "parameters": parameters},
    }


@pytest.mark.parametrize("value", ["</tool_call>", "<tool_call>"])
def test_an_argument_may_hold_the_call_tags(client: openai.OpenAI, value: str) -> None:
    """A call ends where its JSON object is complete, never at a tag inside one of its strings."""
    body = {"tools": [tag_tool(value)], "tool_choice": {"type": "function", "function": {"name": "tag"}}}
    choice = create(client, **body).choices[0]
    assert choice.message.content is None and choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert json.loads(call.function.arguments) == {"tag": value}
    content, calls, finish = streamed_calls(client, **body)
    assert (content, finish) == (None, "tool_calls")
    assert [(c["name"], c["arguments"]) for c in calls] == [("tag", call.function.arguments)]


@pytest.mark.parametrize("max_tokens", [12, 20, 30, 45])
def test_a_call_cut_by_max_tokens_is_a_call_or_nothing_never_text(
    client: openai.OpenAI, max_tokens: int
) -> None:
    """Cut anywhere, a required call is a call with the arguments it has (as OpenAI's are) or
    nothing where its name was not written: no markup in content, streamed or not."""
    choice = create(client, tool_choice="required", max_tokens=max_tokens).choices[0]
    assert choice.message.content is None
    whole = [(c.function.name, c.function.arguments) for c in choice.message.tool_calls or ()]
    for name, arguments in whole[:-1]:  # all but a last one that may be cut
        assert_valid_call(name, arguments)
    content, calls, finish = streamed_calls(client, tool_choice="required", max_tokens=max_tokens)
    assert content is None and finish == choice.finish_reason
    assert [(c["name"], c["arguments"]) for c in calls] == whole


def test_auto_calls_when_the_model_chooses_to(client: openai.OpenAI) -> None:
    resp = create(client, messages=TWO_SHOT, tool_choice="auto")
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls", choice
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"] == "London"
    content, calls, finish = streamed_calls(client, messages=TWO_SHOT, tool_choice="auto")
    assert (content, finish) == (choice.message.content, "tool_calls")
    assert [(c["name"], c["arguments"]) for c in calls] == [(call.function.name, call.function.arguments)]


def test_auto_may_answer_in_text_and_none_never_calls(client: openai.OpenAI) -> None:
    for tool_choice in ("auto", "none"):
        resp = create(client, messages=[{"role": "user", "content": "Say hello."}], tool_choice=tool_choice)
        choice = resp.choices[0]
        assert choice.message.tool_calls is None
        assert choice.message.content and choice.finish_reason in ("stop", "length")
    resp = create(client, messages=TWO_SHOT, tool_choice="none")
    assert resp.choices[0].message.tool_calls is None


def test_bodies_match_openai_schema(http: httpx.Client, schemas: SchemaValidator) -> None:
    body = {"model": CHAT_MODEL, "messages": ASK, "tools": TOOLS, "tool_choice": "required", "max_tokens": 80}
    resp = http.post("/v1/chat/completions", json={**body, "parallel_tool_calls": False})
    assert resp.status_code == 200, resp.text
    schemas.validate("CreateChatCompletionResponse", resp.json())
    message = resp.json()["choices"][0]["message"]
    assert message["content"] is None and "tool_calls" in message
    stream = post_stream(http, "/v1/chat/completions", {**body, "stream": True})
    for chunk in stream.chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)


def test_tool_results_in_history_are_read(client: openai.OpenAI, http: httpx.Client) -> None:
    """An assistant message with tool_calls and the tool's answer go into the prompt."""
    history = [
        *ASK,
        past_call(1, "Paris"),
        {"role": "tool", "tool_call_id": "call_1", "content": "It is 21 degrees and sunny."},
    ]
    resp = create(client, messages=history, tool_choice="auto", max_tokens=30)
    assert resp.choices[0].finish_reason in ("stop", "length", "tool_calls")
    tokens = http.post("/tokenize", json={"model": CHAT_MODEL, "messages": history, "tools": TOOLS}).json()
    prompt = http.post("/detokenize", json={"model": CHAT_MODEL, "tokens": tokens["tokens"]}).json()["prompt"]
    assert "It is 21 degrees and sunny." in prompt and '"city": "Paris"' in prompt and "get_weather" in prompt
    assert tokens["count"] == resp.usage.prompt_tokens


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice"),
        ({"tools": None, "tool_choice": "required"}, "tool_choice"),
        ({"tools": [TOOLS[0], TOOLS[0]]}, "tools"),
        ({"tool_choice": "required", "response_format": {"type": "json_object"}}, "response_format"),
        (
            {
                "tool_choice": "required",
                "tools": [
                    {
                        "type": "function",
                        "function": {"name": "f", "parameters": {"type": "array", "uniqueItems": True}},
                    }
                ],
            },
            "tools",
        ),
        ({"messages": [*ASK, {"role": "tool", "content": "21 degrees"}]}, "messages[1].tool_call_id"),
        (
            {
                "messages": [
                    *ASK,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "id": "c",
                                "type": "function",
                                "function": {"name": "get_weather", "arguments": "{oops"},
                            }
                        ],
                    },
                ]
            },
            "messages[1].tool_calls[0].function.arguments",
        ),
    ],
)
def test_tool_errors_name_the_field(extra: dict[str, Any], param: str, http: httpx.Client) -> None:
    body = {"model": CHAT_MODEL, "messages": ASK, "tools": TOOLS, "max_tokens": 5, **extra}
    assert_error(http.post("/v1/chat/completions", json=body), 400, param=param)

"""The Responses API (POST /v1/responses and the stored responses) against the real server and
model, through the official SDK: create, stream, parse, a function-call round trip, conversation
state by previous_response_id, GET, DELETE, cancel, and the errors; bodies and events validated
against OpenAI's published schema."""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import openai
import pydantic
import pytest
from api_support import SchemaValidator, assert_error, parse_sse
from server_process import CHAT_MODEL

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Current weather in a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string", "maxLength": 20}},
        "required": ["city"],
        "additionalProperties": False,
    },
    "strict": True,
}


def stored(http: httpx.Client, schemas: SchemaValidator, response_id: str) -> dict[str, Any]:
    """The stored response as GET returns it, checked against OpenAI's schema."""
    resp = http.get(f"/v1/responses/{response_id}")
    assert resp.status_code == 200, resp.text
    body: dict[str, Any] = resp.json()
    schemas.validate("Response", body)
    return body


def test_create_answers_text_and_is_stored(
    client: openai.OpenAI, http: httpx.Client, schemas: SchemaValidator
) -> None:
    response = client.responses.create(
        model=CHAT_MODEL,
        input="What is the capital of France?",
        instructions="Answer in one short sentence.",
        max_output_tokens=4,
        temperature=0,
        metadata={"case": "create"},
        user="tester",
    )
    assert response.id.startswith("resp_")
    assert response.status == "incomplete"  # 4 tokens cannot end a sentence
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text and response.output[0].type == "message"
    assert response.usage is not None and response.usage.output_tokens == 4
    body = stored(http, schemas, response.id)
    assert body["instructions"] == "Answer in one short sentence."
    assert body["metadata"] == {"case": "create"} and body["user"] == "tester"
    assert body["output"][0]["content"][0]["text"] == response.output_text


def test_stream_events_build_the_response(http: httpx.Client, schemas: SchemaValidator) -> None:
    with http.stream(
        "POST",
        "/v1/responses",
        json={"model": CHAT_MODEL, "input": "Say hello.", "max_output_tokens": 6, "stream": True},
    ) as resp:
        assert resp.status_code == 200
        raw = "".join(resp.iter_text())
    data, _ = parse_sse(raw)
    events = [json.loads(d) for d in data]  # no [DONE]: the last event ends the stream
    for event in events:
        schemas.validate("ResponseStreamEvent", event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    types = [e["type"] for e in events]
    assert types[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert types[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.incomplete",
    ]
    text = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    final = events[-1]["response"]
    assert final["output"][0]["content"][0]["text"] == text
    assert stored(http, schemas, final["id"])["output"] == final["output"]


def test_sdk_stream_helper(client: openai.OpenAI) -> None:
    # Greedy, with room to finish: an answer cut by max_output_tokens ends `response.incomplete`,
    # which the SDK's helper (as with OpenAI's own server) does not take for a final response.
    with client.responses.stream(
        model=CHAT_MODEL, input="Say hello.", max_output_tokens=200, temperature=0
    ) as stream:
        deltas = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert final.status == "completed" and final.output_text == deltas != ""


class Person(pydantic.BaseModel):
    name: str
    age: int


def test_parse_into_a_pydantic_model(client: openai.OpenAI) -> None:
    response = client.responses.parse(
        model=CHAT_MODEL, input="Invent a person.", text_format=Person, max_output_tokens=40, temperature=0
    )
    assert response.status == "completed"
    assert isinstance(response.output_parsed, Person)


def test_function_call_round_trip(
    client: openai.OpenAI, http: httpx.Client, schemas: SchemaValidator
) -> None:
    ask = client.responses.create(
        model=CHAT_MODEL,
        input="What's the weather in Paris?",
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        tool_choice="required",
        parallel_tool_calls=False,
        max_output_tokens=40,
        temperature=0,
    )
    assert ask.status == "completed"
    [call] = ask.output
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_") and "city" in json.loads(call.arguments)
    stored(http, schemas, ask.id)
    answer = client.responses.create(
        model=CHAT_MODEL,
        previous_response_id=ask.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"}],
        tools=[WEATHER_TOOL],  # type: ignore[list-item]
        max_output_tokens=8,
        temperature=0,
    )
    assert answer.output_text
    # The same turn with its whole history as items instead of the stored response.
    items: list[Any] = [
        {"role": "user", "content": "What's the weather in Paris?"},
        {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "Sunny, 21 C"},
    ]
    again = client.responses.create(
        model=CHAT_MODEL, input=items, tools=[WEATHER_TOOL], max_output_tokens=8, temperature=0, store=False
    )  # type: ignore[list-item]
    assert again.output_text == answer.output_text
    assert answer.usage is not None and again.usage is not None
    assert again.usage.input_tokens == answer.usage.input_tokens
    assert_error(http.get(f"/v1/responses/{again.id}"), 404, code="response_not_found")


def test_streamed_function_call(http: httpx.Client, schemas: SchemaValidator) -> None:
    body = {
        "model": CHAT_MODEL,
        "input": "Weather in Oslo?",
        "tools": [WEATHER_TOOL],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "max_output_tokens": 40,
        "stream": True,
        "store": False,
    }
    with http.stream("POST", "/v1/responses", json=body) as resp:
        events = [json.loads(d) for d in parse_sse("".join(resp.iter_text()))[0]]
    for event in events:
        schemas.validate("ResponseStreamEvent", event)
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.function_call_arguments.delta")
    [done] = [e for e in events if e["type"] == "response.function_call_arguments.done"]
    assert done["arguments"] == deltas and done["name"] == "get_weather"
    final = events[-1]
    assert final["type"] == "response.completed"
    assert final["response"]["output"][0]["arguments"] == deltas


def test_previous_response_id_keeps_the_conversation(
    client: openai.OpenAI, http: httpx.Client, schemas: SchemaValidator
) -> None:
    cached = []
    previous: str | None = None
    for question in ("My name is Ada.", "What is my name?", "Thank you."):
        turn = client.responses.create(
            model=CHAT_MODEL,
            input=question,
            previous_response_id=previous,  # type: ignore[arg-type]
            max_output_tokens=8,
            temperature=0,
        )
        assert turn.usage is not None
        cached.append(turn.usage.input_tokens_details.cached_tokens)
        previous = turn.id
    assert cached[0] < cached[1] < cached[2], cached
    assert stored(http, schemas, previous)["previous_response_id"] is not None
    deleted = http.delete(f"/v1/responses/{previous}")
    assert deleted.status_code == 200
    assert deleted.json() == {"id": previous, "object": "response", "deleted": True}
    assert_error(http.get(f"/v1/responses/{previous}"), 404, code="response_not_found")
    gone = http.post(
        "/v1/responses", json={"model": CHAT_MODEL, "input": "Hi", "previous_response_id": previous}
    )
    assert_error(gone, 404, param="previous_response_id", code="response_not_found")


def test_cancel_stops_a_running_response(client: openai.OpenAI, http: httpx.Client) -> None:
    with client.responses.create(
        model=CHAT_MODEL, input="Tell me a long story.", max_output_tokens=400, stream=True
    ) as stream:
        events = iter(stream)
        created = next(events)
        assert created.type == "response.created"
        response_id = created.response.id
        cancelled = http.post(f"/v1/responses/{response_id}/cancel")
        assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
        last = list(events)[-1]
    assert last.type == "response.incomplete" and last.response.status == "cancelled"
    assert last.response.usage is not None and last.response.usage.output_tokens < 400
    again = http.post(f"/v1/responses/{response_id}/cancel")
    assert_error(again, 400, code="response_not_running")


@pytest.mark.parametrize(
    ("extra", "param", "code"),
    [
        ({"background": True}, "background", "unsupported_parameter"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_parameter"),
        ({"include": ["reasoning.encrypted_content"]}, "include[0]", "unsupported_parameter"),
        ({"reasoning": {"effort": "high"}}, "reasoning", "unsupported_parameter"),
        ({"input": [{"type": "item_reference", "id": "x"}]}, "input[0]", "invalid_value"),
        ({"input": [{"role": "user", "content": [{"type": "input_image"}]}]}, "input[0].content[0]", None),
        ({"input": []}, "input", None),
        ({"text": {"format": {"type": "yaml"}}}, "text.format", "invalid_value"),
        ({"tool_choice": "required"}, "tool_choice", None),
        ({"max_output_tokens": 10**6}, "input", "context_length_exceeded"),
        ({"temperature": "hot"}, "temperature", "invalid_type"),
        ({"frequency_penalty": 1}, "frequency_penalty", None),
    ],
)
def test_bad_requests_name_the_field(
    http: httpx.Client, extra: dict[str, Any], param: str, code: str | None
) -> None:
    resp = http.post("/v1/responses", json={"model": CHAT_MODEL, "input": "Hi", **extra})
    assert_error(resp, 400, param=param, code=code)
    # What to change is said in this API's terms, never chat's.
    assert not re.search(r"\b(max_tokens|messages|response_format)\b", resp.json()["error"]["message"])


def test_unknown_ids_are_404(http: httpx.Client) -> None:
    for resp in (
        http.get("/v1/responses/resp_unknown"),
        http.delete("/v1/responses/resp_unknown"),
        http.post("/v1/responses/resp_unknown/cancel"),
    ):
        assert_error(resp, 404, code="response_not_found")


def test_models_and_openapi_list_the_route(http: httpx.Client) -> None:
    [chat] = [m for m in http.get("/v1/models").json()["data"] if m["id"] == CHAT_MODEL]
    assert "responses" in chat["capabilities"]
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/v1/responses", "/v1/responses/{response_id}", "/v1/responses/{response_id}/cancel"} <= set(
        paths
    )

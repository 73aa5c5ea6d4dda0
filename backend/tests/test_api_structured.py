"""Structured outputs: `response_format` json_object and json_schema, enforced by grammar.

Every answer that ends by itself parses and validates against its schema, even from the 135M
default model, streamed and not; the SDK's `parse()` helper returns the object.
"""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import jsonschema
import openai
import pytest
from api_support import SchemaValidator, assert_error, chat_stream_text, finish_reasons, post_stream
from pydantic import BaseModel, Field
from server_process import CHAT_MODEL

SCHEMAS: dict[str, dict[str, Any]] = {
    "nested_objects": {
        "type": "object",
        "properties": {
            "name": {"type": "string", "maxLength": 40},
            "address": {
                "type": "object",
                "properties": {
                    "city": {"type": "string", "maxLength": 30},
                    "zip": {"type": "string", "pattern": "^[0-9]{5}$"},
                },
                "required": ["city", "zip"],
                "additionalProperties": False,
            },
        },
        "required": ["name", "address"],
        "additionalProperties": False,
    },
    "array_bounds": {
        "type": "object",
        "properties": {
            "tags": {
                "type": "array",
                "items": {"type": "string", "maxLength": 12},
                "minItems": 2,
                "maxItems": 3,
            }
        },
        "required": ["tags"],
        "additionalProperties": False,
    },
    "enums_and_numbers": {
        "type": "object",
        "properties": {
            "color": {"enum": ["red", "green", "blue"]},
            "score": {"type": "number", "minimum": 0, "maximum": 10},
            "count": {"type": "integer", "minimum": 1, "maximum": 99},
        },
        "required": ["color", "score", "count"],
        "additionalProperties": False,
    },
    "optional_fields": {
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 40},
            "year": {"type": "integer", "minimum": 1900, "maximum": 2100},
            "rating": {"type": "number", "minimum": 1, "maximum": 5},
        },
        "required": ["title"],
        "additionalProperties": False,
    },
    "array_of_objects": {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"id": {"type": "integer", "minimum": 0}, "done": {"type": "boolean"}},
            "required": ["id", "done"],
            "additionalProperties": False,
        },
        "minItems": 1,
        "maxItems": 3,
    },
}
ASK = [{"role": "user", "content": "Describe a person, their city and some tags, as JSON."}]


def json_schema_format(name: str, schema: dict[str, Any], strict: bool = True) -> dict[str, Any]:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": strict}}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_answer_validates_against_schema(
    name: str, client: openai.OpenAI, http: httpx.Client, schemas: SchemaValidator
) -> None:
    schema = SCHEMAS[name]
    body = {"model": CHAT_MODEL, "messages": ASK, "max_tokens": 200, "temperature": 0.8, "seed": 7}
    fmt = json_schema_format(name, schema, strict=name != "optional_fields")
    raw = http.post("/v1/chat/completions", json={**body, "response_format": fmt})
    assert raw.status_code == 200, raw.text
    schemas.validate("CreateChatCompletionResponse", raw.json())
    choice = raw.json()["choices"][0]
    assert choice["finish_reason"] == "stop", choice
    answer = json.loads(choice["message"]["content"])
    jsonschema.validate(answer, schema)

    stream = post_stream(http, "/v1/chat/completions", {**body, "response_format": fmt, "stream": True})
    for chunk in stream.chunks:
        schemas.validate("CreateChatCompletionStreamResponse", chunk)
    assert finish_reasons(stream.chunks) == ["stop"]
    # Same seed, same tokens: the stream is the same answer.
    assert chat_stream_text(stream.chunks) == choice["message"]["content"]


def test_seeded_answers_all_validate(client: openai.OpenAI) -> None:
    """Several sampled answers at once (n=4): each one its own matcher, each valid."""
    schema = SCHEMAS["enums_and_numbers"]
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Pick a color, a score and a count."}],
        response_format=json_schema_format("pick", schema),  # type: ignore[arg-type]
        max_tokens=60,
        temperature=1.0,
        seed=3,
        n=4,
    )
    for choice in resp.choices:
        assert choice.finish_reason == "stop"
        jsonschema.validate(json.loads(choice.message.content or ""), schema)


def test_json_object_mode_gives_an_object(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Give me a JSON object about a cat."}],
        response_format={"type": "json_object"},
        max_tokens=150,
        temperature=0,
    )
    if resp.choices[0].finish_reason == "stop":
        assert isinstance(json.loads(resp.choices[0].message.content or ""), dict)
    else:  # a long free-form object may be cut: then it is a prefix of one
        assert (resp.choices[0].message.content or "").startswith("{")


def test_cut_by_max_tokens_is_length(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=ASK,
        response_format=json_schema_format("person", SCHEMAS["nested_objects"]),  # type: ignore[arg-type]
        max_tokens=5,
        temperature=0,
    )
    assert resp.choices[0].finish_reason == "length"
    assert resp.usage is not None and resp.usage.completion_tokens == 5


class Step(BaseModel):
    explanation: str = Field(max_length=60)
    output: str = Field(max_length=20)


class MathAnswer(BaseModel):
    steps: list[Step] = Field(min_length=1, max_length=2)
    final_answer: Literal["4", "5", "22"]


def test_sdk_parse_returns_the_pydantic_object(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "What is 2+2? Show your steps."}],
        response_format=MathAnswer,
        max_tokens=200,
        temperature=0,
    )
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "stop"
    assert isinstance(message.parsed, MathAnswer)
    assert message.parsed.steps and message.parsed.final_answer in {"4", "5", "22"}


@pytest.mark.parametrize(
    ("schema", "words"),
    [
        ({"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, "uniqueItems"),
        ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "not"),
        ({"type": "strin"}, "strin"),
    ],
)
def test_unenforceable_schema_is_a_400(schema: dict[str, Any], words: str, http: httpx.Client) -> None:
    resp = http.post(
        "/v1/chat/completions",
        json={
            "model": CHAT_MODEL,
            "messages": ASK,
            "max_tokens": 5,
            "response_format": json_schema_format("x", schema),
        },
    )
    assert_error(resp, 400, param="response_format")
    assert words in resp.json()["error"]["message"]


def test_response_format_shape_errors(http: httpx.Client) -> None:
    base = {"model": CHAT_MODEL, "messages": ASK, "max_tokens": 5}
    for fmt in (
        {"type": "json_schema"},  # no json_schema
        {"type": "json_schema", "json_schema": {"schema": {"type": "object"}}},  # no name
        {"type": "xml"},
    ):
        assert_error(
            http.post("/v1/chat/completions", json={**base, "response_format": fmt}),
            400,
            param_prefix="response_format",
        )

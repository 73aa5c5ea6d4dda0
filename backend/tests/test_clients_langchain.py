"""LangChain's ChatOpenAI against the real server and model: invoke, stream, bind_tools,
with_structured_output in both its json_schema and function_calling modes, and the same chat over
the Responses API (use_responses_api=True). A proof that a framework built on the official SDK
works unchanged, not a second test of the API: few requests, short answers."""

from __future__ import annotations

import functools
from typing import Any

import jsonschema
import pytest
from api_support import API_KEY, REQUEST_TIMEOUT_S
from langchain_core.messages import AIMessage, AIMessageChunk
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from pydantic import BaseModel, Field
from server_process import CHAT_MODEL

QUESTION = "What is the capital of France?"


class City(BaseModel):
    """A city and its country."""

    name: str = Field(max_length=20)
    country: str = Field(max_length=20)


@tool
def get_weather(city: str) -> str:
    """Current weather in a city"""
    return f"Sunny in {city}"


WEATHER_ARGS = get_weather.args_schema.model_json_schema()


@pytest.fixture(scope="module")
def chat_model(base_url: str) -> functools.partial[ChatOpenAI]:
    """ChatOpenAI on the test server, greedy; keyword arguments override the defaults."""
    # No retries: a retried request would hide a failure of the first one.
    return functools.partial(
        ChatOpenAI,
        model=CHAT_MODEL,
        base_url=f"{base_url}/v1",
        api_key=API_KEY,
        temperature=0,
        max_tokens=12,
        max_retries=0,
        timeout=REQUEST_TIMEOUT_S,
    )


@pytest.fixture(scope="module")
def invoked(chat_model: functools.partial[ChatOpenAI]) -> AIMessage:
    """The greedy answer to QUESTION through chat completions, which the other routes must match."""
    return chat_model().invoke(QUESTION)


def joined(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    """The chunks added up as LangChain merges them (content, usage, metadata)."""
    total = chunks[0]
    for chunk in chunks[1:]:
        total += chunk
    return total


def test_invoke_answers_with_usage(invoked: AIMessage) -> None:
    assert "Paris" in invoked.text
    assert invoked.response_metadata["finish_reason"] == "stop"
    assert invoked.response_metadata["model_name"] == CHAT_MODEL
    usage = invoked.usage_metadata
    assert usage is not None and 0 < usage["output_tokens"] <= 12
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]


def test_stream_chunks_add_up_to_the_invoked_answer(
    chat_model: functools.partial[ChatOpenAI], invoked: AIMessage
) -> None:
    chunks = list(chat_model(stream_usage=True).stream(QUESTION))
    assert len([c for c in chunks if c.text]) > 1  # streamed, not one block
    total = joined(chunks)
    assert total.text == invoked.text
    assert total.response_metadata["finish_reason"] == "stop"
    assert total.usage_metadata is not None and invoked.usage_metadata is not None
    assert total.usage_metadata["output_tokens"] == invoked.usage_metadata["output_tokens"]
    assert total.usage_metadata["input_tokens"] == invoked.usage_metadata["input_tokens"]


def test_bind_tools_forced_call_has_valid_args(chat_model: functools.partial[ChatOpenAI]) -> None:
    model = chat_model(max_tokens=40).bind_tools([get_weather], tool_choice="get_weather")
    answer = model.invoke("What's the weather in Paris?")
    assert answer.invalid_tool_calls == []
    assert [call["name"] for call in answer.tool_calls] == ["get_weather"]
    call = answer.tool_calls[0]
    jsonschema.validate(call["args"], WEATHER_ARGS)
    assert call["id"]
    assert answer.response_metadata["finish_reason"] == "tool_calls"
    # The tool runs on the args as parsed: the round trip LangChain agents rely on.
    assert get_weather.invoke(call).content.startswith("Sunny in ")


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
def test_with_structured_output_parses_into_the_model(
    chat_model: functools.partial[ChatOpenAI], method: str
) -> None:
    structured = chat_model(max_tokens=40).with_structured_output(City, method=method, include_raw=True)
    result: dict[str, Any] = structured.invoke("Name a city in France.")
    assert result["parsing_error"] is None
    assert isinstance(result["parsed"], City)
    assert result["parsed"].name and result["parsed"].country
    raw: AIMessage = result["raw"]
    if method == "function_calling":
        # Sent as a forced tool call, answered as one.
        assert [call["name"] for call in raw.tool_calls] == ["City"]
    else:
        # Sent as response_format json_schema, answered as JSON text.
        assert raw.tool_calls == []
        assert City.model_validate_json(raw.text) == result["parsed"]


def test_responses_api_invoke_and_stream_match_chat(
    chat_model: functools.partial[ChatOpenAI], invoked: AIMessage
) -> None:
    model = chat_model(use_responses_api=True)
    answer = model.invoke(QUESTION)
    assert answer.text == invoked.text
    assert answer.id is not None and answer.id.startswith("resp_")  # LangChain names it by the response
    assert answer.response_metadata["status"] == "completed"
    assert answer.usage_metadata is not None and invoked.usage_metadata is not None
    assert answer.usage_metadata["output_tokens"] == invoked.usage_metadata["output_tokens"]
    assert answer.usage_metadata["input_tokens"] == invoked.usage_metadata["input_tokens"]
    streamed = joined(list(model.stream(QUESTION)))
    assert streamed.text == invoked.text
    assert streamed.response_metadata["status"] == "completed"
    assert streamed.usage_metadata is not None
    assert streamed.usage_metadata["output_tokens"] == invoked.usage_metadata["output_tokens"]

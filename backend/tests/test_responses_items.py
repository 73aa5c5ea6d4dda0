"""The output items of a Responses answer and the stream events that build them, fed the pieces
the chat AnswerParser gives (thinking, text, call deltas): no server needed for a thinking model."""

from __future__ import annotations

import pytest
from api_support import schema_validator
from pydantic import ValidationError

from app.protocol_responses import ResponsesRequest
from app.serving.responses import OutputItems, input_messages
from app.serving.tools import CallDelta


def test_thinking_text_and_call_become_three_items() -> None:
    items = OutputItems()
    events = items.feed("Let me", "", [])
    events += items.feed(" think.", "It is", [])
    events += items.feed("", " sunny.", [CallDelta(0, "", "call_1", "get_weather")])
    events += items.feed("", "", [CallDelta(0, '{"city": '), CallDelta(0, '"Oslo"}')])
    events += items.close("completed")
    for n, event in enumerate(events):
        schema_validator().validate("ResponseStreamEvent", {**event, "sequence_number": n})
    reasoning, message, call = (item.model_dump() for item in items.items)
    assert reasoning["type"] == "reasoning" and reasoning["content"][0]["text"] == "Let me think."
    assert message["content"][0]["text"] == "It is sunny."
    assert call["call_id"] == "call_1" and call["arguments"] == '{"city": "Oslo"}'
    assert all(item.status == "completed" for item in items.items)
    added = [e["output_index"] for e in events if e["type"] == "response.output_item.added"]
    done = [e["output_index"] for e in events if e["type"] == "response.output_item.done"]
    assert added == done == [0, 1, 2]
    history = items.assistant_message()
    assert history.reasoning_content == "Let me think." and history.content == "It is sunny."
    assert history.tool_calls is not None and history.tool_calls[0].id == "call_1"


def test_reasoning_item_joins_the_assistant_turn_after_it() -> None:
    request = ResponsesRequest.model_validate(
        {
            "model": "m",
            "input": [
                {"role": "user", "content": "Hi"},
                {
                    "type": "reasoning",
                    "summary": [],
                    "content": [{"type": "reasoning_text", "text": "Greet."}],
                },
                {
                    "type": "message",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": "Hello"}],
                },
                {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "ok"},
            ],
        }
    )
    user, assistant, tool = input_messages(request.input)
    assert user.content == "Hi" and tool.tool_call_id == "c1" and tool.content == "ok"
    assert assistant.reasoning_content == "Greet." and assistant.content == "Hello"
    assert assistant.tool_calls is not None and assistant.tool_calls[0].function.name == "f"


def test_a_text_format_that_is_no_object_is_refused_not_a_crash() -> None:
    # Found by the fuzzed requests: {"text": {"format": "abc"}} was a 500 (AttributeError).
    with pytest.raises(ValidationError, match=r"text\.format type must be"):
        ResponsesRequest.model_validate({"model": "m", "input": "x", "text": {"format": "abc"}})


def test_a_tool_that_is_no_object_is_refused_not_a_crash() -> None:
    # Found by the fuzzed requests too: {"tools": [[1]]} was a 500 (AttributeError).
    with pytest.raises(ValidationError, match=r"tools\.0"):
        ResponsesRequest.model_validate({"model": "m", "input": "x", "tools": [[1]]})

"""Grammars for structured outputs and forced tool calls, in llguidance's Lark syntax.

The engine compiles and enforces them (engine/grammar.py); this module only says what the answer
must look like: a JSON value for `response_format`, or `<tool_call>` blocks holding a named
function's arguments for `tool_choice` "required" or a named function.
"""

from __future__ import annotations

import json
from typing import Any

from ..protocol import ChatCompletionTool, JsonSchemaObject

# JSON as json.dumps writes it: one space after ':' and ','. A small model left free to choose
# its whitespace can emit newlines until max_tokens; a schema's own "x-guidance" overrides this.
JSON_OPTIONS = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}
CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
ANY_OBJECT: JsonSchemaObject = {"type": "object"}
NO_ARGUMENTS: JsonSchemaObject = {"type": "object", "properties": {}, "additionalProperties": False}


def _json(schema: JsonSchemaObject) -> str:
    """A Lark expression for one JSON value valid against `schema`."""
    own = schema.get("x-guidance")
    options = {**JSON_OPTIONS, **own} if isinstance(own, dict) else JSON_OPTIONS
    return "%json " + json.dumps({**schema, "x-guidance": options})


def json_grammar(schema: JsonSchemaObject | None) -> str:
    """The answer is one JSON value: any object when there is no schema (json_object mode)."""
    return f"start: {_json(schema if schema is not None else ANY_OBJECT)}\n"


def call_schema(tool: ChatCompletionTool) -> dict[str, Any]:
    """One call as the model writes it: {"name": ..., "arguments": {...}}, name first.

    The parameters' definitions move to the root, where their "#/$defs/..." references point."""
    parameters = dict(tool.function.parameters if tool.function.parameters is not None else NO_ARGUMENTS)
    definitions = {key: parameters.pop(key) for key in ("$defs", "definitions") if key in parameters}
    return {
        "type": "object",
        "properties": {"name": {"const": tool.function.name}, "arguments": parameters},
        "required": ["name", "arguments"],
        "additionalProperties": False,
        **definitions,
    }


def tool_calls_grammar(tools: list[ChatCompletionTool], several: bool) -> str:
    """One `<tool_call>` block (or several, one per line) calling one of `tools`."""
    rules = [f"fn{i}: {_json(call_schema(tool))}" for i, tool in enumerate(tools)]
    functions = " | ".join(f"fn{i}" for i in range(len(tools)))
    start = 'start: call ("\\n" call)*' if several else "start: call"
    call = f"call: {json.dumps(CALL_OPEN + chr(10))} ({functions}) {json.dumps(chr(10) + CALL_CLOSE)}"
    return "\n".join([start, call, *rules]) + "\n"

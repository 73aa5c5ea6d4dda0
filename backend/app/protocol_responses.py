"""Request and response bodies of OpenAI's Responses API (POST /v1/responses), as pydantic models.

Kept apart from protocol.py (chat, completions, embeddings), whose strictness it shares: unknown
fields are refused, and fields of OpenAI's schema that this server does not implement are declared
so they parse, then refused with a 400 naming them (serving/responses.py).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, SerializerFunctionWrapHandler, Tag, model_serializer

from .protocol import JsonSchemaObject, KeepAlive, Request, Response, StreamOptions, Temperature, Text

# ---- input items ------------------------------------------------------------------------------


class InputTextContent(Request):
    type: Literal["input_text", "output_text"]  # an assistant message sent back holds output_text
    text: Text
    annotations: list[Any] | None = None
    logprobs: list[Any] | None = None


class OtherInputContent(Request):
    """Images, files, audio, refusals: declared so they parse; refused with a 400 naming them."""

    model_config = ConfigDict(extra="allow")
    type: Literal["input_image", "input_file", "input_audio", "refusal"]


def _content_tag(value: Any) -> str:
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return "Text" if kind in ("input_text", "output_text") else "Other"


InputContent = Annotated[
    Annotated[InputTextContent, Tag("Text")] | Annotated[OtherInputContent, Tag("Other")],
    Discriminator(_content_tag),
]


class InputMessage(Request):
    type: Literal["message"] = "message"
    role: Literal["user", "system", "developer", "assistant"]
    content: Text | list[InputContent]
    id: str | None = None
    status: str | None = None


class FunctionCallItem(Request):
    """A call the model made earlier, sent back with the history."""

    type: Literal["function_call"]
    call_id: str
    name: str
    arguments: str
    id: str | None = None
    status: str | None = None


class FunctionCallOutputItem(Request):
    """What the client's function answered to call `call_id`."""

    type: Literal["function_call_output"]
    call_id: str
    output: Text | list[InputContent]
    id: str | None = None
    status: str | None = None


class ReasoningTextContent(Request):
    type: Literal["reasoning_text"]
    text: Text


class ReasoningInputItem(Request):
    """An earlier answer's thinking, sent back with the history."""

    type: Literal["reasoning"]
    id: str | None = None
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningTextContent] | None = None
    encrypted_content: str | None = None
    status: str | None = None


_ITEMS = {
    "message": "Message",
    "function_call": "FunctionCall",
    "function_call_output": "FunctionCallOutput",
    "reasoning": "Reasoning",
}


def _item_tag(value: Any) -> str | None:
    # Capitalised tags are dropped from an error's path (core/errors.py): `input[0].call_id`.
    kind = value.get("type", "message") if isinstance(value, dict) else getattr(value, "type", None)
    return _ITEMS.get(kind) if isinstance(kind, str) else None


InputItem = Annotated[
    Annotated[InputMessage, Tag("Message")]
    | Annotated[FunctionCallItem, Tag("FunctionCall")]
    | Annotated[FunctionCallOutputItem, Tag("FunctionCallOutput")]
    | Annotated[ReasoningInputItem, Tag("Reasoning")],
    Discriminator(
        _item_tag,
        custom_error_type="invalid_value",
        custom_error_message="input item type must be 'message', 'function_call', "
        "'function_call_output' or 'reasoning' (this server has no built-in tools or item references)",
    ),
]

# ---- tools and formats ------------------------------------------------------------------------


class FunctionTool(Request):
    type: Literal["function"]
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: JsonSchemaObject | None = None
    strict: bool | None = None


class BuiltinTool(Request):
    """web_search, file_search, code_interpreter, …: declared so they parse; refused by name."""

    model_config = ConfigDict(extra="allow")
    type: str


Tool = Annotated[
    Annotated[FunctionTool, Tag("Function")] | Annotated[BuiltinTool, Tag("Builtin")],
    Discriminator(
        lambda v: (
            "Function"
            if (v.get("type") if isinstance(v, dict) else getattr(v, "type", None)) == "function"
            else "Builtin"
        )
    ),
]


class ToolChoiceFunction(Request):
    type: Literal["function"]
    name: str


class TextFormatText(Request):
    type: Literal["text"]


class TextFormatJsonObject(Request):
    type: Literal["json_object"]


class TextFormatJsonSchema(Request):
    type: Literal["json_schema"]
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    schema_: Annotated[JsonSchemaObject, Field(alias="schema")]
    description: str | None = None
    strict: bool | None = None


_FORMATS = {"text": "Text", "json_object": "JsonObject", "json_schema": "JsonSchema"}

TextFormat = Annotated[
    Annotated[TextFormatText, Tag("Text")]
    | Annotated[TextFormatJsonObject, Tag("JsonObject")]
    | Annotated[TextFormatJsonSchema, Tag("JsonSchema")],
    Discriminator(
        # Any other JSON value (a string, a list) has no type: refused as invalid, not a 500.
        lambda v: _FORMATS.get(v.get("type") if isinstance(v, dict) else getattr(v, "type", None)),  # type: ignore[arg-type]
        custom_error_type="invalid_value",
        custom_error_message="text.format type must be 'text', 'json_object' or 'json_schema'",
    ),
]


class TextParam(Request):
    format: TextFormat | None = None
    verbosity: str | None = None  # refused when set


# ---- the request ------------------------------------------------------------------------------


class ResponsesRequest(Request):
    model: Text
    input: Text | Annotated[list[InputItem], Field(min_length=1)]
    instructions: Text | None = None
    previous_response_id: str | None = None
    max_output_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    tools: list[Tool] | None = None
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction | None = None
    parallel_tool_calls: bool | None = None
    text: TextParam | None = None
    metadata: dict[str, str] | None = None
    user: str | None = None
    keep_alive: KeepAlive = None
    store: bool = True
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    # Accepted: hints or bookkeeping that change nothing about the answer.
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    truncation: Literal["disabled"] | None = None
    max_tool_calls: int | None = None  # a cap on built-in tool calls, of which there are none
    # Declared so they parse; refused with a 400 naming them when set.
    background: bool | None = None
    include: list[str] | None = None
    reasoning: Any = None
    conversation: Any = None
    prompt: Any = None
    top_logprobs: int | None = None


# ---- the response -----------------------------------------------------------------------------


class OutputText(Response):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list[Any] = Field(default_factory=list)
    logprobs: list[Any] = Field(default_factory=list)


class OutputMessage(Response):
    type: Literal["message"] = "message"
    id: str
    role: Literal["assistant"] = "assistant"
    status: Literal["in_progress", "completed", "incomplete"]
    content: list[OutputText]


class OutputFunctionCall(Response):
    type: Literal["function_call"] = "function_call"
    id: str
    call_id: str
    name: str
    arguments: str
    status: Literal["in_progress", "completed", "incomplete"]


class ReasoningText(Response):
    type: Literal["reasoning_text"] = "reasoning_text"
    text: str


class OutputReasoning(Response):
    type: Literal["reasoning"] = "reasoning"
    id: str
    summary: list[Any] = Field(default_factory=list)
    content: list[ReasoningText]
    status: Literal["in_progress", "completed", "incomplete"]


OutputItem = OutputMessage | OutputFunctionCall | OutputReasoning


class InputTokensDetails(Response):
    cached_tokens: int
    cache_write_tokens: int = 0


class OutputTokensDetails(Response):
    reasoning_tokens: int


class ResponseUsage(Response):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails
    total_tokens: int


class IncompleteDetails(Response):
    reason: Literal["max_output_tokens"]


class ResponseError(Response):
    code: str
    message: str


ResponseStatus = Literal["completed", "failed", "in_progress", "cancelled", "incomplete"]


class ResponseObject(Response):
    """The response object: what POST answers, GET returns and the stream's events carry."""

    id: str
    object: Literal["response"] = "response"
    created_at: int
    completed_at: int | None = None
    status: ResponseStatus
    error: ResponseError | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None
    model: str
    output: list[OutputItem]
    parallel_tool_calls: bool
    previous_response_id: str | None
    max_output_tokens: int | None
    metadata: dict[str, str]
    temperature: float | None
    top_p: float | None
    tools: list[FunctionTool]
    tool_choice: Literal["none", "auto", "required"] | ToolChoiceFunction
    text: dict[str, Any]
    store: bool
    truncation: Literal["disabled"] = "disabled"
    usage: ResponseUsage | None = None
    user: str | None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # OpenAI's schema has these an object or a string when present, never null: `usage` is
        # there once the answer has ended.
        body: dict[str, Any] = handler(self)
        return {k: v for k, v in body.items() if v is not None or k not in ("usage", "user")}


class DeletedResponse(Response):
    id: str
    object: Literal["response"] = "response"
    deleted: Literal[True] = True

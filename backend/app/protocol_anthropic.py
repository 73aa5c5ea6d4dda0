"""Request and response bodies of Anthropic's Messages API (POST /v1/messages and
/v1/messages/count_tokens), field by field, as pydantic models.

Requests forbid unknown fields, as protocol.py's do. Fields and blocks of Anthropic's schema that
this server does not implement (images, server tools, `thinking`, `container`, …) are declared so
they parse, and `serving.messages_input` refuses them with a 400 naming them: never ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Discriminator, Field, Tag

from .protocol import JsonSchemaObject, KeepAlive, Request, Response, Text


def _tagged(tags: dict[str | None, str], default: str | None = None) -> Any:
    """A discriminator on `type`. The tags are capitalised so that an error's location reads
    `messages[0].content[1].text`, the tag left out as a union branch (core/errors.py)."""

    def tag(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
        if kind is not None and not isinstance(kind, str):
            return None
        return tags.get(kind, default)

    return Discriminator(
        tag,
        custom_error_type="invalid_value",
        custom_error_message=f"type must be one of {', '.join(repr(t) for t in tags if t)}",
    )


# ---- content blocks ----------------------------------------------------------------------


class TextBlockParam(Request):
    type: Literal["text"]
    text: Text
    cache_control: Any = None  # a hint: the prefix cache reuses every prompt's cached prefix


class OtherBlockParam(Request):
    """Images, documents, server tool results…: declared so they parse; refused with a 400."""

    model_config = ConfigDict(extra="allow")
    type: str


class ToolUseBlockParam(Request):
    type: Literal["tool_use"]
    id: str
    name: str
    input: dict[str, Any]
    cache_control: Any = None


ResultBlockParam = Annotated[
    Annotated[TextBlockParam, Tag("Text")] | Annotated[OtherBlockParam, Tag("Other")],
    _tagged({"text": "Text"}, default="Other"),
]


class ToolResultBlockParam(Request):
    type: Literal["tool_result"]
    tool_use_id: str
    content: Text | list[ResultBlockParam] | None = None
    is_error: bool | None = None
    cache_control: Any = None


class ThinkingBlockParam(Request):
    """An earlier answer's thinking, sent back in an assistant message."""

    type: Literal["thinking"]
    thinking: Text
    signature: str | None = None


ContentBlockParam = Annotated[
    Annotated[TextBlockParam, Tag("Text")]
    | Annotated[ToolUseBlockParam, Tag("ToolUse")]
    | Annotated[ToolResultBlockParam, Tag("ToolResult")]
    | Annotated[ThinkingBlockParam, Tag("Thinking")]
    | Annotated[OtherBlockParam, Tag("Other")],
    _tagged(
        {"text": "Text", "tool_use": "ToolUse", "tool_result": "ToolResult", "thinking": "Thinking"},
        default="Other",
    ),
]


class MessageParam(Request):
    role: Literal["user", "assistant"]
    content: Text | list[ContentBlockParam]


# ---- tools -------------------------------------------------------------------------------


class ToolParam(Request):
    """A client tool: the model answers with a tool_use block whose input fits input_schema."""

    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    input_schema: JsonSchemaObject
    type: Literal["custom"] | None = None
    cache_control: Any = None


class ServerToolParam(Request):
    """Anthropic's server tools (web search, code execution, …): declared so they parse; refused."""

    model_config = ConfigDict(extra="allow")
    type: str


ToolUnion = Annotated[
    Annotated[ToolParam, Tag("Custom")] | Annotated[ServerToolParam, Tag("Server")],
    _tagged({None: "Custom", "custom": "Custom"}, default="Server"),
]


class ToolChoiceAuto(Request):
    type: Literal["auto"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceAny(Request):
    type: Literal["any"]
    disable_parallel_tool_use: bool | None = None


class ToolChoiceTool(Request):
    type: Literal["tool"]
    name: str
    disable_parallel_tool_use: bool | None = None


class ToolChoiceNone(Request):
    type: Literal["none"]


ToolChoice = Annotated[
    Annotated[ToolChoiceAuto, Tag("Auto")]
    | Annotated[ToolChoiceAny, Tag("Any")]
    | Annotated[ToolChoiceTool, Tag("Tool")]
    | Annotated[ToolChoiceNone, Tag("None")],
    _tagged({"auto": "Auto", "any": "Any", "tool": "Tool", "none": "None"}),
]


# ---- requests ----------------------------------------------------------------------------


class Metadata(Request):
    user_id: str | None = None


class MessagesInput(Request):
    """What makes the prompt: the fields count_tokens and create share."""

    model: Text
    messages: Annotated[list[MessageParam], Field(min_length=1)]
    system: Text | list[TextBlockParam] | None = None
    tools: list[ToolUnion] | None = None
    tool_choice: ToolChoice | None = None
    # Declared so they parse; refused with a 400 when set.
    thinking: Any = None
    mcp_servers: Any = None
    context_management: Any = None


class MessagesRequest(MessagesInput):
    max_tokens: Annotated[int, Field(ge=1)]
    # Anthropic sets no limit; each stop string is looked for after every token, so some is kept.
    stop_sequences: Annotated[list[Text], Field(max_length=16)] | None = None
    temperature: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    top_k: Annotated[int, Field(ge=0)] | None = None
    stream: bool = False
    # Accepted: bookkeeping and hints that change nothing about the answer.
    metadata: Metadata | None = None
    service_tier: str | None = None
    # Declared so it parses; refused with a 400 when set.
    container: Any = None
    keep_alive: KeepAlive = None


class CountTokensRequest(MessagesInput):
    pass


# ---- responses ---------------------------------------------------------------------------

StopReason = Literal["end_turn", "max_tokens", "stop_sequence", "tool_use"]


class TextBlock(Response):
    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(Response):
    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str = ""  # no signature: nothing here checks the thinking sent back


class ToolUseBlock(Response):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any]


ContentBlock = TextBlock | ThinkingBlock | ToolUseBlock


class Usage(Response):
    """As Anthropic counts: input_tokens are the prompt tokens not read from the cache, so the
    whole prompt is input_tokens + cache_read_input_tokens (+ cache_creation_input_tokens, always 0:
    the prefix cache keeps every prompt, at no extra cost)."""

    input_tokens: int
    output_tokens: int
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0


class Message(Response):
    id: str
    type: Literal["message"] = "message"
    role: Literal["assistant"] = "assistant"
    model: str
    content: list[ContentBlock]
    stop_reason: StopReason | None
    stop_sequence: str | None
    usage: Usage


class CountTokensResponse(Response):
    input_tokens: int


class AnthropicErrorDetail(Response):
    type: str
    message: str


class AnthropicErrorResponse(Response):
    type: Literal["error"] = "error"
    error: AnthropicErrorDetail


# ---- stream events -----------------------------------------------------------------------


class MessageStartEvent(Response):
    type: Literal["message_start"] = "message_start"
    message: Message


class PingEvent(Response):
    type: Literal["ping"] = "ping"


class ContentBlockStartEvent(Response):
    type: Literal["content_block_start"] = "content_block_start"
    index: int
    content_block: ContentBlock


class TextDelta(Response):
    type: Literal["text_delta"] = "text_delta"
    text: str


class ThinkingDelta(Response):
    type: Literal["thinking_delta"] = "thinking_delta"
    thinking: str


class InputJSONDelta(Response):
    type: Literal["input_json_delta"] = "input_json_delta"
    partial_json: str


class ContentBlockDeltaEvent(Response):
    type: Literal["content_block_delta"] = "content_block_delta"
    index: int
    delta: TextDelta | ThinkingDelta | InputJSONDelta


class ContentBlockStopEvent(Response):
    type: Literal["content_block_stop"] = "content_block_stop"
    index: int


class MessageDelta(Response):
    stop_reason: StopReason | None
    stop_sequence: str | None


class MessageDeltaEvent(Response):
    type: Literal["message_delta"] = "message_delta"
    delta: MessageDelta
    usage: Usage  # the whole answer's, as in the final Message


class MessageStopEvent(Response):
    type: Literal["message_stop"] = "message_stop"


StreamEvent = (
    MessageStartEvent
    | PingEvent
    | ContentBlockStartEvent
    | ContentBlockDeltaEvent
    | ContentBlockStopEvent
    | MessageDeltaEvent
    | MessageStopEvent
    | AnthropicErrorResponse  # an error after the stream started
)

"""Request and response bodies of the OpenAI API, field by field, as pydantic models.

Requests forbid unknown fields (OpenAI answers those with a 400 too). Fields of OpenAI's schema
that this server does not implement are declared, so they parse, and `serving.unsupported` refuses
any non-default value with a 400 naming the parameter: never silently ignored.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
)

FinishReason = Literal["stop", "length", "tool_calls"]


def _encodable(value: str) -> str:
    # JSON may carry lone UTF-16 surrogates ("\\ud83d"); no tokenizer can take them.
    try:
        value.encode()
    except UnicodeEncodeError as exc:
        raise ValueError("the text holds an unpaired UTF-16 surrogate; send valid Unicode") from exc
    return value


Text = Annotated[str, AfterValidator(_encodable)]


class Request(BaseModel):
    # Strict, as OpenAI is: "max_tokens": "1" or "stream": "no" is refused, not coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


class Response(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---- errors ------------------------------------------------------------------------------


class ErrorBody(Response):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(Response):
    error: ErrorBody


# ---- models ------------------------------------------------------------------------------


class ModelCard(Response):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "local"
    # Extensions: what the model is for, and its context length, for clients choosing one.
    # "continue_final_message": chat honours that request field (clients may offer Continue).
    # "responses": POST /v1/responses serves the model too; "messages": Anthropic's Messages API
    # (POST /v1/messages) too. "tools": chat takes OpenAI tools (every chat model: a template that
    # renders none gets a generic tool prompt). "reasoning", once loaded: its template thinks, and
    # answers carry the thinking apart (`reasoning_content`).
    capabilities: list[
        Literal[
            "chat",
            "completions",
            "responses",
            "messages",
            "embeddings",
            "continue_final_message",
            "tools",
            "reasoning",
        ]
    ]
    max_model_len: int | None = None
    # Extensions for a model picker (Ollama's and llama-server's router mode show the same): its
    # state, what it is, its weights on disk, its parameter count and quantisation where known,
    # its memory once loaded, a load's progress (0..1) and why it failed.
    state: Literal["unloaded", "loading", "loaded", "failed"] = "loaded"
    kind: Literal["chat", "embedding"] = "chat"
    size_bytes: int = 0
    parameters: int | None = None
    quantization: str | None = None
    memory_bytes: int | None = None
    progress: float | None = None
    error: str | None = None


class ModelList(Response):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ModelUnloadRequest(Request):
    """POST /models/unload (llama-server's router mode names it so)."""

    model: Text


class ModelLoadRequest(ModelUnloadRequest):
    """POST /models/load; with `stream`, Server-Sent Events of its progress."""

    stream: bool = False


class ModelLoadEvent(Response):
    """One event of a streamed load: the state now and the share of the load done (0..1)."""

    model: str
    state: Literal["unloaded", "loading", "loaded", "failed"]
    progress: float
    error: str | None = None


# ---- shared sampling fields ----------------------------------------------------------------


class StreamOptions(Request):
    include_usage: bool | None = None
    include_obfuscation: bool | None = None


Temperature = Annotated[float, Field(ge=0.0, le=2.0)]
# Ollama's keep_alive: how long the model stays loaded once idle after this request ("5m",
# seconds, 0: unload it now, -1: keep it); a model loaded at start-up stays regardless.
KeepAlive = str | int | float | None
Penalty = Annotated[float, Field(ge=-2.0, le=2.0)]


class SamplingRequest(Request):
    """Fields shared by chat and text completions, OpenAI's and the usual extensions."""

    model: Text
    temperature: Temperature | None = None
    top_p: Annotated[float, Field(ge=0.0, le=1.0)] | None = None
    n: Annotated[int, Field(ge=1, le=16)] | None = 1
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    stop: Text | Annotated[list[Text], Field(max_length=4)] | None = None
    seed: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    presence_penalty: Penalty | None = None
    frequency_penalty: Penalty | None = None
    logit_bias: dict[str, Annotated[float, Field(ge=-100, le=100)]] | None = None
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    user: str | None = None
    # Extensions, as vLLM names them.
    top_k: Annotated[int, Field(ge=-1)] | None = None
    repetition_penalty: Annotated[float, Field(gt=0.0, le=10.0)] | None = None
    ignore_eos: bool = False
    keep_alive: KeepAlive = None

    def requested_max_tokens(self) -> int | None:
        """The cap on generated tokens the client set, if any (the endpoint has a default)."""
        return self.max_tokens


# ---- chat completions ---------------------------------------------------------------------


class TextContentPart(Request):
    type: Literal["text"]
    text: Text
    prompt_cache_breakpoint: Any = None


class OtherContentPart(Request):
    """Images, audio and files: declared so they parse; chat refuses them with a 400 naming them."""

    model_config = ConfigDict(extra="allow")
    type: Literal["image_url", "input_audio", "file", "refusal"]


ContentPart = TextContentPart | OtherContentPart


class FunctionCall(Request):
    name: str
    arguments: str  # JSON text, as the model wrote it


class ChatCompletionMessageToolCall(Request):
    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: Text | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None  # assistant
    tool_call_id: str | None = None  # tool: the call this message answers
    # An earlier answer's thinking (assistant), under either name servers send it with.
    reasoning_content: Text | None = None
    reasoning: Text | None = None
    # Assistant-message fields this server cannot honour; refused when set.
    refusal: str | None = None
    function_call: Any = None
    audio: Any = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content if isinstance(part, TextContentPart))
        return self.content or ""

    def reasoning_text(self) -> str | None:
        return self.reasoning_content if self.reasoning_content is not None else self.reasoning


# ---- structured outputs and tools ----------------------------------------------------------

JsonSchemaObject = dict[str, Any]


class ResponseFormatText(Request):
    type: Literal["text"]


class ResponseFormatJsonObject(Request):
    type: Literal["json_object"]


class JSONSchema(Request):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    schema_: Annotated[JsonSchemaObject | None, Field(alias="schema")] = None
    strict: bool | None = None


class ResponseFormatJsonSchema(Request):
    type: Literal["json_schema"]
    json_schema: JSONSchema


_FORMATS = {"text": "Text", "json_object": "JsonObject", "json_schema": "JsonSchema"}


def _format_tag(value: Any) -> str | None:
    # Capitalised tags: an error's path then reads `response_format.json_schema.name`, the tag
    # left out as a union branch (core/errors.py), not `response_format.json_schema.json_schema`.
    kind = value.get("type") if isinstance(value, dict) else getattr(value, "type", None)
    return _FORMATS.get(kind) if isinstance(kind, str) else None


ResponseFormat = Annotated[
    Annotated[ResponseFormatText, Tag("Text")]
    | Annotated[ResponseFormatJsonObject, Tag("JsonObject")]
    | Annotated[ResponseFormatJsonSchema, Tag("JsonSchema")],
    Discriminator(
        _format_tag,
        custom_error_type="invalid_value",
        custom_error_message="response_format type must be 'text', 'json_object' or 'json_schema'",
    ),
]


class FunctionDefinition(Request):
    name: Annotated[str, Field(pattern=r"^[a-zA-Z0-9_-]{1,64}$")]
    description: str | None = None
    parameters: JsonSchemaObject | None = None
    strict: bool | None = None


class ChatCompletionTool(Request):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(Request):
    name: str


class ChatCompletionNamedToolChoice(Request):
    type: Literal["function"]
    function: FunctionName


ToolChoice = Literal["none", "auto", "required"] | ChatCompletionNamedToolChoice


class ChatCompletionRequest(SamplingRequest):
    messages: Annotated[list[ChatMessage], Field(min_length=1)]
    # OpenAI's newer name for max_tokens; it wins when both are set.
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    logprobs: bool | None = False
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    response_format: ResponseFormat | None = None
    tools: list[ChatCompletionTool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    # Accepted: hints or bookkeeping that change nothing about the answer.
    metadata: dict[str, str] | None = None
    store: bool | None = None
    service_tier: str | None = None
    safety_identifier: str | None = None
    prompt_cache_key: str | None = None
    prompt_cache_retention: str | None = None
    prompt_cache_options: Any = None
    # Declared so they parse; refused with a 400 when set.
    modalities: list[str] | None = None
    functions: list[Any] | None = None
    function_call: Any = None
    audio: Any = None
    prediction: Any = None
    web_search_options: Any = None
    reasoning_effort: str | None = None
    verbosity: str | None = None
    moderation: Any = None
    # Extensions, as vLLM names them: continue_final_message with add_generation_prompt false
    # leaves the final assistant message open, so the answer carries on from its last word.
    add_generation_prompt: bool = True
    continue_final_message: bool = False

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class ChatCompletionTopLogprob(Response):
    token: str
    logprob: float
    bytes: list[int] | None


class ChatCompletionTokenLogprob(ChatCompletionTopLogprob):
    top_logprobs: list[ChatCompletionTopLogprob]


class ChoiceLogprobs(Response):
    content: list[ChatCompletionTokenLogprob] | None
    refusal: list[ChatCompletionTokenLogprob] | None = None


class ResponseFunctionCall(Response):
    name: str
    arguments: str


class ResponseToolCall(Response):
    id: str
    type: Literal["function"] = "function"
    function: ResponseFunctionCall


def _omit_none(
    handler: SerializerFunctionWrapHandler, value: BaseModel, keep: tuple[str, ...]
) -> dict[str, Any]:
    return {k: v for k, v in handler(value).items() if v is not None or k in keep}


class ChatCompletionResponseMessage(Response):
    role: Literal["assistant"] = "assistant"
    content: str | None
    refusal: str | None = None
    tool_calls: list[ResponseToolCall] | None = None
    # Extensions: a reasoning model's thinking, apart from the answer, under both names in use.
    reasoning_content: str | None = None
    reasoning: str | None = None

    @model_serializer(mode="wrap")
    def _omit_no_calls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # `content` and `refusal` are always there (null when empty), `tool_calls` only with calls,
        # the reasoning fields only with thinking.
        return _omit_none(handler, self, keep=("content", "refusal"))


class ChatCompletionChoice(Response):
    index: int
    message: ChatCompletionResponseMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason


class PromptTokensDetails(Response):
    cached_tokens: int


class CompletionTokensDetails(Response):
    reasoning_tokens: int


class CompletionUsage(Response):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails
    # Chat with a reasoning model only: how many of completion_tokens were thinking.
    completion_tokens_details: CompletionTokensDetails | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler, self, keep=())


def _now() -> int:
    return int(time.time())


class ChatCompletionResponse(Response):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[ChatCompletionChoice]
    usage: CompletionUsage
    system_fingerprint: str


class DeltaFunctionCall(Response):
    name: str | None = None
    arguments: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler, self, keep=())


class DeltaToolCall(Response):
    """A piece of one call: id, type and name in its first delta, then argument fragments."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunctionCall

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _omit_none(handler, self, keep=())


class DeltaMessage(Response):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None
    reasoning_content: str | None = None  # extensions, as in ChatCompletionResponseMessage
    reasoning: str | None = None

    @model_serializer(mode="wrap")
    def _omit_unset(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A delta carries only what changed: `{"content": "Hi"}`, or `{}` with the finish_reason.
        return _omit_none(handler, self, keep=())


class ChatCompletionStreamChoice(Response):
    index: int
    delta: DeltaMessage
    logprobs: ChoiceLogprobs | None = None
    finish_reason: FinishReason | None = None


class ChatCompletionStreamResponse(Response):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChatCompletionStreamChoice]
    system_fingerprint: str
    usage: CompletionUsage | None = None


# ---- text completions --------------------------------------------------------------------


TokenIds = Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]


class CompletionRequest(SamplingRequest):
    prompt: (
        Text
        | Annotated[list[Text], Field(min_length=1)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1)]
    )
    echo: bool | None = False
    logprobs: Annotated[int, Field(ge=0, le=5)] | None = None
    best_of: Annotated[int, Field(ge=1, le=16)] | None = None
    suffix: str | None = None


class CompletionLogprobs(Response):
    tokens: list[str]
    token_logprobs: list[float]
    top_logprobs: list[dict[str, float]]
    text_offset: list[int]


class CompletionChoice(Response):
    index: int
    text: str
    logprobs: CompletionLogprobs | None = None
    finish_reason: FinishReason | None


class CompletionResponse(Response):
    id: str
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=_now)
    model: str
    choices: list[CompletionChoice]
    usage: CompletionUsage | None = None
    system_fingerprint: str


# ---- embeddings --------------------------------------------------------------------------


class EmbeddingRequest(Request):
    model: Text
    input: (
        Text
        | Annotated[list[Text], Field(min_length=1, max_length=2048)]
        | TokenIds
        | Annotated[list[TokenIds], Field(min_length=1, max_length=2048)]
    )
    encoding_format: Literal["float", "base64"] | None = "float"
    dimensions: Annotated[int, Field(ge=1)] | None = None
    user: str | None = None
    keep_alive: KeepAlive = None


class Embedding(Response):
    index: int
    object: Literal["embedding"] = "embedding"
    embedding: list[float] | str


class EmbeddingUsage(Response):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(Response):
    object: Literal["list"] = "list"
    data: list[Embedding]
    model: str
    usage: EmbeddingUsage


# ---- tokenizer (vLLM's /tokenize and /detokenize) ----------------------------------------


class TokenizeRequest(Request):
    """Either a `prompt`, tokenized as /v1/completions reads it, or chat `messages` (and tools),
    rendered by the chat template as /v1/chat/completions reads them."""

    model: Text
    prompt: Text | None = None
    messages: Annotated[list[ChatMessage], Field(min_length=1)] | None = None
    tools: list[ChatCompletionTool] | None = None
    tool_choice: ToolChoice | None = None
    add_generation_prompt: bool = True  # chat form, as in ChatCompletionRequest
    continue_final_message: bool = False
    add_special_tokens: bool = True  # prompt form only: the template writes a chat's own
    return_token_strs: bool = False


class TokenizeResponse(Response):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None


class DetokenizeRequest(Request):
    model: Text
    tokens: list[Annotated[int, Field(ge=0)]]


class DetokenizeResponse(Response):
    prompt: str

"""A Messages API request read as the chat completion it amounts to, so that one pipeline (chat
template, tools, grammar, reasoning split, sampling) serves both APIs.

What chat cannot express (images, server tools, `thinking`, …) is refused here with a 400 naming
the field in the Messages request, before the chat checks, whose names would not match."""

from __future__ import annotations

import json

from ..core.errors import OpenAIError
from ..protocol import (
    ChatCompletionMessageToolCall,
    ChatCompletionNamedToolChoice,
    ChatCompletionRequest,
    ChatCompletionTool,
    ChatMessage,
    FunctionCall,
    FunctionDefinition,
    FunctionName,
    TextContentPart,
    ToolChoice,
)
from ..protocol_anthropic import (
    MessageParam,
    MessagesInput,
    MessagesRequest,
    OtherBlockParam,
    ServerToolParam,
    TextBlockParam,
    ThinkingBlockParam,
    ToolChoiceAny,
    ToolChoiceAuto,
    ToolChoiceNone,
    ToolChoiceTool,
    ToolResultBlockParam,
    ToolUseBlockParam,
)

UNSUPPORTED = {
    "thinking": "a reasoning model's thinking comes as thinking blocks whenever it thinks; no budget "
    "or switch applies",
    "mcp_servers": "this server connects to no MCP servers",
    "context_management": "conversations are not edited by the server",
    "container": "this server runs no code containers",
}


def _refuse(message: str) -> OpenAIError:
    return OpenAIError(400, message)


def _unsupported_block(block: OtherBlockParam, where: str) -> OpenAIError:
    return _refuse(
        f"{where}: content blocks of type '{block.type}' are not supported: this model reads text only. "
        "Send text blocks instead."
    )


def _tool_result(block: ToolResultBlockParam, where: str) -> ChatMessage:
    parts: list[TextContentPart] = []
    if isinstance(block.content, str):
        parts.append(TextContentPart(type="text", text=block.content))
    for k, item in enumerate(block.content if isinstance(block.content, list) else ()):
        if isinstance(item, OtherBlockParam):
            raise _unsupported_block(item, f"{where}.content[{k}]")
        parts.append(TextContentPart(type="text", text=item.text))
    if block.is_error:  # chat's tool messages carry no such flag: the model reads it
        parts.insert(0, TextContentPart(type="text", text="Error: "))
    return ChatMessage(role="tool", content=parts, tool_call_id=block.tool_use_id)


def _user(message: MessageParam, where: str) -> list[ChatMessage]:
    """A user turn: its tool results as tool messages, in order, and its text as user messages."""
    if isinstance(message.content, str):
        return [ChatMessage(role="user", content=message.content)]
    out: list[ChatMessage] = []
    text: list[TextContentPart] = []
    for j, block in enumerate(message.content):
        here = f"{where}.content[{j}]"
        if isinstance(block, TextBlockParam):
            text.append(TextContentPart(type="text", text=block.text))
        elif isinstance(block, ToolResultBlockParam):
            if text:
                out.append(ChatMessage(role="user", content=text))
                text = []
            out.append(_tool_result(block, here))
        elif isinstance(block, OtherBlockParam):
            raise _unsupported_block(block, here)
        else:
            raise _refuse(f"{here}: '{block.type}' blocks belong to assistant messages, not user messages.")
    if text or not out:
        out.append(ChatMessage(role="user", content=text))
    return out


def _assistant(message: MessageParam, where: str) -> ChatMessage:
    if isinstance(message.content, str):
        return ChatMessage(role="assistant", content=message.content)
    text: list[TextContentPart] = []
    thinking: list[str] = []
    calls: list[ChatCompletionMessageToolCall] = []
    for j, block in enumerate(message.content):
        here = f"{where}.content[{j}]"
        if isinstance(block, TextBlockParam):
            text.append(TextContentPart(type="text", text=block.text))
        elif isinstance(block, ThinkingBlockParam):
            thinking.append(block.thinking)
        elif isinstance(block, ToolUseBlockParam):
            arguments = FunctionCall(name=block.name, arguments=json.dumps(block.input, ensure_ascii=False))
            calls.append(ChatCompletionMessageToolCall(id=block.id, function=arguments))
        elif isinstance(block, OtherBlockParam):
            raise _unsupported_block(block, here)
        else:
            raise _refuse(f"{here}: 'tool_result' blocks belong to user messages, not assistant messages.")
    return ChatMessage(
        role="assistant",
        content=text or None,
        tool_calls=calls or None,
        reasoning_content="".join(thinking) if thinking else None,
    )


def _tools(body: MessagesInput) -> tuple[list[ChatCompletionTool] | None, ToolChoice | None, bool | None]:
    """The tools, tool_choice and parallel_tool_calls of the chat request."""
    tools = []
    for i, tool in enumerate(body.tools or ()):
        if isinstance(tool, ServerToolParam):
            raise _refuse(
                f"tools[{i}]: server tools (type '{tool.type}') are not supported by this server; "
                "send client tools, with a name and an input_schema."
            )
        function = FunctionDefinition(
            name=tool.name, description=tool.description, parameters=tool.input_schema
        )
        tools.append(ChatCompletionTool(type="function", function=function))
    choice = body.tool_choice
    if isinstance(choice, ToolChoiceAny | ToolChoiceTool) and not tools:
        raise _refuse(f"tool_choice: type '{choice.type}' needs at least one tool in tools.")
    chat_choice: ToolChoice | None
    if isinstance(choice, ToolChoiceTool):
        chat_choice = ChatCompletionNamedToolChoice(type="function", function=FunctionName(name=choice.name))
    elif isinstance(choice, ToolChoiceAny):
        chat_choice = "required"
    elif isinstance(choice, ToolChoiceNone):
        chat_choice = "none"
    else:
        chat_choice = "auto" if choice is not None else None
    one_call = isinstance(choice, ToolChoiceAuto | ToolChoiceAny | ToolChoiceTool) and bool(
        choice.disable_parallel_tool_use
    )
    return tools or None, chat_choice, False if one_call else None


def chat_request(body: MessagesInput) -> ChatCompletionRequest:
    """The chat completion request that `body` amounts to (its sampling fields too, for a
    MessagesRequest). A final assistant message is continued, as Anthropic's prefill is."""
    for name, why in UNSUPPORTED.items():
        if getattr(body, name, None) is not None:
            raise _refuse(f"{name}: not supported by this server ({why}); remove it from the request.")
    messages: list[ChatMessage] = []
    if body.system is not None:
        system = body.system
        if isinstance(system, str):
            messages.append(ChatMessage(role="system", content=system))
        else:
            parts = [TextContentPart(type="text", text=block.text) for block in system]
            messages.append(ChatMessage(role="system", content=parts))
    for i, message in enumerate(body.messages):
        where = f"messages[{i}]"
        if message.role == "user":
            messages += _user(message, where)
        else:
            messages.append(_assistant(message, where))
    tools, tool_choice, parallel = _tools(body)
    prefill = body.messages[-1].role == "assistant"
    sampling: dict[str, object] = {}
    if isinstance(body, MessagesRequest):
        sampling = {
            "max_tokens": body.max_tokens,
            "stop": body.stop_sequences,
            "temperature": body.temperature,
            "top_p": body.top_p,
            "top_k": body.top_k,
            "stream": body.stream,
        }
    # model_construct: every value was validated as the Messages request, whose limits differ
    # from OpenAI's (more stop sequences); the fields left out get chat's defaults.
    return ChatCompletionRequest.model_construct(
        model=body.model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=parallel,
        add_generation_prompt=not prefill,
        continue_final_message=prefill,
        **sampling,
    )

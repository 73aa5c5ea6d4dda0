"""Tool calling: the conversation as the chat template sees it, and the calls read from the answer.

Calls are written as Hermes-style blocks, the format of Qwen 2.5/3, Hermes and many others:
`<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`. A model whose chat template
renders `tools` gets them from its own template; for one whose template ignores them (the default
SmolLM2), a generic system prompt describes the tools and this format, and past calls and their
results are written into the conversation in the same format.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any

from transformers import PreTrainedTokenizerBase

from ..core.errors import OpenAIError
from ..protocol import ChatCompletionTool, ChatMessage
from .structured import CALL_CLOSE, CALL_OPEN

GENERIC_TOOL_PROMPT = """You can call functions to help with the user's request. The functions, \
as JSON Schema, one per line:
<tools>
{tools}
</tools>
To call a function, answer with a <tool_call></tool_call> block for each call, holding a JSON object \
with the function's name and its arguments, and nothing else:
<tool_call>
{{"name": "<function name>", "arguments": {{<arguments as JSON>}}}}
</tool_call>
The results come back in <tool_response></tool_response> blocks."""


def template_renders_tools(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the model's chat template writes a `tools` list into the prompt."""
    probe = [{"role": "user", "content": "Hi"}]
    tool = {"type": "function", "function": {"name": "probe_tool_name", "parameters": {"type": "object"}}}
    try:
        rendered = tokenizer.apply_chat_template(probe, tools=[tool], tokenize=False)
    except Exception:  # a template that rejects tools does not render them
        return False
    return "probe_tool_name" in str(rendered)


def _arguments(message: ChatMessage, index: int) -> list[dict[str, Any]]:
    """The message's past calls, their arguments parsed (templates expect objects)."""
    calls = []
    for j, call in enumerate(message.tool_calls or ()):
        try:
            arguments = json.loads(call.function.arguments or "{}")
        except json.JSONDecodeError as exc:
            raise OpenAIError(
                400,
                f"The arguments of this tool call are not valid JSON ({exc.msg}).",
                param=f"messages[{index}].tool_calls[{j}].function.arguments",
            ) from exc
        calls.append({"id": call.id, "name": call.function.name, "arguments": arguments})
    return calls


def _call_block(name: str, arguments: Any) -> str:
    return f"{CALL_OPEN}\n{json.dumps({'name': name, 'arguments': arguments})}\n{CALL_CLOSE}"


def conversation(
    messages: list[ChatMessage], tools: list[ChatCompletionTool], native: bool
) -> list[dict[str, Any]]:
    """The messages as chat-template dicts. `native`: the template renders tools, calls and
    results itself; otherwise they are written as text (and the tools as a system prompt)."""
    out: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        # OpenAI's "developer" role is the system role of models that predate it.
        role = "system" if m.role == "developer" else m.role
        calls = _arguments(m, i)
        if native:
            entry: dict[str, Any] = {"role": role, "content": m.text()}
            if calls:
                entry["tool_calls"] = [
                    {
                        "id": c["id"],
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ]
            if m.tool_call_id is not None:
                entry["tool_call_id"] = m.tool_call_id
            out.append(entry)
        elif role == "tool":
            out.append({"role": "user", "content": f"<tool_response>\n{m.text()}\n</tool_response>"})
        else:
            # The text as sent (a prompt's whitespace is the client's), then any past calls.
            text = m.text()
            blocks = [_call_block(c["name"], c["arguments"]) for c in calls]
            out.append({"role": role, "content": "\n".join([text, *blocks] if text else blocks)})
        # Under the name Qwen3's template reads it; templates that do not read it drop it.
        if (reasoning := m.reasoning_text()) is not None:
            out[-1]["reasoning_content"] = reasoning
    if tools and not native:
        listing = "\n".join(json.dumps(t.model_dump(exclude_none=True)) for t in tools)
        prompt = GENERIC_TOOL_PROMPT.format(tools=listing)
        if out and out[0]["role"] == "system":
            out[0] = {**out[0], "content": f"{out[0]['content']}\n\n{prompt}".strip()}
        else:
            out.insert(0, {"role": "system", "content": prompt})
    return out


@dataclass
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text


@dataclass
class CallDelta:
    """A piece of call `index`: its id and name first (arguments ""), then argument text."""

    index: int
    arguments: str
    id: str | None = None
    name: str | None = None


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:24]}"


def _parse_call(block: str, names: set[str]) -> ToolCall | None:
    try:
        data = json.loads(block)
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), data["name"], json.dumps(arguments, ensure_ascii=False))


# A call as the tool grammar writes it (structured.py): name first, then the arguments.
CALL_HEAD = re.compile(r'\s*\{"name": "([A-Za-z0-9_-]{1,64})", "arguments": ')
# What may still follow the arguments: the call's closing brace, then its closing tag.
CALL_TAIL = len("}\n" + CALL_CLOSE)


@dataclass
class ToolCallParser:
    """Splits an answer, as it streams, into content and call deltas.

    Text that may be the start of a call is held back until it is known, and trailing whitespace
    until more content follows (whitespace before a call or at the end of an answer with calls
    is dropped), so the concatenated stream equals the parsed whole answer. A block that is not
    a valid call of one of the tools stays content. `max_calls` is 1 when parallel_tool_calls
    is false. `enforced`: a grammar writes the calls (tool_choice required or named), so each
    call's name is sent as soon as it is written and its arguments as they come, as written;
    otherwise a call is sent when its block closes, its arguments re-serialised."""

    names: set[str]
    max_calls: int | None = None
    enforced: bool = False
    calls: list[ToolCall] = field(default_factory=list)
    _buffer: str = ""
    _in_call: bool = False
    _open: ToolCall | None = None  # an enforced call being streamed
    _args_at: int = 0  # where its arguments start in the buffer
    _sent: int = 0  # how much of its arguments was sent
    _space: str = ""  # trailing whitespace of the content, held back

    def feed(self, text: str) -> tuple[str, list[CallDelta]]:
        """New content to show, and the call deltas `text` completes."""
        self._buffer += text
        content, deltas = "", []
        while True:
            if not self._in_call:
                at = self._buffer.find(CALL_OPEN)
                if at < 0:
                    keep = partial_suffix(self._buffer, CALL_OPEN)
                    content += self._buffer[: len(self._buffer) - keep]
                    self._buffer = self._buffer[len(self._buffer) - keep :]
                    break
                content += self._buffer[:at]
                self._buffer, self._in_call = self._buffer[at + len(CALL_OPEN) :], True
                continue
            if self._open is None and self.enforced and self._room():
                head = CALL_HEAD.match(self._buffer)
                if head and head.group(1) in self.names:
                    self._open, self._args_at, self._sent = (
                        ToolCall(new_call_id(), head.group(1), ""),
                        head.end(),
                        0,
                    )
                    deltas.append(CallDelta(len(self.calls), "", self._open.id, self._open.name))
            end = _close_at(self._buffer)
            if end < 0:
                if self._open is not None:  # the arguments so far, short of what may close them
                    deltas += self._send(
                        self._buffer[self._args_at : max(self._args_at, len(self._buffer) - CALL_TAIL)]
                    )
                break
            block, self._buffer = self._buffer[:end], self._buffer[end + len(CALL_CLOSE) :]
            self._in_call = False
            if self._open is not None:
                written = block[self._args_at :].rstrip()
                deltas += self._send(written.removesuffix("}").rstrip())
                self._close()
                continue
            call = _parse_call(block.strip(), self.names)
            if call is None:
                content += CALL_OPEN + block + CALL_CLOSE
            elif self._room():
                deltas += [
                    CallDelta(len(self.calls), "", call.id, call.name),
                    CallDelta(len(self.calls), call.arguments),
                ]
                self.calls.append(call)
        return self._content(content), deltas

    def finish(self) -> tuple[str, list[CallDelta]]:
        """What is left when the answer ends. A call cut short (by max_tokens) is a call with the
        arguments it has, as OpenAI's are, or nothing where its name was not complete: never
        text. An unfinished block that is no call at all is content."""
        deltas: list[CallDelta] = []
        if self._in_call and self._open is None and not self.enforced:
            head = CALL_HEAD.match(self._buffer)
            if head and head.group(1) in self.names and self._room():
                self._open, self._args_at, self._sent = (
                    ToolCall(new_call_id(), head.group(1), ""),
                    head.end(),
                    0,
                )
                deltas.append(CallDelta(len(self.calls), "", self._open.id, self._open.name))
        if self._open is not None:
            deltas += self._send(self._buffer[self._args_at :])
            self._close()
            self._buffer, self._in_call = "", False
        elif self._in_call and (self.enforced or self._buffer.lstrip().startswith("{")):
            self._buffer, self._in_call = "", False  # a call cut before its name: nothing
        rest = (CALL_OPEN if self._in_call else "") + self._buffer
        self._buffer, self._in_call = "", False
        text = self._content(rest)
        if not self.calls:
            text, self._space = self._space + text, ""
        return text, deltas

    def _room(self) -> bool:
        return self.max_calls is None or len(self.calls) < self.max_calls

    def _send(self, arguments: str) -> list[CallDelta]:
        assert self._open is not None
        piece = arguments[self._sent :]
        self._sent = max(self._sent, len(arguments))
        self._open.arguments += piece
        return [CallDelta(len(self.calls), piece)] if piece else []

    def _close(self) -> None:
        assert self._open is not None
        self.calls.append(self._open)
        self._open = None

    def _content(self, text: str) -> str:
        # Trailing whitespace waits for what follows: dropped if only calls do.
        text = self._space + text
        shown = text.rstrip()
        self._space = text[len(shown) :]
        return shown


def _close_at(block: str) -> int:
    """Where the first closing tag outside a JSON string starts in a call block's text, or -1:
    an argument may hold any text, `</tool_call>` included, and a block whose JSON is broken
    (a brace missing) still ends at its tag."""
    in_string = escaped = False
    for i, char in enumerate(block):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "<" and block.startswith(CALL_CLOSE, i):
            return i
    return -1


def partial_suffix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that begins `marker`."""
    for size in range(min(len(text), len(marker) - 1), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0

"""Tool calling: the conversation as the chat template sees it, and the calls read from the answer.

A model whose chat template renders `tools` gets them from its own template, and its calls are
read in its family's format (`tool_format`):
- Hermes-style blocks, the format of Qwen 2.5/3, Hermes and many others:
  `<tool_call>\n{"name": "f", "arguments": {...}}\n</tool_call>`;
- Llama 3.1+'s JSON: the answer is `{"name": "f", "parameters": {...}}` (after `<|python_tag|>`);
- Mistral's: `[TOOL_CALLS][{"name": "f", "arguments": {...}}]`, or `[TOOL_CALLS]f[ARGS]{...}` in
  the newer tokenizers.
For one whose template ignores tools (the default SmolLM2, Gemma, Phi-3), a generic system prompt
describes the tools and the Hermes format, and past calls and their results are written into the
conversation in the same format.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Literal

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


ToolFormat = Literal["hermes", "llama3_json", "mistral", "glm4"]
PYTHON_TAG, TOOL_CALLS, ARGS = "<|python_tag|>", "[TOOL_CALLS]", "[ARGS]"
# The turn GLM-4's templates give a tool's result: it marks their tokenizers.
OBSERVATION = "<|observation|>"


def tool_format(tokenizer: PreTrainedTokenizerBase) -> ToolFormat:
    """How a model whose template renders tools writes its calls, read from the tokenizer, never
    from a setting: Mistral's when `[TOOL_CALLS]` is in its vocabulary or chat template (the
    token that opens Mistral's calls), Llama 3's JSON when `<|python_tag|>` is (the token Llama
    3.1+ writes before a call, and its template names), GLM-4's `name` line and JSON arguments
    when `<|observation|>` is (the turn its templates give results), Hermes' `<tool_call>` blocks
    otherwise."""
    template = tokenizer.chat_template
    text = " ".join(template.values()) if isinstance(template, dict) else str(template or "")
    vocabulary = tokenizer.get_vocab()
    if TOOL_CALLS in vocabulary or TOOL_CALLS in text:
        return "mistral"
    if PYTHON_TAG in vocabulary or PYTHON_TAG in text:
        return "llama3_json"
    if OBSERVATION in vocabulary:
        return "glm4"
    return "hermes"


def template_call_id(call_id: str, fmt: ToolFormat) -> str:
    """A call's id as the template gets it: Mistral's templates refuse any but 9 letters or digits,
    so there it is a digest of the id (the same for the call and the result that answers it)."""
    return hashlib.sha256(call_id.encode()).hexdigest()[:9] if fmt == "mistral" else call_id


def template_renders_tools(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the model's chat template writes a `tools` list into the prompt."""
    probe = [{"role": "user", "content": "Hi"}]
    tool = {"type": "function", "function": {"name": "probe_tool_name", "parameters": {"type": "object"}}}
    try:
        rendered = tokenizer.apply_chat_template(probe, tools=[tool], tokenize=False)
    except Exception:  # a template that rejects tools does not render them
        return False
    return "probe_tool_name" in str(rendered)


def template_takes_system(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether the chat template accepts a system message (Gemma 2's raises on one)."""
    probe = [{"role": "system", "content": "S"}, {"role": "user", "content": "Hi"}]
    try:
        tokenizer.apply_chat_template(probe, tokenize=False)
    except Exception:  # the template's own refusal
        return False
    return True


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
    messages: list[ChatMessage],
    tools: list[ChatCompletionTool],
    native: bool,
    fmt: ToolFormat = "hermes",
    system_role: bool = True,
) -> list[dict[str, Any]]:
    """The messages as chat-template dicts. `native`: the template renders tools, calls and
    results itself (its ids as `fmt`'s templates take them); otherwise they are written as text,
    and the tools as a system prompt (which opens the first message where the template has no
    system role: `system_role` false)."""
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
                        "id": template_call_id(c["id"], fmt),
                        "type": "function",
                        "function": {"name": c["name"], "arguments": c["arguments"]},
                    }
                    for c in calls
                ]
            if m.tool_call_id is not None:
                entry["tool_call_id"] = template_call_id(m.tool_call_id, fmt)
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
        elif out and not system_role:
            out[0] = {**out[0], "content": f"{prompt}\n\n{out[0]['content']}".strip()}
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


def _call_of(data: Any, names: set[str], name: str | None = None) -> ToolCall | None:
    """A call of one of `names` from its JSON: {"name", "arguments" (or Llama's "parameters")},
    or, with `name` given, the arguments alone."""
    if name is not None:
        data = {"name": name, "arguments": data}
    if not isinstance(data, dict) or data.get("name") not in names:
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if not isinstance(arguments, dict):
        return None
    return ToolCall(new_call_id(), data["name"], json.dumps(arguments, ensure_ascii=False))


def _parse_call(block: str, names: set[str]) -> ToolCall | None:
    try:
        return _call_of(json.loads(block), names)
    except json.JSONDecodeError:
        return None


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


# A function name as Mistral's newer tokenizers write it before `[ARGS]`.
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_JSON = json.JSONDecoder()


def _leading_calls(text: str, fmt: ToolFormat, names: set[str]) -> list[ToolCall] | None:
    """The calls that make up the whole of `text` in Llama 3's, Mistral's or GLM-4's format, or
    None when any of it is not a call of one of `names`. The opening tokens are special ones,
    which the detokenizer drops, so they may be there or not: Llama's JSON objects (several
    separated by `;`, as vLLM reads them), Mistral's JSON list or its `name[ARGS]{...}` calls,
    GLM-4's `name` then its arguments' JSON on the next line (one per assistant turn, whose
    opening token is dropped between them)."""
    calls: list[ToolCall] = []
    at = 0
    while (at := len(text) - len(text[at:].lstrip(" \t\n;"))) < len(text):
        if text.startswith(PYTHON_TAG if fmt == "llama3_json" else TOOL_CALLS, at):
            at += len(PYTHON_TAG if fmt == "llama3_json" else TOOL_CALLS)
            continue
        name = None
        if fmt in ("mistral", "glm4") and (head := _NAME.match(text, at)) is not None:
            name, at = head.group(), head.end()
            at += len(ARGS) if text.startswith(ARGS, at) else 0
            at += len(text[at:]) - len(text[at:].lstrip()) if fmt == "glm4" else 0
        elif fmt == "glm4":
            return None
        try:
            data, at = _JSON.raw_decode(text, at)
        except json.JSONDecodeError:
            return None
        items = data if fmt == "mistral" and name is None and isinstance(data, list) else [data]
        found = [_call_of(item, names, name) for item in items]
        if not found or None in found:
            return None
        calls += [call for call in found if call is not None]
    return calls or None


@dataclass
class LeadingCallParser:
    """Calls in Llama 3's, Mistral's or GLM-4's format (`tool_format`): these models answer with calls
    instead of text, so an answer that opens like a call is held back to its end and then is
    either calls, sent together, or content, whole (a call cut by max_tokens is content). Any
    other answer streams as it comes. `max_calls` as ToolCallParser's."""

    names: set[str]
    fmt: ToolFormat
    max_calls: int | None = None
    calls: list[ToolCall] = field(default_factory=list)
    _buffer: str = ""
    _held: bool = True  # the answer so far may open a call

    def _openings(self) -> list[str]:
        if self.fmt == "llama3_json":
            return [PYTHON_TAG, "{"]
        if self.fmt == "glm4":
            return [f"{name}\n" for name in self.names]
        return [TOOL_CALLS, "[", *(f"{name}{tail}" for name in self.names for tail in ("{", ARGS))]

    def feed(self, text: str) -> tuple[str, list[CallDelta]]:
        """New content to show (the calls come with finish)."""
        if not self._held:
            return text, []
        self._buffer += text
        head = self._buffer.lstrip()
        if not head or any(o.startswith(head) or head.startswith(o) for o in self._openings()):
            return "", []
        self._held = False
        shown, self._buffer = self._buffer, ""
        return shown, []

    def finish(self) -> tuple[str, list[CallDelta]]:
        rest, self._buffer = self._buffer, ""
        calls = _leading_calls(rest, self.fmt, self.names) if self._held else None
        if calls is None:
            return rest, []
        self.calls = calls[: self.max_calls]
        deltas = []
        for i, call in enumerate(self.calls):
            deltas += [CallDelta(i, "", call.id, call.name), CallDelta(i, call.arguments)]
        return "", deltas


CallParser = ToolCallParser | LeadingCallParser

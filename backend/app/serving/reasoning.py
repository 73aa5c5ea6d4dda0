"""Reasoning models: whether the chat template thinks in `<think>…</think>`, and the thinking split
out of the answer as it streams, to be sent as `reasoning_content` (DeepSeek, vLLM, llama.cpp)
and `reasoning` (vLLM's and Ollama's newer name) instead of in `content`.

Qwen3, DeepSeek-R1 distills and SmolLM3 write their thinking first, between these tags. Some
templates open `<think>` in the generation prompt (the answer starts inside thinking), others
leave the model to write it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from transformers import PreTrainedTokenizerBase

from ..core.config import ReasoningFormat
from .tools import partial_suffix

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# Where an answer's thinking opens: in the prompt (its generation prompt ends with `<think>`), or
# in the answer, which may begin with `<think>`.
ThinkingStart = Literal["prompt", "answer"]


def thinking_start(
    tokenizer: PreTrainedTokenizerBase, reasoning_format: ReasoningFormat
) -> ThinkingStart | None:
    """Where the model's thinking opens, or None where it is not split out: REASONING_FORMAT
    `none`, or a template that does not think (its generation prompt does not open `<think>`,
    and it never writes `</think>` or the tokenizer has no such token)."""
    if reasoning_format == "none":
        return None
    try:
        prompt = tokenizer.apply_chat_template(
            [{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True
        )
    except Exception:  # a template that cannot render a plain question has no generation prompt
        return None
    if str(prompt).rstrip().endswith(THINK_OPEN):
        return "prompt"
    template = tokenizer.chat_template
    sources = template.values() if isinstance(template, dict) else [template or ""]
    if THINK_CLOSE in tokenizer.get_vocab() and any(THINK_CLOSE in source for source in sources):
        return "answer"
    return None


@dataclass
class ReasoningParser:
    """Splits an answer, as it streams, into reasoning and content.

    `in_prompt`: the prompt opened `<think>`, so the answer starts inside thinking; otherwise it
    thinks only if it begins with `<think>` (after whitespace). Thinking ends at the first
    `</think>`; an answer that ends before it (cut by max_tokens) is all reasoning. Text that may
    be the start of a tag is held back until it is known, and the whitespace templates put around
    the thinking (`<think>\\n…\\n</think>\\n\\n`) is dropped, so the concatenated stream equals
    the parsed whole answer."""

    in_prompt: bool
    # The length of raw answer text through the thinking (its tags included): the tokens that
    # wrote it are the reasoning tokens. None while unknown, and for an answer that does not think.
    reasoning_end: int | None = None
    _state: Literal["start", "reasoning", "after", "content"] = "start"  # after: past </think>
    _buffer: str = ""
    _fed: int = 0  # raw characters fed
    _began: bool = False  # the reasoning has shown text (whitespace before that is dropped)
    _space: str = ""  # trailing whitespace of the reasoning, held back

    def __post_init__(self) -> None:
        if self.in_prompt:
            self._state = "reasoning"

    def feed(self, text: str) -> tuple[str, str]:
        """New reasoning and new content to show."""
        self._buffer += text
        self._fed += len(text)
        reasoning = ""
        if self._state == "start":
            head = self._buffer.lstrip()
            if head.startswith(THINK_OPEN):
                self._buffer, self._state = head[len(THINK_OPEN) :], "reasoning"
            elif THINK_OPEN.startswith(head):  # nothing yet, or the tag's start: wait
                return "", ""
            else:
                self._state = "content"
        if self._state == "reasoning":
            at = self._buffer.find(THINK_CLOSE)
            if at < 0:
                keep = partial_suffix(self._buffer, THINK_CLOSE)
                cut = len(self._buffer) - keep
                shown, self._buffer = self._buffer[:cut], self._buffer[cut:]
                return self._thought(shown), ""
            reasoning = self._thought(self._buffer[:at])
            self.reasoning_end = self._fed - len(self._buffer) + at + len(THINK_CLOSE)
            self._buffer, self._state, self._space = self._buffer[at + len(THINK_CLOSE) :], "after", ""
        if self._state == "after":
            self._buffer = self._buffer.lstrip()
            if not self._buffer:
                return reasoning, ""
            self._state = "content"
        content, self._buffer = self._buffer, ""
        return reasoning, content

    def finish(self) -> tuple[str, str]:
        """What is left when the answer ends: thinking never closed is reasoning to its end."""
        rest, self._buffer = self._buffer, ""
        if self._state == "reasoning":
            self.reasoning_end = self._fed
            shown = self._thought(rest)
            self._space = ""
            return shown, ""
        return "", rest

    def _thought(self, text: str) -> str:
        text = self._space + text
        if not self._began:
            text = text.lstrip()
            self._began = bool(text)
        shown = text.rstrip()
        self._space = text[len(shown) :]
        return shown

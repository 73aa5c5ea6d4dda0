"""The reasoning parser alone, fed text: any split of an answer into stream pieces gives the
whole answer's reasoning and content, and tool calls are read after the thinking; then which
templates think, and the setting that turns the split off."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from server_process import CHAT_MODEL_DIR
from thinking_model import thinking_tokenizer

from app.core.config import Settings
from app.serving.chat import AnswerParser
from app.serving.reasoning import ReasoningParser, thinking_start
from app.serving.tools import ToolCallParser

CALL = '<tool_call>\n{"name": "now", "arguments": {}}\n</tool_call>'
# (answer, whether the prompt opened <think>) -> (reasoning, content)
CASES = [
    ("<think>\nHmm.\n</think>\n\nParis.", False, "Hmm.", "Paris."),
    ("  <think>Hmm.</think>Paris.", False, "Hmm.", "Paris."),
    ("Paris.", False, "", "Paris."),
    (" Paris, not <think> here.", False, "", " Paris, not <think> here."),
    ("<thinking>Paris.</thinking>", False, "", "<thinking>Paris.</thinking>"),
    ("  <thi", False, "", "  <thi"),  # cut at the start of what could have been the tag
    ("<think></think>Paris.", False, "", "Paris."),
    ("<think>\nStill thinking when cut", False, "Still thinking when cut", ""),
    (
        "\nHmm, a </ and a <think> inside.\n</think>\n\nParis.",
        True,
        "Hmm, a </ and a <think> inside.",
        "Paris.",
    ),
    ("Hmm.</think>Paris.</think>", True, "Hmm.", "Paris.</think>"),
    ("\n One,  \n two. \n</think>  Paris", True, "One,  \n two.", "Paris"),
    ("\nStill thinking when cut", True, "Still thinking when cut", ""),
    ("Cut inside the tag </thi", True, "Cut inside the tag </thi", ""),
    ("", True, "", ""),
]


def pieces(text: str, size: int) -> list[str]:
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def run(chunks: list[str], in_prompt: bool) -> tuple[str, str, int | None]:
    parser = ReasoningParser(in_prompt)
    reasoning = content = ""
    for chunk in chunks:
        thought, text = parser.feed(chunk)
        reasoning, content = reasoning + thought, content + text
    thought, text = parser.finish()
    return reasoning + thought, content + text, parser.reasoning_end


@pytest.mark.parametrize(("answer", "in_prompt", "reasoning", "content"), CASES)
def test_any_split_gives_the_whole_answers_reasoning_and_content(
    answer: str, in_prompt: bool, reasoning: str, content: str
) -> None:
    whole = run([answer], in_prompt)
    assert whole[:2] == (reasoning, content)
    for size in (1, 2, 3, 7):
        assert run(pieces(answer, size), in_prompt) == whole


def test_reasoning_ends_where_the_thinking_ends_in_the_raw_text() -> None:
    assert run(["<think>ab</think>cd"], False)[2] == len("<think>ab</think>")
    assert run(["ab</think>cd"], True)[2] == len("ab</think>")
    assert run(["ab"], True)[2] == len("ab")  # never closed: all of it
    assert run(["abcd"], False)[2] is None  # no thinking


@pytest.mark.parametrize(
    ("answer", "reasoning", "content", "calls"),
    [
        (f"<think>\nThe time, then.\n</think>\n\n{CALL}", "The time, then.", "", [("now", "{}")]),
        (f"<think>\nMaybe {CALL}?\n</think>\n\nNo.", f"Maybe {CALL}?", "No.", []),  # a thought, not a call
        (f"<think>Hmm.</think>It is:\n{CALL}", "Hmm.", "It is:", [("now", "{}")]),
    ],
)
def test_tool_calls_are_read_after_the_thinking(
    answer: str, reasoning: str, content: str, calls: list[tuple[str, str]]
) -> None:
    for size in (len(answer), 1, 5):
        parser = AnswerParser(ReasoningParser(in_prompt=False), ToolCallParser({"now"}))
        chunks = pieces(answer, size)
        parts = [parser.feed(chunk, last=i == len(chunks) - 1) for i, chunk in enumerate(chunks)]
        assert "".join(p[0] for p in parts) == reasoning
        assert "".join(p[1] for p in parts) == content
        assert parser.tools is not None
        assert [(c.name, c.arguments) for c in parser.tools.calls] == calls


@pytest.fixture(scope="module")
def tokenizers() -> dict[str, Any]:
    from transformers import AutoTokenizer

    return {
        "prompt": thinking_tokenizer(opens_thinking=True),
        "answer": thinking_tokenizer(opens_thinking=False),
        "plain": AutoTokenizer.from_pretrained(CHAT_MODEL_DIR),
    }


def test_a_template_thinks_by_its_generation_prompt_or_its_tags(tokenizers: dict[str, Any]) -> None:
    assert thinking_start(tokenizers["prompt"], "auto") == "prompt"  # DeepSeek-R1 distills
    assert thinking_start(tokenizers["answer"], "auto") == "answer"  # Qwen3, SmolLM3
    assert thinking_start(tokenizers["plain"], "auto") is None  # SmolLM2


def test_reasoning_format_none_leaves_the_thinking_in_the_content(tokenizers: dict[str, Any]) -> None:
    assert thinking_start(tokenizers["prompt"], "none") is None
    assert thinking_start(tokenizers["answer"], "none") is None
    assert Settings(reasoning_format="none").reasoning_format == "none"
    with pytest.raises(ValidationError, match="reasoning_format"):
        Settings(reasoning_format="deepseek-legacy")

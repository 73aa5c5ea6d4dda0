"""The tool-call parser alone: any split of the answer into stream pieces gives the same content
and calls as the whole answer."""

from __future__ import annotations

import pytest

from app.serving.tools import ToolCallParser

CALL = '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
ANSWERS = [
    CALL,
    f"Let me check.\n{CALL}",
    f"{CALL}\n{CALL.replace('Paris', 'Rome')}\n",
    f"{CALL}\nDone, and a < sign and <tool_ too.",
    '<tool_call>\n{"name": "unknown", "arguments": {}}\n</tool_call> stays text',
    "<tool_call>\nnot json\n</tool_call>",
    "plain text with <tool_call> never closed",
    "  \n  ",
]


def run(answer: str, pieces: list[str], max_calls: int | None = None) -> tuple[str, list[tuple[str, str]]]:
    parser = ToolCallParser({"get_weather"}, max_calls)
    content, calls = "", []
    for piece in pieces:
        text, new = parser.feed(piece)
        content += text
        calls += new
    content += parser.finish()
    assert calls == parser.calls
    return content, [(c.name, c.arguments) for c in calls]


@pytest.mark.parametrize("answer", ANSWERS)
def test_any_split_gives_the_whole_answers_result(answer: str) -> None:
    whole = run(answer, [answer])
    for size in (1, 2, 3, 7):
        assert run(answer, [answer[i : i + size] for i in range(0, len(answer), size)]) == whole


def test_what_is_and_is_not_a_call() -> None:
    assert run(ANSWERS[0], [ANSWERS[0]]) == ("", [("get_weather", '{"city": "Paris"}')])
    assert run(ANSWERS[1], [ANSWERS[1]]) == ("Let me check.", [("get_weather", '{"city": "Paris"}')])
    content, calls = run(ANSWERS[2], [ANSWERS[2]])
    assert content == "" and [c[1] for c in calls] == ['{"city": "Paris"}', '{"city": "Rome"}']
    assert run(ANSWERS[4], [ANSWERS[4]]) == (ANSWERS[4], [])
    assert run(ANSWERS[5], [ANSWERS[5]]) == (ANSWERS[5], [])
    assert run(ANSWERS[6], [ANSWERS[6]]) == (ANSWERS[6], [])
    assert run(ANSWERS[7], [ANSWERS[7]]) == (ANSWERS[7], [])


def test_one_call_when_parallel_calls_are_off() -> None:
    assert len(run(ANSWERS[2], [ANSWERS[2]], max_calls=1)[1]) == 1

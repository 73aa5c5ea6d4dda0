"""The tool-call parsers alone: any split of the answer into stream pieces gives the same content
and calls as the whole answer, and the pieces add up to the calls. Hermes blocks (ToolCallParser),
and Llama 3's, Mistral's and GLM-4's calls that make up the whole answer (LeadingCallParser)."""

from __future__ import annotations

import pytest

from app.serving.tools import CallParser, LeadingCallParser, ToolCallParser

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
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Pa',  # cut by max_tokens
    f'{CALL}\n<tool_call>\n{{"name',  # the second call cut before its name
    # Arguments hold any text: the block ends at the tag outside the JSON's strings.
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "</tool_call>"}}\n</tool_call>',
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "\\" <tool_call> </tool_call>"}}'
    "\n</tool_call>",
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Oslo"}\n</tool_call> a brace missing',
]


def run(
    pieces: list[str], max_calls: int | None = None, enforced: bool = False, fmt: str = "hermes"
) -> tuple[str, list[tuple[str, str]]]:
    parser: CallParser = (
        ToolCallParser({"get_weather"}, max_calls, enforced)
        if fmt == "hermes"
        else LeadingCallParser({"get_weather"}, fmt, max_calls)  # type: ignore[arg-type]
    )
    content, streamed = "", {}
    for i, piece in enumerate(pieces):
        text, deltas = parser.feed(piece)
        if i == len(pieces) - 1:
            rest, more = parser.finish()
            text, deltas = text + rest, deltas + more
        content += text
        for delta in deltas:
            call = streamed.setdefault(delta.index, {"name": None, "arguments": ""})
            if delta.id is not None:
                assert call["name"] is None and delta.arguments == "", "id and name come once, first"
                call["name"] = delta.name
            call["arguments"] += delta.arguments
    calls = [(c.name, c.arguments) for c in parser.calls]
    assert [(c["name"], c["arguments"]) for _, c in sorted(streamed.items())] == calls
    return content, calls


@pytest.mark.parametrize("enforced", [False, True])
@pytest.mark.parametrize("answer", ANSWERS)
def test_any_split_gives_the_whole_answers_result(answer: str, enforced: bool) -> None:
    whole = run([answer], enforced=enforced)
    for size in (1, 2, 3, 7):
        pieces = [answer[i : i + size] for i in range(0, len(answer), size)]
        assert run(pieces, enforced=enforced) == whole


def test_what_is_and_is_not_a_call() -> None:
    paris = ("get_weather", '{"city": "Paris"}')
    assert run([ANSWERS[0]]) == ("", [paris])
    assert run([ANSWERS[1]]) == ("Let me check.", [paris])
    assert run([ANSWERS[2]]) == ("", [paris, ("get_weather", '{"city": "Rome"}')])
    for answer in ANSWERS[4:8]:
        assert run([answer]) == (answer, [])
    # Cut short: a call keeps the arguments it has (as OpenAI's do), or is nothing where its
    # name was not complete; never text.
    for enforced in (False, True):
        assert run([ANSWERS[8]], enforced=enforced) == ("", [("get_weather", '{"city": "Pa')])
        assert run([ANSWERS[9]], enforced=enforced) == ("", [paris])
        assert run([ANSWERS[10]], enforced=enforced) == ("", [("get_weather", '{"city": "</tool_call>"}')])
        assert run([ANSWERS[11]], enforced=enforced)[1] == [
            ("get_weather", '{"city": "\\" <tool_call> </tool_call>"}')
        ]
    # Broken JSON still ends at its tag, and stays text.
    assert run([ANSWERS[12]]) == (ANSWERS[12], [])


def test_enforced_calls_stream_their_arguments_as_written() -> None:
    parser = ToolCallParser({"get_weather"}, enforced=True)
    _, deltas = parser.feed('<tool_call>\n{"name": "get_weather", "arguments": ')
    assert [(d.index, d.name, d.arguments) for d in deltas] == [(0, "get_weather", "")]
    _, deltas = parser.feed('{"city": "Paris", "country": "France", "note": "')
    assert "".join(d.arguments for d in deltas).startswith('{"city": "Paris"')


def test_one_call_when_parallel_calls_are_off() -> None:
    for enforced in (False, True):
        assert len(run([ANSWERS[2]], max_calls=1, enforced=enforced)[1]) == 1


CUT = '{"name": "get_weather", "parameters": {"city": "Pa'  # by max_tokens
PARIS_JSON, ROME_JSON = (
    '{"name": "get_weather", "arguments": {"city": "Paris"}}',
    '{"name": "get_weather", "arguments": {"city": "Rome"}}',
)
PARIS, ROME = ("get_weather", '{"city": "Paris"}'), ("get_weather", '{"city": "Rome"}')
# Answers in Llama 3's and Mistral's formats, and what they are. The opening special tokens come
# through or not (the detokenizer drops special tokens).
LEADING = {
    "llama3_json": [
        ('{"name": "get_weather", "parameters": {"city": "Paris"}}', "", [PARIS]),
        ('<|python_tag|>{"name": "get_weather", "parameters": {"city": "Paris"}}', "", [PARIS]),
        ('  {"name": "get_weather", "arguments": {"city": "Paris"}}\n', "", [PARIS]),
        (
            '{"name": "get_weather", "parameters": {"city": "Paris"}}; '
            '{"name": "get_weather", "parameters": {"city": "Rome"}}',
            "",
            [PARIS, ROME],
        ),
        ('{"name": "unknown", "parameters": {}}', '{"name": "unknown", "parameters": {}}', []),
        (CUT, CUT, []),
        ("Paris is sunny.", "Paris is sunny.", []),
        ('{"a": 1} is JSON', '{"a": 1} is JSON', []),
        ("  ", "  ", []),
    ],
    "mistral": [
        ('[TOOL_CALLS][{"name": "get_weather", "arguments": {"city": "Paris"}}]', "", [PARIS]),
        (f"[{PARIS_JSON}, {ROME_JSON}]", "", [PARIS, ROME]),
        ('[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}', "", [PARIS]),
        ('get_weather{"city": "Paris"}get_weather{"city": "Rome"}', "", [PARIS, ROME]),
        (
            '[TOOL_CALLS]get_weather[ARGS]{"city": "Paris"}[TOOL_CALLS]get_weather[ARGS]{"city": "Rome"}',
            "",
            [PARIS, ROME],
        ),
        ("[1, 2] is a list", "[1, 2] is a list", []),
        ("get_weather is a tool", "get_weather is a tool", []),
        ('unknown[ARGS]{"city": "Paris"}', 'unknown[ARGS]{"city": "Paris"}', []),
        ("Sunny.", "Sunny.", []),
    ],
    "glm4": [
        ('get_weather\n{"city": "Paris"}', "", [PARIS]),
        ('\nget_weather\n{"city": "Paris"}\n', "", [PARIS]),
        ('get_weather\n{"city": "Paris"}get_weather\n{"city": "Rome"}', "", [PARIS, ROME]),
        ("get_weather\nis a tool", "get_weather\nis a tool", []),
        ('unknown\n{"city": "Paris"}', 'unknown\n{"city": "Paris"}', []),
        ('{"name": "get_weather", "arguments": {}}', '{"name": "get_weather", "arguments": {}}', []),
        ("get_weather is sunny", "get_weather is sunny", []),
        ("Sunny.", "Sunny.", []),
    ],
}
CASES = [(fmt, *case) for fmt, cases in LEADING.items() for case in cases]


@pytest.mark.parametrize(("fmt", "answer", "content", "calls"), CASES)
def test_leading_calls(fmt: str, answer: str, content: str, calls: list[tuple[str, str]]) -> None:
    assert run([answer], fmt=fmt) == (content, calls)
    for size in (1, 2, 5):
        assert run([answer[i : i + size] for i in range(0, len(answer), size)], fmt=fmt) == (content, calls)
    assert run([answer], max_calls=1, fmt=fmt) == (content, calls[:1])


def test_text_that_cannot_open_a_call_streams_at_once() -> None:
    for fmt, first in (("llama3_json", "Paris"), ("mistral", "Sunny"), ("glm4", "Sunny")):
        parser = LeadingCallParser({"get_weather"}, fmt)  # type: ignore[arg-type]
        assert parser.feed(" ") == ("", [])
        assert parser.feed(first) == (f" {first}", [])
        assert parser.feed(" more") == (" more", [])

"""The API-overhead load: each route's request body, its stream read as the server sends it (over a
mock transport, no server), the round's order, and the figures, targets and report section made
from its blocks."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx
import pytest

from bench.api_overhead import (
    CHAT,
    MESSAGES,
    RESPONSES,
    ROUND,
    apply_message_event,
    apply_response_event,
    messages_body,
    responses_body,
)
from bench.figures import Figures
from bench.load import StreamResult, apply_chat_event, stream_chat
from bench.report import Report
from bench.targets import TARGETS

from .test_figures import DATA

PROMPT = [
    {"role": "system", "content": "You are a helpful storyteller."},
    {"role": "user", "content": "Write a long story about a lighthouse."},
]


def sse(events: list[tuple[str | None, dict[str, Any]]]) -> str:
    """A stream as the server frames it: named events (`event:` then `data:`) or chat's bare data."""
    return "".join(
        (f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n" for name, data in events
    )


def named(events: list[dict[str, Any]]) -> str:
    return sse([(e["type"], e) for e in events])


def read(text: str, apply: Any) -> StreamResult:
    """`text` streamed back by a mock server through the load's own reader."""

    async def go() -> StreamResult:
        transport = httpx.MockTransport(lambda request: httpx.Response(200, text=text))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            return await stream_chat(client, "/v1/x", {}, 3, time.monotonic() + 10, apply=apply)

    return asyncio.run(go())


RESPONSES_STREAM = named(
    [
        {"type": "response.created", "response": {"status": "in_progress", "usage": None}},
        {"type": "response.output_item.added", "item": {"type": "message"}},
        {"type": "response.output_text.delta", "delta": "Once"},
        {"type": "response.output_text.delta", "delta": " upon"},
        {"type": "response.output_text.delta", "delta": " a"},
        {"type": "response.output_text.done", "text": "Once upon a"},
        {
            "type": "response.incomplete",
            "response": {
                "status": "incomplete",
                "incomplete_details": {"reason": "max_output_tokens"},
                "usage": {
                    "input_tokens": 30,
                    "output_tokens": 3,
                    "input_tokens_details": {"cached_tokens": 16},
                },
            },
        },
    ]
)
MESSAGES_STREAM = named(
    [
        {
            "type": "message_start",
            "message": {"usage": {"input_tokens": 14, "output_tokens": 0, "cache_read_input_tokens": 16}},
        },
        {"type": "ping"},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Once"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " upon"}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " a"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 3}},
        {"type": "message_stop"},
    ]
)
CHAT_STREAM = (
    sse(
        [
            (None, {"choices": [{"delta": {"content": t}, "finish_reason": None}]})
            for t in ("Once", " upon", " a")
        ]
    )
    + sse([(None, {"choices": [{"delta": {}, "finish_reason": "length"}]})])
    + sse([(None, {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 3}})])
    + "data: [DONE]\n\n"
)


@pytest.mark.parametrize(
    ("text", "apply", "finish"),
    [
        (CHAT_STREAM, apply_chat_event, "length"),
        (RESPONSES_STREAM, apply_response_event, "max_output_tokens"),
        (MESSAGES_STREAM, apply_message_event, "max_tokens"),
    ],
    ids=[CHAT, RESPONSES, MESSAGES],
)
def test_each_api_stream_reads_as_the_same_answer(text: str, apply: Any, finish: str) -> None:
    result = read(text, apply)
    assert result.error is None
    assert result.text == "Once upon a"
    assert len(result.arrivals) == 3 and result.first == result.arrivals[0]
    assert result.completion_tokens == 3 and result.prompt_tokens == 30
    assert result.finish_reason == finish


def test_cached_prompt_tokens_are_counted_as_each_api_reports_them() -> None:
    # Anthropic's input_tokens leave out the cached ones; the whole prompt is their sum.
    assert read(MESSAGES_STREAM, apply_message_event).cached_tokens == 16
    assert read(RESPONSES_STREAM, apply_response_event).cached_tokens == 16


def test_errors_in_the_stream_are_recorded() -> None:
    failed = named([{"type": "response.failed", "response": {"status": "failed", "error": {"code": "x"}}}])
    assert "x" in (read(failed, apply_response_event).error or "")
    error = named([{"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}])
    assert "busy" in (read(error, apply_message_event).error or "")


def test_bodies_ask_each_api_for_the_same_greedy_stream() -> None:
    responses = responses_body("m")(PROMPT, 64)
    assert responses == {
        "model": "m",
        "input": PROMPT,
        "max_output_tokens": 64,
        "temperature": 0.0,
        "store": False,
        "stream": True,
    }
    messages = messages_body("m")(PROMPT, 64)
    assert messages == {
        "model": "m",
        "system": "You are a helpful storyteller.",
        "messages": PROMPT[1:],
        "max_tokens": 64,
        "temperature": 0.0,
        "stream": True,
    }
    assert "system" not in messages_body("m")(PROMPT[1:], 64)


def test_a_round_gives_every_route_the_same_places() -> None:
    """A palindrome: each route's mean block position is the same, so a linear drift cancels."""
    assert ROUND[::-1] == ROUND
    for kind in (CHAT, RESPONSES, MESSAGES):
        places = [i for i, k in enumerate(ROUND) if k == kind]
        assert sum(places) * len(ROUND) == len(places) * sum(range(len(ROUND)))


def block(kind: str, rate: float) -> dict[str, Any]:
    return {
        "kind": kind,
        "concurrency": 8,
        "tokens_per_s": rate,
        "ttft_s": [0.1] * 8,
        "itl_s": [0.05],
        "errors": [],
        "completion_tokens": [64] * 8,
        "finish_reasons": ["length"] * 8,
        "at_limit": 8,
    }


RATES = {CHAT: [100.0, 104.0], RESPONSES: [98.0, 96.0], MESSAGES: [90.0, 92.0]}


def results() -> dict[str, Any]:
    """The saved results, with an API-overhead load on ours' first run."""
    saved: dict[str, Any] = json.loads((DATA / "results.json").read_text())
    blocks = [block(kind, RATES[kind][i >= len(ROUND) // 2]) for i, kind in enumerate(ROUND)]
    saved["systems"]["ours"]["runs"][0]["api_overhead"] = {"streams": 8, "max_tokens": 64, "blocks": blocks}
    return saved


def test_targets_compare_each_route_with_chat() -> None:
    figures = Figures(results())
    rows = [t for t in TARGETS if t.issue == 27]
    assert len(rows) == 2
    ratios = {}
    for target in rows:
        measured, reference = figures.value(target.measured), figures.value(target.reference)
        assert measured is not None and reference == pytest.approx(102.0)
        ratios[target.measured.figure] = target.verdict(measured / reference)[0]
    assert ratios == {"api_responses_rate": True, "api_messages_rate": False}  # 0.951x and 0.892x


def test_report_shows_the_blocks_and_the_ratios() -> None:
    text = Report(results()).markdown()
    assert "## API overhead: Responses and Messages against chat (issue 27)" in text
    assert "responses 97.0 (0.951x), messages 91.0 (0.892x)" in text
    assert "Responses API vs the same chat completions" in text

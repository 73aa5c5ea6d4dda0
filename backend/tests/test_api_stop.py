"""Stop strings: found even across token boundaries, cut from the output, finish_reason stop;
streamed and not, chat and completions."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from api_support import chat_stream_text, completion_stream_text, finish_reasons, post_stream
from server_process import CHAT_MODEL

MESSAGES = [{"role": "user", "content": "Write a short poem about the sea."}]
PROMPT = "The waves of the ocean"
MAX_TOKENS = 16
NEVER = "\u2603never-in-output\u2603"


@dataclass(frozen=True)
class Case:
    path: str  # endpoint
    body: dict[str, Any]  # greedy request without stop
    text: str  # its full output


def output_text(path: str, body: dict[str, Any]) -> str:
    return (
        body["choices"][0]["message"]["content"]
        if path.endswith("chat/completions")
        else body["choices"][0]["text"]
    )


def stream_text(path: str, chunks: list[dict[str, Any]]) -> str:
    return chat_stream_text(chunks) if path.endswith("chat/completions") else completion_stream_text(chunks)


def stream_deltas(path: str, chunks: list[dict[str, Any]]) -> list[str]:
    key = "content" if path.endswith("chat/completions") else "text"
    return [
        (c["delta"].get(key) if "delta" in c else c.get(key)) or "" for ch in chunks for c in ch["choices"]
    ]


def spanning_stop(tokenizer: Any, text: str, width: int = 2) -> str:
    """A stop string made of the last `width` characters of one token and the first `width` of the
    next, so that no single token contains it; taken from the middle of `text`, first occurrence."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    ends = [len(tokenizer.decode(ids[: i + 1])) for i in range(len(ids))]
    starts = [0, *ends[:-1]]
    for i in range(len(ids) // 3, len(ids) - 1):
        boundary = ends[i]
        left, right = text[starts[i] : boundary], text[boundary : ends[i + 1]]
        stop = text[boundary - width : boundary + width]
        wide_enough = len(left) >= width and len(right) >= width
        if wide_enough and stop.strip() == stop and text.find(stop) == boundary - width:
            return stop
    raise AssertionError(f"no token boundary to test in {text!r}")


@pytest.fixture(
    scope="module", params=["/v1/chat/completions", "/v1/completions"], ids=["chat", "completions"]
)
def case(request: pytest.FixtureRequest, http: httpx.Client) -> Case:
    path: str = request.param
    body: dict[str, Any] = {"model": CHAT_MODEL, "max_tokens": MAX_TOKENS, "temperature": 0}
    body |= {"messages": MESSAGES} if path.endswith("chat/completions") else {"prompt": PROMPT}
    resp = http.post(path, json=body)
    assert resp.status_code == 200, resp.text
    text = output_text(path, resp.json())
    assert len(text) > 20, f"greedy output too short to test stop strings: {text!r}"
    return Case(path, body, text)


def stop_variants(tokenizer: Any, text: str) -> list[tuple[str, str | list[str]]]:
    """(name, stop) pairs; each cuts `text` at the first occurrence of its string."""
    span = spanning_stop(tokenizer, text)
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    # Three whole tokens from the middle, with the boundaries on both sides.
    mid = len(ids) // 2
    multi = tokenizer.decode(ids[mid - 1 : mid + 2])
    return [
        ("spanning string", span),
        ("list", [NEVER, span]),
        ("multi-token", multi),
        ("at the start", text[:3]),
    ]


def expected_cut(text: str, stop: str | list[str]) -> str:
    stops = [stop] if isinstance(stop, str) else stop
    return text[: min(text.find(s) for s in stops if s in text)]


def test_stop_non_streamed(case: Case, http: httpx.Client, tokenizer: Any) -> None:
    for name, stop in stop_variants(tokenizer, case.text):
        resp = http.post(case.path, json={**case.body, "stop": stop})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        got = output_text(case.path, body)
        assert got == expected_cut(case.text, stop), f"{name}: stop {stop!r}"
        assert body["choices"][0]["finish_reason"] == "stop", name
        for s in [stop] if isinstance(stop, str) else stop:
            assert s not in got


def test_stop_streamed(case: Case, http: httpx.Client, tokenizer: Any) -> None:
    for name, stop in stop_variants(tokenizer, case.text):
        stream = post_stream(http, case.path, {**case.body, "stop": stop, "stream": True})
        assert stream.status == 200, stream.raw
        chunks = stream.chunks
        got = stream_text(case.path, chunks)
        assert got == expected_cut(case.text, stop), f"{name}: stop {stop!r}"
        assert finish_reasons(chunks) == ["stop"], name
        for s in [stop] if isinstance(stop, str) else stop:
            assert all(s not in d for d in stream_deltas(case.path, chunks))


def test_stop_that_never_matches_changes_nothing(case: Case, http: httpx.Client) -> None:
    resp = http.post(case.path, json={**case.body, "stop": [NEVER, "\u2603"]})
    assert resp.status_code == 200, resp.text
    assert output_text(case.path, resp.json()) == case.text
    assert resp.json()["choices"][0]["finish_reason"] == "length"
    stream = post_stream(http, case.path, {**case.body, "stop": NEVER, "stream": True})
    assert stream_text(case.path, stream.chunks) == case.text
    assert finish_reasons(stream.chunks) == ["length"]

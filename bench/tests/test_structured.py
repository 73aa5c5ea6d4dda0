"""The structured load's requests: the same body as the sweep's plus the schema, and a schema
whose answers start as the JSON-answer count expects."""

from __future__ import annotations

import json

import jsonschema

from bench.servers import openai_body
from bench.structured import JSON_START, MIN_ITEMS, ROUND, SCHEMA, constrained


def test_constrained_body_is_the_plain_body_with_the_schema() -> None:
    plain = openai_body("m")
    messages = [{"role": "user", "content": "Write a long story."}]
    body = constrained(plain)(messages, 64)
    assert {k: v for k, v in body.items() if k != "response_format"} == plain(messages, 64)
    assert body["ignore_eos"] is True and body["max_tokens"] == 64
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "story", "schema": SCHEMA, "strict": True},
    }


def test_a_conforming_answer_starts_as_counted() -> None:
    answer = {"title": "The Lighthouse", "sentences": ["It was a dark night."] * MIN_ITEMS}
    jsonschema.validate(answer, SCHEMA)
    assert json.dumps(answer).startswith(JSON_START)
    short = {"title": "The Lighthouse", "sentences": ["It was a dark night."] * (MIN_ITEMS - 1)}
    assert not jsonschema.Draft202012Validator(SCHEMA).is_valid(short)


def test_a_round_gives_both_kinds_the_same_places() -> None:
    """A/B/B/A: each kind's mean block position is the same, so a linear drift cancels."""
    for kind in set(ROUND):
        assert sum(i for i, k in enumerate(ROUND) if k == kind) * 2 == sum(range(len(ROUND)))

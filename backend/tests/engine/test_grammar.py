"""Grammar-constrained rows in a continuous batch: each follows its own grammar, and the rows
beside them get exactly the tokens they get without them."""

from __future__ import annotations

import json

import jsonschema
import pytest

from app.engine.engine import Engine
from app.engine.grammar import GrammarError
from app.engine.sampling import SamplingParams

from .conftest import chat_ids, run_together

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "days": {"type": "integer", "minimum": 1, "maximum": 7},
    },
    "required": ["city", "days"],
    "additionalProperties": False,
}
GRAMMAR = f"start: %json {json.dumps({**SCHEMA, 'x-guidance': {'whitespace_flexible': False}})}\n"
FREE = ["Write a haiku about the sea.", "What is 12 times 12?", "Name a famous painter."]


def test_constrained_rows_leave_the_others_untouched(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    grammar = engine.grammars.compile(GRAMMAR)
    free = [
        (
            chat_ids(tokenizer, text),
            SamplingParams(max_tokens=24, temperature=0.0 if i % 2 else 0.9, seed=5 + i),
        )
        for i, text in enumerate(FREE)
    ]
    constrained = [
        (
            chat_ids(tokenizer, "Plan a trip as JSON."),
            SamplingParams(max_tokens=60, temperature=t, seed=9, grammar=grammar),
        )
        for t in (0.0, 1.0)
    ]
    alone = run_together(engine, free)
    mixed = run_together(engine, [free[0], constrained[0], free[1], constrained[1], free[2]])
    assert [r.token_ids for r in alone] == [mixed[0].token_ids, mixed[2].token_ids, mixed[4].token_ids]
    for result in (mixed[1], mixed[3]):
        assert result.finish_reason == "stop"
        jsonschema.validate(json.loads(result.text), SCHEMA)
    # The same seeded constrained request alone gives the same answer as in the batch.
    assert run_together(engine, [constrained[1]])[0].token_ids == mixed[3].token_ids


def test_grammars_are_cached_by_text_and_errors_name_the_problem(engine: Engine) -> None:
    assert engine.grammars.compile(GRAMMAR) is engine.grammars.compile(GRAMMAR)
    with pytest.raises(GrammarError, match="uniqueItems"):
        engine.grammars.compile('start: %json {"type": "array", "uniqueItems": true}\n')
    with pytest.raises(GrammarError):
        engine.grammars.compile("start: ( \n")

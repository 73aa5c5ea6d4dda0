"""Issue 15: what a JSON-schema-constrained answer costs our server at 8 concurrent streams.

The sweep's burst of prompts is sent with and without `response_format` {"type": "json_schema"},
interleaved A/B/B/A (as many rounds as asked) on one warmed server, so a drift in the machine's
load falls on both sides alike. The schema (an object holding an array of at least MIN_ITEMS
sentences) asks for more than the answer length holds, so both sides decode max_tokens per
stream and differ only by the grammar: its token mask every step and its matcher's bookkeeping.
Tokens are counted from usage.completion_tokens all the same, so an answer the grammar ended
early would count what it generated. A warm-up request pays the grammar's first compile (the
server caches it by text).

Ours only: llama-server takes grammars in its own format, which would compare two formats, not
the cost of constraining.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .load import BodyFactory, run_level
from .prompts import load_prompts
from .servers import Server

STREAMS = 8
MIN_ITEMS = 16
SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "sentences": {"type": "array", "items": {"type": "string", "minLength": 8}, "minItems": MIN_ITEMS},
    },
    "required": ["title", "sentences"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {"type": "json_schema", "json_schema": {"name": "story", "schema": SCHEMA, "strict": True}}
# How a conforming answer starts: the server writes JSON as json.dumps does.
JSON_START = '{"title": "'
CONSTRAINED, UNCONSTRAINED = "constrained", "unconstrained"
ROUND = (UNCONSTRAINED, CONSTRAINED, CONSTRAINED, UNCONSTRAINED)


def constrained(make_body: BodyFactory) -> BodyFactory:
    """The same request with the schema as its response_format."""

    def make(messages: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
        return {**make_body(messages, max_tokens), "response_format": RESPONSE_FORMAT}

    return make


def measure(server: Server, tag: str, max_tokens: int, cap_s: float, rounds: int) -> dict[str, Any]:
    """`rounds` A/B/B/A rounds against a started, warmed server: one level summary per block,
    with its kind, every stream's token count and finish reason, and how many answers are JSON."""
    plain = server.body_factory()
    bodies = {UNCONSTRAINED: plain, CONSTRAINED: constrained(plain)}
    asyncio.run(run_level(server.base_url, bodies[CONSTRAINED], load_prompts(f"{tag}-warm", 1), 8, cap_s))
    blocks = []
    for i, kind in enumerate(ROUND * rounds):
        # Tags of one length: both kinds get prompts of the same token count.
        prompts = load_prompts(f"{tag}-b{i:02}", STREAMS)
        level = asyncio.run(run_level(server.base_url, bodies[kind], prompts, max_tokens, cap_s))
        blocks.append(
            {
                "kind": kind,
                **level.summary(),
                "completion_tokens": [s.completion_tokens for s in level.streams],
                "finish_reasons": [s.finish_reason for s in level.streams],
                "json_answers": sum(s.text.startswith(JSON_START) for s in level.streams),
            }
        )
    return {"streams": STREAMS, "max_tokens": max_tokens, "schema": SCHEMA, "blocks": blocks}


def describe(block: dict[str, Any]) -> str:
    tokens = block["completion_tokens"]
    errors = f", errors: {len(block['errors'])} ({block['errors'][0]})" if block["errors"] else ""
    return (
        f"{block['kind']:>13}: {block['tokens_per_s']:6.1f} tok/s, {sum(tokens) / len(tokens):.0f} tokens "
        f"a stream, {block['json_answers']}/{len(tokens)} JSON{errors}"
    )

"""Issue 27: what a Responses API or Messages API stream costs our server against the same chat
completion, at 8 concurrent streams.

The same 8 prompts are streamed through /v1/chat/completions, /v1/responses and /v1/messages,
interleaved chat, responses, messages, messages, responses, chat on one warmed server, so a
drift in the machine's load falls on every kind alike. The two newer routes have no
`ignore_eos`, so none of the three sends it: all decode greedily up to the same length limit,
and as each route renders the same messages with the same chat template, all three decode the
same tokens (the stories the prompts ask for run past the limit; each block reports how many
streams reached it). Tokens are counted from each API's usage. The warm-up (each route once, with
the same prompts) puts them in the prefix cache, so every measured block finds them there alike.

Ours only: llama-server has no Responses or Messages routes to compare.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from .load import CHAT_PATH, BodyFactory, EventParser, StreamResult, apply_chat_event, arrived, run_level
from .prompts import load_prompts
from .servers import Server

STREAMS = 8
CHAT, RESPONSES, MESSAGES = "chat", "responses", "messages"
# A palindrome: each kind's mean block position is the same, so a linear drift cancels.
ROUND = (CHAT, RESPONSES, MESSAGES, MESSAGES, RESPONSES, CHAT)
# Each API's finish reason for an answer cut by the length limit.
AT_LIMIT = {"length", "max_output_tokens", "max_tokens"}


def responses_body(model_id: str) -> BodyFactory:
    def make(messages: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
        return {
            "model": model_id,
            "input": messages,
            "max_output_tokens": max_tokens,
            "temperature": 0.0,
            "store": False,  # nothing kept between blocks: the chat side keeps nothing either
            "stream": True,
        }

    return make


def messages_body(model_id: str) -> BodyFactory:
    """Anthropic's system prompt is a field of its own, not a message."""

    def make(messages: list[dict[str, str]], max_tokens: int) -> dict[str, object]:
        system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
        return {
            "model": model_id,
            **({"system": system} if system else {}),
            "messages": [m for m in messages if m["role"] != "system"],
            "max_tokens": max_tokens,
            "temperature": 0.0,
            "stream": True,
        }

    return make


def apply_response_event(result: StreamResult, event: dict[str, Any], now: float) -> None:
    """One of the Responses API's typed events: text deltas, then the final response's usage."""
    kind = event.get("type")
    if kind == "response.output_text.delta" and event.get("delta"):
        arrived(result, str(event["delta"]), now)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        response = event["response"]
        details = response.get("incomplete_details") or {}
        result.finish_reason = str(details.get("reason") or response["status"])
        if kind == "response.failed":
            result.error = str(response.get("error"))[:200]
        usage = response.get("usage")
        if isinstance(usage, dict):
            result.completion_tokens = int(usage["output_tokens"])
            result.prompt_tokens = usage.get("input_tokens")
            result.cached_tokens = (usage.get("input_tokens_details") or {}).get("cached_tokens")
    elif kind == "error":
        result.error = str(event.get("message"))[:200]


def apply_message_event(result: StreamResult, event: dict[str, Any], now: float) -> None:
    """One of the Messages API's events: the prompt's usage first, text deltas, the stop reason
    and output tokens last."""
    kind = event.get("type")
    if kind == "message_start":
        usage = event["message"]["usage"]
        # As Anthropic counts: input_tokens are those not read from the cache.
        result.cached_tokens = int(usage.get("cache_read_input_tokens") or 0)
        result.prompt_tokens = int(usage["input_tokens"]) + result.cached_tokens
    elif kind == "content_block_delta" and event["delta"].get("type") == "text_delta":
        if event["delta"].get("text"):
            arrived(result, str(event["delta"]["text"]), now)
    elif kind == "message_delta":
        result.finish_reason = event["delta"].get("stop_reason")
        result.completion_tokens = int(event["usage"]["output_tokens"])
    elif kind == "error":
        result.error = str(event.get("error"))[:200]


@dataclass(frozen=True)
class Api:
    path: str
    apply: EventParser
    body: BodyFactory


def apis(server: Server) -> dict[str, Api]:
    """The three routes, each with its events' parser and its request body for our server."""
    return {
        CHAT: Api(CHAT_PATH, apply_chat_event, server.body_factory(fixed_length=False)),
        RESPONSES: Api("/v1/responses", apply_response_event, responses_body(server.model_id)),
        MESSAGES: Api("/v1/messages", apply_message_event, messages_body(server.model_id)),
    }


def measure(server: Server, tag: str, max_tokens: int, cap_s: float) -> dict[str, Any]:
    """One ROUND against a started, warmed server: one level summary per block, with its kind,
    every stream's token count and finish reason."""
    routes = apis(server)
    prompts = load_prompts(tag, STREAMS)
    for api in routes.values():  # warm-up: every route once, and the prompts into the cache
        asyncio.run(run_level(server.base_url, api.body, prompts, 8, cap_s, path=api.path, apply=api.apply))
    blocks = []
    for kind in ROUND:
        api = routes[kind]
        level = asyncio.run(
            run_level(server.base_url, api.body, prompts, max_tokens, cap_s, path=api.path, apply=api.apply)
        )
        blocks.append(
            {
                "kind": kind,
                **level.summary(),
                "completion_tokens": [s.completion_tokens for s in level.streams],
                "finish_reasons": [s.finish_reason for s in level.streams],
                "at_limit": sum(s.finish_reason in AT_LIMIT for s in level.streams),
            }
        )
    return {"streams": STREAMS, "max_tokens": max_tokens, "blocks": blocks}


def describe(block: dict[str, Any]) -> str:
    tokens = block["completion_tokens"]
    errors = f", errors: {len(block['errors'])} ({block['errors'][0]})" if block["errors"] else ""
    return (
        f"{block['kind']:>9}: {block['tokens_per_s']:6.1f} tok/s, {sum(tokens) / len(tokens):.0f} tokens "
        f"a stream, {block['at_limit']}/{len(tokens)} at the limit{errors}"
    )

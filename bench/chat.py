"""The chat loads of issue 13, prefill-bound where the sweep is decode-bound.

- Conversations: N at once, each of T turns with a ~350-token system prompt of its own; every
  turn sends the whole history, the previous answers as the server returned them (as the chat
  page does), answers of at most 48 tokens. A server that keeps a conversation's tokens
  prefills only the new turn; one that does not prefills the whole history again.
- Shared system prompt: 16 users with the same 1,000-token system prompt arrive together; a
  prefix cache prefills it once.
- Long paste: a 7,900-token prompt arrives while a few streams decode, and short questions
  follow it: their time to first token, and the running streams' inter-token gaps while the
  paste is prefilled, show whether one long prompt holds everyone else up.

Each load returns a JSON-ready summary; figures.py reads them.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

import httpx

from .load import CHAT_PATH, BodyFactory, StreamResult, stream_chat
from .prompts import LongPrompts, chat_prompt, user_turn
from .servers import Server, Sizing

SYSTEM_TOKENS = 350
SHARED_TOKENS = 1000
SHARED_USERS = 16
PASTE_TOKENS = 7900
PASTE_RUNNING = 4  # streams decoding when the paste arrives
PASTE_SHORT_AFTER_S = (0.25, 0.5, 1.0, 2.0)  # when the short questions follow the paste
PASTE_RUNNING_TOKENS = 1024  # enough to outlast the paste's prefill; stopped when it ends
SHORT_TOKENS = 16  # answer length of the paste and the short questions: their TTFT is the point
TEMPLATE_TOKENS = 40  # what the chat template and a short question add to a turn, at most


def _client(streams: int, cap_s: float) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=streams + 4, max_keepalive_connections=streams + 4)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(cap_s + 5, connect=10))


def _stream_summary(s: StreamResult) -> dict[str, Any]:
    return {
        "ttft_s": s.ttft,
        "wait_s": s.end - s.sent,  # a lower bound of the TTFT of a stream that never got a token
        "prompt_tokens": s.prompt_tokens,
        "cached_tokens": s.cached_tokens,
        "completion_tokens": s.completion_tokens,
        "error": s.error,
    }


@dataclass(frozen=True)
class ChatLoad:
    kind: str  # "conversations", "shared" or "paste"
    sizing: Sizing  # what a server started for this load alone must hold
    count: int = 0  # conversations at once

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.count}" if self.count else self.kind


def chat_loads(counts: list[int], turns: int, max_tokens: int) -> list[ChatLoad]:
    conversation = SYSTEM_TOKENS + turns * (TEMPLATE_TOKENS + max_tokens)
    shared = SHARED_TOKENS + TEMPLATE_TOKENS + max_tokens
    paste = PASTE_TOKENS + TEMPLATE_TOKENS + SHORT_TOKENS
    others = PASTE_RUNNING * (TEMPLATE_TOKENS + PASTE_RUNNING_TOKENS)
    others += len(PASTE_SHORT_AFTER_S) * (TEMPLATE_TOKENS + SHORT_TOKENS)
    return [
        *(ChatLoad("conversations", Sizing(c, conversation, c * conversation), c) for c in counts),
        ChatLoad("shared", Sizing(SHARED_USERS, shared, SHARED_USERS * shared)),
        ChatLoad("paste", Sizing(PASTE_RUNNING + 1 + len(PASTE_SHORT_AFTER_S), paste, paste + others)),
    ]


def measure(
    load: ChatLoad, server: Server, prompts: LongPrompts, tag: str, turns: int, max_tokens: int, cap_s: float
) -> dict[str, Any]:
    """Run one chat load against a started, warmed server. Answers are greedy and end at EOS or
    max_tokens, as a chat page asks; the paste load's background streams are fixed-length."""
    body = server.body_factory(fixed_length=False)
    tag = f"{tag}-{load.name}"
    if load.kind == "conversations":
        run = conversations(server.base_url, body, prompts, tag, load.count, turns, max_tokens, cap_s)
    elif load.kind == "shared":
        run = shared_prompt(server.base_url, body, prompts, tag, max_tokens, cap_s)
    else:
        run = long_paste(server.base_url, body, server.body_factory(), prompts, tag, cap_s)
    return asyncio.run(run)


async def _converse(
    client: httpx.AsyncClient,
    url: str,
    make_body: BodyFactory,
    system: str,
    index: int,
    turns: int,
    max_tokens: int,
    deadline: float,
) -> list[StreamResult]:
    messages = [{"role": "system", "content": system}]
    results = []
    for turn in range(turns):
        messages.append({"role": "user", "content": user_turn(index, turn)})
        result = await stream_chat(client, url, make_body(list(messages), max_tokens), max_tokens, deadline)
        results.append(result)
        if result.error:
            break  # the history would miss this answer; later turns would measure another load
        messages.append({"role": "assistant", "content": result.text})
    return results


async def conversations(
    base_url: str,
    make_body: BodyFactory,
    prompts: LongPrompts,
    tag: str,
    count: int,
    turns: int,
    max_tokens: int,
    cap_s: float,
) -> dict[str, Any]:
    """`count` conversations at once, each turn sent as soon as the previous answer ended."""
    systems = [prompts.system_prompt(f"{tag}-{i}", SYSTEM_TOKENS) for i in range(count)]
    deadline = time.monotonic() + cap_s
    async with _client(count, cap_s) as client:
        start = time.perf_counter()
        chats = await asyncio.gather(
            *(
                _converse(client, base_url + CHAT_PATH, make_body, system, i, turns, max_tokens, deadline)
                for i, system in enumerate(systems)
            )
        )
    streams = [s for chat in chats for s in chat]
    wall = max(s.end for s in streams) - start
    tokens = sum(s.completion_tokens for s in streams)
    return {
        "conversations": count,
        "turns": turns,
        "wall_s": wall,
        "tokens": tokens,
        "tokens_per_s": tokens / wall if wall > 0 else 0.0,
        # turn -> one entry per conversation that reached it
        "by_turn": [[_stream_summary(chat[t]) for chat in chats if len(chat) > t] for t in range(turns)],
        "errors": [s.error for s in streams if s.error],
    }


async def shared_prompt(
    base_url: str, make_body: BodyFactory, prompts: LongPrompts, tag: str, max_tokens: int, cap_s: float
) -> dict[str, Any]:
    """SHARED_USERS users with one SHARED_TOKENS-token system prompt, all sent at once."""
    system = prompts.system_prompt(tag, SHARED_TOKENS)
    chats = [[{"role": "system", "content": system}, chat_prompt(tag, i)[1]] for i in range(SHARED_USERS)]
    deadline = time.monotonic() + cap_s
    async with _client(SHARED_USERS, cap_s) as client:
        streams = await asyncio.gather(
            *(
                stream_chat(client, base_url + CHAT_PATH, make_body(c, max_tokens), max_tokens, deadline)
                for c in chats
            )
        )
    return {
        "users": SHARED_USERS,
        "shared_prefix_tokens": prompts.shared_prefix(chats[0], chats[1]),
        "streams": [_stream_summary(s) for s in streams],
        "errors": [s.error for s in streams if s.error],
    }


async def _after(delay_s: float, coroutine: Coroutine[Any, Any, StreamResult]) -> StreamResult:
    await asyncio.sleep(delay_s)
    return await coroutine


async def long_paste(
    base_url: str,
    make_body: BodyFactory,
    fixed_body: BodyFactory,
    prompts: LongPrompts,
    tag: str,
    cap_s: float,
) -> dict[str, Any]:
    """PASTE_RUNNING streams decode; 1 s later the paste arrives, then the short questions."""
    paste = prompts.make(f"{tag}-paste", PASTE_TOKENS)
    stop = asyncio.Event()
    deadline = time.monotonic() + cap_s
    url = base_url + CHAT_PATH
    async with _client(PASTE_RUNNING + 1 + len(PASTE_SHORT_AFTER_S), cap_s) as client:

        def short(index: int, tokens: int, body: BodyFactory) -> Coroutine[Any, Any, StreamResult]:
            return stream_chat(client, url, body(chat_prompt(tag, index), tokens), tokens, deadline, stop)

        running = [
            asyncio.create_task(short(i, PASTE_RUNNING_TOKENS, fixed_body)) for i in range(PASTE_RUNNING)
        ]
        shorts = [
            asyncio.create_task(_after(1.0 + delay, short(PASTE_RUNNING + i, SHORT_TOKENS, make_body)))
            for i, delay in enumerate(PASTE_SHORT_AFTER_S)
        ]
        pasted = await _after(
            1.0, stream_chat(client, url, make_body(paste, SHORT_TOKENS), SHORT_TOKENS, deadline)
        )
        asked = await asyncio.gather(*shorts)
        stop.set()  # the running streams have served their purpose
        background = await asyncio.gather(*running)
    # The gaps that overlap the paste's prefill (its request to its first token), the one
    # that spans a prefill which stalls decoding included.
    window_end = pasted.first if pasted.first is not None else pasted.end
    gaps = [
        b - a
        for s in background
        for a, b in zip(s.arrivals, s.arrivals[1:], strict=False)
        if a < window_end and b > pasted.sent
    ]
    return {
        "paste": _stream_summary(pasted),
        "short": [_stream_summary(s) for s in asked],
        "running_itl_s": gaps,
        "running_tokens": sum(len(s.arrivals) for s in background),
        "errors": [s.error for s in [pasted, *asked, *background] if s.error],
    }


def _ttft_text(entries: list[dict[str, Any]]) -> str:
    values = sorted(e["ttft_s"] for e in entries if e["ttft_s"] is not None)
    return f"{values[len(values) // 2]:.2f} s" if values else "–"


def describe(load: ChatLoad, summary: dict[str, Any]) -> str:
    """One line for the console while the bench runs."""
    errors = f", errors: {len(summary['errors'])} ({summary['errors'][0]})" if summary["errors"] else ""
    if load.kind == "conversations":
        by_turn = summary["by_turn"]
        return (
            f"{load.count} conversation(s): TTFT median turn 1 {_ttft_text(by_turn[0])}, "
            f"turn {len(by_turn)} {_ttft_text(by_turn[-1])}, {summary['tokens_per_s']:.1f} tokens/s{errors}"
        )
    if load.kind == "shared":
        cached = sum(s["cached_tokens"] or 0 for s in summary["streams"])
        return f"shared system prompt: TTFT median {_ttft_text(summary['streams'])}, cached {cached}{errors}"
    return (
        f"long paste: paste TTFT {_ttft_text([summary['paste']])}, short TTFT median "
        f"{_ttft_text(summary['short'])}, {len(summary['running_itl_s'])} running gaps{errors}"
    )

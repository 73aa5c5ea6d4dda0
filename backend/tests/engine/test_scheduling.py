"""Scheduling: short prompts beside long ones, the KV budget, cancellation in every state.

Order of events and engine state, never wall time."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from app.engine.engine import Engine, RequestTooLarge
from app.engine.sampling import SamplingParams

from .conftest import chat_ids, collect, run_together, running_engine, wait_until

LONG_TEXT = "Summarise this report: " + "Sales rose in the north while costs fell in the south. " * 110


def test_a_short_prompt_is_answered_while_a_long_one_is_still_prefilling(
    engine: Engine, model_and_tokenizer
) -> None:
    _, tokenizer = model_and_tokenizer
    long = chat_ids(tokenizer, f"{uuid.uuid4().hex} {LONG_TEXT}")
    assert len(long) > 4 * engine.config.max_num_batched_tokens
    wait_until(lambda: engine.idle)
    order: list[str] = []

    async def main() -> None:
        steps = engine.stats.prefill_steps
        long_stream = engine.generate(long, SamplingParams(max_tokens=2))
        await asyncio.to_thread(wait_until, lambda: engine.stats.prefill_steps > steps)
        short_stream = engine.generate(chat_ids(tokenizer, "Hi!"), SamplingParams(max_tokens=2))

        async def first(name: str, stream) -> None:
            async for _ in stream:
                order.append(name)

        await asyncio.gather(first("long", long_stream), first("short", short_stream))

    asyncio.run(main())
    assert order[0] == "short"


def test_a_prompt_larger_than_the_whole_cache_is_refused(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    with running_engine(model, tokenizer, kv_cache_memory_gb=0.03) as small:
        too_long = chat_ids(tokenizer, LONG_TEXT)
        assert len(too_long) >= small.kv_capacity_tokens
        with pytest.raises(RequestTooLarge, match="KV cache"):
            small.submit(too_long, SamplingParams(max_tokens=1), lambda out: None)
        assert small.idle


def test_requests_beyond_the_budget_wait_or_are_preempted_and_all_complete(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    # Room for two of the four at once (about 350 tokens), so running ones must be preempted.
    with running_engine(model, tokenizer, kv_cache_memory_gb=0.015) as small:
        params = SamplingParams(max_tokens=60, ignore_eos=True, temperature=0.0)
        jobs = [(chat_ids(tokenizer, f"{i}: " + LONG_TEXT[:300]), params) for i in range(4)]
        assert max(len(ids) + 60 for ids, _ in jobs) < small.kv_capacity_tokens
        assert sum(len(ids) + 60 for ids, _ in jobs) > 1.5 * small.kv_capacity_tokens
        results = run_together(small, jobs)
        assert all(len(r.token_ids) == 60 and r.finish_reason == "length" for r in results)
        assert small.stats.preempted > 0
        assert small.blocks.in_use == 0 and small.idle


def test_a_waiting_request_that_is_cancelled_leaves_the_queue_at_once(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    with running_engine(model, tokenizer, max_num_seqs=1) as one:
        ids = chat_ids(tokenizer, "Write a very long story.")

        async def main() -> None:
            runner = one.generate(ids, SamplingParams(max_tokens=4000, ignore_eos=True))
            await anext(runner)
            waiter = one.generate(ids, SamplingParams(max_tokens=4))
            await asyncio.to_thread(wait_until, lambda: one.stats.waiting == 1)
            assert one.in_flight == 2
            await waiter.aclose()
            assert one.in_flight == 1  # counted out before the engine's next step
            await asyncio.to_thread(wait_until, lambda: one.stats.waiting == 0)
            await runner.aclose()

        asyncio.run(main())
        wait_until(lambda: one.blocks.in_use == 0 and one.stats.running == 0)
        assert one.stats.aborted == 2


def test_a_request_cancelled_while_prefilling_frees_its_blocks(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    long = chat_ids(tokenizer, f"{uuid.uuid4().hex} {LONG_TEXT}")
    wait_until(lambda: engine.idle and engine.blocks.in_use == 0)
    aborted = engine.stats.aborted

    async def main() -> None:
        steps = engine.stats.prefill_steps
        stream = engine.generate(long, SamplingParams(max_tokens=2))
        await asyncio.to_thread(wait_until, lambda: engine.stats.prefill_steps > steps)
        assert engine.blocks.in_use > 0 and engine.stats.running == 1
        await stream.aclose()
        assert engine.idle

    asyncio.run(main())
    wait_until(lambda: engine.blocks.in_use == 0 and engine.stats.running == 0)
    assert engine.stats.aborted == aborted + 1
    # The engine serves the next request as usual.
    assert len(asyncio.run(collect(engine, long[:50], SamplingParams(max_tokens=3))).token_ids) == 3


def test_short_prompts_arriving_beside_a_decoding_stream_are_prefilled_whole(
    engine: Engine, model_and_tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, tokenizer = model_and_tokenizer
    wait_until(lambda: engine.idle)
    cut: list[int] = []  # prompts given fewer than all their remaining tokens in a chunk
    plan_chunk = engine.scheduler.plan_chunk

    def recording() -> list:
        chunk = plan_chunk()
        cut.extend(n for seq, n in chunk if n < len(seq.tokens) - seq.num_cached and seq.num_output == 0)
        return chunk

    monkeypatch.setattr(engine.scheduler, "plan_chunk", recording)
    questions = ["What is 2 + 2?", "Name a colour.", "Say hello.", "What day follows Monday?"]

    async def main() -> None:
        running = engine.generate(
            chat_ids(tokenizer, "Write a very long story."), SamplingParams(max_tokens=400, ignore_eos=True)
        )
        await anext(running)  # decoding now
        shorts = [
            engine.generate(chat_ids(tokenizer, f"{uuid.uuid4().hex[:8]} {q}"), SamplingParams(max_tokens=1))
            for q in questions
        ]
        for stream in shorts:
            async for _ in stream:
                pass
        await running.aclose()

    asyncio.run(main())
    # However slow the decoding step makes the measured rate, a short prompt is never cut.
    assert cut == []

"""Continuous batching: a request gives the same tokens alone or beside others with other settings."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from app.engine import engine as engine_module
from app.engine.engine import Engine, EngineBusy
from app.engine.sampling import SamplingParams
from app.engine.scheduler import Scheduler

from .conftest import chat_ids, collect, run_together, running_engine, wait_until

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "用中文介绍一下你自己。",
    "List three colors.",
    "Explain what a CPU does in one sentence.",
    "Translate 'good morning' into Spanish.",
    "What is 12 times 12?",
    "Name a famous painter.",
]


def test_greedy_and_seeded_outputs_equal_alone_and_batched(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    jobs = []
    for i, text in enumerate(PROMPTS):
        # Mixed settings in one batch: greedy, seeded samples, penalties, top-k/top-p.
        params = SamplingParams(
            max_tokens=12 + i,
            temperature=0.0 if i % 2 == 0 else 0.9,
            top_p=1.0 if i % 3 else 0.9,
            top_k=0 if i % 4 else 40,
            seed=1000 + i,
            repetition_penalty=1.0 if i != 6 else 1.3,
            frequency_penalty=0.0 if i != 4 else 0.5,
        )
        jobs.append((chat_ids(tokenizer, text), params))
    batched = run_together(engine, jobs)
    for job, together in zip(jobs, batched, strict=True):
        alone = run_together(engine, [job])[0]
        assert alone.token_ids == together.token_ids
        assert alone.text == together.text
        assert len(together.token_ids) <= job[1].max_tokens


def test_stop_strings_and_max_tokens_inside_a_batch(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    ids = chat_ids(tokenizer, "Count from 1 to 20, one number per line.")
    free = run_together(engine, [(ids, SamplingParams(max_tokens=40, temperature=0.0))])[0]
    assert "4" in free.text
    stop = free.text[free.text.index("4") : free.text.index("4") + 3]  # spans several tokens
    results = run_together(
        engine,
        [
            (ids, SamplingParams(max_tokens=40, temperature=0.0, stop=(stop,))),
            (ids, SamplingParams(max_tokens=5, temperature=0.0)),
            (ids, SamplingParams(max_tokens=7, temperature=0.0, ignore_eos=True)),
        ],
    )
    assert results[0].finish_reason == "stop"
    assert stop not in results[0].text
    assert results[0].text == free.text[: free.text.index(stop)]
    assert results[1].finish_reason == "length" and len(results[1].token_ids) == 5
    assert results[2].finish_reason == "length" and len(results[2].token_ids) == 7


def test_long_prompt_is_prefilled_in_chunks_beside_running_streams(
    engine: Engine, model_and_tokenizer
) -> None:
    _, tokenizer = model_and_tokenizer
    short = chat_ids(tokenizer, "Say something nice.")
    long = chat_ids(tokenizer, "Summarise: " + "The quick brown fox jumps over the lazy dog. " * 60)
    assert len(long) > 2 * engine.config.max_num_batched_tokens
    greedy = SamplingParams(max_tokens=10, temperature=0.0)
    shared, steps = engine.stats.shared_passes, engine.stats.prefill_steps
    both = run_together(engine, [(long, greedy), (short, greedy)])
    # The short one decodes while the long one's chunks are prefilled, in the same forward passes
    # on the fast path (unless chunks prefill on dense weights: then in passes of their own);
    # each gets the tokens it gets alone.
    assert engine.stats.prefill_steps - steps > 2
    assert engine.stats.shared_passes > shared or engine.runner.dense
    assert both[0].token_ids == run_together(engine, [(long, greedy)])[0].token_ids
    assert both[1].token_ids == run_together(engine, [(short, greedy)])[0].token_ids
    # Its blocks are given back (kept as cache, not in use) once nothing runs.
    wait_until(lambda: engine.blocks.in_use == 0)


def test_a_burst_reaching_an_idle_engine_shares_one_prefill(
    engine: Engine, model_and_tokenizer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests handed over one by one (as the HTTP layer does) are prefilled together, not the
    first alone with the rest queued behind it."""
    _, tokenizer = model_and_tokenizer
    # A wider window than the default, so a loaded machine cannot stretch the gaps past it.
    monkeypatch.setattr(engine_module, "BURST_GAP_S", 0.1)
    monkeypatch.setattr(engine_module, "BURST_MAX_S", 2.0)
    wait_until(lambda: engine.idle)
    before = engine.stats.prefill_steps

    async def burst() -> None:
        streams = []
        for text in PROMPTS[:4]:
            streams.append(engine.generate(chat_ids(tokenizer, text), SamplingParams(max_tokens=2)))
            await asyncio.sleep(0.01)
        for stream in streams:
            async for _ in stream:
                pass

    asyncio.run(burst())
    assert engine.stats.prefill_steps - before == 1


def test_cancelled_streams_free_their_slots(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    ids = chat_ids(tokenizer, "Write a very long story.")
    aborted_before = engine.stats.aborted

    async def abandon() -> None:
        streams = [engine.generate(ids, SamplingParams(max_tokens=4000, ignore_eos=True)) for _ in range(3)]
        for stream in streams:
            await anext(stream)  # running, with a first token out
        assert engine.stats.running == 3
        for stream in streams:
            await stream.aclose()
        await asyncio.to_thread(wait_until, lambda: engine.stats.running == 0 and engine.idle)

    asyncio.run(abandon())
    assert engine.stats.aborted - aborted_before == 3
    # The slots are usable again and the next answer is unaffected.
    greedy = SamplingParams(max_tokens=8, temperature=0.0)
    assert len(run_together(engine, [(ids, greedy)])[0].token_ids) == 8


def test_full_queue_is_refused_and_leaks_no_slot(engine: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    ids = chat_ids(tokenizer, "Write a very long story.")
    capacity = engine.config.max_num_seqs + engine.config.max_waiting
    wait_until(lambda: engine.idle)  # requests of earlier tests are all accounted for

    async def overfill() -> None:
        streams = [
            engine.generate(ids, SamplingParams(max_tokens=2000, ignore_eos=True)) for _ in range(capacity)
        ]
        with pytest.raises(EngineBusy):
            engine.generate(ids, SamplingParams(max_tokens=4))
        for stream in streams:
            await stream.aclose()

    asyncio.run(overfill())
    wait_until(lambda: engine.idle)
    result = asyncio.run(collect(engine, ids, SamplingParams(max_tokens=4, temperature=0.0)))
    assert len(result.token_ids) == 4


def test_fast_path_gives_the_tokens_of_the_transformers_forward(engine: Engine, model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    assert engine.fast is not None, "the default model should take the fast path"
    with running_engine(model, tokenizer, fast_path=False) as plain:
        jobs = [
            (
                chat_ids(tokenizer, text),
                SamplingParams(max_tokens=16, temperature=0.0 if i % 2 else 0.8, seed=i),
            )
            for i, text in enumerate(PROMPTS)
        ]
        fast = run_together(engine, jobs)
        slow = run_together(plain, jobs)
        assert [r.token_ids for r in fast] == [r.token_ids for r in slow]


def test_decode_rows_are_grouped_by_length_only_where_it_saves_work() -> None:
    def rows(*lengths: int) -> list[SimpleNamespace]:
        return [SimpleNamespace(num_cached=n) for n in lengths]

    def split(batch: list[SimpleNamespace]) -> list[list[int]]:
        return [[s.num_cached for s in group] for group in Scheduler.decode_groups(batch)]  # type: ignore[arg-type]

    # Similar lengths attend together; one long conversation attends apart from short streams.
    assert split(rows(120, 100, 110, 90)) == [[90, 100, 110, 120]]
    assert split(rows(100, 1500, 100, 100, 100)) == [[100, 100, 100, 100], [1500]]
    assert split(rows(40, 900, 2000, 50, 950)) == [[40, 50], [900, 950], [2000]]
    assert split(rows(300)) == [[300]]

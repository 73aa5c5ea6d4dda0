"""The scheduler without a model: its plans, admission, back-pressure, preemption and states.

A pass is simulated by reporting it back as the engine does (prefilled, decoded) and appending a
token to each sequence that sampled one; the real passes run in test_scheduling.py."""

from __future__ import annotations

import pytest

from app.engine.blocks import BLOCK_SIZE, BlockManager, block_hashes
from app.engine.config import EngineConfig
from app.engine.prefix_cache import WARM_TOKENS, PrefixCache
from app.engine.scheduler import (
    MIN_CHUNK_TOGETHER,
    PREFILL_SLICE_S,
    SHORT_PROMPT_TOKENS,
    EngineStats,
    Scheduler,
    StepPlan,
)
from app.engine.sequence import Sequence, Status
from app.engine.speculative import Proposer


def config(**overrides: object) -> EngineConfig:
    options: dict = dict(
        max_model_len=2048,
        max_num_seqs=8,
        max_waiting=4,
        max_num_batched_tokens=256,
        kv_cache_memory_gb=1.0,
        enable_prefix_caching=True,
        queue_timeout_s=60,
        fast_path=True,
        num_threads=1,
    )
    return EngineConfig(**(options | overrides))


def scheduler(
    num_blocks: int = 200,
    together: bool = True,
    name_answers: bool = True,
    proposer: Proposer | None = None,
    auto: bool = False,
    **overrides: object,
) -> Scheduler:
    blocks = BlockManager(num_blocks, caching=True)
    prefix = PrefixCache(blocks, name_answers)
    stats = EngineStats()
    return Scheduler(config(**overrides), blocks, prefix, together, True, stats, 2048, proposer, auto=auto)


def sequence(name: str, length: int, first: int = 0, arrival: float = 0.0) -> Sequence:
    tokens = list(range(first, first + length))
    hashes = block_hashes(tokens, length)
    return Sequence(request_id=name, tokens=tokens, num_prompt=length, hashes=hashes, arrival=arrival)


def step(sched: Scheduler, elapsed: float = 0.1) -> list[StepPlan]:
    """One engine step: each pass reported back, a token appended to each row that sampled."""
    plans = []
    for plan in sched.steps():
        plans.append(plan)
        if plan.chunk:
            sched.prefilled(plan, elapsed, [7] * len(plan.completing))
        if plan.decode:
            sched.decoded(plan, [7] * len(plan.decoding))
    return plans


def test_a_request_goes_waiting_prefilling_decoding_finished_with_its_blocks_given_back() -> None:
    sched = scheduler()
    seq = sequence("a", 40)
    sched.add(seq)
    assert seq.status is Status.WAITING and sched.get("a") is seq
    sched.admit()
    assert seq.status is Status.PREFILLING and seq.promised == 3 and sched.stats.running == 1
    (plan,) = step(sched)
    assert plan.chunk == [(seq, 40)] and plan.decode == [] and plan.completing == [0]
    assert seq.status is Status.DECODING and seq.num_cached == 40 and len(seq.table) == 3
    (plan,) = step(sched)
    assert plan.chunk == [] and plan.decode == [[seq]] and seq.num_cached == 41
    sched.remove(seq)
    assert seq.status is Status.FINISHED and sched.get("a") is None
    assert sched.blocks.in_use == 0 and sched.stats.running == 0
    # Its two full prompt blocks stay cached: the same prompt again reuses them.
    again = sequence("b", 40)
    sched.add(again)
    sched.admit()
    assert again.num_cached == again.cached_tokens == 2 * BLOCK_SIZE


def test_short_prompts_are_prefilled_together_and_a_long_one_is_cut_to_the_measured_slice() -> None:
    sched = scheduler()
    long, short1, short2 = sequence("long", 900, 1000), sequence("s1", 20, 5000), sequence("s2", 30, 6000)
    for seq in (long, short1, short2):
        sched.add(seq)
    sched.admit()
    (plan,) = step(sched)
    # Shortest first, padded to one length, up to max_num_batched_tokens: the long one waits.
    assert plan.chunk == [(short1, 20), (short2, 30)] and plan.width == 30
    # The next step decodes both beside a chunk of the long prompt (one pass), sized from the
    # measured rate to PREFILL_SLICE_S, at least MIN_CHUNK_TOGETHER.
    rate = sched.prefill_rate
    assert rate is not None
    (plan,) = step(sched)
    assert plan.chunk == [(long, max(MIN_CHUNK_TOGETHER, min(256, int(rate * PREFILL_SLICE_S))))]
    assert plan.decoding == [short1, short2] and sched.stats.shared_passes == 1
    assert long.status is Status.PREFILLING and plan.completing == []


def test_a_short_prompt_is_never_cut_however_slow_the_passes() -> None:
    sched = scheduler()
    talker, question = sequence("t", 20), sequence("q", SHORT_PROMPT_TOKENS, 500)
    sched.add(talker)
    sched.admit()
    step(sched, elapsed=100.0)  # a very slow pass: the rate allows a few tokens a slice
    sched.add(question)
    sched.admit()
    (plan,) = step(sched, elapsed=100.0)
    assert plan.chunk == [(question, SHORT_PROMPT_TOKENS)]


def test_apart_the_chunk_runs_alone_and_a_prompt_it_completes_decodes_in_the_same_step() -> None:
    sched = scheduler(together=False)
    first, second = sequence("a", 20), sequence("b", 24, 100)
    sched.add(first)
    sched.admit()
    step(sched)
    sched.add(second)
    sched.admit()
    chunk, decode = step(sched)
    assert chunk.chunk == [(second, 24)] and chunk.decode == []
    assert decode.chunk == [] and decode.decoding == [first, second]
    assert sched.stats.shared_passes == 0


def test_admission_waits_for_blocks_in_order_and_for_a_slot() -> None:
    # 9 usable blocks: the first prompt takes 6, the second needs 4 and waits; the third, small
    # enough to fit, does not overtake it.
    sched = scheduler(num_blocks=10)
    big, bigger, small = sequence("a", 90), sequence("b", 60, 1000), sequence("c", 10, 2000)
    for seq in (big, bigger, small):
        sched.add(seq)
    sched.admit()
    assert [s.status for s in (big, bigger, small)] == [Status.PREFILLING, Status.WAITING, Status.WAITING]
    assert list(sched.waiting) == [bigger, small]
    sched.remove(big)
    sched.admit()
    assert bigger.status is small.status is Status.PREFILLING
    one_slot = scheduler(max_num_seqs=1)
    for seq in (sequence("x", 10), sequence("y", 10, 50)):
        one_slot.add(seq)
    one_slot.admit()
    assert one_slot.stats.running == 1 and one_slot.stats.waiting == 1


def test_a_prompt_sharing_a_long_prefix_being_prefilled_waits_for_it_without_blocking_others() -> None:
    sched = scheduler()
    shared = list(range(300))
    first, second = sequence("a", 320), sequence("b", 320)
    second.tokens[-10:] = [9999] * 10
    second.hashes = block_hashes(second.tokens, 320)
    other = sequence("c", 20, 5000)
    assert first.tokens[:300] == second.tokens[:300] == shared
    sched.add(first)
    sched.admit()
    step(sched)  # 256 of its tokens: the prefix is pending
    for seq in (second, other):
        sched.add(seq)
    sched.admit()
    assert second.status is Status.WAITING and other.status is Status.PREFILLING
    while first.status is Status.PREFILLING:
        step(sched)
    sched.admit()
    assert second.status is Status.PREFILLING and second.cached_tokens == 19 * BLOCK_SIZE


def test_a_decoding_sequence_without_blocks_preempts_the_newest_which_prefills_again_first() -> None:
    # 4 usable blocks: two prompts of 2 blocks each; the older one's next token needs a third.
    sched = scheduler(num_blocks=5)
    old, new = sequence("old", 32, arrival=1.0), sequence("new", 30, 100, arrival=2.0)
    for seq in (old, new):
        sched.add(seq)
    sched.admit()
    step(sched)
    assert old.num_cached == 32 and len(old.tokens) == 33 and sched.blocks.in_use == 4
    (plan,) = step(sched)
    assert sched.stats.preempted == 1 and new.status is Status.PREEMPTED
    assert plan.decoding == [old] and new.num_cached == 0 and new.table == []
    assert list(sched.waiting) == [new]
    # A preempted request was accepted: it never expires in the queue.
    assert sched.expired(now=1e9) == []
    sched.remove(old)
    sched.admit()
    assert new.status is Status.PREFILLING
    (plan,) = step(sched)
    # Its prompt and the token it had generated, less the prompt's full block the cache kept.
    assert plan.chunk == [(new, 31 - BLOCK_SIZE)] and new.num_cached == len(new.tokens) - 1


def test_a_waiting_request_expires_after_the_queue_timeout() -> None:
    sched = scheduler(max_num_seqs=1, queue_timeout_s=5)
    running, waiting = sequence("a", 10, arrival=0.0), sequence("b", 10, 50, arrival=1.0)
    for seq in (running, waiting):
        sched.add(seq)
    sched.admit()
    assert sched.expired(now=5.5) == [] and sched.expired(now=6.5) == [waiting]
    sched.remove(waiting)
    assert waiting.status is Status.FINISHED and list(sched.waiting) == []


def test_answers_are_named_as_they_fill_or_queued_for_warming() -> None:
    named = scheduler(name_answers=True)
    seq = sequence("a", 20)
    named.add(seq)
    named.admit()
    for _ in range(13):
        step(named)
    assert seq.num_cached == 32 and seq.num_named == 2 and len(seq.hashes) == 2
    warming = scheduler(name_answers=False)
    prefix = warming.prefix
    seq = sequence("b", 20, 100)
    warming.add(seq)
    warming.admit()
    step(warming)
    assert seq.warm_from == BLOCK_SIZE and seq.num_named == 1
    while len(seq.tokens) - BLOCK_SIZE < WARM_TOKENS:
        seq.tokens.append(7)
        prefix.generated(seq, conversation=True)
    assert list(prefix.warm_jobs) == [seq.tokens[: BLOCK_SIZE + WARM_TOKENS]]
    warm = prefix.warm_sequence(prefix.warm_jobs[0])
    assert warm is not None and warm.num_cached == BLOCK_SIZE and warm.promised == 2
    warming.grow(warm, len(warm.tokens))
    prefix.warmed(warm)
    warming.blocks.release(warm.table, warm.promised)
    assert len(warming.blocks.lookup(warm.hashes)) == 3
    assert prefix.warm_sequence(warm.tokens) is None  # all cached now


@pytest.mark.parametrize("together", [True, False])
def test_every_block_is_given_back_when_all_end(together: bool) -> None:
    sched = scheduler(num_blocks=12, together=together)
    seqs = [sequence(str(i), 20 + 7 * i, 100 * i, arrival=float(i)) for i in range(5)]
    for seq in seqs:
        sched.add(seq)
    for _ in range(40):
        sched.admit()
        step(sched)
    assert sched.stats.preempted > 0
    for seq in [*sched.running, *sched.waiting]:
        sched.remove(seq)
    assert sched.blocks.in_use == 0 and sched.blocks.promised == 0 and not sched.busy

"""A request gets the same tokens whatever else happens: alone or beside requests arriving at random
times, cut and continued or whole, from a cached prefix or a cold one, however its prompt was
chunked, with or without the answer cache. test_cpu_classes.py runs this module again as each CPU
class this machine can compute as (cpu.EMULATE)."""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections.abc import Iterator

import pytest
import torch

from app.engine.engine import Engine
from app.engine.quantization import dense_capable
from app.engine.sampling import SamplingParams

from .conftest import Result, chat_ids, collect, load_model, run_together, running_engine, wait_until
from .test_prefix_cache import next_turn

QUESTIONS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "List three colors.",
    "Explain what a CPU does in one sentence.",
    "Name a famous painter.",
    "What is 12 times 12?",
]
PASTE = "The committee met on Tuesday to review the budget, the schedule and the staffing plan. " * 12
# The stress run (bench/determinism.py) repeats the timing-sensitive tests this many times.
REPEAT = int(os.environ.get("INVARIANCE_REPEAT", "1"))


def params_for(i: int, max_tokens: int) -> SamplingParams:
    """Greedy and seeded sampling, alternately."""
    return SamplingParams(max_tokens=max_tokens, temperature=0.0 if i % 2 == 0 else 0.9, seed=100 + i)


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_requests_arriving_at_random_times_get_the_tokens_they_get_alone(
    engine: Engine, model_and_tokenizer, attempt: int
) -> None:
    _, tokenizer = model_and_tokenizer
    nonce = uuid.uuid4().hex
    jobs = [
        (chat_ids(tokenizer, f"[{nonce}] {q}"), params_for(i, 10 + 2 * i)) for i, q in enumerate(QUESTIONS)
    ]
    # A long prompt among them, prefilled in chunks beside the decoding ones.
    jobs.append((chat_ids(tokenizer, f"[{nonce}] {PASTE} Summarise."), params_for(7, 12)))
    seed = int.from_bytes(os.urandom(4))
    delays = [random.Random(seed + i).uniform(0.0, 0.6) for i in range(len(jobs))]

    async def arriving() -> list[Result]:
        async def one(delay: float, ids: list[int], params: SamplingParams) -> Result:
            await asyncio.sleep(delay)
            return await collect(engine, ids, params)

        return await asyncio.gather(*(one(d, ids, p) for d, (ids, p) in zip(delays, jobs, strict=True)))

    together = asyncio.run(arriving())
    for job, result in zip(jobs, together, strict=True):
        assert result.token_ids == run_together(engine, [job])[0].token_ids, f"arrival seed {seed}"


@pytest.fixture(scope="module")
def decoding_weights_model(
    model_and_tokenizer: tuple[torch.nn.Module, object],
) -> tuple[torch.nn.Module, object]:
    """The default model, or where it prefills with dense weights (DENSE_PREFILL on AMX) the same
    one computing prompts with the weights it decodes with: only then is a generated token's
    numbers the same as when it is read back as part of a prompt."""
    model, tokenizer = model_and_tokenizer
    return load_model(dense_prefill="false") if dense_capable(model) else (model, tokenizer)


@pytest.mark.parametrize("caching", [True, False])
def test_a_cut_answer_continues_as_the_whole_answer(decoding_weights_model, caching: bool) -> None:
    model, tokenizer = decoding_weights_model
    ids = chat_ids(tokenizer, f"[{uuid.uuid4().hex}] Tell me a short story about a lighthouse keeper.")
    with running_engine(model, tokenizer, enable_prefix_caching=caching) as engine:
        whole = run_together(engine, [(ids, SamplingParams(max_tokens=40, temperature=0.0, ignore_eos=True))])
        answer = whole[0].token_ids
        for cut in (1, 13, 32):
            params = SamplingParams(max_tokens=len(answer) - cut, temperature=0.0, ignore_eos=True)
            rest = run_together(engine, [(ids + answer[:cut], params)])[0].token_ids
            assert answer[:cut] + rest == answer, cut


def test_a_prompt_gets_the_same_tokens_however_it_is_chunked(model_and_tokenizer) -> None:
    model, tokenizer = model_and_tokenizer
    ids = chat_ids(tokenizer, f"[{uuid.uuid4().hex}] {PASTE} What was reviewed?")
    assert len(ids) > 200
    jobs = [
        (ids, SamplingParams(max_tokens=12, temperature=0.0)),
        (ids, SamplingParams(max_tokens=12, seed=5)),
    ]
    results = []
    for budget in (16, 48, 256):  # chunks of at most this many tokens
        with running_engine(
            model, tokenizer, enable_prefix_caching=False, max_num_batched_tokens=budget
        ) as eng:
            results.append([r.token_ids for r in run_together(eng, jobs)])
    assert results[0] == results[1] == results[2]


@pytest.fixture(scope="module")
def cold(model_and_tokenizer: tuple[torch.nn.Module, object]) -> Iterator[Engine]:
    with running_engine(*model_and_tokenizer, enable_prefix_caching=False) as eng:
        yield eng


@pytest.mark.parametrize("conversation", [False, True])
def test_the_next_turn_gets_a_cold_caches_tokens_with_or_without_the_answer_cache(
    engine: Engine, cold: Engine, model_and_tokenizer, conversation: bool
) -> None:
    """A conversation turn's answer is cached for the next turn (recomputed as a prompt's where
    prompts use other weights), a one-off's is not: the next turn's tokens are a cold cache's."""
    _, tokenizer = model_and_tokenizer
    ids = chat_ids(tokenizer, f"[{uuid.uuid4().hex}] Why is the sky blue?")
    params = SamplingParams(max_tokens=70, temperature=0.0, ignore_eos=True, conversation=conversation)
    first = run_together(engine, [(ids, params)])[0].token_ids
    wait_until(lambda: not engine.prefix.warm_jobs)
    follow = next_turn(tokenizer, ids, first, "Shorter, please.")
    for again in (SamplingParams(max_tokens=12, temperature=0.0), SamplingParams(max_tokens=12, seed=3)):
        assert (
            run_together(engine, [(follow, again)])[0].token_ids
            == run_together(cold, [(follow, again)])[0].token_ids
        )

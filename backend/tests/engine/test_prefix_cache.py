"""Automatic prefix caching: a cache hit gives exactly the tokens of a cold prefill, and says so."""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Iterator

import pytest
import torch

from app.engine.blocks import BLOCK_SIZE, block_hashes
from app.engine.engine import Engine
from app.engine.prefix_cache import WARM_TOKENS
from app.engine.sampling import SamplingParams

from .conftest import Result, run_together, running_engine, wait_until

SYSTEM = "You are a patient tutor. Answer in one short paragraph and use plain words. " * 6
QUESTIONS = ["What is a prime number?", "Why is the sky blue?", "How do bees make honey?"]


@pytest.fixture(scope="module")
def cold(model_and_tokenizer: tuple[torch.nn.Module, object]) -> Iterator[Engine]:
    """The same engine without a prefix cache: every prompt prefilled from its first token."""
    with running_engine(*model_and_tokenizer, enable_prefix_caching=False) as eng:
        yield eng


def template(tokenizer: object, messages: list[dict[str, str]]) -> list[int]:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined]
    return tokenizer.encode(text, add_special_tokens=False)  # type: ignore[attr-defined]


def expected_hit(cached_prompt: list[int], prompt: list[int]) -> int:
    """Whole blocks of the earlier prompt that the new one starts with, short of its last token."""
    common = 0
    for a, b in zip(cached_prompt, prompt, strict=False):
        if a != b:
            break
        common += 1
    return BLOCK_SIZE * min(
        len(cached_prompt) // BLOCK_SIZE, common // BLOCK_SIZE, (len(prompt) - 1) // BLOCK_SIZE
    )


def answer(engine: Engine, ids: list[int], params: SamplingParams) -> tuple[Result, int]:
    """The result and the cached_tokens the engine reported for it."""
    reported: list[int] = []

    async def main() -> Result:
        stream = engine.generate(ids, params)
        tokens: list[int] = []
        text, finish = "", None
        async for out in stream:
            tokens += out.token_ids
            text += out.text
            finish = out.finish_reason
            reported.append(out.cached_tokens)
        return Result(tokens, text, finish, [])

    return asyncio.run(main()), reported[-1]


def test_conversation_turns_reuse_the_history_and_match_a_cold_cache(
    engine: Engine, cold: Engine, model_and_tokenizer
) -> None:
    _, tokenizer = model_and_tokenizer
    nonce = uuid.uuid4().hex  # a prompt no earlier test has cached
    messages = [{"role": "system", "content": f"[{nonce}] {SYSTEM}"}]
    previous: list[int] = []
    for turn, question in enumerate(QUESTIONS):
        messages.append({"role": "user", "content": question})
        ids = template(tokenizer, messages)
        for params in (
            SamplingParams(max_tokens=12, temperature=0.0),
            SamplingParams(max_tokens=12, seed=turn),
        ):
            warm, cached = answer(engine, ids, params)
            assert warm.token_ids == run_together(cold, [(ids, params)])[0].token_ids
            # The first sampling of a turn hits the previous turn's prompt (and its answer, where
            # answers are named as generated, up to its last token, whose keys are never computed);
            # the second, this one's prompt.
            assert cached == expected_hit(previous, ids)
            previous = ids + warm.token_ids[:-1] if engine.prefix.name_answers else ids
        messages.append({"role": "assistant", "content": warm.text})


def test_hits_inside_a_batch_match_a_cold_cache(engine: Engine, cold: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    nonce = uuid.uuid4().hex
    jobs = []
    for i, question in enumerate(QUESTIONS * 2):
        ids = template(
            tokenizer,
            [{"role": "system", "content": f"{nonce} {SYSTEM}"}, {"role": "user", "content": question}],
        )
        params = SamplingParams(max_tokens=10, temperature=0.0 if i % 2 else 0.8, seed=i)
        jobs.append((ids, params))
    run_together(engine, jobs[:1])  # the shared system prompt is cached
    warm = run_together(engine, jobs)
    assert [r.token_ids for r in warm] == [r.token_ids for r in run_together(cold, jobs)]


def test_users_arriving_together_prefill_a_shared_system_prompt_once(
    engine: Engine, model_and_tokenizer
) -> None:
    _, tokenizer = model_and_tokenizer
    system = f"[{uuid.uuid4().hex}] " + SYSTEM * 4
    prompts = [
        template(tokenizer, [{"role": "system", "content": system}, {"role": "user", "content": q}])
        for q in QUESTIONS
    ]
    shared = expected_hit(prompts[0], prompts[1])
    assert shared >= 256

    async def together() -> list[int]:
        streams = [engine.generate(ids, SamplingParams(max_tokens=2)) for ids in prompts]
        reported = []
        for stream in streams:
            async for out in stream:
                last = out.cached_tokens
            reported.append(last)
        return reported

    reported = sorted(asyncio.run(together()))
    assert reported == [0, shared, shared]


def next_turn(tokenizer: object, prompt: list[int], answer_ids: list[int], question: str) -> list[int]:
    """The next turn's prompt as a chat template makes it: the answer as generated, then the end
    of its message and the next question."""
    probe = [{"role": "user", "content": "x"}, {"role": "assistant", "content": "y"}]
    text = tokenizer.apply_chat_template(probe, tokenize=False)  # type: ignore[attr-defined]
    after_answer = text[text.rindex("y") + 1 :]  # e.g. "<|im_end|>\n"
    follow = [{"role": "user", "content": question}]
    rest = tokenizer.apply_chat_template(follow, tokenize=False, add_generation_prompt=True)  # type: ignore[attr-defined]
    return prompt + answer_ids + tokenizer.encode(after_answer + rest, add_special_tokens=False)  # type: ignore[attr-defined]


# The stress run (bench/determinism.py) repeats this test under load this many times.
REPEAT = int(os.environ.get("INVARIANCE_REPEAT", "1"))


@pytest.mark.parametrize("attempt", range(REPEAT))
def test_a_conversation_turns_answer_is_cached_for_the_next_turn_and_matches_a_cold_cache(
    engine: Engine, cold: Engine, model_and_tokenizer, attempt: int
) -> None:
    """The answer's keys are cached as it is generated, with the numbers a prompt's would get:
    named as decoded where decoding computes them so (PrefixCache.name_answers), else computed again
    as a prompt's, in pieces. The next turn reuses them and still gets a cold cache's tokens."""
    _, tokenizer = model_and_tokenizer
    prompt = template(tokenizer, [{"role": "system", "content": f"[{uuid.uuid4().hex}] {SYSTEM}"}])
    wait_until(lambda: not engine.prefix.warm_jobs)  # earlier tests' answers are cached by now
    before = engine.stats.warmed_tokens
    params = SamplingParams(max_tokens=80, temperature=0.0, ignore_eos=True, conversation=True)
    first, _ = answer(engine, prompt, params)
    if engine.prefix.name_answers:
        # Every full block whose keys were computed: the last generated token's never is.
        expected = (len(prompt) + len(first.token_ids) - 1) // BLOCK_SIZE * BLOCK_SIZE
        assert engine.stats.warmed_tokens == before
    else:
        # Pieces of WARM_TOKENS from the prompt's last whole block, as far as the tokens go.
        start = len(prompt) // BLOCK_SIZE * BLOCK_SIZE
        pieces = (len(prompt) + len(first.token_ids) - start) // WARM_TOKENS
        assert pieces >= 2
        wait_until(lambda: engine.stats.warmed_tokens == before + pieces * WARM_TOKENS)
        expected = start + pieces * WARM_TOKENS
    ids = next_turn(tokenizer, prompt, first.token_ids, "Say that again, shorter.")
    for params in (SamplingParams(max_tokens=16, temperature=0.0), SamplingParams(max_tokens=16, seed=7)):
        hit, cached = answer(engine, ids, params)
        assert hit.token_ids == run_together(cold, [(ids, params)])[0].token_ids
        if params.temperature == 0.0:  # the second asks again: this prompt's blocks are cached then
            assert cached == expected > len(prompt) + 32


def test_answers_are_cached_as_their_keys_allow(engine: Engine, model_and_tokenizer) -> None:
    """Alone or two decoding together. Where decoding computes a prompt's keys, every answer's
    blocks are named as they fill, at no cost. Elsewhere a one-off request's answer is left to
    whichever prompt repeats it, and a conversation turn's is prefilled again, since its next turn
    likely starts with it."""
    _, tokenizer = model_and_tokenizer
    wait_until(lambda: not engine.prefix.warm_jobs)
    for together in (1, 2):
        for conversation in (False, True):
            nonce = uuid.uuid4().hex
            params = SamplingParams(
                max_tokens=80, temperature=0.0, ignore_eos=True, conversation=conversation
            )
            prompts = [chat_ids_of(tokenizer, f"[{nonce}] {q}") for q in QUESTIONS[:together]]
            before = engine.stats.warmed_tokens
            results = run_together(engine, [(ids, params) for ids in prompts])
            pieces = sum((len(ids) % BLOCK_SIZE + 80) // WARM_TOKENS for ids in prompts)
            wait_until(lambda: not engine.prefix.warm_jobs)
            warmed = engine.stats.warmed_tokens - before
            if engine.prefix.name_answers:
                assert warmed == 0
                for ids, result in zip(prompts, results, strict=True):
                    tokens = ids + result.token_ids
                    hashes = block_hashes(tokens, len(tokens) - 1)
                    assert len(engine.blocks.lookup(hashes)) == len(hashes)
            else:
                assert warmed == (pieces * WARM_TOKENS if conversation else 0)


def chat_ids_of(tokenizer: object, text: str) -> list[int]:
    return template(tokenizer, [{"role": "user", "content": text}])


def test_evicted_prefixes_are_recomputed_correctly(model_and_tokenizer) -> None:
    """A cache of a few hundred tokens: each new conversation evicts the previous one."""
    model, tokenizer = model_and_tokenizer
    with running_engine(model, tokenizer, kv_cache_memory_gb=0.03) as small:  # ~680 tokens
        assert small.kv_capacity_tokens < 1000
        greedy = SamplingParams(max_tokens=8, temperature=0.0)
        prompts = [
            template(
                tokenizer,
                [{"role": "system", "content": f"{i} {SYSTEM * 3}"}, {"role": "user", "content": q}],
            )
            for i, q in enumerate(QUESTIONS)
        ]
        first = [answer(small, ids, greedy)[0].token_ids for ids in prompts]
        again = [answer(small, ids, greedy) for ids in prompts]
        assert [r.token_ids for r, _ in again] == first
        assert again[0][1] < expected_hit(prompts[0], prompts[0])  # evicted by the later prompts
        assert small.blocks.in_use == 0


def test_caching_off_reports_no_hits(cold: Engine, model_and_tokenizer) -> None:
    _, tokenizer = model_and_tokenizer
    ids = template(tokenizer, [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Hi"}])
    for _ in range(2):
        assert answer(cold, ids, SamplingParams(max_tokens=2))[1] == 0

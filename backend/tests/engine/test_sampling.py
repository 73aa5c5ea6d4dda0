"""Sampling edge cases that whole answers rarely hit: tied logits, as bf16 logits often are."""

from __future__ import annotations

import torch

from app.engine.sampling import SampleState, SamplingParams, sample


def test_top_k_one_and_tiny_top_p_pick_argmax_among_tied_logits() -> None:
    # A vocabulary-sized row (an unstable sort reorders ties there) with a three-way tie at the top.
    logits = torch.randn(1, 49152, generator=torch.Generator().manual_seed(0))
    logits[0, [17, 400, 901]] = 20.0
    greedy, _ = sample(logits.clone(), [SampleState(SamplingParams(max_tokens=1, temperature=0.0), [])])
    assert greedy == [17]
    for seed in range(20):
        for params in (
            SamplingParams(max_tokens=1, temperature=1.5, top_k=1, seed=seed),
            SamplingParams(max_tokens=1, temperature=1.5, top_p=1e-6, seed=seed),
        ):
            tokens, _ = sample(logits.clone(), [SampleState(params, [])])
            assert tokens == greedy

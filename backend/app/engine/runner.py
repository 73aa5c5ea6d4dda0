"""The model runner: executes a scheduler's StepPlan as one forward pass and samples its tokens.

The pass runs on the fast decoder (fast_decoder.py: every group of rows in one call) or through
the Transformers model (one group, whose plan is the KV cache's current one). Packed layers that
kept their dense weight prefill with it a chunk that runs alone (quantization.py).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import torch
from transformers import PreTrainedModel

from .attention import layer_masks
from .fast_decoder import Rows, fast_decoder_for
from .kv_cache import PagedKVCache
from .output import Request
from .quantization import dense_capable, dense_weights
from .sampling import SamplingParams, TokenLogprobs, sample, verify
from .scheduler import StepPlan
from .sequence import Sequence


@dataclass
class Sampled:
    """One token for each of a list of sequences, and its logprobs where asked for."""

    tokens: list[int]
    logprobs: list[TokenLogprobs | None]


@dataclass
class PassResult:
    elapsed: float  # the forward pass's seconds (sampling not included): the prefill cost model's
    first: Sampled  # for the prompts the chunk completes (StepPlan.completing), in order
    next: Sampled  # for the decode rows (StepPlan.decoding), in order
    # For each verified row (StepPlan.verify): its draft's tokens the model generated too, then
    # the one it generated after them.
    runs: list[list[int]]


NOTHING = Sampled([], [])


def speculable(params: SamplingParams) -> bool:
    """Whether a request's tokens may be proposed and verified: each position's distribution a
    function of its logits and its grammar alone (no penalty counting the tokens before it), and
    no logprobs asked for (a run's tokens are emitted without them); greedy or sampled alike
    (sampling.verify)."""
    return (
        not params.logprobs
        and params.repetition_penalty == 1.0
        and params.presence_penalty == 0.0
        and params.frequency_penalty == 0.0
    )


class ModelRunner:
    def __init__(self, model: PreTrainedModel, cache: PagedKVCache, fast_path: bool) -> None:
        self.model = model
        self.cache = cache
        self.device = model.device
        self.fast = fast_decoder_for(model) if fast_path else None
        # Packed layers that kept their dense weight: prompts are prefilled with it.
        self.dense = dense_capable(model)

    def execute(self, plan: StepPlan[Request]) -> PassResult:
        logits, elapsed = self.forward(plan)
        first = NOTHING
        if plan.completing:
            chunk = plan.chunk
            rows = torch.stack([logits[0][i, plan.keep_at.index(chunk[i][1] - 1)] for i in plan.completing])
            first = self._sample(rows, [chunk[i][0] for i in plan.completing])
        following = NOTHING
        start = 1 if plan.chunk else 0
        if plan.decode:
            rows = torch.cat([part[:, -1] for part in logits[start : start + len(plan.decode)]])
            following = self._sample(rows, plan.decoding)
        runs = self._verify(plan.verify, logits[-1]) if plan.verify else []
        return PassResult(elapsed, first, following, runs)

    @staticmethod
    def _verify(batch: list[Request], logits: torch.Tensor) -> list[list[int]]:
        """Each row's run: its draft accepted up to the first token the model generates otherwise,
        then that token (sampling.verify)."""
        logits = logits.float().cpu()
        return [verify(logits[i, : len(seq.draft) + 1], seq.state, seq.draft) for i, seq in enumerate(batch)]

    def forward(self, plan: StepPlan) -> tuple[list[torch.Tensor], float]:
        """The plan's logits (the chunk's group first, then each decode group's, then the
        verified rows') and the pass's seconds."""
        groups = []
        if plan.chunk:
            chunk = [(s, s.tokens[s.num_cached : s.num_cached + n]) for s, n in plan.chunk]
            groups.append(self._rows(chunk, plan.keep_at))
        groups += [self._rows([(s, s.tokens[-1:]) for s in group], [0]) for group in plan.decode]
        if plan.verify:
            # Every position's logits: each checks the draft token after it.
            rows = [(s, s.tokens[-1:] + s.draft) for s in plan.verify]
            groups.append(self._rows(rows, list(range(max(len(t) for _, t in rows)))))
        began = time.monotonic()
        # Dense weights prefill only a chunk that runs alone (never together: see Scheduler.steps).
        with dense_weights(self.dense if not plan.decode and not plan.verify else []):
            logits = self._forward(groups)
        return logits, time.monotonic() - began

    def _rows(self, chunk: list[tuple[Sequence, list[int]]], keep_at: list[int]) -> Rows:
        """Rows of these tokens, each from its sequence's num_cached: a prompt chunk, decoding
        sequences (one token each: their last) or verified ones (their last and their draft);
        logits kept at the positions keep_at."""
        width = max(len(t) for _, t in chunk)
        starts = [s.num_cached for s, _ in chunk]
        input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (_, tokens) in enumerate(chunk):
            input_ids[i, : len(tokens)] = torch.tensor(tokens)
        positions = torch.tensor(starts).unsqueeze(1) + torch.arange(width).unsqueeze(0)
        plan = self.cache.plan([s.table for s, _ in chunk], starts, [len(t) for _, t in chunk], width)
        kv_positions = torch.arange(plan.kv_len)
        mask = (kv_positions.view(1, 1, 1, -1) <= positions.view(len(chunk), 1, width, 1)).to(self.device)
        # Only the last position (every decode step, most chunks): a slice, no index tensor.
        keep = torch.tensor(keep_at, device=self.device) if keep_at and keep_at != [width - 1] else 1
        return Rows(input_ids.to(self.device), positions.to(self.device), mask, plan, keep)

    def _forward(self, groups: list[Rows]) -> list[torch.Tensor]:
        if self.fast is not None:
            return self.fast(groups, self.cache)
        # The Transformers model takes one group at a time (the only kind the scheduler gives
        # it), whose plan is the cache's current one.
        (rows,) = groups
        self.cache.current = rows.plan
        output = self.model(
            input_ids=rows.input_ids,
            position_ids=rows.positions,
            attention_mask=layer_masks(self.model.config, rows.mask, rows.positions),
            cache=self.cache,
            use_cache=True,
            logits_to_keep=rows.keep,
        )
        return [output.logits]

    @staticmethod
    def _sample(logits: torch.Tensor, batch: list[Request]) -> Sampled:
        # Sampling runs on the CPU in float32 whatever the model's device: a few MB a step, and
        # each request's generator and settings then behave the same everywhere.
        tokens, logprobs = sample(logits.float().cpu(), [s.state for s in batch])
        return Sampled(tokens, logprobs)

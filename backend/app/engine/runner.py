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
from .sampling import TokenLogprobs, sample
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


NOTHING = Sampled([], [])


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
        if plan.decode:
            rows = torch.cat([part[:, -1] for part in logits[1 if plan.chunk else 0 :]])
            following = self._sample(rows, plan.decoding)
        return PassResult(elapsed, first, following)

    def forward(self, plan: StepPlan) -> tuple[list[torch.Tensor], float]:
        """The plan's logits (the chunk's group first, then each decode group's) and the pass's
        seconds."""
        groups = [self._rows(plan.chunk, plan.keep_at)] if plan.chunk else []
        groups += [self._rows([(s, 1) for s in group], [0]) for group in plan.decode]
        began = time.monotonic()
        # Dense weights prefill only a chunk that runs alone (never together: see Scheduler.steps).
        with dense_weights(self.dense if not plan.decode else []):
            logits = self._forward(groups)
        return logits, time.monotonic() - began

    def _rows(self, chunk: list[tuple[Sequence, int]], keep_at: list[int]) -> Rows:
        """The rows of a prompt chunk, or of decoding sequences (one token each: their last)."""
        width = max(n for _, n in chunk)
        starts = [s.num_cached for s, _ in chunk]
        input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (seq, n) in enumerate(chunk):
            input_ids[i, :n] = torch.tensor(seq.tokens[seq.num_cached : seq.num_cached + n])
        positions = torch.tensor(starts).unsqueeze(1) + torch.arange(width).unsqueeze(0)
        plan = self.cache.plan([s.table for s, _ in chunk], starts, [n for _, n in chunk], width)
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

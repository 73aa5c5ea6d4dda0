"""The draft-model proposer: a small model of the target's vocabulary (the 135M drafting for a
1.7B) proposes each drafting sequence's next k tokens greedily, all sequences in the same passes.

It keeps each sequence's keys in a paged cache of its own between steps: a step feeds only the
tokens the sequence gained since its last draft (the accepted ones and the target's own), after
rolling its cache back to what the two share (a rejected draft's keys are dropped), then decodes
k - 1 more; a step costs k small passes, not a prefill. A request's keys go when it ends
(forget). The target verifies every draft (runner.py), so the draft's numbers need not be
exact, only close enough to be accepted often.
"""

from __future__ import annotations

import time

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .attention import paged_cache
from .blocks import BLOCK_SIZE, BlockManager
from .loader import ModelLoadError
from .runner import ModelRunner
from .scheduler import StepPlan
from .sequence import Sequence
from .speculative import Wanted

# The weight of a draft's seconds a token in their running mean.
COST_WEIGHT = 0.1
# Tokens a sequence's cache catches up on in one step, at most: a long prompt's first draft is
# fed over several steps (proposing nothing meanwhile), so it never stalls the streams decoding
# beside it for a whole prefill.
CATCH_UP_TOKENS = 256


def check_vocabulary(
    draft: PreTrainedModel,
    draft_tokenizer: PreTrainedTokenizerBase,
    target: PreTrainedModel,
    target_tokenizer: PreTrainedTokenizerBase,
) -> None:
    """A draft's token ids must mean the target's: the same tokenizer vocabulary."""
    if draft_tokenizer.get_vocab() != target_tokenizer.get_vocab():
        raise ModelLoadError(
            f"The draft model {draft.name_or_path} does not share the vocabulary of the chat model "
            f"{target.name_or_path} (their tokenizers' token ids differ): pick a draft model of the "
            "same family and tokenizer, or set SPECULATIVE=ngram."
        )


def common_prefix(a: list[int], b: list[int], limit: int) -> int:
    """How many leading tokens a and b share, at most limit."""
    n = min(limit, len(a), len(b))
    if a[:n] == b[:n]:  # the usual case, compared at C speed
        return n
    return next(i for i in range(n) if a[i] != b[i])


class DraftProposer:
    name = "draft"
    token_s = 0.0  # a drafted token's seconds, running mean (scheduler: whether drafts pay)

    def __init__(self, model: PreTrainedModel, vocab_size: int, num_blocks: int) -> None:
        """model drafts token ids below vocab_size (the target's logits' width: a draft model's
        padded embedding rows are no tokens); its cache has num_blocks blocks (as many as the
        target's: it never holds more tokens than the target does, plus a draft)."""
        self.vocab_size = vocab_size
        self.blocks = BlockManager(num_blocks, caching=False)
        self.runner = ModelRunner(model, paged_cache(model, num_blocks), fast_path=True)
        self.seqs: dict[str, Sequence] = {}

    def forget(self, request_id: str) -> None:
        seq = self.seqs.pop(request_id, None)
        if seq is not None:
            self.blocks.release(seq.table, 0)

    def draft(self, wanted: list[Wanted]) -> list[list[int]]:
        drafts: list[list[int]] = [[] for _ in wanted]
        chunk: list[tuple[Sequence, int]] = []
        proposing: list[tuple[int, Sequence, int]] = []  # (index in wanted, its sequence, k)
        for i, (request_id, tokens, k) in enumerate(wanted):
            seq = self._synced(request_id, tokens)
            n = min(seq.remaining, CATCH_UP_TOKENS)
            caught_up = n == seq.remaining  # else no draft until it has caught up
            # Keys for its tokens and its draft but the last (never fed).
            if not self._grow(seq, len(tokens) + k - 1 if caught_up else seq.num_cached + n):
                self.forget(request_id)  # the pool is full: it drafts again once others end
                continue
            chunk.append((seq, n))
            if caught_up:
                proposing.append((i, seq, k))
        if not chunk:
            return drafts
        began = time.monotonic()
        plan = StepPlan(chunk, [])
        (logits,), _ = self.runner.forward(plan)
        for seq, n in chunk:
            seq.num_cached += n
        rows = [logits[i, plan.keep_at.index(chunk[i][1] - 1)] for i in plan.completing]
        first = self._greedy(torch.stack(rows)) if rows else []
        for (i, seq, _), token in zip(proposing, first, strict=True):
            seq.tokens.append(token)
            drafts[i].append(token)
        # Each further token: one decode pass over the sequences whose drafts are still short.
        while active := [(i, seq) for i, seq, k in proposing if len(drafts[i]) < k]:
            (logits,), _ = self.runner.forward(StepPlan([], [[seq for _, seq in active]]))
            for (i, seq), token in zip(active, self._greedy(logits[:, -1]), strict=True):
                seq.num_cached += 1
                seq.tokens.append(token)
                drafts[i].append(token)
        if proposing:  # a pass a token of the longest draft
            token_s = (time.monotonic() - began) / max(len(drafts[i]) for i, _, _ in proposing)
            self.token_s += COST_WEIGHT * (token_s - self.token_s) if self.token_s else token_s
        return drafts

    def _greedy(self, logits: torch.Tensor) -> list[int]:
        return logits[:, : self.vocab_size].argmax(dim=-1).tolist()

    def _synced(self, request_id: str, tokens: list[int]) -> Sequence:
        """The request's draft sequence holding these tokens, its cache rolled back to the keys
        they share with what it computed before (at least the last token is fed again: its logits
        give the draft's first token)."""
        seq = self.seqs.get(request_id)
        if seq is None:
            seq = self.seqs[request_id] = Sequence(request_id=request_id, tokens=[], num_prompt=0, hashes=[])
        seq.num_cached = min(common_prefix(seq.tokens, tokens, seq.num_cached), len(tokens) - 1)
        keep = -(-seq.num_cached // BLOCK_SIZE)
        self.blocks.release(seq.table[keep:], 0)
        del seq.table[keep:]
        seq.tokens = list(tokens)
        return seq

    def _grow(self, seq: Sequence, length: int) -> bool:
        """Blocks for `length` tokens' keys; False when the pool has none left."""
        while len(seq.table) * BLOCK_SIZE < length:
            block = self.blocks.take(promised=False)
            if block is None:
                return False
            seq.table.append(block)
        return True

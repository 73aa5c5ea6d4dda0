"""Publishing sequences' blocks to the prefix cache, and warming it with conversations' answers.

Beside the block manager (blocks.py), whose cache this fills; pure bookkeeping, no torch.

Answers are cached for the next turn. Where a generated token's keys are the ones a prompt would
compute (`name_answers`), every answer's blocks are named as they fill, at no cost. Where prompts
use other weights (dense prefill weights), only conversation turns' answers are cached, in pieces
of WARM_TOKENS: once such a request has generated that many tokens past what the prefix cache
holds of it, those tokens (with its prompt's last, partial block) are prefilled again with the
prompt's weights in a pass of their own, between decode steps when no prompt waits, and their
blocks named, so the next turn prefills little more than its new message; a later prompt must get
exactly the keys a cold cache gives it. Only for conversations (SamplingParams.conversation): for
a one-off request, whose answer no later prompt starts with, the pass would be wasted (3 % of a
lone stream's tokens/s here).
"""

from __future__ import annotations

from collections import deque

from .blocks import BLOCK_SIZE, BlockManager, block_hashes, extend_hashes
from .sequence import Sequence

WARM_TOKENS = 2 * BLOCK_SIZE
WARM_QUEUE = 8  # prefixes waiting for a step with no prompt to prefill; the oldest is dropped beyond


class PrefixCache:
    def __init__(self, blocks: BlockManager, name_answers: bool) -> None:
        self.blocks = blocks
        self.name_answers = name_answers
        # Prefixes (a request's prompt and answer so far, whole blocks) to prefill and name.
        self.warm_jobs: deque[list[int]] = deque(maxlen=WARM_QUEUE)

    def name_blocks(self, seq: Sequence) -> None:
        """Publish the blocks that are now full and computed: the prompt's, and the answer's
        where its keys are a prompt's (name_answers)."""
        if self.name_answers and self.blocks.caching:
            full = seq.num_cached // BLOCK_SIZE
            extend_hashes(seq.hashes, seq.tokens, full)
        else:
            full = min(seq.num_cached, seq.num_prompt) // BLOCK_SIZE
        for index in range(seq.num_named, min(full, len(seq.hashes))):
            self.blocks.name(seq.table[index], seq.hashes[index])
        seq.num_named = max(seq.num_named, full)

    def prompt_done(self, seq: Sequence) -> None:
        """Its prompt is prefilled: its answer is warmed from the first block not yet named."""
        seq.warm_from = max(seq.warm_from, seq.num_named * BLOCK_SIZE)

    def decoded(self, seq: Sequence) -> None:
        """Generated tokens' keys are cached: name the blocks they filled, where answers are."""
        if self.name_answers and self.blocks.caching and seq.num_cached // BLOCK_SIZE > seq.num_named:
            self.name_blocks(seq)

    def generated(self, seq: Sequence, conversation: bool) -> None:
        """A token was appended: queue the answer's next piece for warming once it is whole."""
        warm = conversation and self.blocks.caching and not self.name_answers
        if warm and len(seq.tokens) - seq.warm_from >= WARM_TOKENS:
            seq.warm_from += WARM_TOKENS
            self.warm_jobs.append(seq.tokens[: seq.warm_from])

    def warm_sequence(self, tokens: list[int]) -> Sequence | None:
        """A prompt of these tokens admitted with the blocks the cache holds of them; None when it
        holds them all, has lost more than their last piece to eviction, or has no room."""
        hashes = block_hashes(tokens, len(tokens))
        hit = self.blocks.lookup(hashes)
        start, need = len(hit) * BLOCK_SIZE, len(hashes) - len(hit)
        if not need or len(tokens) - start > 2 * WARM_TOKENS or not self.blocks.can_admit(hit, need):
            return None
        self.blocks.admit(hit, need)
        seq = Sequence(request_id="warm", tokens=tokens, num_prompt=len(tokens), hashes=hashes)
        seq.table, seq.promised, seq.num_cached, seq.num_named = list(hit), need, start, len(hit)
        return seq

    def warmed(self, seq: Sequence) -> None:
        """Its tokens' keys are computed: name their blocks (the caller gives them back)."""
        seq.num_cached = len(seq.tokens)
        self.name_blocks(seq)

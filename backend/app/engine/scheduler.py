"""The scheduler: which sequences run in each forward pass, and with how many tokens.

It keeps the waiting queue (admission, back-pressure on KV blocks, requests that wait for a
shared prefix), plans each step as explicit StepPlans (a chunk of the prompts being prefilled,
shortest first, sized by a cost model from the measured prefill rate; one decode token for every
decoding sequence, in groups of similar length), grows sequences' KV as they do, and preempts the
newest request when the blocks run out. Prefill chunks are sized to take a fraction of a second,
so a long prompt never stalls decoding streams for long, and a short prompt arriving meanwhile is
prefilled at the next step.

Pure bookkeeping, no torch (an import contract holds it): tested without a model. The runner
(runner.py) executes the plans; the engine (engine.py) reports each pass back.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from .blocks import BLOCK_SIZE, BlockManager
from .config import EngineConfig
from .prefix_cache import PrefixCache
from .sequence import Sequence, Status
from .speculative import AUTO_MAX_BATCH, AUTO_MIN_ACCEPTANCE, Proposer

# A prefill chunk's target duration while other sequences decode (their gap between tokens is
# about this plus one decode step), and while none do (a new short prompt waits about this). A
# chunk sharing the decode step's pass is charged its rows' share of the pass, a row weighing
# 1 + its keys / ROW_KEYS: a row's attention over that many keys costs about what its matrix
# products do (~6 ms against ~22 us a key, per step, on 2 cores).
PREFILL_SLICE_S = 0.12
IDLE_PREFILL_SLICE_S = 0.5
ROW_KEYS = 256
# The smallest chunk: a block when it runs alone (every chunk reads all the weights once); a few
# tokens when it shares the decode batch's products (its rows ride along nearly free, while its
# attention over a long prompt's keys grows with every token: 16 tokens at 2,800 keys took
# 0.25 s a step beside 4 streams here, 4-7 tokens 0.12 s).
MIN_CHUNK_ALONE = BLOCK_SIZE
MIN_CHUNK_TOGETHER = 4
# A prompt (or the rest of one) this short is never cut: a chat turn's new message after a cache
# hit, a question beside a long paste. Cut to a slow step's slice, a burst of them would be
# prefilled one after another.
SHORT_PROMPT_TOKENS = 64
# What one more group of decode rows costs on the fast path (its own attention calls), in key
# positions of one row: ~11 ms a group against ~22 us a position a step, measured on 2 cores.
DECODE_GROUP_COST = 512
# A prompt waits for another request's prefill of the prefix they share (rather than computing
# it a second time beside it) when that prefix is at least this long and half the prompt.
SHARED_PREFIX_MIN_TOKENS = 128
# The weight of a pass's seconds in the decode pass time's running mean.
STEP_WEIGHT = 0.1

S = TypeVar("S", bound=Sequence)


@dataclass
class EngineStats:
    running: int = 0
    waiting: int = 0
    aborted: int = 0
    preempted: int = 0
    prefill_steps: int = 0
    shared_passes: int = 0  # forward passes that carried a prefill chunk and the decode batch
    warmed_tokens: int = 0  # generated tokens prefilled again for the prefix cache (WARM_TOKENS)
    spec_proposed: int = 0  # tokens proposed for verification (speculative.py)
    spec_accepted: int = 0  # of which the model generated the same


@dataclass
class StepPlan(Generic[S]):
    """One forward pass: a chunk of prompt tokens (each sequence's next `n`, from num_cached),
    decode rows (one token each: their last), in groups that attend together, and rows to verify
    (each its last token and its draft, in a group of their own). Any may be empty."""

    chunk: list[tuple[S, int]]
    decode: list[list[S]]
    verify: list[S] = field(default_factory=list)
    # The chunk's rows whose prompt it completes (they sample their first token), and the chunk
    # positions whose logits are kept: fixed when planned, before the pass moves num_cached.
    completing: list[int] = field(init=False)
    keep_at: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.completing = [i for i, (s, n) in enumerate(self.chunk) if s.num_cached + n == len(s.tokens)]
        self.keep_at = sorted({self.chunk[i][1] - 1 for i in self.completing})

    @property
    def width(self) -> int:
        """The chunk's rows' padded length."""
        return max(n for _, n in self.chunk)

    @property
    def decoding(self) -> list[S]:
        """The decode rows in the order the pass computes them (group by group)."""
        return [seq for group in self.decode for seq in group]


class Scheduler(Generic[S]):
    def __init__(
        self,
        config: EngineConfig,
        blocks: BlockManager,
        prefix: PrefixCache,
        together: bool,
        grouped: bool,
        stats: EngineStats,
        longest: int,
        proposer: Proposer | None = None,
        auto: bool = False,
    ) -> None:
        self.config = config
        self.blocks = blocks
        self.prefix = prefix
        # Prefill chunks and decode steps share forward passes (see steps).
        self.together = together
        # Decode rows attend in groups of similar length (the fast path; see decode_groups).
        self.grouped = grouped
        self.stats = stats
        self.longest = longest  # a sequence ends at this many tokens (output.py)
        # Drafts for sequences that may speculate (needs extra groups: the fast path only); with
        # `auto`, only where they pay (speculative.AUTO_*).
        self.proposer = proposer
        self.auto = auto
        self.waiting: deque[S] = deque()
        self.prefilling: list[S] = []
        self.decoding: list[S] = []
        self._by_id: dict[str, S] = {}
        self.prefill_rate: float | None = None  # tokens/s of the last prefill chunk
        self.step_s: float | None = None  # a pass without a prefill chunk, running mean

    @property
    def running(self) -> list[S]:
        return self.decoding + self.prefilling

    def add(self, seq: S) -> None:
        self.waiting.append(seq)
        self._by_id[seq.request_id] = seq

    def get(self, request_id: str) -> S | None:
        return self._by_id.get(request_id)

    def expired(self, now: float) -> list[S]:
        """Requests that waited longer than the queue timeout; a preempted one (admitted before)
        is never expired: it was accepted."""
        limit = self.config.queue_timeout_s
        return [s for s in self.waiting if s.status is Status.WAITING and now - s.arrival > limit]

    def admit(self) -> None:
        """Admit waiting requests in order while there are slots and blocks for their prompts.

        A request skips its turn (without blocking those behind it) while another request is
        prefilling a long prefix it shares, so that prefix is computed once."""
        pending = {h for s in self.prefilling for h in s.hashes[s.num_named :]}
        for seq in list(self.waiting):
            if len(self.running) >= self.config.max_num_seqs:
                break
            # The hit stops one token short, so the prompt's last token is computed.
            hit = self.blocks.lookup(seq.hashes[: (len(seq.tokens) - 1) // BLOCK_SIZE])
            shared = 0
            for h in seq.hashes[len(hit) :]:
                if h not in pending:
                    break
                shared += BLOCK_SIZE
            prefix = len(hit) * BLOCK_SIZE + shared
            if shared and prefix >= max(SHARED_PREFIX_MIN_TOKENS, len(seq.tokens) // 2):
                continue
            need = -(-len(seq.tokens) // BLOCK_SIZE) - len(hit)
            if not self.blocks.can_admit(hit, need):
                break  # in order: a large prompt is not overtaken for ever by small ones
            self.blocks.admit(hit, need)
            self.waiting.remove(seq)
            seq.table, seq.promised = list(hit), need
            seq.num_cached, seq.num_named = len(hit) * BLOCK_SIZE, len(hit)
            if seq.cached_tokens < 0:
                seq.cached_tokens = seq.num_cached
            seq.status = Status.PREFILLING
            self.prefilling.append(seq)
            pending.update(seq.hashes[len(hit) :])
        self._count()

    def steps(self) -> Iterator[StepPlan[S]]:
        """This step's passes, each planned once the one before has run and been reported back
        (prefilled, decoded): a chunk of the prompts being prefilled, and one decode step. Where
        they run together (the fast decoder, no dense prefill weights) they are one forward pass:
        the chunk's tokens share the decode batch's matrix products, so a decoding stream waits
        one step, not a chunk and a step."""
        chunk = self.plan_chunk() if self.prefilling else []
        if chunk and not self.together:
            yield StepPlan(chunk, [])
            chunk = []
        batch = self.plan_decode() if self.decoding else []
        chunk = [(s, n) for s, n in chunk if s.status is Status.PREFILLING]  # a preempted one waits
        if chunk or batch:
            self.stats.shared_passes += bool(chunk and batch)
            plain = [s for s in batch if not s.draft]
            groups = self.decode_groups(plain) if self.grouped else [plain] if plain else []
            yield StepPlan(chunk, groups, [s for s in batch if s.draft])

    def plan_chunk(self) -> list[tuple[S, int]]:
        """Prompts with the fewest tokens left, padded to one length: short prompts together, up to
        max_num_batched_tokens; a prompt longer than the slice the measured rate allows is cut to
        that slice and goes alone, after the short ones. Returns each one's tokens this step, its
        blocks given."""
        self.stats.prefill_steps += 1
        budget = self.config.max_num_batched_tokens
        waiting = sorted(self.prefilling, key=lambda s: s.remaining)
        slice_ = budget
        if self.prefill_rate is not None:
            target = PREFILL_SLICE_S if self.decoding else IDLE_PREFILL_SLICE_S
            least = MIN_CHUNK_TOGETHER if self.together else MIN_CHUNK_ALONE
            slice_ = max(least, min(budget, int(self.prefill_rate * target)))
            if waiting[0].remaining <= SHORT_PROMPT_TOKENS:
                slice_ = max(slice_, SHORT_PROMPT_TOKENS)  # short prompts go whole, together
        batch: list[S] = []
        chunk = 0
        for seq in waiting:
            wanted = max(chunk, seq.remaining)
            if wanted > slice_:
                if batch:
                    break
                wanted = slice_
            if batch and (len(batch) + 1) * wanted > budget:
                break
            batch.append(seq)
            chunk = wanted
        planned = [(s, min(s.remaining, chunk)) for s in batch]
        for seq, n in planned:
            self.grow(seq, seq.num_cached + n)
        return [(s, n) for s, n in planned if s.status is Status.PREFILLING]

    def plan_decode(self) -> list[S]:
        """Every decoding sequence, each given room for one more token, and for its draft where
        it has one and the blocks are spare (a draft never preempts anyone)."""
        for seq in list(self.decoding):
            if seq.status is Status.DECODING:
                self.grow(seq, seq.num_cached + 1)
        if self.proposer is not None:  # once every next token has its room
            wanted = [(seq, k) for seq in self.decoding if (k := self._draft_length(seq)) > 0]
            drafts = self.proposer.draft([(s.request_id, s.tokens, k) for s, k in wanted])
            for (seq, _), draft in zip(wanted, drafts, strict=True):
                extra = -(-(seq.num_cached + 1 + len(draft)) // BLOCK_SIZE) - len(seq.table)
                if seq.status is Status.DECODING and extra <= self.blocks.spare():
                    seq.draft = draft
                    self.grow(seq, seq.num_cached + 1 + len(draft))
        return list(self.decoding)

    def _draft_length(self, seq: S) -> int:
        """The most tokens seq may propose this step; 0: it does not draft."""
        if not seq.speculate:
            return 0
        # Requests still prefilling or waiting count too: a burst's first answers would draft
        # beside the others' prompts, in passes the batch shares.
        busy = len(self.decoding) + len(self.prefilling) + len(self.waiting)
        if self.auto and (busy > AUTO_MAX_BATCH or not seq.tally.may_draft()):
            return 0
        # The draft's positions stay below the context the sequence may reach.
        return min(seq.tally.length, self.longest - len(seq.tokens) - 1)

    @staticmethod
    def decode_groups(batch: list[S]) -> list[list[S]]:
        """The decode batch in groups of similar length, each attending over its own longest
        row's keys instead of every row padded to the batch's longest: one long conversation no
        longer makes every stream's step read as many keys. The split minimises key positions
        read plus DECODE_GROUP_COST for each group."""
        rows = sorted(batch, key=lambda s: s.num_cached)
        # best[i]: the least cost of the first i rows; cut[i]: where their last group starts.
        best, cut = [0.0] + [math.inf] * len(rows), [0] * (len(rows) + 1)
        for end in range(1, len(rows) + 1):
            width = rows[end - 1].num_cached + 1
            for start in range(end):
                cost = best[start] + (end - start) * width + DECODE_GROUP_COST
                if cost < best[end]:
                    best[end], cut[end] = cost, start
        groups, end = [], len(rows)
        while end:
            groups.append(rows[cut[end] : end])
            end = cut[end]
        return groups[::-1]

    # ---- a pass's results, reported back by the engine ----------------------------------------

    def prefilled(self, plan: StepPlan[S], elapsed: float, first: list[int]) -> list[S]:
        """The chunk's tokens are cached: measure the prefill rate, name full blocks, and move
        the prompts it completed to decoding with their first token; returns those."""
        # A shared pass is charged to the chunk by its rows' weight (see ROW_KEYS), not all of
        # it: beside a large batch a chunk charged the whole pass would shrink to nothing.
        width = plan.width
        mine = sum(n * (1 + (s.num_cached + width / 2) / ROW_KEYS) for s, n in plan.chunk)
        theirs = sum(1 + s.num_cached / ROW_KEYS for s in plan.decoding)
        own = elapsed * mine / (mine + theirs)
        self.prefill_rate = sum(n for _, n in plan.chunk) / max(own, 1e-3)
        for seq, n in plan.chunk:
            seq.num_cached += n
            self.prefix.name_blocks(seq)
        finishing = [plan.chunk[i][0] for i in plan.completing]
        for seq, token in zip(finishing, first, strict=True):
            self.prefix.prompt_done(seq)
            self.prefilling.remove(seq)
            seq.status = Status.DECODING
            self.decoding.append(seq)
            seq.tokens.append(token)
        return finishing

    def passed(self, elapsed: float) -> None:
        """A pass without a prefill chunk took this long."""
        last = self.step_s if self.step_s is not None else elapsed
        self.step_s = last + STEP_WEIGHT * (elapsed - last)

    @property
    def least_acceptance(self) -> float:
        """The share of proposed tokens that must be accepted for drafts to pay: more, the more
        drafting a token costs beside a decode pass (speculative.AUTO_MIN_ACCEPTANCE)."""
        cost = self.proposer.token_s / self.step_s if self.proposer is not None and self.step_s else 0.0
        return AUTO_MIN_ACCEPTANCE + cost

    def decoded(self, plan: StepPlan[S], tokens: list[int]) -> None:
        """Every decode row's last token is cached, and its next one sampled."""
        for seq, token in zip(plan.decoding, tokens, strict=True):
            seq.num_cached += 1
            self.prefix.decoded(seq)
            seq.tokens.append(token)

    def verified(self, plan: StepPlan[S], runs: list[list[int]]) -> None:
        """Each verified row generated a run of tokens: the draft's first len(run) - 1 (the model
        generated the same) and one of its own. Its last token's keys and the accepted ones' are
        cached; the rest's are rolled back: positions past num_cached are never read, and blocks
        past them go back to the pool."""
        for seq, run in zip(plan.verify, runs, strict=True):
            accepted = len(run) - 1
            self.stats.spec_proposed += len(seq.draft)
            self.stats.spec_accepted += accepted
            seq.tally.verified(len(seq.draft), accepted, self.least_acceptance)
            seq.draft = []
            seq.num_cached += 1 + accepted
            seq.tokens += run
            self.prefix.decoded(seq)
            keep = -(-seq.num_cached // BLOCK_SIZE)
            self.blocks.release(seq.table[keep:], 0)
            del seq.table[keep:]

    # ---- KV growth, preemption, leaving -------------------------------------------------------

    def grow(self, seq: Sequence, length: int) -> None:
        """Give seq blocks for `length` tokens, preempting the newest request if none are left."""
        while len(seq.table) * BLOCK_SIZE < length:
            block = self.blocks.take(promised=seq.promised > 0)
            if block is not None:
                seq.promised = max(0, seq.promised - 1)
                seq.table.append(block)
                continue
            running = self.running
            victim = max(running, key=lambda s: s.arrival)
            if victim is seq and len(running) == 1:
                raise RuntimeError("the KV cache cannot hold one sequence")  # submit() prevents it
            self.preempt(victim)
            if victim is seq:
                return

    def preempt(self, seq: S) -> None:
        """Give back a request's blocks and queue it first: it prefills its tokens again later."""
        self.stats.preempted += 1
        self._drop(seq)
        seq.num_cached = seq.num_named = 0
        seq.draft = []
        seq.status = Status.PREEMPTED
        self.waiting.appendleft(seq)

    def remove(self, seq: S) -> None:
        """The request ended (finished, aborted, failed): out of its queue, its blocks given back."""
        if seq.status in (Status.WAITING, Status.PREEMPTED):
            self.waiting.remove(seq)
        else:
            self._drop(seq)
        seq.status = Status.FINISHED
        self._by_id.pop(seq.request_id, None)
        if self.proposer is not None:
            self.proposer.forget(seq.request_id)
        self._count()

    def _drop(self, seq: S) -> None:
        """Out of the running batch, its blocks given back."""
        for group in (self.decoding, self.prefilling):
            if seq in group:
                group.remove(seq)
        self.blocks.release(seq.table, seq.promised)
        seq.table, seq.promised = [], 0

    def _count(self) -> None:
        self.stats.running = len(self.running)
        self.stats.waiting = len(self.waiting)

    @property
    def busy(self) -> bool:
        return bool(self.prefilling or self.decoding or self.waiting)

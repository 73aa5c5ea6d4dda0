"""The generation engine: one worker thread owns the model and runs continuous batching.

Each iteration of the worker admits waiting requests (reusing the cached blocks of any prefix
it has seen: blocks.py), prefills a chunk of the prompts being prefilled, shortest first, and runs
one decode step for every decoding sequence together, in one forward pass where it can (see
Engine._step). Prefill chunks are sized from the measured prefill rate to take a fraction of a
second, so a long prompt never stalls decoding streams for long, and a short prompt arriving
meanwhile is prefilled at the next step.
A finished or aborted sequence leaves at once. Requests and outputs cross the thread boundary
through queues; the asyncio side never waits on the model.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import queue
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .attention import NAME as ATTENTION
from .attention import layer_masks
from .blocks import BLOCK_SIZE, BlockManager, block_hashes, extend_hashes
from .config import EngineConfig
from .fast_decoder import Rows, fast_decoder_for
from .grammar import Grammars
from .kv_cache import PagedKVCache, bytes_per_token
from .loader import rows_independent
from .memory import kv_budget_bytes, trim_heap
from .quantization import dense_capable, dense_weights
from .sampling import SampleState, SamplingParams, TokenLogprobs, sample
from .text import IncrementalDetokenizer
from .threads import use_threads

log = logging.getLogger(__name__)

# Why a sequence ended: the API's two finish reasons, or cut short by a client or a failure.
EndReason = Literal["stop", "length", "abort", "error"]

# An idle engine's wait for the rest of a burst of requests (see Engine._drain): the event loop
# hands over one request every half millisecond or so on a 2-core machine.
BURST_GAP_S = 0.002
BURST_MAX_S = 0.02
# Python's GIL switch interval while an engine runs (see Engine.start).
GIL_SWITCH_S = 0.0001
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
# Answers are cached for the next turn. Where a generated token's keys are the ones a prompt
# would compute (Engine._name_answers), every answer's blocks are named as they fill, at no cost.
# Where prompts use other weights (dense prefill weights), only conversation turns' answers are
# cached, in pieces of WARM_TOKENS: once such a request has generated that many tokens past what
# the prefix cache holds of it, those tokens (with its prompt's last, partial block) are
# prefilled again with the prompt's weights in a pass of their own, between decode steps when no
# prompt waits, and their blocks named, so the next turn prefills little more than its new
# message; a later prompt must get exactly the keys a cold cache gives it. Only for conversations
# (SamplingParams.conversation): for a one-off request, whose answer no later prompt starts
# with, the pass would be wasted (3 % of a lone stream's tokens/s here).
WARM_TOKENS = 2 * BLOCK_SIZE
WARM_QUEUE = 8  # prefixes waiting for a step with no prompt to prefill; the oldest is dropped beyond
# A prompt waits for another request's prefill of the prefix they share (rather than computing
# it a second time beside it) when that prefix is at least this long and half the prompt.
SHARED_PREFIX_MIN_TOKENS = 128


class EngineBusy(Exception):
    """The waiting queue is full (HTTP 429)."""


class EngineUnavailable(Exception):
    """The engine is shutting down, dead, or a request waited too long (HTTP 503)."""


class RequestTooLarge(Exception):
    """The prompt cannot fit in the KV cache even alone (HTTP 400)."""


@dataclass
class RequestOutput:
    """What one engine step produced for one request: a delta, not the whole text."""

    text: str
    token_ids: list[int]
    logprobs: list[TokenLogprobs]
    finish_reason: EndReason | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0  # prompt tokens whose keys came from the prefix cache
    error: str | None = None
    stop_sequence: str | None = None  # the stop string that ended the sequence


@dataclass
class EngineStats:
    running: int = 0
    waiting: int = 0
    aborted: int = 0
    preempted: int = 0
    prefill_steps: int = 0
    shared_passes: int = 0  # forward passes that carried a prefill chunk and the decode batch
    warmed_tokens: int = 0  # generated tokens prefilled again for the prefix cache (WARM_TOKENS)


@dataclass(eq=False)
class _Sequence:
    request_id: str
    tokens: list[int]  # the prompt, then each generated token
    num_prompt: int
    hashes: list[bytes]  # of the prompt's full blocks
    params: SamplingParams
    sink: Callable[[RequestOutput], None]
    detok: IncrementalDetokenizer
    state: SampleState
    arrival: float = field(default_factory=time.monotonic)
    table: list[int] = field(default_factory=list)  # the KV blocks holding tokens[:num_cached]
    promised: int = 0  # blocks promised to this prompt's prefill and not yet taken
    num_cached: int = 0
    num_named: int = 0  # leading blocks published to the prefix cache
    warm_from: int = 0  # tokens before this are named, or queued to be (WARM_TOKENS)
    cached_tokens: int = -1  # prompt tokens reused on first admission; -1 until admitted
    num_output: int = 0


class GenerationStream:
    """One request's outputs as an async iterator; closing it before the end aborts the request."""

    def __init__(self, engine: Engine, prompt_ids: list[int], params: SamplingParams) -> None:
        loop = asyncio.get_running_loop()
        self._engine = engine
        self._outputs: asyncio.Queue[RequestOutput] = asyncio.Queue()
        self.finished = False
        self.request_id = engine.submit(
            prompt_ids, params, lambda out: loop.call_soon_threadsafe(self._outputs.put_nowait, out)
        )

    def __aiter__(self) -> GenerationStream:
        return self

    async def __anext__(self) -> RequestOutput:
        if self.finished:
            raise StopAsyncIteration
        out = await self._outputs.get()
        self.finished = out.finish_reason is not None
        return out

    def cancel(self) -> None:
        if not self.finished:
            self.finished = True
            self._engine.abort(self.request_id)

    async def aclose(self) -> None:
        self.cancel()


class Engine:
    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, config: EngineConfig
    ) -> None:
        self.model = model
        self.config = config
        self.num_threads = config.num_threads or os.cpu_count() or 1
        self.fast = fast_decoder_for(model) if config.fast_path else None
        # Packed layers that kept their dense weight: prompts are prefilled with it (quantization.py).
        self._dense = dense_capable(model)
        # Prefill chunks and decode steps share forward passes (see _step).
        self._together = self.fast is not None and not self._dense
        # A generated token's keys are exactly a prompt's (the same weights, every row computed
        # on its own): answers' blocks are named as they fill (see WARM_TOKENS).
        self._name_answers = rows_independent(model) and not self._dense
        self.tokenizer = tokenizer
        text_config = model.config.get_text_config()
        self.max_context: int = getattr(text_config, "max_position_embeddings", None) or 2048
        if config.max_model_len:
            self.max_context = min(self.max_context, config.max_model_len)
        self.device = model.device
        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        shape = dict(
            num_layers=text_config.num_hidden_layers,
            num_kv_heads=getattr(text_config, "num_key_value_heads", None) or text_config.num_attention_heads,
            head_dim=getattr(text_config, "head_dim", None)
            or text_config.hidden_size // text_config.num_attention_heads,
        )
        # The batch-invariant kernel attends in float32: keys stored so are gathered without a
        # conversion per step (twice the bytes of bfloat16, in exchange).
        kv_dtype = torch.float32 if model.config._attn_implementation == ATTENTION else model.dtype
        budget = kv_budget_bytes(config.kv_cache_memory_gb, self.device)
        num_blocks = 1 + max(1, budget // (BLOCK_SIZE * bytes_per_token(dtype=kv_dtype, **shape)))
        self.cache = PagedKVCache(num_blocks=num_blocks, dtype=kv_dtype, device=self.device, **shape)
        self.blocks = BlockManager(num_blocks, caching=config.enable_prefix_caching)
        self.kv_capacity_tokens = self.blocks.usable * BLOCK_SIZE
        # A sequence ends ("length") at the model's context or when it alone fills the cache.
        self._longest = min(self.max_context, self.kv_capacity_tokens)
        self.stats = EngineStats()
        self._commands: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._waiting: deque[_Sequence] = deque()
        self._prefilling: list[_Sequence] = []
        self._decoding: list[_Sequence] = []
        self._by_id: dict[str, _Sequence] = {}
        self._warm_jobs: deque[list[int]] = deque(maxlen=WARM_QUEUE)  # prefixes to cache
        self._prefill_rate: float | None = None  # tokens/s of the last prefill chunk
        self._lock = threading.Lock()
        self._live: set[str] = set()  # submitted and neither ended nor aborted
        self._accepting = True
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self.error: str | None = None

    # ---- public, thread-safe -------------------------------------------------------------

    def start(self) -> None:
        # The worker drops the GIL inside every torch op and needs it back between ops; while the
        # event loop runs Python, that waits up to the switch interval (5 ms by default). 0.1 ms
        # measured 4-10 % more tokens/s at 8-32 streams here.
        sys.setswitchinterval(GIL_SWITCH_S)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and self.error is None

    @cached_property
    def grammars(self) -> Grammars:
        """Grammar compiler for this model's tokenizer, built on first use (about a second)."""
        vocab = self.model.config.get_text_config().vocab_size
        return Grammars(self.tokenizer, vocab, self.eos_ids)

    @property
    def in_flight(self) -> int:
        """Requests submitted and neither ended nor aborted: running or waiting."""
        return len(self._live)

    @property
    def idle(self) -> bool:
        return not self._live

    @property
    def accepting(self) -> bool:
        return self._accepting

    def stop_admitting(self) -> None:
        self._accepting = False

    def shutdown(self, timeout: float | None = None) -> None:
        self._commands.put(("stop", None))
        self._thread.join(timeout)

    def submit(
        self, prompt_ids: list[int], params: SamplingParams, sink: Callable[[RequestOutput], None]
    ) -> str:
        if not self._accepting or not self.alive:
            raise EngineUnavailable("The server is shutting down; retry on another replica or later.")
        if len(prompt_ids) + 1 > self.kv_capacity_tokens:
            raise RequestTooLarge(
                f"The prompt has {len(prompt_ids)} tokens but the KV cache holds "
                f"{self.kv_capacity_tokens} tokens in all (KV_CACHE_MEMORY_GB). Shorten the prompt, "
                "or give the server a larger KV cache budget."
            )
        request_id = uuid.uuid4().hex
        with self._lock:
            if len(self._live) >= self.config.max_num_seqs + self.config.max_waiting:
                waiting = len(self._live) - self.config.max_num_seqs
                raise EngineBusy(f"The server is busy: {waiting} requests already wait. Retry shortly.")
            self._live.add(request_id)
        # Only prompt blocks are named; the hit stops one token short so the last is computed.
        hashes = block_hashes(prompt_ids, len(prompt_ids)) if self.blocks.caching else []
        seq = _Sequence(
            request_id=request_id,
            tokens=list(prompt_ids),
            num_prompt=len(prompt_ids),
            hashes=hashes,
            params=params,
            sink=sink,
            detok=IncrementalDetokenizer(self.tokenizer.backend_tokenizer, params.stop),
            state=SampleState(params, prompt_ids),
        )
        self._commands.put(("add", seq))
        return request_id

    def abort(self, request_id: str) -> None:
        # Counted out at once (a waiting client that left no longer holds a place in the queue);
        # the worker frees its blocks before its next step.
        with self._lock:
            self._live.discard(request_id)
        self._commands.put(("abort", request_id))

    def generate(self, prompt_ids: list[int], params: SamplingParams) -> GenerationStream:
        """Submit now (so a full queue is known at once) and stream the request's outputs."""
        return GenerationStream(self, prompt_ids, params)

    # ---- worker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        # Thread counts are per thread under OpenMP: this one does the model's work.
        use_threads(self.num_threads)
        with torch.inference_mode():
            try:
                busy = False
                while True:
                    if busy and not self._running and not self._warm_jobs:
                        trim_heap()  # a long prompt's attention buffers go back to the system
                    busy = bool(self._running or self._waiting or self._warm_jobs)
                    if not self._drain(block=not busy):
                        break
                    self._expire_waiting()
                    self._admit()
                    if self._running or self._warm_jobs:
                        self._step_safely()
            except Exception as exc:  # the engine is dead; /health reports it
                log.exception("engine worker died")
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                for seq in [*self._running, *self._waiting]:
                    self._finish(seq, "error", "The engine stopped before this request completed.")

    @property
    def _running(self) -> list[_Sequence]:
        return self._decoding + self._prefilling

    def _drain(self, block: bool) -> bool:
        """Apply queued commands; returns False when the worker should stop.

        An idle worker woken by a command waits for the rest of a burst (a client fanning out
        many requests at once) until none has come for BURST_GAP_S, BURST_MAX_S at most, so the
        burst shares one prefill instead of queueing behind a lone first request's.
        """
        try:
            command, arg = self._commands.get() if block else self._commands.get_nowait()
        except queue.Empty:
            return True
        burst_end = time.monotonic() + BURST_MAX_S
        while True:
            if command == "stop":
                return False
            if command == "add":
                assert isinstance(arg, _Sequence)
                if arg.request_id in self._live:  # not aborted while in the command queue
                    self._waiting.append(arg)
                    self._by_id[arg.request_id] = arg
            elif command == "abort":
                seq = self._by_id.get(str(arg))
                if seq is not None:
                    self.stats.aborted += 1
                    self._finish(seq, "abort")
            try:
                wait = min(BURST_GAP_S, burst_end - time.monotonic()) if block else 0.0
                command, arg = self._commands.get(timeout=wait) if wait > 0 else self._commands.get_nowait()
            except queue.Empty:
                return True

    def _expire_waiting(self) -> None:
        now = time.monotonic()
        # A preempted request (admitted before) is never expired: it was accepted.
        limit = self.config.queue_timeout_s
        for seq in [s for s in self._waiting if s.cached_tokens < 0 and now - s.arrival > limit]:
            self._finish(
                seq,
                "error",
                f"The request waited more than {self.config.queue_timeout_s:g} s for a free slot. "
                "Retry later.",
            )

    def _admit(self) -> None:
        """Admit waiting requests in order while there are slots and blocks for their prompts.

        A request skips its turn (without blocking those behind it) while another request is
        prefilling a long prefix it shares, so that prefix is computed once."""
        pending = {h for s in self._prefilling for h in s.hashes[s.num_named :]}
        for seq in list(self._waiting):
            if len(self._running) >= self.config.max_num_seqs:
                break
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
            self._waiting.remove(seq)
            seq.table, seq.promised = list(hit), need
            seq.num_cached, seq.num_named = len(hit) * BLOCK_SIZE, len(hit)
            if seq.cached_tokens < 0:
                seq.cached_tokens = seq.num_cached
            self._prefilling.append(seq)
            pending.update(seq.hashes[len(hit) :])
        self.stats.running = len(self._running)
        self.stats.waiting = len(self._waiting)

    def _step_safely(self) -> None:
        try:
            self._step()
        except Exception as exc:  # a failed forward fails its batch, not the server
            log.exception("engine step failed")
            for seq in self._running:
                self._finish(seq, "error", f"Generation failed: {type(exc).__name__}.")

    def _step(self) -> None:
        """A chunk of the prompts being prefilled, and one decode step. With the fast decoder and
        no dense prefill weights they are one forward pass: the chunk's tokens share the decode
        batch's matrix products, so a decoding stream waits one step, not a chunk and a step.
        Then, if no prompt waits (nor has just arrived), a piece of an answer for the prefix
        cache (WARM_TOKENS): after the decode step, so a prompt arriving meanwhile waits at most
        for that piece."""
        chunk = self._plan_chunk() if self._prefilling else []
        if chunk and not self._together:
            self._run_pass(chunk, [])
            chunk = []
        batch = self._plan_decode() if self._decoding else []
        chunk = [(s, n) for s, n in chunk if s in self._prefilling]  # a preempted one waits again
        if chunk or batch:
            self._run_pass(chunk, batch)
        if self._warm_jobs and not self._prefilling and not self._waiting and self._commands.empty():
            try:
                self._warm(self._warm_jobs[0])
            finally:  # taken off after its pass, so an empty queue means nothing left to cache
                self._warm_jobs.popleft()

    def _plan_chunk(self) -> list[tuple[_Sequence, int]]:
        """Prompts with the fewest tokens left, padded to one length: short prompts together, up to
        max_num_batched_tokens; a prompt longer than the slice the measured rate allows is cut to
        that slice and goes alone, after the short ones. Returns each one's tokens this step, its
        blocks given."""
        self.stats.prefill_steps += 1
        budget = self.config.max_num_batched_tokens
        waiting = sorted(self._prefilling, key=lambda s: len(s.tokens) - s.num_cached)
        slice_ = budget
        if self._prefill_rate is not None:
            target = PREFILL_SLICE_S if self._decoding else IDLE_PREFILL_SLICE_S
            least = MIN_CHUNK_TOGETHER if self._together else MIN_CHUNK_ALONE
            slice_ = max(least, min(budget, int(self._prefill_rate * target)))
            if len(waiting[0].tokens) - waiting[0].num_cached <= SHORT_PROMPT_TOKENS:
                slice_ = max(slice_, SHORT_PROMPT_TOKENS)  # short prompts go whole, together
        batch: list[_Sequence] = []
        chunk = 0
        for seq in waiting:
            wanted = max(chunk, len(seq.tokens) - seq.num_cached)
            if wanted > slice_:
                if batch:
                    break
                wanted = slice_
            if batch and (len(batch) + 1) * wanted > budget:
                break
            batch.append(seq)
            chunk = wanted
        planned = [(s, min(len(s.tokens) - s.num_cached, chunk)) for s in batch]
        for seq, n in planned:
            self._grow(seq, seq.num_cached + n)
        return [(s, n) for s, n in planned if s in self._prefilling]

    def _plan_decode(self) -> list[_Sequence]:
        """Every decoding sequence, each given room for one more token."""
        for seq in list(self._decoding):
            if seq in self._decoding:
                self._grow(seq, seq.num_cached + 1)
        return list(self._decoding)

    def _run_pass(self, chunk: list[tuple[_Sequence, int]], batch: list[_Sequence]) -> None:
        """One forward pass over a prompt chunk and the decode batch (either may be empty), then
        the first tokens of the prompts it completes and the next token of every decoding one."""
        groups = [self._chunk_rows(chunk)] if chunk else []
        decoding = self._decode_groups(batch) if self.fast is not None else [batch] if batch else []
        groups += [self._chunk_rows([(s, 1) for s in group]) for group in decoding]
        self.stats.shared_passes += bool(chunk and batch)
        began = time.monotonic()
        # Dense weights prefill only a chunk that runs alone (never together: see _step).
        with dense_weights(self._dense if not batch else []):
            logits = self._forward(groups)
        elapsed = time.monotonic() - began
        if chunk:
            # A shared pass is charged to the chunk by its rows' weight (see ROW_KEYS), not all
            # of it: beside a large batch a chunk charged the whole pass would shrink to nothing.
            width = groups[0].input_ids.shape[1]
            mine = sum(n * (1 + (s.num_cached + width / 2) / ROW_KEYS) for s, n in chunk)
            theirs = sum(1 + s.num_cached / ROW_KEYS for s in batch)
            own = elapsed * mine / (mine + theirs)
            self._prefill_rate = sum(n for _, n in chunk) / max(own, 1e-3)
            self._prefilled(chunk, logits[0])
        if decoding:
            batch = [seq for group in decoding for seq in group]
            for seq in batch:
                seq.num_cached += 1
                if self._name_answers and seq.num_cached % BLOCK_SIZE == 0:
                    self._name_blocks(seq)
            self._emit_tokens(batch, torch.cat([part[:, -1] for part in logits[1 if chunk else 0 :]]))

    @staticmethod
    def _decode_groups(batch: list[_Sequence]) -> list[list[_Sequence]]:
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

    @staticmethod
    def _completed(chunk: list[tuple[_Sequence, int]]) -> tuple[list[int], list[int]]:
        """The rows whose prompt this chunk completes, and the chunk positions to keep logits of."""
        done = [i for i, (s, n) in enumerate(chunk) if s.num_cached + n == len(s.tokens)]
        return done, sorted({chunk[i][1] - 1 for i in done})

    def _chunk_rows(self, chunk: list[tuple[_Sequence, int]]) -> Rows:
        """The rows of a prompt chunk, or of decoding sequences (one token each: their last)."""
        width = max(n for _, n in chunk)
        starts = [s.num_cached for s, _ in chunk]
        input_ids = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, (seq, n) in enumerate(chunk):
            input_ids[i, :n] = torch.tensor(seq.tokens[seq.num_cached : seq.num_cached + n])
        positions = torch.tensor(starts).unsqueeze(1) + torch.arange(width).unsqueeze(0)
        _, keep_at = self._completed(chunk)
        plan = self.cache.plan([s.table for s, _ in chunk], starts, [n for _, n in chunk], width)
        kv_positions = torch.arange(plan.kv_len)
        mask = (kv_positions.view(1, 1, 1, -1) <= positions.view(len(chunk), 1, width, 1)).to(self.device)
        # Only the last position (every decode step, most chunks): a slice, no index tensor.
        keep = torch.tensor(keep_at, device=self.device) if keep_at and keep_at != [width - 1] else 1
        return Rows(input_ids, positions, mask, plan, keep)

    def _prefilled(self, chunk: list[tuple[_Sequence, int]], logits: torch.Tensor) -> None:
        done, keep_at = self._completed(chunk)
        for seq, n in chunk:
            seq.num_cached += n
            self._name_blocks(seq)
        if not done:
            return
        rows = torch.stack([logits[i, keep_at.index(chunk[i][1] - 1)] for i in done])
        finishing = [chunk[i][0] for i in done]
        for seq in finishing:
            seq.warm_from = max(seq.warm_from, seq.num_named * BLOCK_SIZE)
            self._prefilling.remove(seq)
            self._decoding.append(seq)
        self._emit_tokens(finishing, rows)

    def _name_blocks(self, seq: _Sequence) -> None:
        """Publish the blocks that are now full and computed: the prompt's, and the answer's
        where its keys are a prompt's (_name_answers)."""
        if self._name_answers and self.blocks.caching:
            full = seq.num_cached // BLOCK_SIZE
            extend_hashes(seq.hashes, seq.tokens, full)
        else:
            full = min(seq.num_cached, seq.num_prompt) // BLOCK_SIZE
        for index in range(seq.num_named, min(full, len(seq.hashes))):
            self.blocks.name(seq.table[index], seq.hashes[index])
        seq.num_named = max(seq.num_named, full)

    def _warm(self, tokens: list[int]) -> None:
        """Prefill what the prefix cache lacks of these tokens (a request's prompt and answer so
        far, whole blocks) as a prompt would be, and name the blocks."""
        seq = self._warm_sequence(tokens)
        if seq is None:
            return
        try:
            n = len(tokens) - seq.num_cached
            self._grow(seq, len(tokens))
            with dense_weights(self._dense):
                self._forward([self._chunk_rows([(seq, n)])])
            seq.num_cached = len(tokens)
            self._name_blocks(seq)
            self.stats.warmed_tokens += n
        finally:
            self.blocks.release(seq.table, seq.promised)

    def _warm_sequence(self, tokens: list[int]) -> _Sequence | None:
        """A prompt of these tokens admitted with the blocks the cache holds of them; None when it
        holds them all, has lost more than their last piece to eviction, or has no room."""
        hashes = block_hashes(tokens, len(tokens))
        hit = self.blocks.lookup(hashes)
        start, need = len(hit) * BLOCK_SIZE, len(hashes) - len(hit)
        if not need or len(tokens) - start > 2 * WARM_TOKENS or not self.blocks.can_admit(hit, need):
            return None
        self.blocks.admit(hit, need)
        params = SamplingParams(max_tokens=1)
        seq = _Sequence(
            request_id="warm",
            tokens=tokens,
            num_prompt=len(tokens),
            hashes=hashes,
            params=params,
            sink=lambda _: None,
            detok=IncrementalDetokenizer(self.tokenizer.backend_tokenizer, ()),
            state=SampleState(params, tokens),
        )
        seq.table, seq.promised, seq.num_cached, seq.num_named = list(hit), need, start, len(hit)
        return seq

    def _grow(self, seq: _Sequence, length: int) -> None:
        """Give seq blocks for `length` tokens, preempting the newest request if none are left."""
        while len(seq.table) * BLOCK_SIZE < length:
            block = self.blocks.take(promised=seq.promised > 0)
            if block is not None:
                seq.promised = max(0, seq.promised - 1)
                seq.table.append(block)
                continue
            victim = max(self._running, key=lambda s: s.arrival)
            if victim is seq and len(self._running) == 1:
                raise RuntimeError("the KV cache cannot hold one sequence")  # submit() prevents it
            self._preempt(victim)
            if victim is seq:
                return

    def _preempt(self, seq: _Sequence) -> None:
        """Give back a request's blocks and queue it first: it prefills its tokens again later."""
        self.stats.preempted += 1
        self._drop(seq)
        seq.num_cached = seq.num_named = 0
        self._waiting.appendleft(seq)

    def _forward(self, groups: list[Rows]) -> list[torch.Tensor]:
        groups = [
            Rows(g.input_ids.to(self.device), g.positions.to(self.device), g.mask, g.plan, g.keep)
            for g in groups
        ]
        if self.fast is not None:
            return self.fast(groups, self.cache)
        # The Transformers model takes one group at a time (the only kind _step gives it), whose
        # plan is the cache's current one.
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

    def _emit_tokens(self, batch: list[_Sequence], logits: torch.Tensor) -> None:
        # Sampling runs on the CPU in float32 whatever the model's device: a few MB a step, and
        # each request's generator and settings then behave the same everywhere.
        tokens, logprobs = sample(logits.float().cpu(), [s.state for s in batch])
        for seq, token, lp in zip(batch, tokens, logprobs, strict=True):
            seq.tokens.append(token)
            warm = seq.params.conversation and self.blocks.caching and not self._name_answers
            if warm and len(seq.tokens) - seq.warm_from >= WARM_TOKENS:
                seq.warm_from += WARM_TOKENS
                self._warm_jobs.append(seq.tokens[: seq.warm_from])
            seq.num_output += 1
            seq.state.record(token)
            finish: EndReason | None = None
            hit: str | None = None
            if token in self.eos_ids and not seq.params.ignore_eos:
                text, finish = seq.detok.flush(), "stop"
            else:
                text, hit = seq.detok.feed(token)
                if hit is not None:
                    finish = "stop"
                elif seq.state.grammar_done:  # complete: nothing but its end may follow
                    text += seq.detok.flush()
                    finish = "stop"
                elif seq.num_output >= seq.params.max_tokens or seq.num_cached + 1 >= self._longest:
                    text += seq.detok.flush()
                    finish = "length"
            out = RequestOutput(
                text=text,
                token_ids=[token],
                logprobs=[lp] if lp is not None else [],
                finish_reason=finish,
                prompt_tokens=seq.num_prompt,
                completion_tokens=seq.num_output,
                cached_tokens=seq.cached_tokens,
                stop_sequence=hit,
            )
            if finish is not None:
                self._end(seq)  # before the consumer hears of it: its blocks and place are free
            if not self._deliver(seq, out):
                self.stats.aborted += 1
                if finish is None:
                    self._end(seq)

    def _finish(self, seq: _Sequence, reason: EndReason, error: str | None = None) -> None:
        """End a request early (abort, timeout, failure) and tell its consumer."""
        self._end(seq)
        self._deliver(
            seq,
            RequestOutput(
                "", [], [], reason, seq.num_prompt, seq.num_output, max(seq.cached_tokens, 0), error
            ),
        )

    def _deliver(self, seq: _Sequence, out: RequestOutput) -> bool:
        """Hand an output to its consumer; False when the consumer is gone (its loop closed)."""
        try:
            seq.sink(out)
        except Exception:
            log.warning("request %s: consumer gone, dropping it", seq.request_id)
            return False
        return True

    def _end(self, seq: _Sequence) -> None:
        if seq in self._waiting:
            self._waiting.remove(seq)
        else:
            self._drop(seq)
        self._by_id.pop(seq.request_id, None)
        with self._lock:
            self._live.discard(seq.request_id)
        self.stats.running = len(self._running)
        self.stats.waiting = len(self._waiting)

    def _drop(self, seq: _Sequence) -> None:
        """Out of the running batch, its blocks given back."""
        for group in (self._decoding, self._prefilling):
            if seq in group:
                group.remove(seq)
        self.blocks.release(seq.table, seq.promised)
        seq.table, seq.promised = [], 0

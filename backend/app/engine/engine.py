"""The generation engine: one worker thread owns the model and runs continuous batching.

Each iteration of the worker admits waiting requests (reusing the cached blocks of any prefix
it has seen: blocks.py), prefills a chunk of the prompts being prefilled, shortest first, then runs
one decode step for every decoding sequence together. Prefill chunks are sized from the measured
prefill rate to take a fraction of a second, so a long prompt never stalls decoding streams for
long, and a short prompt arriving meanwhile is prefilled at the next step.
A finished or aborted sequence leaves at once. Requests and outputs cross the thread boundary
through queues; the asyncio side never waits on the model.
"""

from __future__ import annotations

import asyncio
import logging
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
from .blocks import BLOCK_SIZE, BlockManager, block_hashes
from .config import EngineConfig
from .fast_decoder import fast_decoder_for
from .grammar import Grammars
from .kv_cache import PagedKVCache, bytes_per_token
from .memory import kv_budget_bytes, trim_heap
from .quantization import dense_capable, dense_weights
from .sampling import SampleState, SamplingParams, TokenLogprobs, sample
from .text import IncrementalDetokenizer

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
# about this plus one decode step), and while none do (a new short prompt waits about this).
PREFILL_SLICE_S = 0.12
IDLE_PREFILL_SLICE_S = 0.5
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


@dataclass
class EngineStats:
    running: int = 0
    waiting: int = 0
    aborted: int = 0
    preempted: int = 0
    prefill_steps: int = 0


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
        torch.set_num_threads(self.num_threads)
        with torch.inference_mode():
            try:
                busy = False
                while True:
                    if busy and not self._running:
                        trim_heap()  # a long prompt's attention buffers go back to the system
                    busy = bool(self._running or self._waiting)
                    if not self._drain(block=not busy):
                        break
                    self._expire_waiting()
                    self._admit()
                    if self._running:
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
            if self._prefilling:
                self._prefill_step()
            if self._decoding:
                self._decode_step()
        except Exception as exc:  # a failed forward fails its batch, not the server
            log.exception("engine step failed")
            for seq in self._running:
                self._finish(seq, "error", f"Generation failed: {type(exc).__name__}.")

    def _prefill_step(self) -> None:
        """Prompts with the fewest tokens left, padded to one length: short prompts together, up to
        max_num_batched_tokens; a prompt longer than the slice the measured rate allows is cut to
        that slice and goes alone, after the short ones."""
        self.stats.prefill_steps += 1
        budget = self.config.max_num_batched_tokens
        slice_ = budget
        if self._prefill_rate is not None:
            target = PREFILL_SLICE_S if self._decoding else IDLE_PREFILL_SLICE_S
            slice_ = max(BLOCK_SIZE, min(budget, int(self._prefill_rate * target)))
        batch: list[_Sequence] = []
        chunk = 0
        for seq in sorted(self._prefilling, key=lambda s: len(s.tokens) - s.num_cached):
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
        planned = [(s, n) for s, n in planned if s in self._prefilling]  # a preempted one waits again
        if not planned:
            return
        batch, lengths = [s for s, _ in planned], [n for _, n in planned]
        starts = [s.num_cached for s in batch]
        input_ids = torch.zeros((len(batch), chunk), dtype=torch.long)
        for i, (seq, n) in enumerate(zip(batch, lengths, strict=True)):
            input_ids[i, :n] = torch.tensor(seq.tokens[seq.num_cached : seq.num_cached + n])
        positions = torch.tensor(starts).unsqueeze(1) + torch.arange(chunk).unsqueeze(0)
        done = [i for i, s in enumerate(batch) if s.num_cached + lengths[i] == len(s.tokens)]
        keep_at = sorted({lengths[i] - 1 for i in done})
        kv_len = self.cache.plan([s.table for s in batch], starts, lengths, chunk)
        kv_positions = torch.arange(kv_len)
        mask = (kv_positions.view(1, 1, 1, -1) <= positions.view(len(batch), 1, chunk, 1)).to(self.device)
        began = time.monotonic()
        with dense_weights(self._dense):
            logits = self._forward(
                input_ids, positions, mask, torch.tensor(keep_at, device=self.device) if keep_at else 1
            )
        self._prefill_rate = len(batch) * chunk / max(time.monotonic() - began, 1e-3)
        for seq, n in zip(batch, lengths, strict=True):
            seq.num_cached += n
            self._name_blocks(seq)
        if not done:
            return
        rows = torch.stack([logits[i, keep_at.index(lengths[i] - 1)] for i in done])
        finishing = [batch[i] for i in done]
        for seq in finishing:
            self._prefilling.remove(seq)
            self._decoding.append(seq)
        self._emit_tokens(finishing, rows)

    def _name_blocks(self, seq: _Sequence) -> None:
        """Publish the prompt's blocks that are now full and computed."""
        full = min(seq.num_cached, seq.num_prompt) // BLOCK_SIZE
        for index in range(seq.num_named, min(full, len(seq.hashes))):
            self.blocks.name(seq.table[index], seq.hashes[index])
        seq.num_named = max(seq.num_named, full)

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

    def _forward(
        self, input_ids: torch.Tensor, positions: torch.Tensor, mask: torch.Tensor, keep: int | torch.Tensor
    ) -> torch.Tensor:
        input_ids, positions = input_ids.to(self.device), positions.to(self.device)
        if self.fast is not None:
            return self.fast(input_ids, positions, mask, self.cache, keep)
        return self.model(
            input_ids=input_ids,
            position_ids=positions,
            attention_mask=mask,
            cache=self.cache,
            use_cache=True,
            logits_to_keep=keep,
        ).logits

    def _decode_step(self) -> None:
        for seq in list(self._decoding):
            if seq in self._decoding:
                self._grow(seq, seq.num_cached + 1)
        if not self._decoding:
            return
        batch = list(self._decoding)
        starts = [s.num_cached for s in batch]
        kv_len = self.cache.plan([s.table for s in batch], starts, [1] * len(batch), 1)
        kv_positions = torch.arange(kv_len).view(1, 1, 1, -1)
        mask = (kv_positions <= torch.tensor(starts).view(-1, 1, 1, 1)).to(self.device)
        logits = self._forward(
            torch.tensor([[s.tokens[-1]] for s in batch]), torch.tensor(starts).unsqueeze(1), mask, 1
        )[:, -1]
        for seq in batch:
            seq.num_cached += 1
        self._emit_tokens(batch, logits)

    def _emit_tokens(self, batch: list[_Sequence], logits: torch.Tensor) -> None:
        # Sampling runs on the CPU in float32 whatever the model's device: a few MB a step, and
        # each request's generator and settings then behave the same everywhere.
        tokens, logprobs = sample(logits.float().cpu(), [s.state for s in batch])
        for seq, token, lp in zip(batch, tokens, logprobs, strict=True):
            seq.tokens.append(token)
            seq.num_output += 1
            seq.state.record(token)
            finish: EndReason | None = None
            if token in self.eos_ids and not seq.params.ignore_eos:
                text, finish = seq.detok.flush(), "stop"
            else:
                text, hit = seq.detok.feed(token)
                if hit:
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

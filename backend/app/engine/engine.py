"""The generation engine: one worker thread owns the model and runs continuous batching.

Each iteration of the worker takes the commands that crossed the thread boundary (new requests,
aborts), lets the scheduler admit waiting requests (scheduler.py) and runs the passes it plans
for this step (runner.py), whose tokens the output stage turns into each request's output
(output.py); between steps, when no prompt waits, it warms the prefix cache with conversations'
answers (prefix_cache.py). Requests and outputs cross the thread boundary through queues; the
asyncio side never waits on the model.
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
from collections.abc import Callable
from functools import cached_property, partial

import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from .attention import kv_token_bytes, paged_cache
from .blocks import BLOCK_SIZE, BlockManager, block_hashes
from .config import EngineConfig
from .draft import DraftProposer, check_vocabulary
from .grammar import Grammars
from .loader import rows_independent
from .memory import kv_budget_bytes, trim_heap
from .output import OutputStage, Request
from .output import RequestOutput as RequestOutput
from .prefix_cache import PrefixCache
from .runner import ModelRunner, speculable
from .sampling import SampleState, SamplingParams
from .scheduler import EngineStats, Scheduler, StepPlan
from .speculative import NgramProposer, Proposer
from .text import IncrementalDetokenizer
from .threads import use_threads

log = logging.getLogger(__name__)

# An idle engine's wait for the rest of a burst of requests (see Engine._drain): the event loop
# hands over one request every half millisecond or so on a 2-core machine.
BURST_GAP_S = 0.002
BURST_MAX_S = 0.02
# Python's GIL switch interval while an engine runs (see Engine.start).
GIL_SWITCH_S = 0.0001


class EngineBusy(Exception):
    """The waiting queue is full (HTTP 429)."""


class EngineUnavailable(Exception):
    """The engine is shutting down, dead, or a request waited too long (HTTP 503)."""


class RequestTooLarge(Exception):
    """The prompt cannot fit in the KV cache even alone (HTTP 400)."""


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
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: EngineConfig,
        draft: tuple[PreTrainedModel, PreTrainedTokenizerBase] | None = None,
    ) -> None:
        """draft: a small model of the same vocabulary, and its tokenizer, proposing tokens for
        config.speculative "draft" or "auto" (draft.py)."""
        if draft is not None:
            check_vocabulary(*draft, model, tokenizer)
        elif config.speculative == "draft":
            raise ValueError("speculative='draft' needs a draft model of the chat model's vocabulary")
        self.model = model
        self.config = config
        self.num_threads = config.num_threads or os.cpu_count() or 1
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
        budget = kv_budget_bytes(config.kv_cache_memory_gb, self.device)
        num_blocks = 1 + max(1, budget // (BLOCK_SIZE * kv_token_bytes(model)))
        self.cache = paged_cache(model, num_blocks)
        self.blocks = BlockManager(num_blocks, caching=config.enable_prefix_caching)
        self.kv_capacity_tokens = self.blocks.usable * BLOCK_SIZE
        self.runner = ModelRunner(model, self.cache, config.fast_path)
        self.fast = self.runner.fast
        # A generated token's keys are exactly a prompt's (the same weights, every row computed
        # on its own): answers' blocks are named as they fill (prefix_cache.py).
        self.prefix = PrefixCache(self.blocks, rows_independent(model) and not self.runner.dense)
        self.stats = EngineStats()
        # A sequence ends ("length") at the model's context or when it alone fills the cache.
        longest = min(self.max_context, self.kv_capacity_tokens)
        # Speculative decoding where a verified row computes exactly what decoding one token at
        # a time does (the answers' keys are a prompt's), on the fast path (its own group).
        exact = self.fast is not None and self.prefix.name_answers
        proposer: Proposer | None = None
        if config.speculative != "off" and exact:
            proposer = NgramProposer()
            if draft is not None and config.speculative in ("draft", "auto"):
                proposer = DraftProposer(draft[0], text_config.vocab_size, num_blocks)
        self.scheduler: Scheduler[Request] = Scheduler(
            config,
            self.blocks,
            self.prefix,
            # Prefill chunks and decode steps share forward passes where dense prefill weights
            # (which only a chunk alone may use) do not keep them apart.
            together=self.fast is not None and not self.runner.dense,
            grouped=self.fast is not None,
            stats=self.stats,
            longest=longest,
            proposer=proposer,
            auto=config.speculative == "auto",
        )
        self._commands: queue.SimpleQueue[tuple[str, object]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live: set[str] = set()  # submitted and neither ended nor aborted
        # Its end is told with what it changes, not a method of the engine: the engine holds the
        # output stage, and a bound method there would make a reference cycle that keeps the
        # model's weights alive after shutdown until the cyclic collector happens to run (an
        # unloaded model's memory not returned).
        self.output = OutputStage(
            self.eos_ids,
            longest,
            self.prefix,
            partial(leave, self.scheduler, self._lock, self._live),
            self.stats,
        )
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
    def speculation(self) -> dict[str, tuple[int, int]]:
        """Speculative decoding's (tokens proposed, of which accepted) by proposer; empty when
        off."""
        proposer = self.scheduler.proposer
        if proposer is None:
            return {}
        return {proposer.name: (self.stats.spec_proposed, self.stats.spec_accepted)}

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
        hashes = block_hashes(prompt_ids, len(prompt_ids)) if self.blocks.caching else []
        seq = Request(
            request_id=request_id,
            tokens=list(prompt_ids),
            num_prompt=len(prompt_ids),
            hashes=hashes,
            params=params,
            sink=sink,
            detok=IncrementalDetokenizer(self.tokenizer.backend_tokenizer, params.stop),
            state=SampleState(params, prompt_ids),
            speculate=speculable(params),
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
        scheduler = self.scheduler
        with torch.inference_mode():
            try:
                busy = False
                while True:
                    if busy and not scheduler.running and not self.prefix.warm_jobs:
                        trim_heap()  # a long prompt's attention buffers go back to the system
                    busy = scheduler.busy or bool(self.prefix.warm_jobs)
                    if not self._drain(block=not busy):
                        break
                    for seq in scheduler.expired(time.monotonic()):
                        self.output.finish(
                            seq,
                            "error",
                            f"The request waited more than {self.config.queue_timeout_s:g} s for a free "
                            "slot. Retry later.",
                        )
                    scheduler.admit()
                    if scheduler.running or self.prefix.warm_jobs:
                        self._step_safely()
            except Exception as exc:  # the engine is dead; /health reports it
                log.exception("engine worker died")
                self.error = f"{type(exc).__name__}: {exc}"
            finally:
                for seq in [*scheduler.running, *scheduler.waiting]:
                    self.output.finish(seq, "error", "The engine stopped before this request completed.")

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
                assert isinstance(arg, Request)
                if arg.request_id in self._live:  # not aborted while in the command queue
                    self.scheduler.add(arg)
            elif command == "abort":
                seq = self.scheduler.get(str(arg))
                if seq is not None:
                    self.stats.aborted += 1
                    self.output.finish(seq, "abort")
            try:
                wait = min(BURST_GAP_S, burst_end - time.monotonic()) if block else 0.0
                command, arg = self._commands.get(timeout=wait) if wait > 0 else self._commands.get_nowait()
            except queue.Empty:
                return True

    def _step_safely(self) -> None:
        try:
            self._step()
        except Exception as exc:  # a failed forward fails its batch, not the server
            log.exception("engine step failed")
            for seq in self.scheduler.running:
                self.output.finish(seq, "error", f"Generation failed: {type(exc).__name__}.")

    def _step(self) -> None:
        """The scheduler's passes for this step, each run, reported back and emitted before the
        next is planned. Then, if no prompt waits (nor has just arrived), a piece of an answer for
        the prefix cache: after the decode step, so a prompt arriving meanwhile waits at most for
        that piece."""
        for plan in self.scheduler.steps():
            result = self.runner.execute(plan)
            if plan.chunk:
                first = self.scheduler.prefilled(plan, result.elapsed, result.first.tokens)
                self.output.emit(first, result.first.tokens, result.first.logprobs)
            else:  # a decode step's time: what a draft model's tokens cost is judged against it
                self.scheduler.passed(result.elapsed)
            if plan.decode:
                self.scheduler.decoded(plan, result.next.tokens)
                self.output.emit(plan.decoding, result.next.tokens, result.next.logprobs)
            if plan.verify:
                self.scheduler.verified(plan, result.runs)
                self.output.emit_runs(plan.verify, result.runs)
        jobs = self.prefix.warm_jobs
        if jobs and not self.scheduler.prefilling and not self.scheduler.waiting and self._commands.empty():
            try:
                self._warm(jobs[0])
            finally:  # taken off after its pass, so an empty queue means nothing left to cache
                jobs.popleft()

    def _warm(self, tokens: list[int]) -> None:
        """Prefill what the prefix cache lacks of these tokens (a request's prompt and answer so
        far, whole blocks) as a prompt would be, and name the blocks."""
        seq = self.prefix.warm_sequence(tokens)
        if seq is None:
            return
        try:
            n = len(tokens) - seq.num_cached
            self.scheduler.grow(seq, len(tokens))
            self.runner.forward(StepPlan([(seq, n)], []))
            self.prefix.warmed(seq)
            self.stats.warmed_tokens += n
        finally:
            self.blocks.release(seq.table, seq.promised)


def leave(scheduler: Scheduler[Request], lock: threading.Lock, live: set[str], seq: Request) -> None:
    """The request leaves: out of the scheduler, and no longer counted in flight."""
    scheduler.remove(seq)
    with lock:
        live.discard(seq.request_id)

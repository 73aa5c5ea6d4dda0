"""The output stage: a sampled token becomes a request's output (its grammar advanced, its text
detokenised and checked for stop strings, its end decided) and is handed to its consumer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from .prefix_cache import PrefixCache
from .sampling import SampleState, SamplingParams, TokenLogprobs
from .scheduler import EngineStats
from .sequence import Sequence
from .text import IncrementalDetokenizer

log = logging.getLogger(__name__)

# Why a sequence ended: the API's two finish reasons, or cut short by a client or a failure.
EndReason = Literal["stop", "length", "abort", "error"]


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


@dataclass(eq=False, kw_only=True)
class Request(Sequence):
    """A request's sequence with what sampling and emitting need."""

    params: SamplingParams
    sink: Callable[[RequestOutput], None]
    detok: IncrementalDetokenizer
    state: SampleState


class OutputStage:
    def __init__(
        self,
        eos_ids: set[int],
        longest: int,
        prefix: PrefixCache,
        end: Callable[[Request], None],
        stats: EngineStats,
    ) -> None:
        self.eos_ids = eos_ids
        self.longest = longest  # a sequence ends ("length") at this many tokens
        self.prefix = prefix
        self.end = end  # the request leaves the engine: its blocks and place are free
        self.stats = stats

    def emit(self, batch: list[Request], tokens: list[int], logprobs: list[TokenLogprobs | None]) -> None:
        """Each request's sampled token (the scheduler has appended it): its output delivered, its
        end decided."""
        for seq, token, lp in zip(batch, tokens, logprobs, strict=True):
            self._emit(seq, token, lp, len(seq.tokens))

    def emit_runs(self, batch: list[Request], runs: list[list[int]]) -> None:
        """Each request's run of tokens (a verified draft's accepted part and the token after
        it), one output each, until one ends the request."""
        for seq, run in zip(batch, runs, strict=True):
            before = len(seq.tokens) - len(run)
            for i, token in enumerate(run):
                if not self._emit(seq, token, None, before + i + 1):
                    break

    def _emit(self, seq: Request, token: int, lp: TokenLogprobs | None, length: int) -> bool:
        """One token, the `length`th of its sequence; False once the request has ended."""
        self.prefix.generated(seq, seq.params.conversation)
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
            elif seq.num_output >= seq.params.max_tokens or length >= self.longest:
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
            self.end(seq)  # before the consumer hears of it: its blocks and place are free
        if not self.deliver(seq, out):
            self.stats.aborted += 1
            if finish is None:
                self.end(seq)
            return False
        return finish is None

    def finish(self, seq: Request, reason: EndReason, error: str | None = None) -> None:
        """End a request early (abort, timeout, failure) and tell its consumer."""
        self.end(seq)
        self.deliver(
            seq,
            RequestOutput(
                "", [], [], reason, seq.num_prompt, seq.num_output, max(seq.cached_tokens, 0), error
            ),
        )

    @staticmethod
    def deliver(seq: Request, out: RequestOutput) -> bool:
        """Hand an output to its consumer; False when the consumer is gone (its loop closed)."""
        try:
            seq.sink(out)
        except Exception:
            log.warning("request %s: consumer gone, dropping it", seq.request_id)
            return False
        return True

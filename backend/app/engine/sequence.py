"""A sequence as the scheduler sees it: its tokens, its KV blocks and where it is in its life.

Pure bookkeeping (no torch): the scheduler (scheduler.py) and the prefix cache (prefix_cache.py)
work on these alone; the output stage's request (output.py) adds what sampling and emitting need.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import Enum

from .speculative import Tally


class Status(Enum):
    """waiting -> prefilling -> decoding -> finished; preempted (blocks given back, queued first)
    -> prefilling again. A request may finish (abort, timeout, failure) in any state."""

    WAITING = "waiting"
    PREFILLING = "prefilling"
    DECODING = "decoding"
    PREEMPTED = "preempted"
    FINISHED = "finished"


@dataclass(eq=False, kw_only=True)
class Sequence:
    request_id: str
    tokens: list[int]  # the prompt, then each generated token
    num_prompt: int
    hashes: list[bytes]  # of the prompt's full blocks (the answer's too, as named: prefix_cache.py)
    status: Status = Status.WAITING
    arrival: float = field(default_factory=time.monotonic)
    table: list[int] = field(default_factory=list)  # the KV blocks holding tokens[:num_cached]
    promised: int = 0  # blocks promised to this prompt's prefill and not yet taken
    num_cached: int = 0
    num_named: int = 0  # leading blocks published to the prefix cache
    warm_from: int = 0  # tokens before this are named, or queued to be (prefix_cache.WARM_TOKENS)
    cached_tokens: int = -1  # prompt tokens reused on first admission; -1 until admitted
    num_output: int = 0
    # Speculative decoding (speculative.py): whether its tokens may be proposed and verified
    # (runner.speculable), this step's proposed tokens, and its recent drafts' tally.
    speculate: bool = False
    draft: list[int] = field(default_factory=list)
    tally: Tally = field(default_factory=Tally)

    @property
    def remaining(self) -> int:
        """Tokens not yet in the KV cache (a prompt's still to prefill)."""
        return len(self.tokens) - self.num_cached

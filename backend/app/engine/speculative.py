"""Speculative decoding's proposers: tokens a sequence will likely generate next, checked by the
model in the step's one forward pass (scheduler.py plans them, runner.py verifies them).

A proposer is anything with `name`, `draft(wanted)` (every drafting sequence's draft of a step
at once, so a model proposing them batches its passes) and `forget(request_id)`. The n-gram
proposer (prompt lookup) needs no second model: where the sequence's last few tokens occurred
before (in a pasted document, a code file being rewritten, the answer so far), it proposes the
tokens that followed them there. Pure bookkeeping, no torch; the draft-model proposer, which runs
a small model of the same vocabulary, is draft.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

Speculative = Literal["off", "ngram", "draft", "auto"]
# A sequence that wants a draft: its request id, its tokens, the most tokens to propose.
Wanted = tuple[str, list[int], int]

# Tokens proposed a step, at most: a verified row costs about a decode row per token, and on 2
# cores a few extra rows ride along with the weights' one read nearly free. LONG_PROPOSED while
# at least LONG_ACCEPTANCE of a request's recent proposals were accepted (copying a document or
# a file: a longer draft's rows cost less than the passes they save).
MAX_PROPOSED = 4
LONG_PROPOSED = 8
LONG_ACCEPTANCE = 0.8
# "auto": a sequence drafts while the requests decoding, prefilling and waiting are at most this
# many (beyond, their rows fill the matrix products already) and while its recent drafts pay
# (Tally).
AUTO_MAX_BATCH = 4
# A draft of k tokens of which a share r is accepted gives 1 + r*k tokens for a pass costing
# 1 + c*k decode steps, c an extra row's cost, plus k*d steps drafting them (d: a drafted
# token's cost in decode steps, 0 for prompt lookup, measured for a draft model): it pays while
# r > c + d. c was not measured on its own; 0.3 is on the safe side of the bench
# (docs/benchmarks-speculative.md).
AUTO_MIN_ACCEPTANCE = 0.3
# Tokens proposed before a request's acceptance is judged; each earlier draft's weight in it
# fades by AUTO_FADE a draft; decode steps a request that did not pay waits before it tries
# again, doubled each time it fails again.
AUTO_PROBATION = 8
AUTO_FADE = 0.8
AUTO_PAUSE = 16


class Proposer(Protocol):
    name: str
    token_s: float  # seconds drafting a token takes (measured; 0: next to nothing)

    def draft(self, wanted: list[Wanted]) -> list[list[int]]:
        """For each sequence, up to k tokens likely to follow its tokens; none where it has no
        guess."""
        ...

    def forget(self, request_id: str) -> None:
        """The request ended: what was kept for it goes."""
        ...


class NgramProposer:
    """Prompt lookup: the tokens that followed the latest earlier occurrence of the sequence's
    last n tokens, the longest n from max_n down to min_n that occurred."""

    name = "ngram"
    token_s = 0.0

    def __init__(self, min_n: int = 2, max_n: int = 4) -> None:
        self.min_n = min_n
        self.max_n = max_n

    def draft(self, wanted: list[Wanted]) -> list[list[int]]:
        return [self.propose(tokens, k) for _, tokens, k in wanted]

    def forget(self, request_id: str) -> None:
        """Nothing is kept between steps."""

    def propose(self, tokens: list[int], k: int) -> list[int]:
        for n in range(self.max_n, self.min_n - 1, -1):
            if len(tokens) <= n:
                continue
            tail = tokens[-n:]
            last = tail[-1]
            # Latest first: a document quoted or code rewritten continues where it was last seen.
            for end in range(len(tokens) - 2, n - 2, -1):
                if tokens[end] == last and tokens[end - n + 1 : end + 1] == tail:
                    return tokens[end + 1 : end + 1 + k]
        return []


@dataclass
class Tally:
    """A request's recent drafts: proposed and accepted tokens, earlier drafts fading (they
    decide a draft's length), and (`auto`) how long it waits after drafts that did not pay (a
    free answer often has a short tail seen before; a rewrite's new part ends and copying
    starts, so it tries again)."""

    proposed: float = 0.0
    accepted: float = 0.0
    pause: int = 0  # decode steps left without drafting
    next_pause: int = AUTO_PAUSE

    def may_draft(self) -> bool:
        """Whether it drafts this step (counting a step of its pause)."""
        if self.pause:
            self.pause -= 1
            return False
        return True

    @property
    def length(self) -> int:
        """Tokens to propose this step, at most."""
        if self.proposed >= AUTO_PROBATION and self.accepted >= LONG_ACCEPTANCE * self.proposed:
            return LONG_PROPOSED
        return MAX_PROPOSED

    def verified(self, proposed: int, accepted: int, least: float = AUTO_MIN_ACCEPTANCE) -> None:
        """A draft's outcome; drafts pay while at least a share `least` is accepted."""
        self.proposed = self.proposed * AUTO_FADE + proposed
        self.accepted = self.accepted * AUTO_FADE + accepted
        if self.proposed < AUTO_PROBATION:
            return
        if self.accepted < least * self.proposed:
            self.pause, self.next_pause = self.next_pause, self.next_pause * 2
            self.proposed = self.accepted = 0.0  # on probation again after the pause
        else:
            self.next_pause = AUTO_PAUSE

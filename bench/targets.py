"""The benchmark's targets as data: one row per bound an issue sets, nothing else.

A row names the issue, the measured figure (a Metric: which figure, of which system, at which
load), what it is divided by when the bound is a ratio, and the bound. `OURS` stands for the
server under test, so rows with a `column` also give every precision mode's ratios;
`FASTEST_LLAMA` for llama-server in whichever KV configuration (unified or per slot) did better
on that figure. figures.py looks the values up; report.py renders rows and verdicts.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

OURS = "ours"  # our server in its default settings; in a metric, whichever of ours is shown
FASTEST_LLAMA = "llama-fastest"


@dataclass(frozen=True)
class Metric:
    figure: str  # one of figures.FIGURES: "rate" (generated tokens/s), "ttft_p50" (seconds), ...
    system: str  # a system key of the results
    load: int = 0  # concurrent streams, conversations or users
    turn: int = 0  # a conversation's turn, from 1

    def of(self, key: str) -> Metric:
        """The same figure for another of our systems (a precision mode)."""
        return replace(self, system=key) if self.system == OURS else self


@dataclass(frozen=True)
class Target:
    issue: int
    name: str
    measured: Metric
    bound: float  # a ratio when `reference` is set, else in the figure's own unit
    reference: Metric | None = None
    at_most: bool = False  # an upper bound (latency), else a lower one (speed)
    column: str | None = None  # its column in the per-precision table, if it has one

    def verdict(self, value: float) -> tuple[bool, float]:
        """Whether `value` (the ratio, or the figure) meets the bound, and value / bound."""
        share = value / self.bound
        return (value <= self.bound if self.at_most else value >= self.bound), share


def _rate(load: int, system: str = OURS) -> Metric:
    return Metric("rate", system, load)


def _turn(conversations: int, turn: int, system: str = OURS) -> Metric:
    return Metric("turn_ttft_p50", system, conversations, turn)


TARGETS: tuple[Target, ...] = (
    Target(
        3,
        "1 stream vs bare `generate` (same precision)",
        _rate(1),
        1.0,
        Metric("bare_rate", OURS),
        column="1 vs bare",
    ),
    Target(
        3,
        "8 streams vs `transformers serve --continuous-batching`",
        _rate(8),
        1.5,
        _rate(8, "tserve-cb"),
        column="8 vs tserve-cb",
    ),
    Target(3, "8 streams vs our own 1 stream", _rate(8), 5.0, _rate(1), column="8 vs own 1"),
    Target(3, "TTFT p50 at 8 streams", Metric("ttft_p50", OURS, 8), 1.0, at_most=True, column="TTFT p50 @8"),
    Target(7, "16 streams vs llama-server", _rate(16), 1.2, _rate(16, "llama"), column="16 vs llama"),
    Target(7, "8 streams vs llama-server", _rate(8), 1.0, _rate(8, "llama"), column="8 vs llama"),
    Target(7, "1 stream vs llama-server", _rate(1), 0.33, _rate(1, "llama"), column="1 vs llama"),
    Target(7, "1 stream vs llama-server (stretch)", _rate(1), 0.5, _rate(1, "llama"), column="1 vs llama"),
    Target(
        7, "TTFT p50 at 16 streams", Metric("ttft_p50", OURS, 16), 0.5, at_most=True, column="TTFT p50 @16"
    ),
    Target(
        13, "16 streams vs llama-server, faster KV configuration", _rate(16), 1.2, _rate(16, FASTEST_LLAMA)
    ),
    Target(13, "8 streams vs llama-server, faster KV configuration", _rate(8), 1.0, _rate(8, FASTEST_LLAMA)),
    Target(13, "1 stream vs llama-server, faster KV configuration", _rate(1), 0.5, _rate(1, FASTEST_LLAMA)),
    Target(13, "1 conversation: turn-8 TTFT vs its turn 1", _turn(1, 8), 1.2, _turn(1, 1), at_most=True),
    Target(
        13,
        "1 conversation: turn-8 TTFT vs llama-server's",
        _turn(1, 8),
        1.0,
        _turn(1, 8, FASTEST_LLAMA),
        at_most=True,
    ),
    Target(
        13,
        "8 conversations: turn-8 TTFT p50 vs llama-server's",
        _turn(8, 8),
        0.7,
        _turn(8, 8, FASTEST_LLAMA),
        at_most=True,
    ),
    # A block cache reuses whole blocks only, so a little under the shared prefix is a hit too.
    Target(
        13,
        "16 users, one 1,000-token system prompt: share of it reused",
        Metric("shared_reuse", OURS, 16),
        0.95,
    ),
    Target(
        13,
        "7,900-token paste: worst TTFT of the short requests meanwhile",
        Metric("paste_short_ttft_max", OURS),
        1.0,
        at_most=True,
    ),
    Target(
        13,
        "7,900-token paste: running streams' inter-token gap p95 meanwhile",
        Metric("paste_itl_p95", OURS),
        0.25,
        at_most=True,
    ),
    # "Costs at most 1.2x" in tokens/s: the constrained rate is at least 1/1.2 of the other.
    Target(
        15,
        "8 streams, JSON-schema-constrained vs the same load unconstrained",
        Metric("structured_rate", OURS, 8),
        1 / 1.2,
        Metric("unconstrained_rate", OURS, 8),
    ),
    # "Within 5 %" of the chat completion's tokens/s, on the same greedy answers.
    Target(
        27,
        "8 streams, Responses API vs the same chat completions",
        Metric("api_responses_rate", OURS, 8),
        0.95,
        Metric("api_chat_rate", OURS, 8),
    ),
    Target(
        27,
        "8 streams, Messages API vs the same chat completions",
        Metric("api_messages_rate", OURS, 8),
        0.95,
        Metric("api_chat_rate", OURS, 8),
    ),
)

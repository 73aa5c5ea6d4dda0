"""The targets table: well-formed rows, the bounds the issues set, verdicts in both directions."""

from __future__ import annotations

import pytest

from bench.figures import FIGURES, LOWER_IS_BETTER, Figures
from bench.targets import FASTEST_LLAMA, OURS, TARGETS, Metric, Target

from .test_figures import results_of


def test_every_row_names_a_known_figure_and_a_bound() -> None:
    figures = Figures({**results_of({}), "bare": {}})
    for target in TARGETS:
        assert target.bound > 0
        for metric in (target.measured, target.reference):
            if metric is not None:
                assert metric.figure in FIGURES
                assert figures.value(metric) is None  # nothing measured: no figure, no error


def test_rows_are_unique_and_latencies_are_upper_bounds() -> None:
    assert len({(t.issue, t.name) for t in TARGETS}) == len(TARGETS)
    for target in TARGETS:
        latency = target.measured.figure in LOWER_IS_BETTER
        assert target.at_most == latency, target.name
        if target.reference is not None:  # a ratio divides a speed by a speed, a latency by a latency
            assert (target.reference.figure in LOWER_IS_BETTER) == latency, target.name


def test_a_shared_column_compares_the_same_figures() -> None:
    """Two rows that share a per-precision column (a target and its stretch) must measure the
    same thing, or the column would show one of them under the other's name."""
    by_column: dict[str, Target] = {}
    for target in TARGETS:
        if target.column:
            first = by_column.setdefault(target.column, target)
            assert (first.measured, first.reference) == (target.measured, target.reference)


@pytest.mark.parametrize(
    ("issue", "name", "bound"),
    [
        (3, "8 streams vs our own 1 stream", 5.0),
        (3, "TTFT p50 at 8 streams", 1.0),
        (7, "16 streams vs llama-server", 1.2),
        (7, "1 stream vs llama-server (stretch)", 0.5),
        (7, "TTFT p50 at 16 streams", 0.5),
        (13, "16 streams vs llama-server, faster KV configuration", 1.2),
        (13, "1 stream vs llama-server, faster KV configuration", 0.5),
        (13, "1 conversation: turn-8 TTFT vs its turn 1", 1.2),
        (13, "8 conversations: turn-8 TTFT p50 vs llama-server's", 0.7),
        (13, "7,900-token paste: worst TTFT of the short requests meanwhile", 1.0),
        (13, "7,900-token paste: running streams' inter-token gap p95 meanwhile", 0.25),
        (15, "8 streams, JSON-schema-constrained vs the same load unconstrained", 1 / 1.2),
    ],
)
def test_bounds_from_the_issues(issue: int, name: str, bound: float) -> None:
    rows = [t for t in TARGETS if (t.issue, t.name) == (issue, name)]
    assert [t.bound for t in rows] == [bound]


def test_verdict_lower_and_upper_bounds() -> None:
    speed = Target(7, "speed", Metric("rate", OURS, 16), 1.2, Metric("rate", "llama", 16))
    assert speed.verdict(1.5) == (True, 1.25)
    met, share = speed.verdict(0.6)
    assert not met and share == pytest.approx(0.5)
    latency = Target(7, "latency", Metric("ttft_p50", OURS, 16), 0.5, at_most=True)
    assert latency.verdict(0.5)[0]
    assert latency.verdict(1.0) == (False, 2.0)


def test_issue_13_compares_with_the_faster_llama_server() -> None:
    rows = [t for t in TARGETS if t.issue == 13 and t.reference and t.reference.system != OURS]
    assert rows and all(t.reference and t.reference.system == FASTEST_LLAMA for t in rows)


def test_metric_of_replaces_only_the_server_under_test() -> None:
    ours = Metric("rate", OURS, 8)
    assert ours.of("ours-float32") == Metric("rate", "ours-float32", 8)
    peer = Metric("rate", "llama", 8)
    assert peer.of("ours-float32") is peer


def test_issue_15_compares_the_interleaved_loads_of_one_run() -> None:
    """Constrained at most 1.2x the cost of unconstrained: a rate ratio of at least 1/1.2,
    against the unconstrained blocks of the same load, not the sweep's rate."""
    (row,) = [t for t in TARGETS if t.issue == 15]
    assert row.measured == Metric("structured_rate", OURS, 8)
    assert row.reference == Metric("unconstrained_rate", OURS, 8)
    assert row.verdict(100 / 119)[0] and not row.verdict(100 / 121)[0]

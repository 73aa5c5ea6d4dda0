"""figures.py over small hand-made results, whose expected figures can be worked out by hand;
and the whole report over a saved results file, against the Markdown it rendered before."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import pytest

from bench.figures import Cell, Figures, WeightBytes, cells
from bench.report import Report
from bench.structured import CONSTRAINED, SCHEMA, UNCONSTRAINED
from bench.targets import Metric

DATA = Path(__file__).parent / "data"


def level(streams: int, rate: float, ttft: list[float], censored: int = 0) -> dict[str, Any]:
    return {
        "concurrency": streams,
        "tokens_per_s": rate,
        "ttft_s": ttft,
        "ttft_censored": censored,
        "itl_s": [0.02, 0.04],
        "peak_rss_mb": 900.0,
        "errors": [],
        "prompt_tokens": [40] * streams,
    }


def results_of(systems: dict[str, list[dict[str, Any]]], **extra: Any) -> dict[str, Any]:
    """A results dict with these systems (key -> runs) and a default mode of bfloat16+int4."""
    return {
        "systems": {key: {"label": key, "family": "x", "runs": runs} for key, runs in systems.items()},
        "bare": {"bfloat16+int4": {"tokens_per_s": 40.0}, "float32": {"tokens_per_s": 25.0}},
        "default_mode": "bfloat16+int4",
        **extra,
    }


TWO_REPS = {
    "ours": [
        {"rep": 1, "levels": [level(1, 50.0, [0.1]), level(16, 240.0, [0.2] * 8 + [0.6] * 8)], "prefill": []},
        {"rep": 2, "levels": [level(1, 52.0, [0.3]), level(16, 260.0, [0.4] * 16)], "prefill": []},
    ],
    "llama": [{"rep": 1, "levels": [level(16, 200.0, [0.5] * 16)], "prefill": []}],
    "ours-float32": [{"rep": 1, "levels": [level(1, 30.0, [0.1])], "prefill": []}],
}


def test_repetitions_pool_rates_by_mean_and_latencies_by_stream() -> None:
    figures = Figures(results_of(TWO_REPS))
    assert figures.rate("ours", 1) == pytest.approx(51.0)
    assert figures.rate("ours", 16) == pytest.approx(250.0)
    cell = figures.cell("ours", 16)
    assert cell is not None and len(cell.ttft) == 32 and len(cell.itl) == 4
    # 32 streams: 8 at 0.2 s, 16 at 0.4 s, 8 at 0.6 s: the median is 0.4 s.
    assert figures.ttft_p50("ours", 16) == pytest.approx(0.4)
    assert figures.rate("ours", 8) is None and figures.rate("nobody", 1) is None


def test_value_of_metrics() -> None:
    figures = Figures(results_of(TWO_REPS))
    assert figures.value(Metric("rate", "llama", 16)) == 200.0
    assert figures.value(Metric("ttft_p50", "llama", 16)) == 0.5
    assert figures.value(Metric("bare_rate", "ours")) == 40.0
    assert figures.value(Metric("bare_rate", "ours-float32")) == 25.0
    with pytest.raises(ValueError, match="unknown figure"):
        figures.value(Metric("speed", "ours", 1))


def test_precision_modes_map_to_system_keys() -> None:
    figures = Figures(results_of(TWO_REPS))
    assert figures.mode_of("ours") == "bfloat16+int4"
    assert figures.mode_of("ours-float32") == "float32"
    assert figures.key_of("bfloat16+int4") == "ours"
    assert figures.key_of("float32") == "ours-float32"
    assert figures.precision_keys() == ["ours", "ours-float32"]
    alone = {"ours": TWO_REPS["ours"]}
    assert Figures(results_of(alone)).precision_keys() == []


def test_censored_ttft_is_a_lower_bound_only_where_it_reaches_the_percentile() -> None:
    # 10 streams, 2 cut off by the time cap: the p95 falls among them, the p50 does not.
    (cell,) = cells({"runs": [{"levels": [level(10, 5.0, [0.1] * 8 + [9.0, 9.0], censored=2)]}]}).values()
    assert cell.ttft_bound(95) == (pytest.approx(9.0), True)
    assert cell.ttft_bound(50) == (pytest.approx(0.1), False)
    assert Cell([], [], [], [], []).ttft_bound(50) == (None, False)


def test_prefill_burst_and_ttft_floor() -> None:
    run = {
        "rep": 1,
        "levels": [level(16, 240.0, [0.5] * 16)],
        "prefill": [
            {"target": 1000, "prompt_tokens": 1003, "ttft_s": 1.0, "tokens_per_s": 1000.0},
            {"target": 100, "prompt_tokens": 103, "ttft_s": 0.2, "tokens_per_s": 500.0},
        ],
        "burst_prefill": {"streams": 16, "prompt_tokens": 640, "wall_s": 0.8, "tokens_per_s": 800.0},
        "idle_rss_mb": 700.0,
    }
    second = {**run, "prefill": [{**run["prefill"][0], "tokens_per_s": 1200.0}], "idle_rss_mb": None}
    figures = Figures(results_of({"ours": [run, second]}))
    assert list(figures.prefill_by_target("ours")) == [100, 1000]
    assert figures.prefill_rate("ours", 1000) == pytest.approx(1100.0)
    assert figures.burst_prefill_rate("ours") == pytest.approx(800.0)
    assert figures.idle_rss("ours") == [700.0]
    floor = figures.ttft_floor("ours", 16)
    # The median of 16 waits for 8 prompts of 40 tokens: 320 tokens at 800 tokens/s.
    assert floor is not None and floor.ahead_tokens == 320 and floor.seconds == pytest.approx(0.4)
    assert floor.measured_p50 == pytest.approx(0.5)
    assert figures.ttft_floor("ours", 8) is None


def test_weight_bytes_from_a_safetensors_header(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "model.embed_tokens.weight": {"dtype": "BF16", "shape": [100, 8], "data_offsets": [0, 0]},
        "model.layers.0.mlp.up_proj.weight": {"dtype": "BF16", "shape": [32, 8], "data_offsets": [0, 0]},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw)
    weights = WeightBytes.of(path)
    assert (weights.params, weights.linear) == (1056, 256)
    assert weights.int4_bytes == pytest.approx(256 * 0.625 + 800 * 2)


def test_saved_results_render_the_saved_report() -> None:
    """data/expected.md is what the report rendered from data/results.json (its machine section
    reads the model folder's weights; the speculative section, read from its own page as it
    stands, is left out); a change in the report's text or figures shows here as a diff to review
    and re-save."""
    results = json.loads((DATA / "results.json").read_text())
    assert Report(results, speculative_page=None).markdown() == (DATA / "expected.md").read_text()


def turn(ttft: float | None, prompt: int, cached: int | None) -> dict[str, Any]:
    return {
        "ttft_s": ttft,
        "wait_s": ttft or 5.0,
        "prompt_tokens": prompt,
        "cached_tokens": cached,
        "completion_tokens": 48,
        "error": None,
    }


def chat_run(scale: float, cached: bool) -> dict[str, Any]:
    """Two conversations of three turns; a shared-prompt load of 4 users; a paste load."""

    def c(n: int) -> int | None:
        return n if cached else None

    return {
        "rep": 1,
        "levels": [level(1, 50.0 * scale, [0.1])],
        "prefill": [],
        "chat": {
            "conversations": [
                {
                    "conversations": 2,
                    "turns": 3,
                    "tokens_per_s": 100.0 * scale,
                    "by_turn": [
                        [turn(0.4 * scale, 380, c(0)), turn(0.6 * scale, 380, c(0))],
                        [turn(0.2 * scale, 450, c(430)), turn(0.3 * scale, 450, c(430))],
                        [turn(0.25 * scale, 520, c(500))],  # one conversation stopped at an error
                    ],
                    "errors": ["HTTP 500: boom"],
                }
            ],
            "shared": {
                "users": 4,
                "shared_prefix_tokens": 1000,
                "streams": [turn(0.5 * scale, 1030, c(n)) for n in (0, 992, 992, 992)],
                "errors": [],
            },
            "paste": {
                "paste": turn(8.0 * scale, 7900, c(0)),
                "short": [turn(0.3 * scale, 40, c(0)), turn(None, 40, c(0))],
                "running_itl_s": [0.03, 0.04, 0.05, 2.0],
                "running_tokens": 300,
                "errors": [],
            },
        },
    }


def chat_results() -> dict[str, Any]:
    results = results_of({"ours": [chat_run(1.0, True)], "llama": [chat_run(1.5, False)]})
    results["systems"]["llama"]["family"] = "llama.cpp"
    results["systems"]["llama-slots"] = {
        "label": "slots",
        "family": "llama.cpp",
        "runs": [chat_run(0.5, False)],
    }
    return results


def test_conversation_figures_by_turn() -> None:
    figures = Figures(chat_results())
    assert figures.chat_systems() == ["ours", "llama", "llama-slots"]
    assert figures.conversation_counts("ours") == [2]
    assert figures.turn_ttft_p50("ours", 2, 1) == pytest.approx(0.5)
    assert figures.turn_ttft_p50("ours", 2, 3) == pytest.approx(0.25)
    assert figures.turn_ttft_p50("ours", 2, 4) is None
    assert figures.chat_rate("ours", 2) == 100.0
    # Turns 2 and 3: 430 + 430 + 500 cached of 450 + 450 + 520.
    assert figures.conversation_cache("ours", 2) == (1360, 1420)
    assert figures.conversation_cache("llama", 2) is None  # not reported


def test_shared_prompt_and_paste_figures() -> None:
    figures = Figures(chat_results())
    # 3 of 4 users could reuse the 1,000-token prefix; each got 992 tokens of it.
    assert figures.shared_reuse("ours") == pytest.approx(992 / 1000)
    assert figures.shared_reuse("llama") is None
    # The short request that never got a token counts with its wait.
    assert figures.paste_short_ttfts("ours") == [0.3, 5.0]
    assert figures.value(Metric("paste_short_ttft_max", "ours")) == 5.0
    # p95 of 4 gaps, interpolated: 0.05 + 0.85 x (2.0 - 0.05).
    assert figures.value(Metric("paste_itl_p95", "ours")) == pytest.approx(0.05 + 0.85 * 1.95)


def test_fastest_llama_is_the_better_configuration_per_figure() -> None:
    figures = Figures(chat_results())
    # llama-slots (scale 0.5) has the lower TTFT, llama (scale 1.5) the higher rate.
    assert figures.value(Metric("turn_ttft_p50", "llama-fastest", 2, 1)) == pytest.approx(0.25)
    assert figures.value(Metric("rate", "llama-fastest", 1)) == pytest.approx(75.0)
    assert figures.value(Metric("rate", "llama-fastest", 8)) is None


def block(kind: str, rate: float, ttft: float) -> dict[str, Any]:
    return {
        **level(8, rate, [ttft] * 8),
        "kind": kind,
        "completion_tokens": [64] * 8,
        "finish_reasons": ["length"] * 8,
        "json_answers": 8 if kind == CONSTRAINED else 0,
    }


def structured_results() -> dict[str, Any]:
    """Two repetitions of one A/B/B/A round: constrained 150 and 170, unconstrained 200 and 180."""

    def run(rep: int, off: tuple[float, float], on: tuple[float, float]) -> dict[str, Any]:
        blocks = [
            block(UNCONSTRAINED, off[0], 0.3),
            block(CONSTRAINED, on[0], 0.4),
            block(CONSTRAINED, on[1], 0.5),
            block(UNCONSTRAINED, off[1], 0.2),
        ]
        return {"rep": rep, "levels": [], "prefill": [], "structured": {"blocks": blocks}}

    return results_of(
        {"ours": [run(1, (200.0, 180.0), (150.0, 170.0)), run(2, (190.0, 190.0), (160.0, 160.0))]}
    )


def test_structured_rates_are_means_over_the_blocks_of_each_kind() -> None:
    figures = Figures(structured_results())
    assert figures.structured_rate("ours", CONSTRAINED, 8) == pytest.approx(160.0)
    assert figures.structured_rate("ours", UNCONSTRAINED, 8) == pytest.approx(190.0)
    assert figures.value(Metric("structured_rate", "ours", 8)) == pytest.approx(160.0)
    assert figures.value(Metric("unconstrained_rate", "ours", 8)) == pytest.approx(190.0)
    assert sorted(set(figures.structured_ttfts("ours", CONSTRAINED, 8))) == [0.4, 0.5]
    # Round by round: (150 + 170) / (200 + 180), then (160 + 160) / (190 + 190).
    assert figures.structured_round_ratios("ours", 8) == pytest.approx([320 / 380, 320 / 380])
    assert figures.structured_round_ratios("ours", 16) == []
    # Another load, or a run without the structured load, has no figure.
    assert figures.value(Metric("structured_rate", "ours", 16)) is None
    assert Figures(results_of(TWO_REPS)).value(Metric("structured_rate", "ours", 8)) is None


def test_structured_section_shows_every_block_and_the_ratio() -> None:
    results = structured_results()
    for run in results["systems"]["ours"]["runs"]:
        run["structured"].update(streams=8, max_tokens=64, schema=SCHEMA)
    report = Report(results)
    report.structured_outputs()
    text = "\n".join(report.lines)
    assert text.count("| constrained |") == 4 and text.count("| unconstrained |") == 4
    assert "| 2.3 | constrained | 160.0 | 64.0 | 8 / 8 |" in text
    # 160 / 190: the rate ratio, and its inverse, the cost of a constrained token.
    assert "0.84x the rate" in text and "costs 1.19x" in text and "round by round: 0.84x, 0.84x" in text

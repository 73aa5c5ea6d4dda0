"""`make bench`: our server against bare generate, transformers serve and llama-server.

One run measures every system with the same load tool, prompts and fixed-length greedy
answers, interleaved (repetition 2 runs the systems in reverse order, so a drift in the
machine's load does not favour one side), and writes docs/benchmarks.md and the plot.
Ours and llama-server (unified and per-slot KV) also run the chat loads of bench/chat.py;
ours also the structured-output load of bench/structured.py and the API-overhead load of
bench/api_overhead.py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shlex
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import psutil

from . import api_overhead, chat, llama_build, model_size, report, structured
from .load import percentile, run_level
from .profile import profile_ours
from .prompts import LongPrompts, load_prompts
from .servers import (
    MODEL_DIR,
    REPO,
    Server,
    Sizing,
    System,
    default_mode,
    llama_server,
    mode_label,
    normal_mode,
    ours,
    transformers_serve,
)

RESULTS = REPO / ".cache" / "bench" / "results.json"


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps option help at spaces only, so names such as llama-slots stay whole."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_long_words=False, break_on_hyphens=False)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__, formatter_class=_HelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few-minute run: fewer levels, one repetition")
    p.add_argument("--reps", type=int, help="repetitions of every system (default 2, quick 1)")
    p.add_argument("--levels", help="concurrent streams, comma-separated (default 1,2,4,8,16,32)")
    p.add_argument("--max-tokens", type=int, default=64, help="fixed answer length (ignore_eos)")
    p.add_argument("--prefill", help="prompt sizes in tokens for the prefill rate (default 100,1000,4000)")
    p.add_argument(
        "--systems",
        help="comma-separated subset of (default all): ours, ours-<mode> (e.g. ours-float32; needs "
        "<mode> in --modes), tserve, tserve-cb, tserve-cb-sized (needs --cb-sized), "
        "llama (llama-server, unified KV), llama-slots (llama-server, KV per slot)",
    )
    p.add_argument(
        "--modes",
        help="our precision modes to run besides the default, as DTYPE or DTYPE+QUANTIZATION, "
        "+packed-prefill for DENSE_PREFILL=false (default float32,bfloat16,bfloat16+int8,"
        "bfloat16+int4+packed-prefill; quick: none; float16 is slow on CPUs)",
    )
    p.add_argument(
        "--cb-sized",
        action=argparse.BooleanOptionalAction,
        help="also run transformers serve --continuous-batching with an 8k-token cache, like "
        "llama-server's (default off: on this CPU it is as slow as CB's default, and costs minutes)",
    )
    p.add_argument("--tserve-max", type=int, default=16, help="most streams for serial transformers serve")
    p.add_argument("--tserve-reps", type=int, default=1, help="repetitions of the transformers servers")
    p.add_argument(
        "--level-cap-s",
        type=float,
        help="time cap in seconds for one concurrency level (default 60, quick 40); a system that hits it "
        "skips its larger levels",
    )
    p.add_argument("--deadline-min", type=float, help="skip the systems not started after this many minutes")
    p.add_argument(
        "--profile",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="end with a py-spy profile of our server at 1 and 16 streams (default on)",
    )
    p.add_argument(
        "--chat",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the chat loads (multi-turn conversations, shared system prompt, long paste) on ours "
        "and llama-server (default on)",
    )
    p.add_argument(
        "--conversations", help="conversations at once, comma-separated (default 1,8,16; quick 1,8)"
    )
    p.add_argument("--turns", type=int, default=8, help="turns of each conversation")
    p.add_argument("--chat-max-tokens", type=int, default=48, help="most tokens of a chat answer")
    p.add_argument(
        "--structured",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the JSON-schema-constrained load against the same load unconstrained on ours, "
        f"{structured.STREAMS} streams (issue 15; default on)",
    )
    p.add_argument(
        "--structured-rounds",
        type=int,
        default=2,
        help="rounds of the structured load, each unconstrained, constrained, constrained, "
        "unconstrained (default 2)",
    )
    p.add_argument(
        "--api-overhead",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the same chat load through the Responses and Messages APIs on ours, "
        f"{api_overhead.STREAMS} streams (issue 27; default on)",
    )
    p.add_argument(
        "--model-size",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also serve a 1.7B-parameter model with random weights (made once, no download) on ours "
        "and llama-server, 1 and 8 streams, with load time and memory (issue 26; default on)",
    )
    p.add_argument(
        "--only",
        choices=["structured", "api-overhead", "model-size"],
        help="run only this part (on ours; model-size also on llama-server): no machine measurements, "
        "bare generate, sweep, prefill, chat loads or profile",
    )
    p.add_argument("--no-build", action="store_true", help="skip llama-server if it is not built yet")
    p.add_argument("--md", type=Path, default=REPO / "docs" / "benchmarks.md")
    p.add_argument("--png", type=Path, default=REPO / "docs" / "benchmarks.png")
    p.add_argument("--from-json", type=Path, help="only rewrite the report from a saved results.json")
    args = p.parse_args()
    args.reps = args.reps or (1 if args.quick else 2)
    args.levels = _ints(args.levels or ("1,4,16" if args.quick else "1,2,4,8,16,32"))
    args.prefill = _ints(args.prefill or ("100,1000" if args.quick else "100,1000,4000"))
    args.conversations = _ints(args.conversations or ("1,8" if args.quick else "1,8,16"))
    if args.modes is None:
        args.modes = "" if args.quick else "float32,bfloat16,bfloat16+int8,bfloat16+int4+packed-prefill"
    if args.cb_sized is None:
        args.cb_sized = False
    if args.level_cap_s is None:
        args.level_cap_s = 40.0 if args.quick else 60.0
    if args.only:  # our default settings, that one load, nothing else
        args.systems, args.modes, args.levels, args.prefill = "ours", "", [], []
        args.chat, args.profile, args.no_build = False, False, True
        args.structured, args.api_overhead = args.only == "structured", args.only == "api-overhead"
        args.model_size = args.only == "model-size"
    return args


def _ints(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x.strip()]


def choose_systems(args: argparse.Namespace, notes: list[str]) -> tuple[list[System], list[str]]:
    """The systems to run, and the precision modes of ours among them (for bare generate)."""
    default = default_mode()
    systems = [ours("ours", f"ours, default ({default})", None)]
    modes = [default]
    for mode in [normal_mode(m) for m in args.modes.split(",") if m]:
        if mode == default:
            notes.append(f"Our default precision mode is {mode}, so the `ours` rows are also its rows.")
            continue
        systems.append(ours(f"ours-{mode}", f"ours, {mode_label(mode)}", mode))
        modes.append(mode)
    systems.append(transformers_serve(False, args.tserve_max, args.tserve_reps))
    systems.append(transformers_serve(True, 1 << 30, args.tserve_reps))
    if args.cb_sized:
        systems.append(transformers_serve(True, 1 << 30, args.tserve_reps, cache_tokens=8192))
    try:
        binary = llama_build.built() if args.no_build else llama_build.build()
        if binary:
            for unified in (True, False):
                systems.append(llama_server(binary, llama_build.gguf_path(), os.cpu_count() or 1, unified))
        else:
            notes.append(
                "llama-server is not built for this CPU (--no-build); run `python -m bench.llama_build`."
            )
    except (subprocess.CalledProcessError, OSError, ImportError) as exc:
        notes.append(f"llama-server could not be built: {exc}")
    if args.systems:
        wanted = set(args.systems.split(","))
        systems = [s for s in systems if s.key in wanted]
        modes = [m for m in modes if (m == default and "ours" in wanted) or f"ours-{m}" in wanted]
    return systems, modes


def run_subprocess_json(module: str, *argv: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", module, *argv], cwd=REPO, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def background_load() -> dict[str, Any]:
    """How busy the machine is apart from us: load average and other processes' CPU use."""
    mine = {os.getpid(), *(p.pid for p in psutil.Process().children(recursive=True))}
    procs = [p for p in psutil.process_iter(["name", "cmdline"]) if p.pid not in mine]
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.cpu_percent(None)  # primes the counter; the next call returns usage since now
    time.sleep(3)
    usage = []
    for p in procs:
        try:
            command = " ".join(" ".join(p.info["cmdline"] or [p.info["name"] or "?"]).split())
            usage.append((p.cpu_percent(None), command[:80]))
        except psutil.Error:
            continue
    usage.sort(reverse=True)
    return {
        "loadavg": os.getloadavg(),
        "other_cpu_percent": round(sum(u for u, _ in usage), 1),
        "top": [f"{u:.0f}% {cmd}" for u, cmd in usage[:5] if u >= 5],
    }


def warm_up(server: Server, max_tokens: int) -> None:
    """Pay lazy initialisation (first forward, allocator growth) before anything is timed."""
    body = server.body_factory()
    asyncio.run(run_level(server.base_url, body, load_prompts("warm1", 1), 8, 120))
    asyncio.run(run_level(server.base_url, body, load_prompts("warm4", 4), min(max_tokens, 16), 120))


def measure_prefill(
    server: Server, long_prompts: LongPrompts, sizes: list[int], rep: int, cap_s: float
) -> list[dict[str, Any]]:
    """One request at a time, one output token: the time to first token is the prefill."""
    rows = []
    body = server.body_factory()
    for size in sizes:
        messages = long_prompts.make(f"prefill-{server.system.key}-{rep}", size)
        level = asyncio.run(run_level(server.base_url, body, [messages], 1, cap_s))
        stream = level.streams[0]
        tokens = stream.prompt_tokens or long_prompts.chat_tokens(messages)
        ttft = stream.ttft
        rows.append(
            {
                "target": size,
                "prompt_tokens": tokens,
                "ttft_s": ttft,
                "tokens_per_s": tokens / ttft if ttft else None,
                "error": stream.error,
            }
        )
        print(f"    prefill {tokens:>5} tokens: {ttft if ttft else float('nan'):.2f} s", flush=True)
    return rows


def measure_burst_prefill(server: Server, rep: int, cap_s: float, streams: int = 16) -> dict[str, Any]:
    """A burst of short prompts with one output token each: the prefill rate when the server may
    batch prompts, which is what bounds the time to first token of a burst of users."""
    prompts = load_prompts(f"burst-{server.system.key}-{rep}", streams)
    level = asyncio.run(run_level(server.base_url, server.body_factory(), prompts, 1, cap_s))
    tokens = sum(s.prompt_tokens or 0 for s in level.streams)
    rate = tokens / level.wall_s if tokens and level.wall_s > 0 and not level.errors else None
    print(f"    burst prefill {streams} x short prompt: {rate or float('nan'):.0f} tokens/s", flush=True)
    return {"streams": streams, "prompt_tokens": tokens, "wall_s": level.wall_s, "tokens_per_s": rate}


def run_system(system: System, args: argparse.Namespace, rep: int, long_prompts: LongPrompts) -> dict:
    """Start the system, warm it, then prefill sizes, idle memory and the concurrency sweep; then
    the chat loads and, on ours, the structured-output load, each on an instance of its own."""
    run: dict[str, Any] = {"rep": rep, "levels": [], "prefill": [], "idle_rss_mb": None}
    levels = [c for c in args.levels if c <= system.max_concurrency]
    # Prefill and memory are asked of our server and llama-server; the transformers servers
    # would add minutes of fp32 prefill without changing any conclusion.
    wants_prefill = system.family != "transformers"
    if not levels:  # --only: none of the sweep
        instances: list[list[int]] = []
    elif system.restart_per_level:
        instances = [[c] for c in levels]
    else:
        instances = [levels]
    memory_level = 16 if 16 in levels else max(levels, default=0)
    for group in instances:
        if set(group) <= set(run.get("skipped_levels", [])):
            continue
        slots = max(group)
        prefills = wants_prefill and 1 in group
        # The single-request prefill prompts need a slot of their size.
        sizing = Sizing(slots, max(args.prefill) + 256) if prefills else Sizing(slots)
        with Server(system, sizing, f"r{rep}-c{slots}") as server:
            run["startup_s"] = server.wait_ready()
            warm_up(server, args.max_tokens)
            # Idle memory of the instance that then serves 16 streams (llama-server sizes its
            # slots at start; ours has one instance for every level).
            if not system.restart_per_level or slots == memory_level:
                run["idle_rss_mb"] = server.rss_mb()
            if prefills:
                run["prefill"] = measure_prefill(server, long_prompts, args.prefill, rep, args.level_cap_s)
                run["burst_prefill"] = measure_burst_prefill(server, rep, args.level_cap_s)
            for c in group:
                if c in run.get("skipped_levels", []):
                    continue
                prompts = load_prompts(f"{system.key}-r{rep}-c{c}", c)
                level = asyncio.run(
                    run_level(
                        server.base_url,
                        server.body_factory(),
                        prompts,
                        args.max_tokens,
                        args.level_cap_s,
                        server.rss_mb,
                    )
                )
                summary = level.summary()
                run["levels"].append(summary)
                if level.capped and c != levels[-1]:
                    run["skipped_levels"] = [x for x in levels if x > c]
                    print(f"    time cap hit at {c} streams: skipping {run['skipped_levels']}", flush=True)
                p50 = percentile(summary["ttft_s"], 50) or float("nan")
                err = f"  errors: {len(level.errors)} ({level.errors[0]})" if level.errors else ""
                print(
                    f"    {c:>2} streams: {level.tokens_per_s:7.1f} tok/s, TTFT p50 {p50:.2f} s, "
                    f"peak RSS {level.peak_rss_mb:.0f} MiB{err}",
                    flush=True,
                )
    # The chat loads compare our default settings with llama-server, as issue 13 asks.
    if args.chat and (system.key == "ours" or system.family == "llama.cpp"):
        try:
            run["chat"] = run_chat(system, args, rep, long_prompts)
        except RuntimeError as exc:  # a server that fails to start: the sweep's figures stay
            print(f"    chat loads failed: {exc}", flush=True)
            run["chat_failure"] = str(exc)
    # Our own loads: a server that fails to start leaves the other figures standing.
    ours_only = (
        ("structured", args.structured, run_structured),
        ("api_overhead", args.api_overhead, run_api_overhead),
    )
    for name, wanted, load in ours_only:
        if wanted and system.key == "ours":
            try:
                run[name] = load(system, args, rep)
            except RuntimeError as exc:
                print(f"    {name.replace('_', ' ')} load failed: {exc}", flush=True)
                run[f"{name}_failure"] = str(exc)
    return run


def run_structured(system: System, args: argparse.Namespace, rep: int) -> dict[str, Any]:
    """The A/B/B/A structured-output blocks on a fresh instance of our server."""
    with Server(system, Sizing(structured.STREAMS), f"r{rep}-structured") as server:
        server.wait_ready()
        warm_up(server, args.max_tokens)
        # A block is one level of the sweep; its cap is a chat load's, so a slow machine still
        # finishes every block rather than leaving one kind cut short.
        cap_s = 4 * args.level_cap_s
        tag = f"{system.key}-r{rep}-json"
        out = structured.measure(server, tag, args.max_tokens, cap_s, args.structured_rounds)
    for block in out["blocks"]:
        print(f"    {structured.describe(block)}", flush=True)
    return out


def run_api_overhead(system: System, args: argparse.Namespace, rep: int) -> dict[str, Any]:
    """The chat, Responses and Messages blocks on a fresh instance of our server."""
    with Server(system, Sizing(api_overhead.STREAMS), f"r{rep}-apis") as server:
        server.wait_ready()
        warm_up(server, args.max_tokens)
        tag = f"{system.key}-r{rep}-apis"
        out = api_overhead.measure(server, tag, args.max_tokens, 4 * args.level_cap_s)
    for block in out["blocks"]:
        print(f"    {api_overhead.describe(block)}", flush=True)
    return out


def run_chat(system: System, args: argparse.Namespace, rep: int, long_prompts: LongPrompts) -> dict:
    """The chat loads: llama-server is started for each, sized for it; ours serves them all
    from one fresh instance (its cache then starts empty, as llama-server's does)."""
    loads = chat.chat_loads(args.conversations, args.turns, args.chat_max_tokens)
    cap_s = 4 * args.level_cap_s  # a load is several requests in a row per user
    out: dict[str, Any] = {"conversations": []}

    def measure(load: chat.ChatLoad, server: Server) -> None:
        tag = f"{system.key}-r{rep}"
        summary = chat.measure(load, server, long_prompts, tag, args.turns, args.chat_max_tokens, cap_s)
        summary["rss_after_mb"] = server.rss_mb()
        if load.kind == "conversations":
            out["conversations"].append(summary)
        else:
            out[load.kind] = summary
        print(f"    {chat.describe(load, summary)}", flush=True)

    if system.restart_per_level:
        for load in loads:
            with Server(system, load.sizing, f"r{rep}-{load.name}") as server:
                server.wait_ready()
                warm_up(server, args.max_tokens)
                measure(load, server)
    else:
        with Server(system, Sizing(1), f"r{rep}-chat") as server:
            server.wait_ready()
            warm_up(server, args.max_tokens)
            for load in loads:
                measure(load, server)
    return out


def save(results: dict[str, Any], args: argparse.Namespace) -> None:
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results))
    report.write(results, args.md, args.png)


def rerun_command(argv: list[str]) -> str:
    """The `make bench` line that reruns these arguments: quoted for the shell that make runs, and
    an empty value (`--modes ''`) written as `--modes=`, which survives the trip through make."""
    words: list[str] = []
    for arg in argv:
        if arg == "" and words and words[-1].startswith("--") and "=" not in words[-1]:
            words[-1] += "="
        else:
            words.append(arg)
    return "make bench" + (" BENCH_ARGS=" + shlex.quote(shlex.join(words)) if words else "")


def main() -> None:
    # `timeout` or a CI runner ends the bench with SIGTERM: raise instead, so every started
    # server is stopped by its context manager rather than left running.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args = parse_args()
    if args.from_json:
        report.write(json.loads(args.from_json.read_text()), args.md, args.png)
        return
    started = time.monotonic()
    command = rerun_command(sys.argv[1:])
    notes: list[str] = []
    measured = "its background load" if args.only else "memory bandwidth, matmul rate, background load"
    print(f"Measuring the machine: {measured}", flush=True)
    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": command,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "load_before": background_load(),
        "machine": run_subprocess_json("bench.machine", *(["--cpu-only"] if args.only else [])),
        "llama_version": None,
        "notes": notes,
        "bare": {},
        "systems": {},
    }
    systems, modes = choose_systems(args, notes)
    if args.only:
        notes.append(f"Only the {args.only} load ran (`--only {args.only}`): the other sections are empty.")
    results["llama_version"] = llama_build.version()
    try:
        results["gguf_bytes"] = llama_build.gguf_path().stat().st_size
    except (ImportError, OSError):
        results["gguf_bytes"] = None
    results["default_mode"] = modes[0] if modes else default_mode()
    for mode in [] if args.only else modes:
        print(f"Bare model.generate, batch 1, {mode}", flush=True)
        results["bare"][mode] = run_subprocess_json(
            "bench.bare", "--mode", mode, "--max-tokens", str(args.max_tokens)
        )
        print(f"    {results['bare'][mode]['tokens_per_s']:.1f} tok/s", flush=True)
    long_prompts = LongPrompts(MODEL_DIR)
    for rep in range(1, args.reps + 1):
        order = systems if rep % 2 else list(reversed(systems))
        for system in [s for s in order if rep <= s.reps]:
            if args.deadline_min and time.monotonic() - started > args.deadline_min * 60:
                notes.append(
                    f"The {args.deadline_min:g}-minute deadline passed: {system.label} skipped in rep {rep}."
                )
                continue
            print(f"[rep {rep}] {system.label}", flush=True)
            entry = results["systems"].setdefault(
                system.key, {"label": system.label, "family": system.family, "runs": []}
            )
            try:
                entry["runs"].append(run_system(system, args, rep, long_prompts))
            except RuntimeError as exc:  # a server that fails to start is reported, not fatal
                print(f"    failed: {exc}", flush=True)
                entry.setdefault("failures", []).append(str(exc))
            # Written after every system, so an interrupted run still leaves its figures.
            results["duration_s"] = time.monotonic() - started
            save(results, args)
    if args.model_size:
        # A server that fails is reported inside; only making the model can fail here.
        results["model_size"] = model_size.measure(
            llama_build.built(), os.cpu_count() or 1, args.max_tokens, 4 * args.level_cap_s
        )
        save(results, args)
    if args.profile:
        print("Profiling our server with py-spy at 1 and 16 streams", flush=True)
        results["profile"] = profile_ours([1, 16], args.max_tokens, None, 18)
    results["load_after"] = background_load()
    results["duration_s"] = time.monotonic() - started
    save(results, args)
    print(f"Wrote {args.md} and {args.png} in {results['duration_s'] / 60:.1f} min (raw: {RESULTS})")


if __name__ == "__main__":
    main()

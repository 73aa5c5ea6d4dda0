"""Where does our server's time go? py-spy samples it while the load tool drives N streams.

Run: `python -m bench.profile --streams 1 16` (py-spy comes from bench/requirements.txt). For
each stream count it writes .cache/bench/profile-<N>.txt (collapsed stacks, for flamegraph
tools) and prints the functions with the most inclusive time per thread, so a decode step's
cost can be split into model forward, sampling, cache bookkeeping, detokenising and HTTP.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from .load import run_level
from .prompts import load_prompts
from .servers import REPO, Server, Sizing, ours

OUT = REPO / ".cache" / "bench"
FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")  # py-spy's "function (path/file.py:line)"


def summarise(collapsed: Path, top: int) -> str:
    """Inclusive sample share per function, split by thread (engine worker vs event loop).

    Idle samples are not recorded; a thread waiting in an OpenMP barrier counts as idle too,
    so sample counts are not a reliable busy time and only shares are shown.
    """
    per_thread: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    totals: collections.Counter[str] = collections.Counter()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        thread = frames[0]
        totals[thread] += int(count)
        # Count each function once per sample, however deep the recursion; line numbers dropped.
        names = [
            m.group(1) + " (" + m.group(2).split("/")[-1] + ")" for f in frames[1:] if (m := FRAME.match(f))
        ]
        for frame in dict.fromkeys(names):
            per_thread[thread][frame] += int(count)
    lines = []
    for thread, total in totals.most_common(2):
        lines.append(f"{thread}: {total} samples; share of them per function:")
        # Frames in every sample (thread start, run loop) say nothing; they are left out.
        informative = [(f, c) for f, c in per_thread[thread].most_common() if c < 0.995 * total]
        for frame, count in informative[:top]:
            lines.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(lines)


def profile_ours(streams: list[int], max_tokens: int, mode: str | None, top: int) -> list[dict[str, object]]:
    """Start our server, drive each stream count once under py-spy; one summary per count."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    OUT.mkdir(parents=True, exist_ok=True)
    rate = 200
    results: list[dict[str, object]] = []
    with Server(ours("ours", "ours", mode), Sizing(max(streams)), "profile") as server:
        server.wait_ready()
        body = server.body_factory()
        asyncio.run(run_level(server.base_url, body, load_prompts("warm", 4), 16, 120))
        for count in streams:
            out = OUT / f"profile-{count}.txt"
            # --threads keeps the engine worker apart from the event loop; --nonblocking does
            # not pause the server to sample it, so the profile barely slows what it measures.
            record = ["record", "--pid", str(server.proc.pid), "--format", "raw", "--threads"]
            spy = subprocess.Popen(
                [py_spy, *record, "--rate", str(rate), "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1)  # py-spy attaches before the load starts
            prompts = load_prompts(f"prof{count}", count)
            level = asyncio.run(run_level(server.base_url, body, prompts, max_tokens, 300))
            spy.send_signal(signal.SIGINT)  # py-spy writes its file and exits
            spy.wait(30)
            results.append(
                {
                    "streams": count,
                    "tokens_per_s": level.tokens_per_s,
                    "file": str(out.relative_to(REPO)),
                    "summary": summarise(out, top) if out.is_file() else "no profile",
                }
            )
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--mode", help="DTYPE or DTYPE+QUANTIZATION for our server (default: its own)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    for entry in profile_ours(args.streams, args.max_tokens, args.mode, args.top):
        print(
            f"== {entry['streams']} streams: {entry['tokens_per_s']:.1f} tokens/s; stacks in {entry['file']}"
        )
        print(entry["summary"])


if __name__ == "__main__":
    main()

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
import subprocess
import sys
from pathlib import Path

from .load import run_level
from .prompts import load_prompts
from .servers import REPO, Server, ours

OUT = REPO / ".cache" / "bench"
FRAME = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")  # py-spy's "function (path/file.py:line)"


def summarise(collapsed: Path, top: int) -> str:
    """Inclusive sample share per function, split by thread (engine worker vs event loop)."""
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
    for thread, total in totals.most_common(3):
        lines.append(f"{thread}: {total} samples")
        for frame, count in per_thread[thread].most_common(top):
            lines.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--streams", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--dtype", help="DTYPE for our server (default: its own default)")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    OUT.mkdir(parents=True, exist_ok=True)
    system = ours("ours", "ours", args.dtype)
    with Server(system, max(args.streams), "profile") as server:
        server.wait_ready()
        body = server.body_factory()
        asyncio.run(run_level(server.base_url, body, load_prompts("warm", 4), 16, 120))
        for streams in args.streams:
            out = OUT / f"profile-{streams}.txt"
            # --threads keeps the engine worker apart from the event loop; --idle is off, so a
            # thread blocked on a queue does not count.
            record = ["record", "--pid", str(server.proc.pid), "--format", "raw", "--threads"]
            spy = subprocess.Popen(
                [py_spy, *record, "--rate", "200", "--output", str(out), "--nonblocking"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            level = asyncio.run(
                run_level(
                    server.base_url, body, load_prompts(f"prof{streams}", streams), args.max_tokens, 300
                )
            )
            spy.send_signal(2)  # SIGINT: py-spy writes its file and exits
            spy.wait(30)
            print(f"== {streams} streams: {level.tokens_per_s:.1f} tokens/s; stacks in {out}")
            print(summarise(out, args.top))


if __name__ == "__main__":
    main()

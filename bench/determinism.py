"""Determinism under load: the timing-sensitive same-tokens tests, repeated while other processes
keep every core busy.

    .venv/bin/python -m bench.determinism [--runs 50] [--busy 2]

The busy processes multiply matrices on one thread each, so the engine's steps, its prefill
chunks (sized from the measured rate) and the arrival of requests all shift from run to run. Each
repetition is a test of its own (INVARIANCE_REPEAT); the summary counts them, and the exit code
is pytest's. Bounded: the busy processes stop with the run, or after --timeout seconds.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[1] / "backend"
TESTS = [
    "tests/engine/test_prefix_cache.py::test_a_conversation_turns_answer_is_cached_for_the_next_turn_and_matches_a_cold_cache",
    "tests/engine/test_invariance.py::test_requests_arriving_at_random_times_get_the_tokens_they_get_alone",
]


def busy(deadline: float) -> None:
    """One core's worth of matrix products until the deadline."""
    import torch

    torch.set_num_threads(1)
    a = torch.randn(384, 384)
    while time.monotonic() < deadline:
        a = torch.tanh(a @ a)


def main() -> int:
    p = argparse.ArgumentParser(prog="python -m bench.determinism", description=__doc__)
    p.add_argument("--runs", type=int, default=50, help="repetitions of each test (default 50)")
    p.add_argument(
        "--busy", type=int, default=os.cpu_count() or 2, help="busy processes (default: one per core)"
    )
    p.add_argument("--timeout", type=float, default=7200, help="seconds before everything stops")
    args = p.parse_args()
    deadline = time.monotonic() + args.timeout
    load = [multiprocessing.Process(target=busy, args=(deadline,), daemon=True) for _ in range(args.busy)]
    for proc in load:
        proc.start()
    began = time.monotonic()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rf", *TESTS],
            cwd=BACKEND,
            env={**os.environ, "INVARIANCE_REPEAT": str(args.runs)},
            capture_output=True,
            text=True,
            timeout=args.timeout,
        )
    finally:
        for proc in load:
            proc.terminate()
    print(done.stdout[-3000:])
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed)", done.stdout)}
    minutes = (time.monotonic() - began) / 60
    print(
        f"determinism under load ({args.busy} busy processes, {os.cpu_count()} cores): "
        f"{counts.get('passed', 0)} passed, {counts.get('failed', 0)} failed of {args.runs} x {len(TESTS)} "
        f"in {minutes:.1f} min"
    )
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())

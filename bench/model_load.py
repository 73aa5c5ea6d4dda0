"""A running stream's inter-token gaps while the server loads another, bigger model.

    python -m bench.model_load

Takes the bench's random-weight model of SmolLM2-1.7B's shape (bench/model_size.py: bfloat16,
3.4 GB, made once under .cache/bench), starts our server with the default model loaded at start-up and that
folder in MODELS_DIR, streams a long answer from the default model, and half-way loads the big
model with POST /models/load. Prints, as JSON, the stream's inter-token gap (p50, p99, max)
before, during and after the load, /health's answer time during it (the event loop), the load's
time, and the server's RSS before, loaded and unloaded.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from . import model_size
from .servers import REPO, VENV_BIN, Server, Sizing, System

BIG = model_size.NAME


def server(models_dir: Path) -> System:
    def command(port: int, _sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        env = {
            "PYTHONPATH": str(REPO / "backend"),  # this checkout's app, whichever is installed
            "EMBEDDING_MODEL_PATH": "",
            "MODELS_DIR": str(models_dir),
            "KEEP_ALIVE": "-1",
        }
        return [str(VENV_BIN / "python"), "-m", "app", "--host", "127.0.0.1", "--port", str(port)], env

    return System("ours-model-load", "ours, a 1.7B model loading", "ours", command)


def gaps_summary(gaps: list[float]) -> dict[str, float]:
    ordered = sorted(gaps)
    return {
        "count": len(gaps),
        "p50_ms": round(1000 * statistics.median(ordered), 1),
        "p99_ms": round(1000 * ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }


def measure(models_dir: Path) -> dict[str, Any]:
    with Server(server(models_dir), Sizing(slots=1), "model-load") as srv:
        srv.wait_ready()
        http = httpx.Client(base_url=srv.base_url, timeout=600)
        default = "SmolLM2-135M-Instruct"
        body = {
            "model": default,
            "messages": [{"role": "user", "content": "Tell me a long story."}],
            "max_tokens": 6000,
            "ignore_eos": True,
            "temperature": 0,
            "stream": True,
        }
        arrivals: list[float] = []
        stop = threading.Event()

        def stream() -> None:
            with http.stream("POST", "/v1/chat/completions", json=body) as resp:
                for line in resp.iter_lines():
                    if line.startswith("data:") and '"content"' in line:
                        arrivals.append(time.monotonic())
                    if stop.is_set():
                        return

        health: list[float] = []  # /health's answer times during the load: the event loop

        def poll_health() -> None:
            with httpx.Client(base_url=srv.base_url, timeout=60) as probe:
                while not stop.is_set():
                    started = time.monotonic()
                    probe.get("/health")
                    health.append(time.monotonic() - started)
                    time.sleep(0.5)

        worker = threading.Thread(target=stream)
        worker.start()
        time.sleep(20)  # the stream's gaps before the load
        rss_before = srv.rss_mb()
        load_start = time.monotonic()
        prober = threading.Thread(target=poll_health)
        prober.start()
        loaded = http.post("/models/load", json={"model": BIG})
        load_end = time.monotonic()
        loaded.raise_for_status()
        rss_loaded = srv.rss_mb()
        time.sleep(5)
        stop.set()
        worker.join()
        prober.join()
        http.post("/models/unload", json={"model": BIG}).raise_for_status()
        time.sleep(1)
        rss_unloaded = srv.rss_mb()
        gaps = [(b, b - a) for a, b in itertools.pairwise(arrivals)]
        return {
            "machine_cores": os.cpu_count(),
            "load_s": round(load_end - load_start, 1),
            "big_model_memory_gib": round(loaded.json()["memory_bytes"] / 2**30, 2),
            "gaps_before_load": gaps_summary([g for t, g in gaps if t < load_start]),
            "gaps_during_load": gaps_summary([g for t, g in gaps if load_start <= t <= load_end]),
            "gaps_after_load": gaps_summary([g for t, g in gaps if t > load_end]),
            "health_during_load": gaps_summary(health),
            "rss_mib": {
                "before": round(rss_before),
                "loaded": round(rss_loaded),
                "unloaded": round(rss_unloaded),
            },
        }


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    started = time.monotonic()
    folder, _ = model_size.make()  # the bench's 1.7B model, made once under .cache/bench
    print(f"{folder} ready in {time.monotonic() - started:.0f} s", flush=True)
    print(json.dumps(measure(folder.parent), indent=2))


if __name__ == "__main__":
    main()

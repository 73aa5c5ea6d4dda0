"""A running stream's inter-token gaps while the server loads another, bigger model.

    python -m bench.model_load [--keep]

Makes a random-weight model folder of SmolLM2-1.7B's shape in /tmp (bfloat16, 3.4 GB; removed
afterwards unless --keep), starts our server with the default model loaded at start-up and that
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
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from .servers import MODEL_DIR, REPO, VENV_BIN, Server, Sizing, System

BIG = "random-1.7b"
# SmolLM2-1.7B's shape (its config.json), random weights.
BIG_SHAPE = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "tie_word_embeddings": True,
    "rope_theta": 130000.0,
}
SHARD_BYTES = 1 << 30


def make_big_model(folder: Path) -> int:
    """Writes the folder shard by shard (bf16 weights, std 0.02), never holding the whole model
    in memory; returns its weights' bytes."""
    import torch
    from safetensors.torch import save_file
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**BIG_SHAPE, bos_token_id=1, eos_token_id=2, pad_token_id=2, dtype="bfloat16")
    with torch.device("meta"):
        shapes = {name: p.shape for name, p in LlamaForCausalLM(config).state_dict().items()}
    shapes.pop("lm_head.weight")  # tied to the embedding
    folder.mkdir(parents=True)
    config.architectures = ["LlamaForCausalLM"]
    config.save_pretrained(folder)
    AutoTokenizer.from_pretrained(MODEL_DIR).save_pretrained(folder)
    # One block of random values, its pieces reused: drawing 1.7 billion took minutes here, and
    # loading does not care which values it reads.
    block = (torch.randn(2**27, generator=torch.Generator().manual_seed(0)) * 0.02).to(torch.bfloat16)
    weight_map: dict[str, str] = {}
    shard: dict[str, torch.Tensor] = {}
    total = 0

    def flush() -> None:
        name = f"model-{len(set(weight_map.values())) + 1:05d}.safetensors"
        save_file(shard, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(shard, name))
        shard.clear()

    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            tensor = torch.ones(shape, dtype=torch.bfloat16)
        else:
            tensor = block[: shape.numel()].view(shape).clone()
        shard[name] = tensor
        total += tensor.nbytes
        if sum(t.nbytes for t in shard.values()) >= SHARD_BYTES:
            flush()
    if shard:
        flush()
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    return total


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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the 1.7B folder in /tmp")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-model-load-"))
    try:
        started = time.monotonic()
        size = make_big_model(root / BIG)
        print(f"made {root / BIG}: {size / 2**30:.2f} GiB in {time.monotonic() - started:.0f} s", flush=True)
        print(json.dumps(measure(root), indent=2))
    finally:
        if not args.keep:
            shutil.rmtree(root)


if __name__ == "__main__":
    main()

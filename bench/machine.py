"""What this machine can do at best: memory bandwidth and matmul rate, measured with torch.

Run as `python -m bench.machine` (a subprocess of the bench, so torch's threads and memory do
not stay in the load generator). Prints one JSON object; `--cpu-only` leaves out the measurements
for a bench run of one part. These figures bound decode speed: a batch-1 decode step reads every
weight once, so tokens/s <= bandwidth / weight bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import time

import torch


def lscpu() -> dict[str, object]:
    text = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    fields = dict(
        (k.strip(), v.strip()) for k, _, v in (line.partition(":") for line in text.splitlines()) if v
    )
    flags = set(fields.get("Flags", "").split())
    mem_kib = 0
    with open("/proc/meminfo") as f:
        match = re.search(r"MemTotal:\s+(\d+)", f.read())
        if match:
            mem_kib = int(match.group(1))
    return {
        "model_name": fields.get("Model name", platform.processor()),
        "cores": os.cpu_count(),
        "threads_per_core": fields.get("Thread(s) per core"),
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": sorted(f for f in flags if f.startswith("amx")),
        "avx512f": "avx512f" in flags,
        "l3": fields.get("L3 cache"),
        "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(),
        "hypervisor": fields.get("Hypervisor vendor"),
    }


def best_time(fn: object, repeats: int) -> float:
    assert callable(fn)
    fn()  # first call pays page faults and lazy init
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def bandwidth_gbs() -> dict[str, float]:
    # 512 MiB buffers: far beyond the 32 MiB L3, so this is DRAM traffic.
    n = 128 * 2**20
    a = torch.ones(n, dtype=torch.float32)
    b = torch.empty_like(a)
    nbytes = a.numel() * a.element_size()
    copy_s = best_time(lambda: b.copy_(a), 5)
    read_s = best_time(lambda: a.sum(), 5)
    return {"copy_gbs": 2 * nbytes / copy_s / 1e9, "read_gbs": nbytes / read_s / 1e9}


def matmul_gflops(dtype: torch.dtype, m: int, k: int, n: int) -> float:
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    # Small shapes take microseconds: many repeats, best one, to see past scheduler noise.
    repeats = 5 if m * n * k > 2**24 else 200
    s = best_time(lambda: torch.mm(a, b), repeats)
    return 2 * m * k * n / s / 1e9


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench.machine", description=__doc__)
    p.add_argument("--cpu-only", action="store_true", help="only the CPU's description, no measurements")
    args = p.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    out: dict[str, object] = {"cpu": lscpu(), "torch": torch.__version__, "threads": torch.get_num_threads()}
    if args.cpu_only:
        print(json.dumps(out))
        return
    cpu = out["cpu"]
    assert isinstance(cpu, dict)
    dtypes = [("fp32", torch.float32)]
    if cpu["avx512_bf16"] or cpu["amx"]:
        # Without bf16 instructions a bf16 matmul is emulated: minutes of measuring a rate that
        # no default configuration uses there (float32 is chosen then).
        dtypes.append(("bf16", torch.bfloat16))
    with torch.inference_mode():
        out["bandwidth"] = bandwidth_gbs()
        # A large square matmul is the compute ceiling (prefill); the 16 x 576 x 1536 shape is
        # one decode step of this model's MLP at 16 streams.
        out["matmul_gflops"] = {
            f"{name} {m}x{k}x{n}": matmul_gflops(dtype, m, k, n)
            for name, dtype in dtypes
            for m, k, n in ((2048, 2048, 2048), (16, 576, 1536))
        }
    print(json.dumps(out))


if __name__ == "__main__":
    main()

"""Which of the three CPU classes this process computes as: what the CPU has, as far as the kernel
libraries are allowed to use it.

The engine's defaults follow the class (loader.py): with AMX, bfloat16 with int4 weights and dense
prefill in fixed-shape pieces; with AVX-512 BF16 but no AMX (AMD Zen 4, Intel Cooper Lake),
bfloat16 with int4 weights; with AVX2 only, float32 with fp16 weights. PyTorch's
ATEN_CPU_CAPABILITY (`avx2`, `avx512`, `default`) and oneDNN's ONEDNN_MAX_CPU_ISA (`AVX2`,
`AVX512_CORE_BF16`, ...) restrict which instructions a process may use, and they are read here
too, so one machine runs as a lower class, defaults included (tests/invariance emulates each
class this way).
"""

from __future__ import annotations

import functools
import os
from typing import Literal

import torch

CpuClass = Literal["amx", "avx512_bf16", "avx2", "other"]
# Emulation: the environment that makes a process on a higher class compute as each class.
EMULATE: dict[CpuClass, dict[str, str]] = {
    "amx": {},
    "avx512_bf16": {"ATEN_CPU_CAPABILITY": "avx512", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE_BF16"},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"},
}


@functools.cache
def flags() -> frozenset[str]:
    """The CPU's feature flags (Linux' /proc/cpuinfo); empty elsewhere."""
    try:
        with open("/proc/cpuinfo") as f:
            line = next((line for line in f if line.startswith("flags")), "")
    except OSError:
        return frozenset()
    return frozenset(line.partition(":")[2].split())


def _onednn_cap() -> str:
    return os.environ.get("ONEDNN_MAX_CPU_ISA", "ALL").upper()


def _aten_cap() -> str:
    return os.environ.get("ATEN_CPU_CAPABILITY", "").lower()


def native_bf16() -> bool:
    """bfloat16 products run natively (AVX512-BF16 or AMX; twice as fast as float32 there) and
    neither library is held below them."""
    cap = _onednn_cap()
    allowed = cap in ("ALL", "DEFAULT") or "BF16" in cap or "AMX" in cap or "FP16" in cap
    held_back = _aten_cap() in ("avx2", "default")
    return bool(flags() & {"avx512_bf16", "amx_bf16"}) and allowed and not held_back


def amx() -> bool:
    """oneDNN multiplies bfloat16 on AMX here: the CPU and the kernel allow it, and
    ONEDNN_MAX_CPU_ISA (if set) does not rule it out."""
    cap = _onednn_cap()
    if cap not in ("ALL", "DEFAULT") and "AMX" not in cap:
        return False
    return native_bf16() and bool(torch._C._cpu._init_amx())


def avx2() -> bool:
    """AVX2 with FMA and F16C: what the native kernels (native.py) are built for."""
    return {"avx2", "fma", "f16c"} <= flags() and _aten_cap() != "default"


def cpu_class() -> CpuClass:
    if amx():
        return "amx"
    if native_bf16():
        return "avx512_bf16"
    return "avx2" if avx2() else "other"


def emulable() -> list[CpuClass]:
    """This class and the lower ones, which this machine can compute as (EMULATE)."""
    order: list[CpuClass] = ["amx", "avx512_bf16", "avx2"]
    here = cpu_class()
    return order[order.index(here) :] if here in order else []

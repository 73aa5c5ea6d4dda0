"""The KV cache's memory budget, and giving freed memory back to the operating system."""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os

import torch

GIB = 1 << 30


@functools.cache
def _libc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def trim_heap() -> None:
    """glibc keeps freed blocks (replaced weights, a long prompt's attention buffers) mapped;
    malloc_trim returns them, so resident memory falls back after a peak. A no-op elsewhere."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def kv_budget_bytes(gigabytes: float, device: torch.device) -> int:
    """The KV cache's size: as set, else a quarter of RAM on a CPU (8 GiB at most) or half the
    GPU memory still free once the model is loaded. A CPU pool is only touched as it fills."""
    if gigabytes > 0:
        return int(gigabytes * GIB)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return free // 2
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return min(physical // 4, 8 * GIB)

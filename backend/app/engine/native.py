"""The native kernels (kernels.cpp): a 16-bit-weight linear layer and the paged attention, each
computing a row on its own, so a request's tokens do not depend on its batch on any CPU.

`make setup` builds them once (`python -m app.engine.native`, with PyTorch's C++ extension tools
and the machine's compiler) for AVX2 with FMA and F16C, which every CPU class the engine tunes for
has: the same instructions, hence the same numbers, on AVX2, AVX-512 and AMX machines. Where they
are not built (no compiler, another architecture) the engine uses PyTorch's own kernels, whose rows
agree alone and batched only in practice, not by construction; the load log says which.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import logging
import os
import sys
from pathlib import Path
from types import ModuleType

import torch

from . import cpu

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("kernels.cpp")
BUILD_DIR = Path(__file__).with_name("_native")
# -ffp-contract=off: no multiply-add fused where the source does not say so, so every element's
# operations are the ones written, wherever the compiler vectorises. -fopenmp: at::parallel_for
# runs on PyTorch's own OpenMP threads (the libgomp it loaded); without it, on one thread.
FLAGS = ("-O3", "-mavx2", "-mfma", "-mf16c", "-ffp-contract=off", "-fopenmp")


def module_name() -> str:
    """Named after the source, the flags and PyTorch's version: a change builds a new one."""
    key = SOURCE.read_bytes() + " ".join(FLAGS).encode() + torch.__version__.encode()
    return f"localchat_kernels_{hashlib.sha256(key).hexdigest()[:12]}"


def built_path() -> Path:
    return BUILD_DIR / f"{module_name()}.so"


@functools.cache
def kernels() -> ModuleType | None:
    """The built kernels, or None where they cannot run or were not built."""
    path = built_path()
    if not cpu.avx2() or not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location(module_name(), path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status() -> str:
    """One line for the load log."""
    if kernels() is not None:
        return "native kernels loaded: a row's numbers do not depend on its batch"
    why = "this CPU lacks AVX2/FMA/F16C" if not cpu.avx2() else "not built (run `make setup`)"
    return f"native kernels off ({why}): PyTorch's kernels, whose rows agree alone and batched in practice"


def build() -> Path:
    """Compile kernels.cpp into BUILD_DIR (a minute on 2 cores); a no-op when already built."""
    from torch.utils import cpp_extension  # only here: it pulls in setuptools and the compiler checks

    if not built_path().is_file():
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        # The build runs ninja, which pip installs beside this Python (backend[dev]).
        os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
        cpp_extension.load(
            name=module_name(),
            sources=[str(SOURCE)],
            extra_cflags=list(FLAGS),
            extra_ldflags=["-fopenmp"],
            build_directory=str(BUILD_DIR),
            is_python_module=True,
        )
    return built_path()


if __name__ == "__main__":
    # Never fails the setup: without the kernels the server still runs, on PyTorch's kernels.
    if not cpu.avx2():
        print("native kernels: this CPU lacks AVX2/FMA/F16C; the engine uses PyTorch's kernels")
        sys.exit(0)
    try:
        print(f"native kernels: {build()}")
    except Exception as exc:
        print(f"native kernels NOT built ({type(exc).__name__}: {exc}); the engine uses PyTorch's kernels")

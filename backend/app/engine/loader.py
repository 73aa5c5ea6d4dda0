"""Loading models from local folders, choosing the device and dtype."""

from __future__ import annotations

import logging
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model folder is missing or unreadable; the message says which and what to do."""


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ModelLoadError(
            "DEVICE=cuda but PyTorch sees no CUDA GPU (check the driver and the torch build)."
        )
    if device == "mps" and not torch.backends.mps.is_available():
        raise ModelLoadError("DEVICE=mps but this PyTorch has no MPS support.")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        if device.type == "mps":
            return torch.float16
        return torch.float32
    return getattr(torch, dtype)


def check_model_folder(path: Path, what: str) -> None:
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{what} model folder {path} has no config.json: run `make models`, "
            f"or point the setting at a Hugging Face model folder."
        )

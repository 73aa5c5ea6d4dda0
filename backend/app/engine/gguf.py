"""GGUF files (llama.cpp's format, what Ollama, LM Studio and llama.cpp users have) as chat models.

`check` reads only the header (memory-mapped, milliseconds) and refuses, in one line, a missing,
truncated or corrupt file, an architecture or a tensor type we cannot run, before the slow load.
Transformers then reads the file: config, tokenizer, chat template and the dequantised weights.
`plans` says how each linear layer packs for our kernels:

- Q4_0 and Q4_1: int4 from the file's own codes and grid (groups of 32: the int4 kernel's
  layout). The kernel keeps each group's step and offset in bfloat16, the only rounding. Where a
  Q4_1 group's codes reach 0 and 15 (every group of a file quantised without an importance
  matrix) its grid is the span of its values, computed as Int4Linear computes it from the loaded
  weights, so a file packs exactly as the folder converted from it (`make models`).
- Q8_0: the native q8 kernel from the file's codes and scales: every weight exactly the file's.
- Other quantised types are dequantised and requantised to the nearest kind we run: 4 bits or
  fewer to int4 (each group's own grid), 5 and 6 bits to q8 (Q8_0's rule). docs/precision.md
  measures what that costs against llama.cpp on the same files.
- F32, F16 and BF16 tensors load as a model folder's do (QUANTIZATION applies as for a folder).
"""

from __future__ import annotations

import functools
import struct
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf as gguf_py
import numpy as np
import torch
from gguf import GGML_QUANT_SIZES, MODEL_ARCH, MODEL_ARCH_NAMES, GGMLQuantizationType, get_tensor_name_map
from torch import nn
from transformers import PreTrainedModel

# Transformers' header parser walks past the vocabulary instead of decoding it: a header in
# milliseconds, where gguf-py's GGUFReader takes seconds.
from transformers.integrations.gguf import reader as header_reader
from transformers.modeling_gguf_pytorch_utils import (
    GGUF_SUPPORTED_ARCHITECTURES,
    TENSOR_PROCESSORS,
    LlamaTensorProcessor,
    TensorProcessor,
)
from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

from .quantization import INT4_GROUP, Int4Plan, Plan, Q8Plan, int4_plan, q8_plan

# Transformers reads a GGUF file with gguf-py's GGUFReader three times in one load (its config,
# its tokenizer, its weights), each decoding the whole vocabulary field by field (seconds), and
# builds gguf-py's tensor-name map once per module of the model (~400 for a small one): within
# `one_reading`, every read of the file being loaded shares one reader, and a name map is built
# once per architecture and depth. Both are looked up on the gguf module when called, so they
# are replaced there.
_open_readers: dict[Path, Any] = {}
_readers_lock = threading.Lock()
_new_reader = gguf_py.GGUFReader


def _shared_reader(path: str | Path, *args: Any, **kwargs: Any) -> Any:
    key = Path(path).resolve()
    with _readers_lock:
        if key not in _open_readers:
            return _new_reader(path, *args, **kwargs)
        if _open_readers[key] is None:
            _open_readers[key] = _new_reader(path, *args, **kwargs)
        return _open_readers[key]


gguf_py.GGUFReader = _shared_reader  # type: ignore[misc,assignment]
gguf_py.get_tensor_name_map = functools.lru_cache(maxsize=8)(get_tensor_name_map)


@contextmanager
def one_reading(path: Path) -> Iterator[None]:
    """Every GGUFReader of `path` in the block is one (its memory map closes after it)."""
    key = path.resolve()
    with _readers_lock:
        _open_readers.setdefault(key, None)
    try:
        yield
    finally:
        with _readers_lock:
            _open_readers.pop(key, None)


SUFFIX = ".gguf"
Q = GGMLQuantizationType
DENSE = {Q.F32, Q.F16, Q.BF16}
TO_INT4 = {Q.Q4_0, Q.Q4_1, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.IQ4_NL, Q.IQ4_XS}
TO_Q8 = {Q.Q8_0, Q.Q5_0, Q.Q5_1, Q.Q5_K, Q.Q6_K}
RUNS = DENSE | TO_INT4 | TO_Q8
# Architectures whose tensors Transformers maps to its own only by reordering rows (q and k
# of Llama-family files), so a layer's codes can be taken from the file's blocks.
ROWS_ONLY = (TensorProcessor, LlamaTensorProcessor)
# gguf-py's architecture names where Transformers' differ.
MODEL_TYPES = {
    "qwen2moe": "qwen2_moe",
    "qwen3moe": "qwen3_moe",
    "gpt-oss": "gpt_oss",
    "minimax-m2": "minimax_m2",
}
CAUSAL = sorted(a for a in GGUF_SUPPORTED_ARCHITECTURES if a in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES)


class GGUFError(ValueError):
    """A GGUF file we cannot run; the message names what and says what would run."""


@dataclass(frozen=True)
class Tensor:
    name: str
    shape: tuple[int, ...]  # rows first
    kind: GGMLQuantizationType
    data: np.ndarray  # its bytes, memory-mapped: [rows, bytes per row] for a quantised matrix


@dataclass(frozen=True)
class Header:
    architecture: str
    tensors: list[Tensor]

    def types(self) -> Counter[str]:
        return Counter(t.kind.name for t in self.tensors)


def is_gguf(path: Path) -> bool:
    return path.suffix.lower() == SUFFIX


def _type_name(kind: int) -> str:
    return Q(kind).name if kind in Q._value2member_map_ else f"type {kind}"


def read_header(path: Path) -> Header:
    """The file's architecture and tensor table, its tensors' bytes mapped but not read; GGUFError
    when the file is missing, not GGUF, truncated or holds a type gguf-py does not know."""
    if not path.is_file():
        raise GGUFError(f"GGUF file {path} does not exist: check the path, or download the file again.")
    try:
        blob = np.memmap(path, dtype=np.uint8, mode="r")
        metadata, count, pos = header_reader._read_metadata(blob, str(path))
        entries, pos = header_reader._read_tensor_table(blob, count, pos)
    except (ValueError, struct.error, UnicodeDecodeError, IndexError, OSError) as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0][:200]
        raise GGUFError(
            f"GGUF file {path} is not a readable GGUF file ({type(exc).__name__}: {first_line}): "
            "it is truncated or corrupt; download it again."
        ) from exc
    alignment = metadata.get("general.alignment", 32)
    start = (pos + alignment - 1) // alignment * alignment
    tensors = []
    for name, shape, kind, offset in entries:
        if kind not in Q._value2member_map_:
            raise GGUFError(
                f"GGUF file {path} has tensor {name} of ggml {_type_name(kind)}, which gguf-py does not "
                f"know: use a file of {', '.join(sorted(t.name for t in RUNS))} tensors."
            )
        block, size = GGML_QUANT_SIZES[Q(kind)]
        row = shape[-1] // block * size
        rows = int(np.prod(shape[:-1], dtype=np.int64))
        end = start + offset + rows * row
        if end > blob.shape[0]:
            raise GGUFError(
                f"GGUF file {path} is truncated (tensor {name} ends at byte {end} of {blob.shape[0]}): "
                "download it again."
            )
        data = blob[start + offset : end].reshape(rows, row) if len(shape) > 1 else blob[start + offset : end]
        tensors.append(Tensor(name, tuple(shape), Q(kind), data))
    return Header(str(metadata["general.architecture"]), tensors)


def check(path: Path) -> Header:
    """The file's header, when we can run what it holds; else GGUFError."""
    header = read_header(path)
    architecture = header.architecture
    if MODEL_TYPES.get(architecture, architecture) not in CAUSAL:
        raise GGUFError(
            f"GGUF file {path} holds architecture {architecture!r}, which is not a language model we can "
            f"run: we run {', '.join(CAUSAL)}."
        )
    types = header.types()
    cannot = sorted(name for name in types if Q[name] not in RUNS)
    if cannot:
        raise GGUFError(
            f"GGUF file {path} has tensors quantised as {', '.join(f'{n} ({types[n]})' for n in cannot)}, "
            f"which we cannot run: use a file of {', '.join(sorted(t.name for t in RUNS))} tensors "
            "(Q4_K_M, Q5_K_M, Q6_K, Q8_0 and Q4_0 files all are)."
        )
    return header


def _blocks(data: np.ndarray, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A quantised tensor's rows [out, bytes] as blocks [out, groups, size]; the half-precision
    value at the head of each block as float32 [out, groups]."""
    blocks = torch.from_numpy(np.array(data)).view(data.shape[0], -1, size)
    return blocks, blocks[..., :2].contiguous().view(torch.float16)[..., 0].float()


def _nibbles(packed: torch.Tensor) -> torch.Tensor:
    """ggml's 4-bit codes [out, groups, 16 bytes] -> [out, groups * 32]: a block's low nibbles
    are its first 16 codes, its high nibbles the next 16."""
    codes = torch.cat([packed & 0xF, packed >> 4], dim=-1)
    return codes.reshape(packed.shape[0], -1).to(torch.int32)


def _file_plan(kind: GGMLQuantizationType, data: np.ndarray, weight: torch.Tensor) -> Plan:
    """Q4_0, Q4_1 or Q8_0 rows as the file holds them (see the module's description)."""
    if kind == Q.Q8_0:
        blocks, scales = _blocks(data, 2 + INT4_GROUP)
        return Q8Plan(blocks[..., 2:].contiguous().view(torch.int8).reshape(data.shape[0], -1), scales)
    if kind == Q.Q4_0:
        blocks, steps = _blocks(data, 2 + INT4_GROUP // 2)
        return Int4Plan(_nibbles(blocks[..., 2:]), -8 * steps, steps)
    blocks, steps = _blocks(data, 4 + INT4_GROUP // 2)
    low = blocks[..., 2:4].contiguous().view(torch.float16)[..., 0].float()
    codes = _nibbles(blocks[..., 4:])
    grouped = codes.view(codes.shape[0], -1, INT4_GROUP)
    spans = (grouped.amin(dim=-1) == 0) & (grouped.amax(dim=-1) == 15)
    own = int4_plan(weight)
    return Int4Plan(codes, torch.where(spans, own.low, low), torch.where(spans, own.steps, steps))


def plans(path: Path, model: PreTrainedModel, q8: bool) -> dict[str, Plan]:
    """How each quantised linear layer of this file packs, by module name (the output layer
    keeps the model's dtype, as for a folder). q8: whether the native q8 kernel is there; without
    it, layers that would take it stay dense."""
    header = read_header(path)
    processor = TENSOR_PROCESSORS.get(header.architecture, TensorProcessor)(config=model.config.to_dict())
    from_blocks = type(processor) in ROWS_ONLY
    arch = next(key for key, name in MODEL_ARCH_NAMES.items() if name == header.architecture)
    names = get_tensor_name_map(MODEL_ARCH(arch), model.config.num_hidden_layers)
    tensors = {t.name: t for t in header.tensors}
    output = model.get_output_embeddings()
    found: dict[str, Plan] = {}
    for module, linear in model.named_modules():
        if type(linear) is not nn.Linear or linear is output or linear.in_features % INT4_GROUP:
            continue
        tensor = tensors.get(f"{names.get_name(module)}.weight")
        if tensor is None or tensor.kind in DENSE or (tensor.kind in TO_Q8 and not q8):
            continue
        if from_blocks and tensor.kind in (Q.Q4_0, Q.Q4_1, Q.Q8_0):
            # q and k rows in Transformers' order, as the dequantised weights were reordered.
            data = processor.process(weights=np.asarray(tensor.data), name=tensor.name).weights
            found[module] = _file_plan(tensor.kind, data, linear.weight)
        else:
            found[module] = q8_plan(linear.weight) if tensor.kind in TO_Q8 else int4_plan(linear.weight)
    return found

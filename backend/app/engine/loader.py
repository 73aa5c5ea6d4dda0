"""Loading the chat model from a local folder or GGUF file: device, dtype, attention kernel,
quantisation.

HTTP-free, so the server, the benchmarks and the tests load the model the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    GgufConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from . import cpu, gguf, native
from .attention import NAME
from .config import ModelOptions
from .fast_decoder import runs_fast
from .memory import trim_heap
from .quantization import (
    Fp16Linear,
    Int8Linear,
    NativeProduct,
    Plan,
    Quantization,
    WeightKind,
    dense_capable,
    fp16_supported,
    fuse_siblings,
    on_int4_grid,
    quantize_model,
    quantize_planned,
)
from .row_pieces import ROWS, Pieces, run_dense

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """A model folder or file is missing, unreadable or of a kind we cannot run; the message says
    which and what to do."""


@dataclass(frozen=True)
class Placement:
    device: torch.device
    dtype: torch.dtype
    attention: str


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
        # Quality holds in bf16 for the default model: see docs/precision.md for the figures.
        return torch.bfloat16 if cpu.native_bf16() else torch.float32
    if dtype == "bfloat16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ModelLoadError("DTYPE=bfloat16 but this GPU has no bfloat16 support (pre-Ampere): use float16.")
    if dtype == "float16" and device.type == "cpu":
        raise ModelLoadError("DTYPE=float16 has no fast CPU kernels here: use bfloat16 or float32 on a CPU.")
    return getattr(torch, dtype)


def resolve_attention(attention: str, device: torch.device) -> str:
    """Our batch-invariant kernel on CPU (exact results whatever the batch); fused SDPA on GPUs."""
    if attention == "auto":
        return NAME if device.type == "cpu" else "sdpa"
    return attention


def check_quantization(quantization: str, device: torch.device, dtype: torch.dtype) -> None:
    if quantization not in ("int8", "int4", "fp16"):
        return
    if device.type != "cpu":
        raise ModelLoadError(
            f"QUANTIZATION={quantization} uses PyTorch's CPU kernels and this model runs on {device.type}: "
            "set QUANTIZATION=none (or auto) on a GPU."
        )
    if quantization == "fp16":
        if dtype != torch.float32:
            raise ModelLoadError(
                "QUANTIZATION=fp16 multiplies float16 weights with float32 activations: it needs DTYPE="
                f"float32, not {str(dtype).removeprefix('torch.')}. Set DTYPE=float32 or QUANTIZATION=none."
            )
        if not fp16_supported():
            raise ModelLoadError(
                "QUANTIZATION=fp16 needs FBGEMM, which this PyTorch build lacks (x86 CPUs only): "
                "set QUANTIZATION=none."
            )
        return
    if dtype != torch.bfloat16:
        # Measured: float32 + int4 decodes at 3 tokens/s where plain float32 does 15.
        raise ModelLoadError(
            f"QUANTIZATION={quantization} needs DTYPE=bfloat16 (a CPU with AVX512-BF16 or AMX): its CPU "
            "kernels are many times slower than plain float32 with float32 activations. "
            "Set QUANTIZATION=none."
        )


def resolve_quantization(quantization: str, model: PreTrainedModel) -> Quantization:
    """auto: int4 on a CPU computing in bfloat16 when the weights already sit on a 4-bit grid (a
    model converted from a 4-bit GGUF file, like the default one), so it is faster and loses
    nothing; fp16 on an x86 CPU computing in float32 (half the bytes per token, rounding finer
    than bfloat16's); else none."""
    if quantization == "auto":
        if model.device.type != "cpu":
            return "none"
        if model.dtype == torch.bfloat16:
            return "int4" if on_int4_grid(model) else "none"
        return "fp16" if model.dtype == torch.float32 and fp16_supported() else "none"
    return quantization  # type: ignore[return-value]


def check_model_folder(path: Path, what: str) -> None:
    if not (path / "config.json").is_file():
        raise ModelLoadError(
            f"{what} model folder {path} has no config.json: run `make models`, "
            f"or point the setting at a Hugging Face model folder."
        )


def check_chat_model(path: Path) -> None:
    """A GGUF file's header (architecture, tensor types), else a folder's config.json."""
    if not gguf.is_gguf(path):
        check_model_folder(path, "Chat")
        return
    try:
        gguf.check(path)
    except gguf.GGUFError as exc:
        raise ModelLoadError(f"Chat model: {exc}") from exc


def preflight(options: ModelOptions) -> Placement:
    """Everything that can be checked before loading: fails with one line saying what to fix."""
    check_chat_model(options.chat_model_path)
    device = resolve_device(options.device)
    dtype = resolve_dtype(options.dtype, device)
    check_quantization(options.quantization, device, dtype)
    return Placement(device, dtype, resolve_attention(options.attention, device))


def load_chat_model(options: ModelOptions) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    place = preflight(options)
    # Loading runs single-threaded: a second OpenMP thread team beside the engine's (whose thread
    # count is NUM_THREADS) makes libgomp throttle its spin-waits, which halved decode speed here.
    torch.set_num_threads(1)
    path = options.chat_model_path
    log.info(
        "loading chat model %s on %s (%s, %s attention)", path, place.device, place.dtype, place.attention
    )
    # Transformers reads a GGUF file's config, tokenizer and chat template, and dequantises its
    # weights (asked to: its own packed GGUF layers would fetch kernels from the Hub).
    source, file = (path.parent, {"gguf_file": path.name}) if gguf.is_gguf(path) else (path, {})
    dequantised = {"quantization_config": GgufConfig(dequantize=True)} if file else {}
    with loading("Chat", path), gguf.one_reading(path):
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True, **file)
        model = AutoModelForCausalLM.from_pretrained(
            source,
            local_files_only=True,
            dtype=place.dtype,
            attn_implementation=place.attention,
            device_map=options.device_map,
            **file,
            **dequantised,
        )
        if options.device_map is None:
            model = model.to(place.device)
        plans = file_plans(options, model)
    if options.fast_path and runs_fast(model):
        # One product per group of siblings, quantised and packed once (quantization.py); a
        # GGUF file's siblings only when the file gives them one kind.
        joinable = (lambda names: len({type(plans.get(n)) for n in names}) == 1) if plans else lambda _: True
        log.info("joined %d groups of sibling projections", fuse_siblings(model, joinable))
    quantization = "none" if plans is not None else resolve_quantization(options.quantization, model)
    if plans is not None:
        count = quantize_planned(model, plans, keep_dense=resolve_dense_prefill(options.dense_prefill))
        trim_heap()
        log.info("packed %d linear layers from the GGUF file's own quantisation", count)
    if quantization != "none":
        keep_dense = resolve_dense_prefill(options.dense_prefill)
        count = quantize_model(model, quantization, keep_dense=keep_dense)
        trim_heap()  # the float copies quantising made, and the weights it replaced (unless kept)
        log.info(
            "quantised %d linear layers to %s (weight-only%s)",
            count,
            quantization,
            ", dense weights kept for prefill" if dense_capable(model) else "",
        )
    if place.device.type == "cpu" and place.attention == NAME:
        log.info("%s; CPU class %s", native.status(), cpu.cpu_class())
        batch_invariant_products(model)
    return model.eval(), tokenizer


def file_plans(options: ModelOptions, model: PreTrainedModel) -> dict[str, Plan] | None:
    """QUANTIZATION=auto on a GGUF file, on a CPU computing in bfloat16 (the int4 kernel's): its
    layers pack as the file quantised them (gguf.py). Elsewhere a GGUF file loads dequantised,
    quantised as a folder would be."""
    path = options.chat_model_path
    if not gguf.is_gguf(path) or options.quantization != "auto":
        return None
    if model.device.type != "cpu" or model.dtype != torch.bfloat16:
        return None
    return gguf.plans(path, model, q8=native.kernels() is not None)


def rows_independent(model: PreTrainedModel) -> bool:
    """Whether every product of this model computes a row on its own, whatever its batch: our
    attention on the native kernels, on a CPU, and no layer left to a library whose blocking
    follows the batch (a plain linear layer on MKL or oneDNN, fp16 weights on FBGEMM, int8)."""
    if model.device.type != "cpu" or native.kernels() is None or model.config._attn_implementation != NAME:
        return False
    library = (torch.nn.Linear, Int8Linear)
    return not any(
        type(m) in library or (isinstance(m, Fp16Linear) and m.native is None) for m in model.modules()
    )


def resolve_dense_prefill(setting: str) -> bool:
    """auto: dense prefill weights only with AMX, where they are several times faster than the
    packed kernels and run in fixed-shape pieces; elsewhere prompts are computed with the
    weights that decode, the same numbers a generated token gets."""
    return cpu.amx() if setting == "auto" else setting == "true"


def batch_invariant_products(model: PreTrainedModel) -> None:
    """Dense products (the output layer, kept dense prefill weights, every layer of an
    unquantised model) whose rows do not depend on the batch: bfloat16 ones in fixed-shape pieces
    with AMX (row_pieces.py), the others on the native kernel (MKL's and oneDNN's rows depend
    on the batch)."""
    dtype = model.dtype
    if dtype == torch.bfloat16 and cpu.amx() and torch.ops.mkldnn._is_mkldnn_bf16_supported():
        log.info("%d bf16 products run in %d-row pieces", run_dense(model, Pieces, dtype), ROWS)
    elif native.kernels() is not None and dtype in (torch.bfloat16, torch.float32):
        kind: WeightKind = "bf16" if dtype == torch.bfloat16 else "fp32"
        count = run_dense(model, lambda weight, bias: NativeProduct(weight, bias, kind), dtype)
        log.info("%d dense %s products on the native kernel", count, kind)


@contextmanager
def loading(what: str, path: Path) -> Iterator[None]:
    """Turn any failure to read a model folder into one line naming the folder and the fix."""
    try:
        yield
    except ModelLoadError:
        raise
    except Exception as exc:
        first_line = (str(exc).strip().splitlines() or [""])[0]
        kind = "file" if gguf.is_gguf(path) else "folder"
        raise ModelLoadError(
            f"{what} model {kind} {path} could not be loaded ({type(exc).__name__}: {first_line[:200]}). "
            "Run `make models` for the default models, or point the setting at a complete model folder "
            "or GGUF file."
        ) from exc

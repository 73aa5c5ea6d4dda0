"""Weight-only int8 / int4 / fp16 quantisation of a model's linear layers, on PyTorch's own CPU kernels.

On a CPU, decoding a small batch is bound by reading the weights: int8 halves and int4 quarters
the bytes read per token. Activations stay in the model's dtype. The kernels used here
(`_weight_int8pack_mm`, `_weight_int4pack_mm_for_cpu`) compute each row of a batch on its own,
so a request's tokens stay the same alone or batched (a test checks it).

int8: one symmetric scale per output channel. int4: groups of 32 inputs, each with its own scale
and offset (the layout of llama.cpp's Q4_1). Models converted from a 4-bit GGUF already have
weights on such a grid, so packing them to int4 loses nothing: that is what QUANTIZATION=auto
detects. The output layer keeps the model's dtype: sampling reads its logits (int4 there cost
English perplexity 55.4 -> 61.5 on the default model when we tried it), and for that wide matrix the int8
kernel is slower than bf16 once a few sequences are batched.

Prefill is the opposite case: hundreds of rows per product make it compute-bound, and there these
kernels are 2.5x slower than a bf16 matrix product (they dequantise as they go). So a packed layer
may keep its dense weight as well, and inside `dense_weights` it multiplies by that one. The
engine prefills every prompt token that way and decodes every generated token with the packed
weight, whatever the batch; dense products run in fixed-shape pieces (row_pieces.py), so a
request's tokens still do not depend on its neighbours. That pays on CPUs with AMX, where the
dense products are many times faster (DENSE_PREFILL=auto keeps dense weights only there).

fp16 is for CPUs that compute in float32 (no native bf16, e.g. AVX2 only), where the int kernels
above are slow: every linear layer, the output layer too, keeps float16 weights multiplied with
float32 activations by the native kernel (native.py), which computes each row on its own, or by
FBGEMM where that is not built. Reading half the bytes, it decodes 2.6-4x faster than float32 at
1-16 rows and prefills faster too, so no dense copy is kept; its float16 rounding of the weights
costs less than bfloat16's. FBGEMM's 1- and 2-row kernels split the sum over the inputs four ways
where its wider ones do not (about 1e-6 apart), so without the native kernel tokens batched and
alone agree in practice, as in float32, not by construction.

Sibling projections that read the same input (q/k/v, gate/up) can be joined into one matrix
before quantising (`fuse_siblings`, for the fast decoder): one product instead of three or two
for every kernel here (at one row a product costs ~30 us besides reading its weights). Every
kind quantises each output row on its own, and each kernel's column of the joined product is
bit for bit the separate layer's (a test checks), so joining changes no number.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from .native import kernels

Quantization = Literal["none", "int8", "int4", "fp16"]
# The native kernel's weight elements (kernels.cpp).
WeightKind = Literal["fp16", "bf16", "fp32"]
INT4_GROUP = 32
# Projections of one module that read the same input: fused under fp16 (Llama-family names).
SIBLINGS = (("q_proj", "k_proj", "v_proj"), ("gate_proj", "up_proj"))


def _int4_grid(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Each group of 32 inputs on its own 16-step grid from its minimum to its maximum: returns
    the (unrounded) codes, the group minima and the steps."""
    groups = weight.detach().float().view(weight.shape[0], -1, INT4_GROUP)
    low, high = groups.amin(dim=-1), groups.amax(dim=-1)
    steps = ((high - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
    return (groups - low[..., None]) / steps[..., None], low, steps


class _PackedLinear(nn.Module):
    """A linear layer whose weight lives in a packed format; `_matmul` takes 2-D inputs. With
    keep_dense it also keeps the layer's own weight, used while `dense` is set."""

    def __init__(self, linear: nn.Linear, keep_dense: bool) -> None:
        super().__init__()
        self.bias = linear.bias
        self.out_features = linear.out_features
        self.weight = linear.weight if keep_dense else None
        self.dense = False
        # How the dense weight multiplies (row_pieces.py replaces it on AMX CPUs).
        self.product: Callable[[torch.Tensor, torch.Tensor, torch.Tensor | None], torch.Tensor] = F.linear

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.dense and self.weight is not None:
            return self.product(x, self.weight, self.bias)
        y = self._matmul(x.reshape(-1, x.shape[-1])).view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class Int8Linear(_PackedLinear):
    def __init__(self, linear: nn.Linear, keep_dense: bool = False) -> None:
        super().__init__(linear, keep_dense)
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=torch.finfo(torch.float32).tiny)
        quantized = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("weight_int8", quantized)
        self.register_buffer("scales", scales.to(linear.weight.dtype))

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int8pack_mm(x, self.weight_int8, self.scales)


class Int4Linear(_PackedLinear):
    """int4 codes on a grid per 32 inputs: the grid the weights themselves span, or a given one
    (`Int4Plan`, from a GGUF file's blocks). The kernel keeps step and offset in bfloat16."""

    def __init__(self, linear: nn.Linear, keep_dense: bool = False, plan: Int4Plan | None = None) -> None:
        super().__init__(linear, keep_dense)
        codes, low, steps = int4_plan(linear.weight) if plan is None else plan
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(codes, 1)
        # The kernel computes (code - 8) * scale + zero, so the zero is the value of code 8.
        scales_and_zeros = torch.stack([steps, low + 8 * steps], dim=-1).transpose(0, 1).contiguous()
        self.register_buffer("weight_int4", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(linear.weight.dtype))

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.aten._weight_int4pack_mm_for_cpu(
            x, self.weight_int4, INT4_GROUP, self.scales_and_zeros
        )


class Q8Linear(_PackedLinear):
    """int8 codes with a float32 scale per 32 inputs (llama.cpp's Q8_0 layout) on the native
    kernel: every weight is code * scale exactly, so a Q8_0 file runs without loss; each row on
    its own. Activations in any float dtype; the output in theirs."""

    def __init__(self, linear: nn.Linear, plan: Q8Plan, keep_dense: bool = False) -> None:
        super().__init__(linear, keep_dense)
        native = kernels()
        if native is None:
            raise RuntimeError("the native kernels are not built (native.py)")
        self.native = native
        packed, scales = native.pack_q8(plan.codes, plan.scales)
        self.register_buffer("weight_q8", packed)
        self.register_buffer("scales_q8", scales)

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        y = self.native.linear(x, self.weight_q8, self.out_features, "q8", None, self.scales_q8)
        return y.to(x.dtype)


class Int4Plan(NamedTuple):
    """An int4 layer as a file holds it: codes 0..15 [out, in], and per group of 32 inputs the
    value of code 0 and the step [out, in / 32] (float32)."""

    codes: torch.Tensor
    low: torch.Tensor
    steps: torch.Tensor


class Q8Plan(NamedTuple):
    """A q8 layer: int8 codes [out, in] and a scale per group of 32 inputs [out, in / 32]."""

    codes: torch.Tensor
    scales: torch.Tensor


Plan = Int4Plan | Q8Plan


def q8_plan(weight: torch.Tensor) -> Q8Plan:
    """Weights requantised the way llama.cpp makes Q8_0: per group of 32, a half-precision scale
    of the largest magnitude / 127, codes rounded to it."""
    groups = weight.detach().float().view(weight.shape[0], -1, INT4_GROUP)
    scales = (groups.abs().amax(dim=-1) / 127).half().float()
    codes = torch.round(groups / scales.clamp(min=torch.finfo(torch.float32).tiny)[..., None])
    return Q8Plan(codes.clamp(-127, 127).to(torch.int8).view(weight.shape), scales)


def int4_plan(weight: torch.Tensor) -> Int4Plan:
    """The grid the weights span in each group of 32 (what Int4Linear finds by itself)."""
    codes, low, steps = _int4_grid(weight)
    return Int4Plan(codes.round().clamp(0, 15).to(torch.int32).view(weight.shape), low, steps)


def joined(plans: Sequence[Plan]) -> Plan | None:
    """The plan of sibling layers joined into one (rows stacked), when they are of one kind."""
    kinds = {type(plan) for plan in plans}
    if len(kinds) != 1:
        return None
    kind = kinds.pop()
    return kind(*(torch.cat(parts) for parts in zip(*plans, strict=True)))


def quantize_planned(model: PreTrainedModel, plans: dict[str, Plan], keep_dense: bool = False) -> int:
    """Pack each linear layer named in `plans` (by its name before `fuse_siblings`; a joined
    layer takes its parts' plans stacked) as its plan says; the others keep the model's dtype.
    Returns how many were packed."""
    names = {id(module): name for name, module in model.named_modules()}
    count = 0
    for linear, places in _linears(model):
        assert isinstance(linear, nn.Linear)
        parts = sorted((parent for parent, _ in places if isinstance(parent, Part)), key=lambda p: p.start)
        found = [plans.get(names[id(module)]) for module in (parts or [linear])]
        plan = joined([p for p in found if p is not None]) if None not in found else None
        if plan is None:
            continue
        if isinstance(plan, Q8Plan):
            packed: _PackedLinear = Q8Linear(linear, plan, keep_dense)
        else:
            packed = Int4Linear(linear, keep_dense, plan)
        replace_child(places, packed)
        count += 1
    return count


class NativeProduct:
    """x @ weight.T (+ bias) on the native kernel (native.py), the weight kept in its blocks as
    float16, bfloat16 or float32: each row on its own, summed in float32, returned in x's dtype."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None, kind: WeightKind) -> None:
        native = kernels()
        if native is None:
            raise RuntimeError("the native kernels are not built (native.py)")
        self.native, self.kind = native, kind
        self.packed = native.pack(weight.detach(), kind)
        self.bias = None if bias is None else bias.detach().float()
        self.out_features = weight.shape[0]

    def __call__(self, x: torch.Tensor, *_: object) -> torch.Tensor:
        return self.native.linear(x, self.packed, self.out_features, self.kind, self.bias).to(x.dtype)


class Fp16Linear(_PackedLinear):
    """float16 weights with float32 activations: the native kernel where it is built; FBGEMM
    otherwise, whose 1- and 2-row kernels round differently from its wider ones, so rows then
    agree alone and batched only in practice."""

    def __init__(self, linear: nn.Linear) -> None:
        super().__init__(linear, keep_dense=False)
        weight = linear.weight.detach()
        if kernels() is not None:
            self.native: NativeProduct | None = NativeProduct(weight, None, "fp16")
        else:
            self.native = None
            self.packed = torch.ops.quantized.linear_prepack_fp16(weight.float(), None)

    def _matmul(self, x: torch.Tensor) -> torch.Tensor:
        if self.native is not None:
            return self.native(x)
        return torch.ops.quantized.linear_dynamic_fp16(x, self.packed)


class Part(nn.Module):
    """One projection of a joined layer: its columns of the shared product. Called alone (the
    Transformers path) it computes the whole product and keeps its columns; the fast decoder
    calls the joined layer once for all its parts (`fused_layer`)."""

    def __init__(self, fused: nn.Module, start: int, end: int) -> None:
        super().__init__()
        self.fused = fused
        self.start, self.end = start, end
        self.out_features = end - start

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fused(x)[..., self.start : self.end]


def fuse_siblings(model: nn.Module, joinable: Callable[[Sequence[str]], bool] = lambda _: True) -> int:
    """Join each group of SIBLINGS that are plain linear layers of one input width, dtype and
    device, biases alike, into one linear layer whose parts they become. Call it before
    quantising (the joined layer is quantised once) and only for the fast decoder: elsewhere each
    part would compute the whole product. `joinable` may refuse a group, given its layers' names
    (a GGUF file's siblings of different kinds). Returns how many groups were joined."""
    count = 0
    for prefix, parent in list(model.named_modules()):
        for names in SIBLINGS:
            layers = [layer for name in names if type(layer := getattr(parent, name, None)) is nn.Linear]
            if len(layers) < len(names) or not joinable([f"{prefix}.{name}" for name in names]):
                continue
            kinds = {(x.in_features, x.weight.dtype, x.weight.device, x.bias is None) for x in layers}
            if len(kinds) > 1:
                continue
            first = layers[0]
            whole = nn.utils.skip_init(
                nn.Linear,
                first.in_features,
                sum(x.out_features for x in layers),
                bias=first.bias is not None,
                dtype=first.weight.dtype,
                device=first.weight.device,
            )
            whole.weight.data = torch.cat([x.weight.detach() for x in layers])
            if whole.bias is not None:
                whole.bias.data = torch.cat([x.bias.detach() for x in layers if x.bias is not None])
            start = 0
            for name, layer in zip(names, layers, strict=True):
                setattr(parent, name, Part(whole, start, start + layer.out_features))
                start += layer.out_features
            count += 1
    return count


def fused_layer(parts: Sequence[nn.Module]) -> nn.Module | None:
    """The layer whose one product is exactly these projections side by side, if there is one."""
    fused = getattr(parts[0], "fused", None) if parts else None
    start = 0
    for part in parts:
        if not isinstance(part, Part) or part.fused is not fused or part.start != start:
            return None
        start = part.end
    out_features = getattr(fused, "out_features", None)
    return fused if fused is not None and start == out_features else None


def shared_children(
    model: nn.Module, kind: Callable[[nn.Module], bool]
) -> list[tuple[nn.Module, list[tuple[nn.Module, str]]]]:
    """Each child module that `kind` takes, once, with every (parent, name) that holds it: a
    joined layer is held by all its parts, and replacing it must replace it in each."""
    found: dict[int, tuple[nn.Module, list[tuple[nn.Module, str]]]] = {}
    for parent in model.modules():
        for name, child in parent.named_children():
            if kind(child):
                found.setdefault(id(child), (child, []))[1].append((parent, name))
    return list(found.values())


def replace_child(places: list[tuple[nn.Module, str]], new: nn.Module) -> None:
    for parent, name in places:
        setattr(parent, name, new)


def fp16_supported() -> bool:
    """float16 weights multiply on the native kernels, or on FBGEMM (PyTorch's x86 CPU wheels)."""
    return kernels() is not None or "fbgemm" in torch.backends.quantized.supported_engines


def _linears(model: PreTrainedModel) -> list[tuple[nn.Module, list[tuple[nn.Module, str]]]]:
    """The linear layers that quantisation replaces, each with the places that hold it: all but
    the output layer."""
    output = model.get_output_embeddings()
    return shared_children(model, lambda child: type(child) is nn.Linear and child is not output)


def on_int4_grid(model: PreTrainedModel) -> bool:
    """True when every linear weight already takes at most 16 evenly spaced values per group of
    32 inputs: the weights came from a 4-bit file and int4 packing is lossless."""
    linears = [linear for linear, _ in _linears(model)]
    if not linears or any(linear.in_features % INT4_GROUP for linear in linears):
        return False
    for linear in linears:
        codes, _, _ = _int4_grid(linear.weight)
        # Tolerance: the converted weights were rounded to bf16/fp16 after dequantising.
        if (codes - codes.round()).abs().amax() > 0.05:
            return False
    return True


def _packed(linear: nn.Linear, mode: Quantization, keep_dense: bool) -> _PackedLinear:
    if mode == "fp16":
        return Fp16Linear(linear)
    if mode == "int4" and linear.in_features % INT4_GROUP == 0:
        return Int4Linear(linear, keep_dense)
    return Int8Linear(linear, keep_dense)


def quantize_model(model: PreTrainedModel, mode: Quantization, keep_dense: bool = False) -> int:
    """Replace the model's linear layers in place; returns how many were quantised. A layer whose
    input width is not a multiple of the int4 group takes int8 instead. fp16 keeps no dense
    weights whatever keep_dense says (it prefills faster than the dense ones)."""
    if mode == "none":
        return 0
    linears = _linears(model)
    for linear, places in linears:
        assert isinstance(linear, nn.Linear)
        replace_child(places, _packed(linear, mode, keep_dense))
    if mode != "fp16":
        return len(linears)
    # The output layer too: at one row it is a fifth of the bytes read per token, and float16
    # keeps its logits closer to float32's than the int grids would. A tied embedding keeps its
    # float32 table for the input lookup.
    model.set_output_embeddings(Fp16Linear(model.get_output_embeddings()))
    return len(linears) + 1


def dense_capable(model: nn.Module) -> list[_PackedLinear]:
    """The packed layers that kept their dense weight."""
    return [m for m in model.modules() if isinstance(m, _PackedLinear) and m.weight is not None]


@contextmanager
def dense_weights(layers: Sequence[_PackedLinear]) -> Iterator[None]:
    """Within: these layers multiply by their dense weight instead of the packed one."""
    for layer in layers:
        layer.dense = True
    try:
        yield
    finally:
        for layer in layers:
            layer.dense = False


def quantization_of(model: nn.Module) -> Quantization:
    """What quantize_model did to this model (int4 where any layer is int4)."""
    kinds = {type(m) for m in model.modules()}
    if Fp16Linear in kinds:
        return "fp16"
    return "int4" if Int4Linear in kinds else "int8" if kinds & {Int8Linear, Q8Linear} else "none"

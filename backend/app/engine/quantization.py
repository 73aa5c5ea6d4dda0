"""Weight-only int8 / int4 quantisation of a model's linear layers, on PyTorch's own CPU kernels.

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
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from transformers import PreTrainedModel

Quantization = Literal["none", "int8", "int4"]
INT4_GROUP = 32


class Int8Linear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        weight = linear.weight.detach().float()
        scales = (weight.abs().amax(dim=1) / 127).clamp(min=torch.finfo(torch.float32).tiny)
        quantized = torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8)
        self.register_buffer("weight_int8", quantized)
        self.register_buffer("scales", scales.to(linear.weight.dtype))
        self.bias = linear.bias
        self.out_features = linear.out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int8pack_mm(x.reshape(-1, x.shape[-1]), self.weight_int8, self.scales)
        y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


class Int4Linear(nn.Module):
    def __init__(self, linear: nn.Linear) -> None:
        super().__init__()
        out_features, in_features = linear.weight.shape
        groups = linear.weight.detach().float().view(out_features, in_features // INT4_GROUP, INT4_GROUP)
        low, high = groups.amin(dim=-1), groups.amax(dim=-1)
        scales = ((high - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
        codes = torch.round((groups - low[..., None]) / scales[..., None]).clamp(0, 15)
        packed = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
            codes.to(torch.int32).view(out_features, in_features), 1
        )
        # The kernel computes (code - 8) * scale + zero, so the zero is the value of code 8.
        scales_and_zeros = torch.stack([scales, low + 8 * scales], dim=-1).transpose(0, 1).contiguous()
        self.register_buffer("weight_int4", packed)
        self.register_buffer("scales_and_zeros", scales_and_zeros.to(linear.weight.dtype))
        self.bias = linear.bias
        self.out_features = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.ops.aten._weight_int4pack_mm_for_cpu(
            x.reshape(-1, x.shape[-1]), self.weight_int4, INT4_GROUP, self.scales_and_zeros
        )
        y = y.view(*x.shape[:-1], self.out_features)
        return y if self.bias is None else y + self.bias


def _linears(model: PreTrainedModel) -> list[tuple[nn.Module, str, nn.Linear]]:
    """The linear layers that quantisation replaces: all but the output layer."""
    output = model.get_output_embeddings()
    return [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear and child is not output
    ]


def on_int4_grid(model: PreTrainedModel) -> bool:
    """True when every linear weight already takes at most 16 evenly spaced values per group of
    32 inputs: the weights came from a 4-bit file and int4 packing is lossless."""
    linears = _linears(model)
    if not linears or any(linear.in_features % INT4_GROUP for _, _, linear in linears):
        return False
    for _, _, linear in linears:
        weight = linear.weight.detach().float()
        groups = weight.view(weight.shape[0], -1, INT4_GROUP)
        low, high = groups.amin(dim=-1, keepdim=True), groups.amax(dim=-1, keepdim=True)
        step = ((high - low) / 15).clamp(min=torch.finfo(torch.float32).tiny)
        codes = (groups - low) / step
        # Tolerance: the converted weights were rounded to bf16/fp16 after dequantising.
        if (codes - codes.round()).abs().amax() > 0.05:
            return False
    return True


def quantize_model(model: PreTrainedModel, mode: Quantization) -> int:
    """Replace the model's linear layers in place; returns how many were quantised. A layer whose
    input width is not a multiple of the int4 group takes int8 instead."""
    if mode == "none":
        return 0
    linears = _linears(model)
    for parent, name, linear in linears:
        int4 = mode == "int4" and linear.in_features % INT4_GROUP == 0
        setattr(parent, name, Int4Linear(linear) if int4 else Int8Linear(linear))
    return len(linears)


def quantization_of(model: nn.Module) -> Quantization:
    """What quantize_model did to this model (int4 where any layer is int4)."""
    kinds = {type(m) for m in model.modules()}
    return "int4" if Int4Linear in kinds else "int8" if Int8Linear in kinds else "none"

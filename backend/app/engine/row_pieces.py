"""Dense bfloat16 matrix products whose rows do not depend on the batch, on oneDNN's kernels.

oneDNN's AMX kernels choose their blocking from the number of rows, and some choices round a row
differently: on a Sapphire Rapids core the rows of a 33-64-row product differed from the same rows
computed alone, and with 14,336 inputs every product of 2+ rows differed from one of 1. A product
of one fixed shape, though, gives each row the same numbers whatever its neighbours and its place
among them (checked for 576-14,336 inputs and 576-128,256 outputs; a test checks it here). So on
such a CPU every dense product runs in pieces of exactly ROWS rows, the last one padded: a token's
numbers are the same alone, batched, or in any prefill chunk. Padding costs little, since AMX
multiplies 16-row tiles and a decode step's product is bound by reading the weights; measured on 2
cores against the AVX512-BF16 kernels, the alternative (oneDNN kept off AMX): the output layer at
16 rows 2.1 vs 5.8 ms, a layer's products at 256 prefill rows 3.2 vs 8.4 ms. Without AMX the
same pieces hold kept dense prefill weights (DENSE_PREFILL=true there), whose products have
hundreds of rows anyway; the output layer goes to the native kernel instead (loader.py).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .quantization import dense_capable, replace_child, shared_children

ROWS = 32
# x -> x @ weight.T + bias, whatever the batch (the product of a packed layer's dense weight too).
Product = Callable[..., torch.Tensor]


class Pieces:
    """F.linear(x, weight, bias) as products of exactly ROWS rows each. The weight is reordered
    once into oneDNN's layout for that shape (otherwise every call reorders it: 1.7 ms a call
    for the 49,152-row output layer); a product on the reordered weight gives the plain one's
    numbers."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        self.packed = torch.ops.mkldnn._reorder_linear_weight(weight.detach(), ROWS)
        self.bias = None if bias is None else bias.detach()
        self.out_features = weight.shape[0]

    def __call__(self, x: torch.Tensor, *_: object) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        rows = flat.shape[0]
        padded = -(-rows // ROWS) * ROWS
        if padded != rows:
            flat = F.pad(flat, (0, 0, 0, padded - rows))
        pieces = [
            torch.ops.mkldnn._linear_pointwise(piece, self.packed, self.bias, "none", [], "")
            for piece in flat.split(ROWS)
        ]
        out = pieces[0] if len(pieces) == 1 else torch.cat(pieces)
        return out[:rows].view(*x.shape[:-1], self.out_features)


class ProductLinear(nn.Module):
    """A linear layer whose product is a callable holding its own copy of the weight (Pieces,
    or quantization.NativeProduct). The plain weight is freed with the layer it replaces, unless
    another module shares it (a tied input embedding, which still reads it)."""

    def __init__(self, linear: nn.Linear, product: Product) -> None:
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.product = product

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.product(x)


def run_dense(
    model: nn.Module, make: Callable[[torch.Tensor, torch.Tensor | None], Product], dtype: torch.dtype
) -> int:
    """Every dense product of the model in `dtype` through `make(weight, bias)`: its plain linear
    layers (the output layer included) are replaced, and packed layers multiply their kept dense
    weights so (its copy replaces the plain one). Returns how many layers changed."""
    count = 0
    plain = shared_children(model, lambda c: type(c) is nn.Linear and c.weight.dtype == dtype)
    for linear, places in plain:
        assert isinstance(linear, nn.Linear)
        replace_child(places, ProductLinear(linear, make(linear.weight, linear.bias)))
        count += 1
    for layer in dense_capable(model):
        if layer.weight is not None and layer.weight.dtype == dtype:
            layer.product = make(layer.weight, layer.bias)
            # The product's copy is what multiplies now: the plain one would only take memory.
            layer.weight.data = layer.weight.data.new_empty(0)
            count += 1
    return count

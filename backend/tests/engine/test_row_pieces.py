"""Dense bf16 products in fixed-shape pieces: a row's numbers do not depend on its batch, and the
loader's switch replaces exactly the dense bf16 products."""

from __future__ import annotations

import weakref

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from app.engine.quantization import Int4Linear, dense_weights
from app.engine.row_pieces import ROWS, Pieces, ProductLinear, run_dense

pytestmark = pytest.mark.skipif(
    not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="oneDNN has no bfloat16 products on this CPU"
)


@pytest.mark.parametrize(("inputs", "outputs"), [(576, 960), (1536, 576), (576, 49152)])
@pytest.mark.parametrize("biased", [False, True])
def test_a_row_is_the_same_alone_and_in_any_batch(inputs: int, outputs: int, biased: bool) -> None:
    torch.manual_seed(0)
    weight = (torch.randn(outputs, inputs) * 0.05).bfloat16()
    bias = torch.randn(outputs).bfloat16() if biased else None
    x = torch.randn(3 * ROWS + 5, inputs).bfloat16()
    pieces = Pieces(weight, bias)
    alone = torch.cat([pieces(row) for row in x.split(1)])
    for rows in (2, 7, ROWS - 1, ROWS, ROWS + 1, 2 * ROWS + 3, len(x)):
        assert torch.equal(pieces(x[:rows]), alone[:rows]), rows
    assert torch.equal(pieces(x.flip(0)).flip(0), alone)  # each row in another place, other neighbours
    # A chunk of a prompt: [batch, tokens, features] in, the same shape out.
    assert torch.equal(pieces(x[:40].view(2, 20, inputs)).view(40, -1), alone[:40])
    # Close to the plain product (the same kernel's numbers wherever a product has ROWS rows).
    assert torch.equal(pieces(x[:ROWS]), F.linear(x[:ROWS], weight, bias))


def test_run_dense_takes_every_dense_bf16_product() -> None:
    torch.manual_seed(0)
    plain = nn.Linear(64, 96, bias=False).bfloat16()
    packed = Int4Linear(nn.Linear(64, 64, bias=False).bfloat16(), keep_dense=True)
    float32 = nn.Linear(64, 8)  # not bf16: left alone
    model = nn.Sequential(packed, plain, float32)
    x = torch.randn(ROWS, 64).bfloat16()
    with dense_weights([packed]), torch.no_grad():  # no graph keeping the weights alive
        before = model[1](model[0](x))
    plain_weight = weakref.ref(plain.weight)
    del plain
    assert run_dense(model, Pieces, torch.bfloat16) == 2
    assert isinstance(model[1], ProductLinear)
    assert plain_weight() is None  # only the reordered copy stays in memory
    assert type(model[2]) is nn.Linear
    with dense_weights([packed]):
        assert torch.equal(model[1](model[0](x)), before)
    # The packed weight still decodes with its own kernel outside dense_weights.
    assert torch.equal(model[0](x), packed._matmul(x))


def test_a_tied_output_layer_leaves_the_input_embedding_its_weight() -> None:
    torch.manual_seed(0)
    embed = nn.Embedding(96, 64).bfloat16()
    output = nn.Linear(64, 96, bias=False).bfloat16()
    output.weight = embed.weight
    model = nn.Sequential(embed, output)
    ids = torch.arange(ROWS)
    before = model(ids)
    assert run_dense(model, Pieces, torch.bfloat16) == 1
    assert isinstance(model[1], ProductLinear) and model[0].weight.shape == (96, 64)
    assert torch.equal(model(ids), before)

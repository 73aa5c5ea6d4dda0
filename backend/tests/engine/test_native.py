"""The native kernels compute each row on its own: a row's numbers are the same alone, in any batch,
at any place in it, beside any padding and with any number of threads; and they are close to a
float64 reference. Built by `make setup` wherever they can run, which a test checks."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
from torch import nn

from app.engine import cpu, native
from app.engine.quantization import Int4Linear, NativeProduct, dense_weights
from app.engine.row_pieces import ProductLinear, run_dense

kernels = native.kernels()
pytestmark = pytest.mark.skipif(kernels is None, reason=native.status())


@pytest.fixture
def threads() -> Iterator[None]:
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_the_kernels_are_built_wherever_they_can_run() -> None:
    # Not skipped with the rest: `make setup` builds them on every CPU with AVX2, FMA and F16C.
    assert cpu.avx2() <= (kernels is not None), native.status()


@pytest.mark.parametrize("kind", ["fp16", "bf16", "fp32"])
@pytest.mark.parametrize(("inputs", "outputs"), [(576, 960), (1536, 576), (576, 49152), (40, 100)])
def test_a_linear_row_is_the_same_in_any_batch(kind: str, inputs: int, outputs: int, threads: None) -> None:
    torch.manual_seed(0)
    weight, bias = torch.randn(outputs, inputs) * 0.05, torch.randn(outputs)
    product = NativeProduct(weight, bias, kind)  # type: ignore[arg-type]
    x = torch.randn(150, inputs)
    whole = product(x)
    for rows in [*range(1, 20), 47, 48, 49, 97]:
        for start in (0, 7):
            assert torch.equal(product(x[start : start + rows]), whole[start : start + rows]), (rows, start)
    assert torch.equal(product(x.flip(0)).flip(0), whole)
    torch.set_num_threads(1)
    assert torch.equal(product(x), whole)
    # Every row is the float32 sum of the stored weights' exact values.
    w = weight.to({"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[kind]).double()
    exact = x.double() @ w.T + bias.double()
    assert (whole.double() - exact).abs().max() < 1e-4 * max(1.0, inputs / 100)


def test_a_linear_in_bf16_returns_bf16_and_keeps_no_plain_weight() -> None:
    torch.manual_seed(0)
    embed = nn.Embedding(96, 64).bfloat16()
    output = nn.Linear(64, 96, bias=False).bfloat16()
    output.weight = embed.weight  # tied, as the default model's output layer is
    packed = Int4Linear(nn.Linear(64, 64, bias=False).bfloat16(), keep_dense=True)
    model = nn.Sequential(embed, packed, output)
    ids = torch.arange(20)
    assert run_dense(model, lambda w, b: NativeProduct(w, b, "bf16"), torch.bfloat16) == 2
    assert isinstance(model[2], ProductLinear) and model[0].weight.shape == (96, 64)
    assert packed.weight is not None and packed.weight.numel() == 0  # the dense copy is the product's
    with dense_weights([packed]):
        out = model(ids)
    assert out.dtype == torch.bfloat16 and out.shape == (20, 96)
    with dense_weights([packed]):
        assert torch.equal(model(ids[:3]), out[:3])


def reference_attention(
    q: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, scale: float
) -> torch.Tensor:
    """float64 causal attention of one sequence: q [T, H, D], keys/values [KVH, T, D]."""
    heads, groups = q.shape[1], q.shape[1] // keys.shape[0]
    out = torch.empty(q.shape, dtype=torch.float64)
    causal = torch.ones(q.shape[0], keys.shape[1], dtype=torch.bool).triu(1)
    for h in range(heads):
        scores = (q[:, h].double() @ keys[h // groups].double().T * scale).masked_fill(causal, float("-inf"))
        out[:, h] = torch.softmax(scores, -1) @ values[h // groups].double()
    return out


def test_attention_rows_are_the_same_as_decode_steps_as_prompt_chunks_and_batched(threads: None) -> None:
    torch.manual_seed(0)
    kv_heads, heads, dim, pool = 3, 9, 64, 4096
    keys, values = torch.randn(kv_heads, pool, dim), torch.randn(kv_heads, pool, dim)
    order = torch.randperm(pool)
    length = 300
    slots = order[:length].unsqueeze(0)  # one sequence's keys, scattered over the pool
    q = torch.randn(1, length, heads, dim)
    positions = torch.arange(length).unsqueeze(0)
    scale = dim**-0.5
    whole = kernels.attention(q, keys, values, slots, positions + 1, scale)  # type: ignore[union-attr]
    expected = reference_attention(q[0], keys[:, slots[0]], values[:, slots[0]], scale)
    assert (whole[0].double() - expected).abs().max() < 1e-5
    for t in (0, 1, 17, 150, length - 1):
        # A decode step: one query.
        step = kernels.attention(q[:, t : t + 1], keys, values, slots, positions[:, t : t + 1] + 1, scale)  # type: ignore[union-attr]
        assert torch.equal(step[0, 0], whole[0, t])
        # Beside a longer sequence: its keys padded to 512 positions with other slots.
        padded = torch.cat([slots, order[2000:2212].unsqueeze(0)], 1)
        other = order[1000:1512].unsqueeze(0)
        both = kernels.attention(  # type: ignore[union-attr]
            torch.cat([q[:, t : t + 1], torch.randn(1, 1, heads, dim)]),
            keys,
            values,
            torch.cat([padded, other]),
            torch.tensor([[t + 1], [512]]),
            scale,
        )
        assert torch.equal(both[0, 0], whole[0, t])
    for start, rows in ((0, 7), (13, 50), (200, 100)):  # prompt chunks of other sizes
        chunk = kernels.attention(  # type: ignore[union-attr]
            q[:, start : start + rows], keys, values, slots, positions[:, start : start + rows] + 1, scale
        )
        assert torch.equal(chunk[0], whole[0, start : start + rows])
    torch.set_num_threads(1)
    assert torch.equal(kernels.attention(q, keys, values, slots, positions + 1, scale), whole)  # type: ignore[union-attr]


def test_a_query_that_sees_no_key_attends_to_nothing() -> None:
    keys = torch.randn(1, 32, 8)
    out = kernels.attention(
        torch.randn(1, 2, 2, 8), keys, keys, torch.arange(4).view(1, 4), torch.tensor([[0, 2]]), 1.0
    )  # type: ignore[union-attr]
    assert torch.equal(out[0, 0], torch.zeros(2, 8)) and out[0, 1].abs().sum() > 0

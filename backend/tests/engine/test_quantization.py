"""Weight-only quantisation: lossless on 4-bit weights, auto picks int4 only there and fp16 weights
on CPUs computing in float32, and a quantised model gives the same tokens alone or batched and on
the fast or the Transformers path."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from app.engine.cpu import native_bf16
from app.engine.loader import ModelLoadError, check_quantization, resolve_quantization
from app.engine.quantization import (
    INT4_GROUP,
    Fp16Linear,
    Int4Linear,
    Int8Linear,
    Part,
    dense_capable,
    dense_weights,
    fp16_supported,
    fuse_siblings,
    fused_layer,
    quantization_of,
    quantize_model,
)
from app.engine.sampling import SamplingParams

from .conftest import chat_ids, load_model, run_together, running_engine

DOCS = Path(__file__).resolve().parents[3] / "docs"
PRECISION_DOC = DOCS / "precision.md"
BENCHMARKS_DOC = DOCS / "benchmarks.md"


def tiny_llama(on_grid: bool) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=96, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    )
    model = LlamaForCausalLM(config).eval()
    if on_grid:
        for module in model.modules():
            if isinstance(module, torch.nn.Linear) and module is not model.lm_head:
                module.weight.data = grid_weight(*module.weight.shape)
    return model


def grid_weight(out_features: int, in_features: int) -> torch.Tensor:
    """Weights as a Q4_1 file stores them: codes 0..15 times a per-group step, plus a group minimum."""
    groups = in_features // INT4_GROUP
    codes = torch.randint(0, 16, (out_features, groups, INT4_GROUP)).float()
    codes[..., 0], codes[..., 1] = 0, 15  # each group spans its whole range, as a quantiser makes it
    # Steps that are powers of two and groups centred as a quantiser centres them: every value is
    # exact in bfloat16 too, as a converted Q4_1 file's are.
    step = 2.0 ** -torch.randint(6, 10, (out_features, groups, 1)).float()
    return ((codes - 8) * step).view(out_features, in_features)


def test_int4_packing_of_4bit_weights_is_lossless_and_int8_is_close() -> None:
    linear = torch.nn.Linear(128, 48, bias=True)
    linear.weight.data = grid_weight(48, 128)
    x = torch.randn(5, 3, 128)
    exact = linear(x)
    assert torch.allclose(Int4Linear(linear)(x), exact, atol=1e-5, rtol=1e-5)
    error = (Int8Linear(linear)(x) - exact).abs().max() / exact.abs().max()
    assert 0 < error < 0.02


@pytest.mark.parametrize("packed", [Int4Linear, Int8Linear])
def test_a_packed_layer_multiplies_by_its_kept_dense_weight_only_inside_dense_weights(packed: type) -> None:
    linear = torch.nn.Linear(128, 64, bias=True).to(torch.bfloat16)
    x = torch.randn(7, 128, dtype=torch.bfloat16)
    kept, dropped = packed(linear, keep_dense=True), packed(linear)
    assert dense_capable(torch.nn.Sequential(kept, dropped)) == [kept]
    outside = kept(x)
    assert torch.equal(outside, dropped(x))
    with dense_weights([kept]):
        assert torch.equal(kept(x), linear(x))  # bit for bit the unquantised layer
    assert torch.equal(kept(x), outside)  # and packed again afterwards


def test_auto_quantizes_only_bf16_models_whose_weights_sit_on_a_4bit_grid() -> None:
    assert resolve_quantization("auto", tiny_llama(on_grid=True).to(torch.bfloat16)) == "int4"
    assert resolve_quantization("auto", tiny_llama(on_grid=False).to(torch.bfloat16)) == "none"
    # float32 activations make the int4 kernel slower than no quantisation at all: fp16 weights.
    float32 = "fp16" if fp16_supported() else "none"
    assert resolve_quantization("auto", tiny_llama(on_grid=True)) == float32
    assert resolve_quantization("auto", tiny_llama(on_grid=False)) == float32
    assert resolve_quantization("int8", tiny_llama(on_grid=False)) == "int8"


def test_quantization_replaces_every_linear_but_the_output_layer() -> None:
    model = tiny_llama(on_grid=False)
    assert quantize_model(model, "int4") == 2 * 7
    assert quantization_of(model) == "int4"
    assert type(model.lm_head) is torch.nn.Linear
    ids = torch.tensor([[1, 2, 3]])
    assert model(input_ids=ids).logits.shape == (1, 3, 96)


@pytest.mark.skipif(not fp16_supported(), reason="FBGEMM (x86 PyTorch builds) is not in this build")
def test_fp16_replaces_every_linear_and_the_output_layer_and_stays_close() -> None:
    model = tiny_llama(on_grid=False)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.inference_mode():
        reference = model(input_ids=ids).logits
        assert quantize_model(model, "fp16") == 2 * 7 + 1
        assert quantization_of(model) == "fp16"
        assert type(model.lm_head) is Fp16Linear and model.lm_head.weight is None
        assert model.model.embed_tokens.weight.dtype == torch.float32  # the input lookup's table
        logits = model(input_ids=ids).logits
    assert logits.dtype == torch.float32
    # float16's 11-bit significand: far closer than bfloat16 (8 bits) would be.
    assert torch.allclose(logits, reference, atol=2e-3, rtol=0)
    assert not torch.equal(logits, reference)


@pytest.mark.parametrize(
    ("mode", "dtype"),
    [
        ("none", torch.bfloat16),
        ("int8", torch.bfloat16),
        ("int4", torch.bfloat16),
        pytest.param(
            "fp16", torch.float32, marks=pytest.mark.skipif(not fp16_supported(), reason="no FBGEMM")
        ),
    ],
)
def test_sibling_projections_join_into_one_product_bit_for_bit(mode: str, dtype: torch.dtype) -> None:
    model = tiny_llama(on_grid=True).to(dtype)
    attn, mlp = model.model.layers[0].self_attn, model.model.layers[0].mlp
    x = torch.randn(5, 64).to(dtype)
    with torch.inference_mode():
        # Each layer quantised alone (dense prefill weights kept where the mode keeps them).
        alone_model = tiny_llama(on_grid=True).to(dtype)
        quantize_model(alone_model, mode, keep_dense=True)  # type: ignore[arg-type]
        a_attn, a_mlp = alone_model.model.layers[0].self_attn, alone_model.model.layers[0].mlp
        singles = [a_attn.q_proj, a_attn.k_proj, a_attn.v_proj, a_mlp.gate_proj, a_mlp.up_proj]
        assert fuse_siblings(model) == 2 * 2  # q/k/v and gate/up in each of the two layers
        quantize_model(model, mode, keep_dense=True)  # type: ignore[arg-type]
        parts = [attn.q_proj, attn.k_proj, attn.v_proj]
        fused = fused_layer(parts)
        assert fused is not None and all(type(part) is Part for part in parts)
        assert fused_layer([mlp.gate_proj, mlp.up_proj]) is not None
        # Each joined layer was quantised once, not once per part: q/k/v, o, gate/up and down.
        layers = [m for m in model.modules() if type(m) is type(fused) and m is not model.lm_head]
        assert len(layers) == 2 * 4
        # Only the whole group in its order is the joined product.
        assert fused_layer(parts[::-1]) is None and fused_layer(parts[:2]) is None
        assert fused_layer([attn.o_proj]) is None
        # Each part, called alone as the Transformers path does, is its own layer's product, on
        # the packed weights and on the dense ones prefill uses.
        for dense in (False, True):
            with dense_weights(dense_capable(model) + dense_capable(alone_model) if dense else []):
                expected = [single(x) for single in singles]
                got = [part(x) for part in [*parts, mlp.gate_proj, mlp.up_proj]]
                joined = torch.cat([fused(x), fused_layer([mlp.gate_proj, mlp.up_proj])(x)], dim=-1)  # type: ignore[misc]
            for part, single in zip(got, expected, strict=True):
                assert torch.equal(part, single)
            assert torch.equal(joined, torch.cat(expected, dim=-1))


def test_auto_on_this_machine_is_the_measured_mode(model_and_tokenizer) -> None:
    model, _ = model_and_tokenizer
    mode = quantization_of(model)
    dtype = str(model.dtype).removeprefix("torch.")
    doc = PRECISION_DOC.read_text()
    native = re.search(r"Native bf16 on this CPU \(avx512_bf16 or AMX\): (yes|no)", doc)
    assert native, "docs/precision.md must say which kind of CPU it was measured on"
    if native_bf16():
        assert mode == "int4", "the default model comes from a Q4_1 GGUF: auto should pack it to int4"
    else:
        # AVX2-only CPUs (some cloud VMs) compute in float32, where int4 would be slower.
        assert (dtype, mode) == ("float32", "fp16" if fp16_supported() else "none")
    if (native.group(1) == "yes") != native_bf16():
        pytest.skip("docs/precision.md was measured on the other kind of CPU (native bfloat16 or not)")
    recorded = re.search(r"`QUANTIZATION=auto` for this model: \*\*(\w+)\*\*", doc)
    assert recorded and recorded.group(1) == mode
    assert re.search(rf"^\| {dtype} \+ {mode} \| [\d.]+ \| [\d.]+ \|", doc, re.M)
    # ... and the mode whose speed docs/benchmarks.md reports as the default, where it ran on
    # this kind of CPU too.
    bench_doc = BENCHMARKS_DOC.read_text()
    bench_native = re.search(r"avx512_bf16 (yes|no)", bench_doc)
    assert bench_native, "docs/benchmarks.md must say which kind of CPU it was measured on"
    if (bench_native.group(1) == "yes") == native_bf16():
        bench = re.search(r"our default precision: (\S+)", bench_doc)
        assert bench and bench.group(1) == f"{dtype}+{mode}"


def test_quantization_it_cannot_run_fast_is_refused_before_loading() -> None:
    with pytest.raises(ModelLoadError, match="QUANTIZATION=none"):
        check_quantization("int4", torch.device("cuda"), torch.bfloat16)
    with pytest.raises(ModelLoadError, match="needs DTYPE=bfloat16"):
        check_quantization("int8", torch.device("cpu"), torch.float32)
    with pytest.raises(ModelLoadError, match="needs DTYPE=float32"):
        check_quantization("fp16", torch.device("cpu"), torch.bfloat16)
    with pytest.raises(ModelLoadError, match="QUANTIZATION=none"):
        check_quantization("fp16", torch.device("cuda"), torch.float32)
    check_quantization("auto", torch.device("cuda"), torch.float16)
    check_quantization("int4", torch.device("cpu"), torch.bfloat16)


@pytest.mark.parametrize(
    ("quantization", "dtype"),
    [
        ("int8", "bfloat16"),
        pytest.param("fp16", "float32", marks=pytest.mark.skipif(not fp16_supported(), reason="no FBGEMM")),
    ],
)
def test_tokens_equal_alone_batched_and_on_the_transformers_path(quantization: str, dtype: str) -> None:
    model, tokenizer = load_model(quantization=quantization, dtype=dtype)
    assert quantization_of(model) == quantization
    prompts = ["What is the capital of France?", "用中文介绍一下你自己。", "List three colors."]
    jobs = [
        (chat_ids(tokenizer, text), SamplingParams(max_tokens=12, temperature=0.0 if i % 2 else 0.8, seed=i))
        for i, text in enumerate(prompts)
    ]
    with running_engine(model, tokenizer) as fast, running_engine(model, tokenizer, fast_path=False) as plain:
        assert fast.fast is not None
        batched = run_together(fast, jobs)
        alone = [run_together(fast, [job])[0] for job in jobs]
        transformers_path = run_together(plain, jobs)
    assert [r.token_ids for r in batched] == [r.token_ids for r in alone]
    assert [r.token_ids for r in batched] == [r.token_ids for r in transformers_path]


def test_prompts_are_prefilled_with_the_dense_weights_and_can_skip_them() -> None:
    """The first token comes from the prefill: with DENSE_PREFILL it is the unquantised model's,
    logprobs and all. DENSE_PREFILL=false keeps only the packed weights and stays batch-invariant."""
    dense_model, tokenizer = load_model(quantization="int4", dense_prefill="true", dtype="bfloat16")
    plain_model, _ = load_model(quantization="none", dtype="bfloat16")
    packed_model, _ = load_model(quantization="int4", dense_prefill=False, dtype="bfloat16")
    # 30 layers: q/k/v and gate/up joined (quantization.fuse_siblings), o and down.
    assert len(dense_capable(dense_model)) == 30 * 4 and dense_capable(packed_model) == []
    prompts = ["What is the capital of France?", "用中文介绍一下你自己。", "List three colors."]
    params = SamplingParams(max_tokens=8, temperature=0.0, logprobs=True, top_logprobs=5)
    jobs = [(chat_ids(tokenizer, text), params) for text in prompts]
    firsts = {}
    for name, model in (("dense", dense_model), ("plain", plain_model), ("packed", packed_model)):
        with running_engine(model, tokenizer) as engine:
            batched = run_together(engine, jobs)
            if name == "packed":
                alone = [run_together(engine, [job])[0] for job in jobs]
                assert [r.token_ids for r in batched] == [r.token_ids for r in alone]
        firsts[name] = [r.logprobs[0] for r in batched]
    assert firsts["dense"] == firsts["plain"]
    assert firsts["packed"] != firsts["plain"]  # the packed kernels round differently

"""GGUF files as the chat model: the default model's own Q4_1 file is the prepared folder, Q4_0 and
Q8_0 layers hold the file's values, and a file we cannot run fails before loading, in one line."""

from __future__ import annotations

import re
from pathlib import Path

import gguf
import numpy as np
import pytest
import torch
from gguf import GGMLQuantizationType as Q
from gguf.quants import quantize
from torch import nn
from transformers import AutoModelForCausalLM, GgufConfig
from transformers.convert_slow_tokenizer import bytes_to_unicode

from app.core.config import Settings
from app.engine import gguf as ours
from app.engine.config import ModelOptions
from app.engine.engine import Engine
from app.engine.loader import ModelLoadError, preflight
from app.engine.native import kernels
from app.engine.quantization import Int4Linear, Part, Q8Linear, q8_plan
from app.engine.sampling import SamplingParams
from app.prepare_models import CHAT_GGUF, CHAT_PACKAGE, package_dir

from .conftest import chat_ids, load_model, run_together, running_engine

HIDDEN, HEADS, KV_HEADS, FFN, LAYERS = 64, 4, 2, 128, 2
SPECIAL = ["<|im_start|>", "<|im_end|>"]
TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def permute(weight: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's row order for q and k (convert_hf_to_gguf), which loading undoes."""
    return weight.reshape(heads, 2, weight.shape[0] // heads // 2, -1).swapaxes(1, 2).reshape(weight.shape)


def on_bf16_grid(rng: np.random.Generator, rows: int, cols: int) -> np.ndarray:
    """Weights that Q4_0 holds exactly with a bfloat16-exact step: each group of 32 is
    (code - 8) * step with code 0 present, so quantising recovers that step and those codes."""
    steps = torch.from_numpy(rng.uniform(1e-3, 5e-2, (rows, cols // 32, 1))).bfloat16().float().numpy()
    codes = rng.integers(1, 16, (rows, cols // 32, 32))
    codes[..., 0] = 0
    return ((codes - 8) * steps).reshape(rows, cols).astype(np.float32)


def write_tiny(path: Path, architecture: str = "llama", odd: Q | None = None) -> Path:
    """A tiny random Llama as llama.cpp writes it: attention in Q8_0, the MLP in Q4_0 (on a
    bfloat16-exact grid), norms and the (tied) embedding in F32, a byte-level tokenizer and a
    chat template. `odd`: one more tensor of that type."""
    rng = np.random.default_rng(0)
    tokens = [*bytes_to_unicode().values(), "Ġt", "he", *SPECIAL]
    writer = gguf.GGUFWriter(path, arch=architecture)
    writer.add_block_count(LAYERS)
    writer.add_context_length(256)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(HIDDEN // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_rope_freq_base(10000.0)
    writer.add_tokenizer_model("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([1] * (len(tokens) - 2) + [3, 3])
    writer.add_token_merges(["Ġ t", "h e"])
    writer.add_bos_token_id(len(tokens) - 2)
    writer.add_eos_token_id(len(tokens) - 1)
    writer.add_chat_template(TEMPLATE)
    writer.add_tensor("token_embd.weight", rng.normal(0, 0.5, (len(tokens), HIDDEN)).astype(np.float32))
    writer.add_tensor("output_norm.weight", np.ones(HIDDEN, np.float32))
    for i in range(LAYERS):
        kv = HIDDEN // HEADS * KV_HEADS
        for name, rows in {"attn_q": HIDDEN, "attn_k": kv, "attn_v": kv}.items():
            weight = rng.normal(0, 0.1, (rows, HIDDEN)).astype(np.float32)
            heads = {"attn_q": HEADS, "attn_k": KV_HEADS}.get(name)
            weight = permute(weight, heads) if heads else weight
            writer.add_tensor(f"blk.{i}.{name}.weight", quantize(weight, Q.Q8_0), raw_dtype=Q.Q8_0)
        output = rng.normal(0, 0.1, (HIDDEN, HIDDEN)).astype(np.float32)
        writer.add_tensor(f"blk.{i}.attn_output.weight", quantize(output, Q.Q8_0), raw_dtype=Q.Q8_0)
        mlp = {"ffn_gate": (FFN, HIDDEN), "ffn_up": (FFN, HIDDEN), "ffn_down": (HIDDEN, FFN)}
        for name, (rows, cols) in mlp.items():
            weight = on_bf16_grid(rng, rows, cols)
            writer.add_tensor(f"blk.{i}.{name}.weight", quantize(weight, Q.Q4_0), raw_dtype=Q.Q4_0)
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(HIDDEN, np.float32))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(HIDDEN, np.float32))
    if odd is not None:
        block, size = gguf.GGML_QUANT_SIZES[odd]
        writer.add_tensor("odd.weight", np.zeros((HIDDEN, 256 // block * size), np.uint8), raw_dtype=odd)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny(tmp_path_factory.mktemp("gguf") / "tiny.Q8_0-Q4_0.gguf")


def test_a_load_parses_the_file_once(tiny: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Transformers reads it for the config, the tokenizer and the weights: one reader serves all
    # three (each parse decodes the whole vocabulary: seconds on a real model).
    made: list[object] = []
    real = ours._new_reader

    def counting(*args: object, **kwargs: object) -> object:
        made.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(ours, "_new_reader", counting)
    load_model(chat_model_path=tiny, dtype="bfloat16")
    assert len(made) == 1, made
    # Outside a load nothing is held open.
    assert gguf.GGUFReader(tiny) is not gguf.GGUFReader(tiny)


@pytest.mark.skipif(kernels() is None, reason="the native kernels (q8) are not built")
def test_q8_0_and_q4_0_layers_hold_exactly_the_files_values(tiny: Path) -> None:
    # bfloat16, as int4 needs; quantisation as the file says (QUANTIZATION=auto).
    model, tokenizer = load_model(chat_model_path=tiny, dtype="bfloat16")
    # Transformers' own reading of the file, dequantised to float32, layer by layer.
    reference = AutoModelForCausalLM.from_pretrained(
        tiny.parent, gguf_file=tiny.name, dtype=torch.float32, quantization_config=GgufConfig(dequantize=True)
    )
    assert tokenizer.apply_chat_template([{"role": "user", "content": "hi"}], tokenize=False).startswith(
        "<|im_start|>user\nhi"
    )
    kinds = set()
    for name, linear in reference.named_modules():
        if type(linear) is not nn.Linear or linear is reference.get_output_embeddings():
            continue
        layer, rows = model.get_submodule(name), slice(None)
        if isinstance(layer, Part):
            layer, rows = layer.fused, slice(layer.start, layer.end)
        expected = linear.weight.detach()
        if "mlp" in name:
            # The int4 kernel takes bfloat16 in and out: each output is a weight, rounded alike.
            assert isinstance(layer, Int4Linear), name
            got = layer._matmul(torch.eye(linear.in_features, dtype=torch.bfloat16)).T[rows]
            assert torch.equal(got, expected.bfloat16()), name
        else:
            assert isinstance(layer, Q8Linear), name
            got = layer._matmul(torch.eye(linear.in_features)).T[rows]
            assert torch.equal(got, expected), name
        kinds.add(type(layer))
    assert kinds == {Int4Linear, Q8Linear}
    # Joined siblings (q/k/v in Q8_0, gate/up in Q4_0) still run and answer.
    with running_engine(model, tokenizer) as engine:
        job = (chat_ids(tokenizer, "hi"), SamplingParams(max_tokens=4, temperature=0))
        (result,) = run_together(engine, [job])
    assert len(result.token_ids) == 4


@pytest.mark.skipif(kernels() is None, reason="the native kernels (q8) are not built")
def test_q8_rows_do_not_depend_on_their_batch() -> None:
    linear = nn.Linear(96, 40, bias=False)  # 40 outputs: a padded block of 16 columns too
    layer = Q8Linear(linear, q8_plan(linear.weight))
    x = torch.randn(13, 96, dtype=torch.bfloat16)
    whole = layer(x)
    assert all(torch.equal(layer(x[i : i + 1])[0], whole[i]) for i in range(len(x)))
    assert torch.equal(layer(x[3:9]), whole[3:9])


def test_default_models_q4_1_gguf_is_the_prepared_folder(
    model_and_tokenizer: tuple[torch.nn.Module, object], engine: Engine
) -> None:
    folder, folder_tokenizer = model_and_tokenizer
    model, tokenizer = load_model(chat_model_path=package_dir(CHAT_PACKAGE) / CHAT_GGUF)
    # Every weight and packed buffer, bit for bit, in this CPU class's defaults.
    ours, theirs = model.state_dict(), folder.state_dict()
    assert ours.keys() == theirs.keys()
    assert [k for k in ours if not torch.equal(ours[k], theirs[k])] == []
    assert tokenizer.chat_template == folder_tokenizer.chat_template  # type: ignore[attr-defined]
    prompts = ["What is the capital of France?", "Write a haiku about the sea.", "请写一首关于月亮的短诗。"]
    jobs = [(chat_ids(tokenizer, p), SamplingParams(max_tokens=24, temperature=0)) for p in prompts]
    assert [ids for ids, _ in jobs] == [chat_ids(folder_tokenizer, p) for p in prompts]
    with running_engine(model, tokenizer) as gguf_engine:
        from_file = run_together(gguf_engine, jobs)
    from_folder = run_together(engine, jobs)
    assert [r.token_ids for r in from_file] == [r.token_ids for r in from_folder]
    assert all(len(r.token_ids) > 5 for r in from_file)


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("clip", r"holds architecture 'clip', which is not a language model we can run: we run .*llama"),
        ("IQ2_XXS", r"has tensors quantised as IQ2_XXS \(1\), which we cannot run: use a file of .*Q4_K"),
        ("truncated", r"is truncated \(tensor .* ends at byte \d+ of \d+\): download it again"),
        ("garbage", r"is not a readable GGUF file \(ValueError: .*\): it is truncated or corrupt"),
        ("missing", r"does not exist: check the path"),
    ],
)
def test_a_file_we_cannot_run_fails_before_loading_in_one_line(
    tiny: Path, tmp_path: Path, case: str, message: str
) -> None:
    path = tmp_path / f"{case}.gguf"
    if case == "clip":
        write_tiny(path, architecture="clip")
    elif case == "IQ2_XXS":
        write_tiny(path, odd=Q.IQ2_XXS)
    elif case == "truncated":
        path.write_bytes(tiny.read_bytes()[:-1000])
    elif case == "garbage":
        path.write_bytes(b"not a model at all" * 100)
    pattern = f"^Chat model: GGUF file {re.escape(str(path))} {message}"
    with pytest.raises(ModelLoadError, match=pattern) as error:
        preflight(ModelOptions.of(Settings(chat_model_path=path)))
    assert "\n" not in str(error.value)

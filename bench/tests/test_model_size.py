"""The 1.7B model the bench makes, at a tiny size: the GGUF file llama-server reads and the folder
ours reads hold the same numbers (Transformers reads both), and the folder is on the int4 grid
that QUANTIZATION=auto packs without loss."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from bench.model_size import SHAPE, make

TINY = {
    **SHAPE,
    "hidden_size": 128,
    "intermediate_size": 256,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 4,
}


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make(tmp_path_factory.mktemp("model"), TINY, tokenizer=False)


def test_the_gguf_and_the_folder_hold_the_same_weights(made: tuple[Path, Path]) -> None:
    folder, gguf_file = made
    assert make(folder.parent, TINY, tokenizer=False) == made  # made once
    ours = load_file(folder / "model.safetensors")
    theirs = AutoModelForCausalLM.from_pretrained(
        gguf_file.parent, gguf_file=gguf_file.name, dtype=torch.float32
    )
    state = theirs.state_dict()
    assert set(ours) == set(state) - {"lm_head.weight"}
    for name, weight in ours.items():
        # The folder rounds Q4_1's dequantised values to bfloat16, as loading the default folder does.
        assert torch.equal(weight, state[name].to(torch.bfloat16)), name


def test_the_folder_is_packed_to_int4_without_loss(made: tuple[Path, Path]) -> None:
    from app.engine.quantization import on_int4_grid

    model = AutoModelForCausalLM.from_pretrained(made[0], dtype=torch.bfloat16)
    assert on_int4_grid(model)

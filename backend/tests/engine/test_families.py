"""Each model family through the engine (tiny random models of families.py, float32) gives the
greedy tokens of Transformers' own `generate`, alone and batched: on the fast decoder where it
runs the family, else on the Transformers forward, with a sliding window narrower than the
prompt applied (Mistral v0.1's on every layer, Gemma's on some)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import families
import pytest
import torch
from families import BY_NAME, Family

from app.engine.fast_decoder import runs_fast
from app.engine.sampling import SamplingParams

from .conftest import chat_ids, load_model, run_together, running_engine

# Mistral as from v0.2 on: no sliding window.
MISTRAL = dataclasses.replace(
    BY_NAME["tiny-mistral"], name="tiny-mistral-v0.3", extra={"sliding_window": None}
)
# Llama 1 and 2 are the default model's architecture (test_batching.py); Llama 3's RoPE scaling here.
FAST = [BY_NAME[name] for name in ("tiny-llama3", "tiny-qwen2", "tiny-qwen3", "tiny-phi3", "tiny-glm4")]
SLOW = ["tiny-mistral", "tiny-gemma2", "tiny-gemma3"]
TOKENS = 8
WINDOW = 4  # keys; the prompts are longer
PROMPTS = ["Hi", "What is the capital of France? Answer in one word, please."]


def check_generates(family: Family, folder: Path, fast: bool) -> None:
    model, tokenizer = families.random_model(family)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    served, tokenizer = load_model(chat_model_path=folder, dtype="float32", quantization="none")
    prompts = [chat_ids(tokenizer, text) for text in PROMPTS]
    expected = [
        model.generate(torch.tensor([ids]), max_new_tokens=TOKENS, min_new_tokens=TOKENS, do_sample=False)[
            0, len(ids) :
        ].tolist()
        for ids in prompts
    ]
    params = SamplingParams(max_tokens=TOKENS, temperature=0.0, ignore_eos=True)
    with running_engine(served, tokenizer, kv_cache_memory_gb=0.05) as engine:
        assert (engine.fast is not None) == fast == runs_fast(served), family.name
        together = run_together(engine, [(ids, params) for ids in prompts])
        alone = run_together(engine, [(prompts[0], params)])
    assert [r.token_ids for r in together] == expected
    assert alone[0].token_ids == expected[0]


@pytest.mark.parametrize("family", [*FAST, MISTRAL], ids=lambda f: f.name)
def test_the_fast_path_gives_the_tokens_of_transformers(family: Family, tmp_path: Path) -> None:
    check_generates(family, tmp_path, fast=True)


@pytest.mark.parametrize("name", SLOW)
def test_the_other_families_go_through_transformers(name: str, tmp_path: Path) -> None:
    family = BY_NAME[name]
    if "sliding_window" in family.extra:
        family = dataclasses.replace(family, extra={**family.extra, "sliding_window": WINDOW})
    check_generates(family, tmp_path, fast=False)

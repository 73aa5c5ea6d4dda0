"""The model-size axis (issue 26): a 1.7B-parameter model beside the default 135M one.

No download: the bench makes a Llama-shaped model with SmolLM2-1.7B's shape and random weights,
once, under .cache/bench. Its projections are drawn on Q4_1's grid (groups of 32 with a scale and
a minimum) and its embedding on Q8_0's, so the two systems run the very same numbers: llama-server
reads them as a Q4_1 GGUF file (the default model's tokenizer and template copied from its own
GGUF), ours as a Hugging Face folder of the dequantised values, which QUANTIZATION=auto packs to
int4 without loss on a bfloat16 CPU. Each system serves decode-bound 64-token answers to 1 and 8
streams, interleaved (ours, llama-server, llama-server, ours); the start-up time (loading the
weights), the idle memory and the rates are recorded.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np

from .llama_build import gguf_path
from .load import percentile, run_level
from .prompts import load_prompts
from .servers import MODEL_DIR, REPO, Server, Sizing, System, llama_server, ours

WORK = REPO / ".cache" / "bench" / "model-1.7b"
NAME = "random-1.7b"
# SmolLM2-1.7B-Instruct's config.json.
SHAPE = {
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "vocab_size": 49152,
    "max_position_embeddings": 8192,
    "rope_theta": 130000.0,
    "rms_norm_eps": 1e-5,
    "tie_word_embeddings": True,
}
LEVELS = (1, 8)


def _permute(rows: np.ndarray, heads: int) -> np.ndarray:
    """llama.cpp's order of the q/k rows (convert_hf_to_gguf's permute), on whole rows, so it
    applies to quantised rows as well."""
    return (
        rows.reshape(heads, 2, rows.shape[0] // heads // 2, *rows.shape[1:])
        .swapaxes(1, 2)
        .reshape(rows.shape)
    )


def on_grid(rng: np.random.Generator, shape: tuple[int, int], q8: bool) -> np.ndarray:
    """Random weights that Q4_1 (or Q8_0) stores exactly and bfloat16 holds exactly: each group of
    32 takes integer multiples of a power-of-two step, its extremes at the grid's ends."""
    groups = shape[0] * shape[1] // 32
    if q8:  # Q8_0: codes -127..127 times 2^-12 (about 0.02 apart at the ends), one code at +-127
        codes = rng.integers(-127, 128, (groups, 32))
        codes[:, 0] = 127 * rng.choice([-1, 1], groups)
        return (codes * 2.0**-12).astype(np.float32).reshape(shape)
    # Q4_1: codes 0..15 from the group's minimum (-12..-3 steps of 2^-8), both ends present.
    codes = rng.integers(0, 16, (groups, 32))
    codes[:, 0], codes[:, 1] = 0, 15
    low = rng.integers(-12, -2, (groups, 1))
    return ((codes + low) * 2.0**-8).astype(np.float32).reshape(shape)


def make(work: Path = WORK, shape: dict[str, Any] = SHAPE, tokenizer: bool = True) -> tuple[Path, Path]:
    """The model as (folder, GGUF file); made once, a few minutes for SHAPE. Without `tokenizer`
    the GGUF file holds only the weights (the tests', which read nothing else)."""
    import gguf
    import torch
    from safetensors.torch import save_file
    from transformers import LlamaConfig

    folder, gguf_file = work / NAME, work / f"{NAME}.Q4_1.gguf"
    if (folder / ".made").exists() and gguf_file.exists():
        return folder, gguf_file
    shutil.rmtree(work, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    q4_1, q8_0 = gguf.GGMLQuantizationType.Q4_1, gguf.GGMLQuantizationType.Q8_0
    hidden, inter, heads = shape["hidden_size"], shape["intermediate_size"], shape["num_attention_heads"]

    writer = gguf.GGUFWriter(gguf_file, "llama")
    for key, field in gguf.GGUFReader(gguf_path()).fields.items() if tokenizer else ():
        # The tokenizer and chat template of the default model (the 1.7B model shares them).
        if key.startswith("tokenizer."):
            sub = field.types[1] if len(field.types) > 1 else None
            writer.add_key_value(key, field.contents(), field.types[0], sub_type=sub)
    writer.add_name(NAME)
    writer.add_block_count(shape["num_hidden_layers"])
    writer.add_context_length(shape["max_position_embeddings"])
    writer.add_embedding_length(hidden)
    writer.add_feed_forward_length(inter)
    writer.add_head_count(heads)
    writer.add_head_count_kv(shape["num_key_value_heads"])
    writer.add_rope_freq_base(shape["rope_theta"])
    writer.add_layer_norm_rms_eps(shape["rms_norm_eps"])
    writer.add_vocab_size(shape["vocab_size"])
    writer.add_rope_dimension_count(hidden // heads)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_1)

    tensors: dict[str, torch.Tensor] = {}

    def quantised(hf_name: str, gguf_name: str, shape: tuple[int, int], kind: Any, permute: bool) -> None:
        weights = on_grid(rng, shape, kind == q8_0)
        blocks = gguf.quants.quantize(weights, kind)
        tensors[hf_name] = torch.from_numpy(gguf.quants.dequantize(blocks, kind)).to(torch.bfloat16)
        writer.add_tensor(gguf_name, _permute(blocks, heads) if permute else blocks, raw_dtype=kind)

    def norm(hf_name: str, gguf_name: str) -> None:
        tensors[hf_name] = torch.ones(hidden, dtype=torch.bfloat16)
        writer.add_tensor(gguf_name, np.ones(hidden, dtype=np.float32))

    quantised("model.embed_tokens.weight", "token_embd.weight", (shape["vocab_size"], hidden), q8_0, False)
    for i in range(shape["num_hidden_layers"]):
        hf, gg = f"model.layers.{i}.", f"blk.{i}."
        norm(hf + "input_layernorm.weight", gg + "attn_norm.weight")
        for name, gguf_name in (("q", "attn_q"), ("k", "attn_k"), ("v", "attn_v"), ("o", "attn_output")):
            quantised(
                f"{hf}self_attn.{name}_proj.weight",
                f"{gg}{gguf_name}.weight",
                (hidden, hidden),
                q4_1,
                name in ("q", "k"),
            )
        norm(hf + "post_attention_layernorm.weight", gg + "ffn_norm.weight")
        quantised(hf + "mlp.gate_proj.weight", gg + "ffn_gate.weight", (inter, hidden), q4_1, False)
        quantised(hf + "mlp.up_proj.weight", gg + "ffn_up.weight", (inter, hidden), q4_1, False)
        quantised(hf + "mlp.down_proj.weight", gg + "ffn_down.weight", (hidden, inter), q4_1, False)
    norm("model.norm.weight", "output_norm.weight")

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()

    default = json.loads((MODEL_DIR / "config.json").read_text())
    tokens = {k: default[k] for k in ("bos_token_id", "eos_token_id", "pad_token_id") if k in default}
    LlamaConfig(**shape, **tokens, torch_dtype="bfloat16").save_pretrained(folder)
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    for f in MODEL_DIR.iterdir():
        if f.name.startswith(("tokenizer", "chat_template", "generation_config", "special_tokens")):
            shutil.copy(f, folder / f.name)
    (folder / ".made").write_text("random weights on Q4_1's grid, made by bench/model_size.py\n")
    return folder, gguf_file


def systems(folder: Path, gguf_file: Path, binary: Path | None, threads: int) -> list[System]:
    base = ours("ours-1.7b", "ours, default settings", None)

    def command(port: int, sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        argv, env = base.command(port, sizing)
        return argv, {
            **env,
            "CHAT_MODEL_PATH": str(folder),
            "CHAT_MODEL_NAME": NAME,
            "EMBEDDING_MODEL_PATH": "",
        }

    found = [System(base.key, base.label, "ours", command)]
    if binary is not None:
        llama = llama_server(binary, gguf_file, threads, unified=False)
        found.append(
            System("llama-slots-1.7b", "llama-server (Q4_1 GGUF), KV per slot", "llama.cpp", llama.command)
        )
    return found


def measure_one(system: System, tag: str, max_tokens: int, cap_s: float) -> dict[str, Any]:
    """One instance: its start-up (the load), idle memory, then each level."""
    with Server(system, Sizing(max(LEVELS)), tag) as server:
        load_s = server.wait_ready(timeout_s=600)
        body = server.body_factory()
        asyncio.run(run_level(server.base_url, body, load_prompts(f"{tag}-warm", 1), 4, cap_s))
        out: dict[str, Any] = {"load_s": load_s, "idle_rss_mb": server.rss_mb(), "levels": []}
        for c in LEVELS:
            level = asyncio.run(
                run_level(
                    server.base_url, body, load_prompts(f"{tag}-c{c}", c), max_tokens, cap_s, server.rss_mb
                )
            )
            summary = level.summary()
            out["levels"].append(
                {
                    "streams": c,
                    "tokens_per_s": level.tokens_per_s,
                    "itl_p50_s": percentile(summary["itl_s"], 50),  # type: ignore[arg-type]
                    "peak_rss_mb": level.peak_rss_mb,
                    "errors": level.errors,
                }
            )
            print(
                f"    1.7B {system.key}, {c} streams: {level.tokens_per_s:.1f} tok/s"
                + (f", errors: {level.errors[0]}" if level.errors else ""),
                flush=True,
            )
    return out


def measure(binary: Path | None, threads: int, max_tokens: int, cap_s: float) -> dict[str, Any]:
    print("Making the 1.7B random-weight model (once)", flush=True)
    folder, gguf_file = make()
    found = systems(folder, gguf_file, binary, threads)
    runs: dict[str, list[dict[str, Any]]] = {s.key: [] for s in found}
    labels = {s.key: s.label for s in found}
    for rep, order in enumerate((found, list(reversed(found))), start=1):
        for system in order:
            print(f"[1.7B, rep {rep}] {system.label}", flush=True)
            try:
                runs[system.key].append(measure_one(system, f"1.7b-r{rep}", max_tokens, cap_s))
            except RuntimeError as exc:
                print(f"    failed: {exc}", flush=True)
    return {
        "name": NAME,
        "shape": SHAPE,
        "weights_bytes": (folder / "model.safetensors").stat().st_size,
        "gguf_bytes": gguf_file.stat().st_size,
        "max_tokens": max_tokens,
        "labels": labels,
        "runs": runs,
    }

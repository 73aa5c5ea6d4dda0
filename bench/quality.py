"""Does a lower precision keep the default model's quality? Writes docs/precision.md.

Measures, for each precision mode (DTYPE and QUANTIZATION) against float32: perplexity on fixed
held-out texts (English and Chinese) and greedy-token agreement over a fixed set of prompts. Each
model is loaded as the server loads it and computes as the server does: perplexity is a prefill
(with the dense weights where a quantised model keeps them), and answers come from our engine.
Run: `python -m bench.quality`.
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import threading
from dataclasses import replace
from pathlib import Path

import torch
from app.core.config import Settings
from app.engine.config import EngineConfig, ModelOptions
from app.engine.cpu import native_bf16
from app.engine.engine import Engine, RequestOutput
from app.engine.loader import load_chat_model
from app.engine.quantization import dense_capable, dense_weights
from app.engine.sampling import SamplingParams

from .servers import default_mode, split_mode

HELD_OUT = {
    "English": (
        "The lighthouse keeper climbed the spiral stairs every evening at dusk. He trimmed the wick, "
        "polished the great lens, and wrote the weather in a leather notebook: wind from the south-west, "
        "light rain, a fishing boat returning late. Over forty years the notebook grew into a shelf of "
        "notebooks, and the shelf into a small library that scientists later used to study how storms "
        "along the coast had changed. Nobody had asked him to keep such careful records; he simply "
        "believed that a thing worth watching was worth writing down, and that someone, some day, would "
        "want to know what the sea had been like on an ordinary Tuesday in March."
    ),
    "Chinese": (
        "清晨的菜市场总是最热闹的地方。卖菜的阿姨把新鲜的青菜整齐地摆在竹筐里，鱼摊上的师傅一边吆喝一边称重，"
        "早点铺子飘出豆浆和油条的香味。老人们提着布袋慢慢挑选，年轻人则匆匆买好东西赶去上班。"
        "虽然现在可以在手机上下单，很多人还是喜欢来这里，因为在这里能听到熟悉的乡音，能和摊主聊上几句家常，"
        "也能感受到一座城市最真实的生活气息。"
    ),
}

PROMPTS = [
    "What is the capital of France?",
    "Write a haiku about the sea.",
    "Explain what a CPU does in one sentence.",
    "Give me three tips for staying focused while studying.",
    "What is the difference between weather and climate?",
    "Write a short thank-you note to a teacher.",
    "How do plants make their food?",
    "Suggest a name for a friendly robot.",
    "用中文介绍一下你自己。",
    "请写一首关于月亮的短诗。",
    "北京有哪些著名的景点？",
    "如何学好一门外语？",
    "请解释一下什么是人工智能。",
    "给我讲一个简短的童话故事。",
    "为什么天空是蓝色的？",
    "推荐三本适合初学者的书。",
]
NEW_TOKENS = 32
# Where docs/precision.md's section written by bench/gguf_quality.py begins: kept when this rewrites the rest.
GGUF_SECTION = "<!-- gguf_quality -->"
# (DTYPE, QUANTIZATION, DENSE_PREFILL): fp32 first, as the reference.
MODES = [
    ("float32", "none", True),
    ("float32", "fp16", True),
    ("bfloat16", "none", True),
    ("bfloat16", "int8", True),
    ("bfloat16", "int8", False),
    ("bfloat16", "int4", True),
    ("bfloat16", "int4", False),
]


def perplexity(model: torch.nn.Module, ids: list[int]) -> float:
    with torch.inference_mode(), dense_weights(dense_capable(model)):
        tensor = torch.tensor([ids])
        loss = model(input_ids=tensor, labels=tensor).loss
    return math.exp(loss.float().item())


def greedy(engine: Engine, tokenizer: object, prompt: str) -> list[int]:
    ids = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        [{"role": "user", "content": prompt}], add_generation_prompt=True, return_dict=True
    )["input_ids"]
    tokens: list[int] = []
    done = threading.Event()

    def sink(out: RequestOutput) -> None:
        tokens.extend(out.token_ids)
        if out.finish_reason is not None:
            done.set()

    engine.submit(ids, SamplingParams(max_tokens=NEW_TOKENS, temperature=0.0), sink)
    done.wait()
    return tokens


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/precision.md"))
    args = parser.parse_args()
    settings = Settings()
    results: dict[str, dict[str, object]] = {}
    reference: list[list[int]] = []
    for dtype, quantization, dense_prefill in MODES:
        model, tokenizer = load_chat_model(
            ModelOptions.of(Settings(dtype=dtype, quantization=quantization, dense_prefill=dense_prefill))
        )
        torch.set_num_threads(os.cpu_count() or 1)  # loading leaves this thread single-threaded
        ppl = {name: perplexity(model, tokenizer.encode(text)) for name, text in HELD_OUT.items()}
        # The server's engine, one sequence at a time: every prompt is decoded alone.
        config = replace(
            EngineConfig.of(settings), max_num_seqs=1, max_waiting=len(PROMPTS), queue_timeout_s=600
        )
        engine = Engine(model, tokenizer, config)
        engine.start()
        outputs = [greedy(engine, tokenizer, p) for p in PROMPTS]
        engine.shutdown()
        if not reference:
            reference = outputs
        agree = [
            sum(a == b for a, b in zip(out, ref, strict=False)) / max(len(ref), 1)
            for out, ref in zip(outputs, reference, strict=True)
        ]
        prefix = [
            next(
                (i for i, (a, b) in enumerate(zip(out, ref, strict=False)) if a != b), min(len(out), len(ref))
            )
            for out, ref in zip(outputs, reference, strict=True)
        ]
        name = dtype if quantization == "none" else f"{dtype} + {quantization}"
        name += "" if dense_prefill or quantization == "none" else " (DENSE_PREFILL=false)"
        results[name] = {
            "ppl": ppl,
            "identical": sum(o == r for o, r in zip(outputs, reference, strict=True)),
            "agreement": sum(agree) / len(agree),
            "prefix": sum(prefix) / len(prefix),
        }
        print(results, flush=True)

    auto, auto_quantization = split_mode(default_mode())
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    lines = [
        "# Precision and quality",
        "",
        f"Measured {datetime.date.today()} on {cpu} ({os.cpu_count()} threads), "
        f"torch {torch.__version__}, model `{settings.chat_model_name}`, with `python -m bench.quality`.",
        "",
        f"Native bf16 on this CPU (avx512_bf16 or AMX): {'yes' if native_bf16() else 'no'}. "
        f"`DTYPE=auto` on this machine: **{auto}**. "
        f"`QUANTIZATION=auto` for this model: **{auto_quantization}**.",
        "",
        "| precision (DTYPE + QUANTIZATION) | perplexity, English | perplexity, Chinese "
        "| greedy answers identical to fp32 "
        f"({len(PROMPTS)} prompts × {NEW_TOKENS} tokens) | token agreement "
        "| mean tokens before first difference |",
        "|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        ppl = r["ppl"]
        assert isinstance(ppl, dict)
        lines.append(
            f"| {name} | {ppl['English']:.3f} | {ppl['Chinese']:.3f} | {r['identical']}/{len(PROMPTS)} | "
            f"{r['agreement']:.1%} | {r['prefix']:.1f} |"
        )
    lines += [
        "",
        "Perplexity is over fixed held-out paragraphs (in `bench/quality.py`). Greedy answers are half "
        "English, half Chinese prompts. A greedy answer that differs usually differs late and stays fluent: "
        "once one token differs the rest of the continuation follows a different path, so agreement after "
        "the first difference says little.",
        "",
        "Quantisation is weight-only. int8 and int4 pack the linear layers of every decoder layer; "
        "activations and the output layer keep the model's dtype. With `DENSE_PREFILL` (the default with "
        "AMX; the rows without `DENSE_PREFILL=false` here set it) such "
        "a model keeps its own weights too and prefills prompts with them, so its perplexity, which is a "
        "prefill, is the unquantised model's, and only the generated tokens read the packed weights. int8 "
        "has one scale per output channel; int4 has a scale and an offset per group of 32 inputs, the "
        "layout of llama.cpp's Q4_1. The default model comes from a "
        "Q4_1 GGUF, so its weights already sit on that 4-bit grid: int4 packs them without loss (the "
        "small differences come from rounding the scales to the model's dtype), while int8's per-channel "
        "grid does not contain them and rounds every weight again. fp16 stores every linear layer and the "
        "output layer in float16 and multiplies them with float32 activations (the native kernel, "
        "docs/cpus.md): it prefills with "
        "them too, and its 11-bit significand rounds far less than bfloat16's 8 bits. "
        "`QUANTIZATION=auto` picks int4 only "
        "for such weights and only in bfloat16 (with float32 activations those kernels are slower than no "
        "quantisation), fp16 on an x86 CPU computing in float32; for a full-precision model in bfloat16 it "
        "picks none, and int4 or int8 is the user's trade of quality for speed.",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    existing = args.out.read_text() if args.out.exists() else ""
    kept = existing[existing.index(GGUF_SECTION) :] if GGUF_SECTION in existing else ""
    args.out.write_text("\n".join(lines) + ("\n" + kept if kept else ""))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

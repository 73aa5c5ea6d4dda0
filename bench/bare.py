"""Bare `model.generate` in-process, batch 1: the speed our server's single stream must match.

Run as `python -m bench.bare --mode bfloat16+int4` (a fresh process, as the server is). It uses the
same chat prompt, greedy decoding and a fixed answer length as the load sweep, and the same
thread count our server sets (all cores). Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import psutil
import torch
from app.engine.quantization import quantize_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from .prompts import chat_prompt
from .servers import MODEL_DIR, split_mode


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="float32", help="DTYPE or DTYPE+QUANTIZATION, e.g. bfloat16+int4")
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    tokenizer = AutoTokenizer.from_pretrained(MODEL_DIR, local_files_only=True)
    dtype, quantization = split_mode(args.mode)
    model = AutoModelForCausalLM.from_pretrained(
        MODEL_DIR, local_files_only=True, dtype=getattr(torch, dtype), attn_implementation="sdpa"
    ).eval()
    quantize_model(model, quantization)  # type: ignore[arg-type]
    times = []
    for i in range(args.repeats + 1):  # the first run warms up and is not counted
        ids = tokenizer.apply_chat_template(
            chat_prompt("bare", i), add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(
                **ids,
                do_sample=False,
                max_new_tokens=args.max_tokens,
                min_new_tokens=args.max_tokens,
                pad_token_id=tokenizer.eos_token_id,
            )
        elapsed = time.perf_counter() - start
        assert out.shape[1] - ids["input_ids"].shape[1] == args.max_tokens
        if i:
            times.append(elapsed)
    rss_mb = psutil.Process().memory_info().rss / 2**20
    median = sorted(times)[len(times) // 2]
    print(
        json.dumps(
            {
                "mode": args.mode,
                "max_tokens": args.max_tokens,
                "times_s": times,
                "tokens_per_s": args.max_tokens / median,
                "tokens_per_s_best": args.max_tokens / min(times),
                "rss_mb": rss_mb,
            }
        )
    )


if __name__ == "__main__":
    main()

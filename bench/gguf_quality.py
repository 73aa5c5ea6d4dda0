"""GGUF files loaded directly: how close our engine comes to llama.cpp's own output on each file.

For each file (the default model's own Q4_1 GGUF, and Q4_0, Q8_0, Q4_K_M, Q5_K_M and Q6_K files
that `llama-quantize` makes from its dequantised F32 copy), llama-server answers every prompt of
bench/quality.py greedily (32 tokens, the chat template applied by our tokenizer, the same token
ids sent to both) and reports its top-20 probabilities at each answer token. Our model, loaded
from the same file as the server loads it, reads llama.cpp's answer (teacher forcing) and gives
its own distribution at each of those positions. Reported per file: how often our most likely
token is llama.cpp's greedy token, and the KL divergence KL(llama.cpp || ours) per token over
llama.cpp's top 20 plus one bucket for the rest of the vocabulary (a lower bound of the full KL;
at the tokens llama-server reports probabilities for: none for one ending inside a UTF-8
character).
The K-quant files are also loaded dequantised (QUANTIZATION=none, bfloat16) to separate the cost
of requantising from that of computing in bfloat16. Writes its section of docs/precision.md.
Run: `python -m bench.gguf_quality` (needs llama-server and llama-quantize: `python -m
bench.llama_build`, then `cmake --build .cache/llama.cpp/build --target llama-quantize`).
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import tempfile
import time
from pathlib import Path

import gguf
import httpx
import numpy as np
import torch
from app.core.config import Settings
from app.engine.config import ModelOptions
from app.engine.loader import load_chat_model
from gguf.quants import dequantize

from .llama_build import BINARY, BUILD, gguf_path
from .quality import GGUF_SECTION, NEW_TOKENS, PROMPTS
from .servers import free_port

QUANTIZE = BUILD / "bin" / "llama-quantize"
TOP = 20
KINDS = ["Q4_0", "Q8_0", "Q4_K_M", "Q5_K_M", "Q6_K"]


def f32_copy(source: Path, dest: Path) -> None:
    """The file with every tensor dequantised to F32, metadata unchanged but the file type."""
    reader = gguf.GGUFReader(source)
    writer = gguf.GGUFWriter(dest, arch=str(reader.fields["general.architecture"].contents()))
    for name, field in reader.fields.items():
        if name.startswith("GGUF.") or name == "general.architecture":
            continue
        if name == "general.file_type":
            writer.add_uint32(name, int(gguf.LlamaFileType.ALL_F32))
        elif field.types[0] == gguf.GGUFValueType.ARRAY:
            writer.add_array(name, field.contents())
        else:
            writer.add_key_value(name, field.contents(), field.types[0])
    for tensor in reader.tensors:
        values = dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        writer.add_tensor(tensor.name, values)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def make_files(folder: Path) -> list[Path]:
    original = gguf_path()
    f32 = folder / "F32.gguf"
    f32_copy(original, f32)
    files = [original]
    for kind in KINDS:
        out = folder / f"{kind}.gguf"
        subprocess.run([str(QUANTIZE), str(f32), str(out), kind], check=True, capture_output=True)
        files.append(out)
    return files


Answer = list[tuple[int, dict[int, float] | None]]


def llama_answers(path: Path, prompts: list[list[int]]) -> list[Answer]:
    """llama-server's greedy answer to each prompt: per token, its id and top-TOP probabilities
    (None where llama-server reports none)."""
    port = free_port()
    threads = str(os.cpu_count() or 1)
    argv = [str(BINARY), "-m", str(path), "--port", str(port), "-c", "2048", "-np", "1"]
    proc = subprocess.Popen(
        [*argv, "-t", threads, "-tb", threads, "--no-webui"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 240
        while not _ready(url):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"llama-server did not start on {path}")
            time.sleep(0.5)
        answers = []
        for ids in prompts:
            body = {
                "prompt": ids,
                "n_predict": NEW_TOKENS,
                "temperature": 0,
                "top_k": 1,
                "n_probs": TOP,
                "post_sampling_probs": False,
                "cache_prompt": False,
                "return_tokens": True,
            }
            reply = httpx.post(f"{url}/completion", json=body, timeout=600).json()
            # A token that ends inside a UTF-8 character gets no entry of its own (its
            # probabilities are not reported), so the entries are matched to the tokens.
            entries = iter(reply["completion_probabilities"])
            entry = next(entries, None)
            steps: Answer = []
            for token in reply["tokens"]:
                if entry is not None and entry["id"] == token:
                    steps.append((token, {t["id"]: math.exp(t["logprob"]) for t in entry["top_logprobs"]}))
                    entry = next(entries, None)
                else:
                    steps.append((token, None))
            answers.append(steps)
        return answers
    finally:
        proc.terminate()
        proc.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def compare(
    path: Path, quantization: str, prompts: list[list[int]], answers: list[Answer]
) -> tuple[float, float, float]:
    """(greedy agreement, mean KL per token, largest KL) of our model on llama.cpp's answers."""
    model, _ = load_chat_model(ModelOptions.of(Settings(chat_model_path=path, quantization=quantization)))
    torch.set_num_threads(os.cpu_count() or 1)  # loading leaves this thread single-threaded
    agree, kls = [], []
    for ids, answer in zip(prompts, answers, strict=True):
        tokens = [token for token, _ in answer]
        with torch.inference_mode():
            logits = model(input_ids=torch.tensor([ids + tokens])).logits[0].float()
        # Position len(ids) - 1 + i predicts answer token i.
        logp = torch.log_softmax(logits[len(ids) - 1 : len(ids) - 1 + len(tokens)], dim=-1)
        for row, (token, top) in zip(logp, answer, strict=True):
            agree.append(int(row.argmax()) == token)
            if top is None:
                continue
            p = torch.tensor(list(top.values()), dtype=torch.float64)
            q = row[list(top)].double().exp()
            p_rest, q_rest = max(1 - float(p.sum()), 1e-12), max(1 - float(q.sum()), 1e-12)
            kl = float((p * (p.log() - q.log())).sum()) + p_rest * math.log(p_rest / q_rest)
            kls.append(kl)
    del model
    return sum(agree) / len(agree), sum(kls) / len(kls), max(kls)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("docs/precision.md"))
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        files = make_files(Path(folder))
        tokenizer = load_chat_model(ModelOptions.of(Settings()))[1]
        prompts = [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], add_generation_prompt=True, return_dict=True
            )["input_ids"]
            for p in PROMPTS
        ]
        for path in files:
            kinds = gguf.GGUFReader(path).tensors
            mix = sorted({t.tensor_type.name for t in kinds if t.tensor_type.name != "F32"})
            answers = llama_answers(path, prompts)
            name = path.name.split(".")[-2] if path.name.count(".") > 1 else path.stem
            modes = ["auto", "none"] if "K" in name else ["auto"]
            for quantization in modes:
                result = compare(path, quantization, prompts, answers)
                rows.append((name, "+".join(mix), quantization, *result))
                print(rows[-1], flush=True)
    write(args.out, rows)


def write(out: Path, rows: list[tuple[str, str, str, float, float, float]]) -> None:
    lines = [
        GGUF_SECTION,
        "",
        "## GGUF files loaded directly, against llama.cpp",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} with `python -m bench.gguf_quality` "
        f"({len(PROMPTS)} prompts of the table above × {NEW_TOKENS} greedy tokens of llama-server's, "
        "teacher-forced through ours; this CPU's defaults, bfloat16).",
        "",
        "| file | tensor types (besides F32) | QUANTIZATION | our top token = llama.cpp's greedy token "
        "| KL(llama.cpp ‖ ours) per token, mean | worst token |",
        "|---|---|---|---|---|---|",
    ]
    for name, mix, quantization, agree, kl, worst in rows:
        lines.append(f"| {name} | {mix} | {quantization} | {agree:.1%} | {kl:.4f} | {worst:.3f} |")
    lines += [
        "",
        "The Q4_0, Q4_1 and Q8_0 files run as they are: int4 from the file's own codes (the int4 kernel "
        "keeps each group's step and offset in bfloat16) and Q8_0 on the native q8 kernel, every weight "
        "the file's. The K-quant files (built by `llama-quantize` from the default model's dequantised "
        "weights; rows of 576 inputs do not split into 256-wide K blocks, so most of their tensors are "
        "Q5_0, Q5_1, Q8_0 fallbacks) are dequantised and requantised: 4 bits or fewer to int4, 5 and 6 "
        "bits to q8. KL is over llama.cpp's top 20 tokens plus one bucket for the rest, so it is a lower "
        "bound, at the answer tokens llama-server reports probabilities for (none for a token that ends "
        "inside a UTF-8 character); even the same weights differ by the two programs' arithmetic "
        "(llama.cpp quantises activations to 8 bits in its integer kernels, we compute in bfloat16), "
        "which the Q4_1 and Q8_0 rows show.",
        "",
    ]
    text = out.read_text() if out.exists() else ""
    kept = text.split(GGUF_SECTION)[0].rstrip("\n")
    out.write_text(kept + "\n\n" + "\n".join(lines))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

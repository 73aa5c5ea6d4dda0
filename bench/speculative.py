"""Issue 28 item 2: what speculative decoding gives one stream where it pays and where it does
not, and that a batch of 16 is not slower.

Two instances of our server on the default model, SPECULATIVE=off and SPECULATIVE=<the mode
measured> (auto unless asked), both up; each load's requests go to them interleaved A/B/B/A, so
a drift in the machine's load falls on both sides alike. Requests are greedy, so both sides
decode exactly the same tokens (sampling.verify) and differ only in time. Loads at one stream:

- code: a source file of this repository pasted and rewritten with one change (a rename);
- quote: a pasted document and a question answered by quoting it;
- chat: the sweep's free chat prompts (stories), which rarely repeat anything.

A stream's speed is its decode rate, (tokens - 1) / (last token - first token): prefilling the
prompt is the same work on both sides, and a warm-up request puts every prompt in the prefix
cache of both. Then the sweep's free chat at 16 streams, aggregate tokens/s.

    .venv/bin/python -m bench.speculative [--rounds 2] [--mode auto] [--loads code,quote,chat,batch]

Figures go to .cache/bench/speculative.json and docs/benchmarks-speculative.md (`--render` writes
the page again from saved figures).

`--draft` measures the draft-model proposer instead, free chat at one stream (where prompt
lookup has nothing to copy), each row its own pair of servers (off, and SPECULATIVE=draft or
auto with SPECULATIVE_DRAFT_MODEL): the default 135M drafting for itself and its Q4_1 GGUF
drafting for it (drafts that agree), and the 135M drafting for the random-weight 1.7B of
bench/model_size.py under auto (drafts never accepted: auto must not slow it). Figures go to
.cache/bench/speculative-draft.json and the page's "Draft model" section.

    .venv/bin/python -m bench.speculative --draft [--rounds 1] [--rows self,q4_1,1.7b]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
from pathlib import Path
from typing import Any

import httpx

from .llama_build import gguf_path
from .load import BodyFactory, LevelResult, run_level
from .model_size import NAME as BIG_NAME
from .model_size import make as make_big_model
from .prompts import load_prompts
from .servers import REPO, VENV_BIN, Server, Sizing, System

OUT = REPO / ".cache" / "bench" / "speculative.json"
DRAFT_OUT = REPO / ".cache" / "bench" / "speculative-draft.json"
DEFAULT_MODEL = REPO / "models" / "SmolLM2-135M-Instruct"
DRAFT_HEADING = "## Draft model"
MD = REPO / "docs" / "benchmarks-speculative.md"
CODE_FILE = REPO / "backend" / "app" / "engine" / "text.py"
DOCUMENT = REPO / "docs" / "settings.md"
BATCH = 16
CAP_S = 300.0
# (load, max_tokens, fixed length): a rewrite and a quote end by themselves, chat runs to the limit.
LOADS = (("code", 384, False), ("quote", 160, False), ("chat", 128, True))
ROUND = ("off", "spec", "spec", "off")
# Issue 28's targets: speculating / off.
TARGETS = {"code": 1.8, "quote": 1.8, "chat": 0.97, "batch": 1.0}


def code_prompt() -> list[dict[str, str]]:
    source = CODE_FILE.read_text()
    return [
        {
            "role": "user",
            "content": "Rewrite this Python file with one change: rename the class "
            "IncrementalDetokenizer to StreamingDetokenizer everywhere. Output the whole file, "
            f"nothing else.\n\n```python\n{source}```",
        }
    ]


def quote_prompt() -> list[dict[str, str]]:
    # The settings page's first section: a real document of about 1,500 tokens.
    text = DOCUMENT.read_text()
    document = text[: text.index("\n## ", text.index("\n## ") + 1)]
    return [
        {
            "role": "user",
            "content": f"{document}\n\nAnswer from the document above, quoting its exact sentences: "
            "which settings choose the model, and what do they say about them?",
        }
    ]


def prompts_for(load: str) -> list[list[dict[str, str]]]:
    if load == "code":
        return [code_prompt()]
    if load == "quote":
        return [quote_prompt()]
    return load_prompts("spec-chat", 2)


def server(mode: str, env: dict[str, str] | None = None, key: str = "") -> System:
    def command(port: int, _sizing: Sizing) -> tuple[list[str], dict[str, str]]:
        argv = [str(VENV_BIN / "python"), "-m", "app", "--host", "127.0.0.1", "--port", str(port)]
        return argv, {"SPECULATIVE": mode, **(env or {})}

    return System(f"ours-spec-{mode}{key}", f"ours, SPECULATIVE={mode}", "ours", command)


def draft_rows() -> dict[str, tuple[str, dict[str, str], dict[str, str]]]:
    """Each draft row: what it measures, the chat model's settings (both sides), the speculating
    side's."""
    big_folder, _ = make_big_model()
    big = {"CHAT_MODEL_PATH": str(big_folder), "CHAT_MODEL_NAME": BIG_NAME, "EMBEDDING_MODEL_PATH": ""}
    small = {"EMBEDDING_MODEL_PATH": ""}
    return {
        "self": (
            "the default 135M drafting for itself",
            small,
            {"SPECULATIVE": "draft", "SPECULATIVE_DRAFT_MODEL": str(DEFAULT_MODEL)},
        ),
        "q4_1": (
            "its Q4_1 GGUF drafting for the default 135M",
            small,
            {"SPECULATIVE": "draft", "SPECULATIVE_DRAFT_MODEL": str(gguf_path())},
        ),
        "1.7b": (
            "the default 135M drafting for the random-weight 1.7B (auto)",
            big,
            {"SPECULATIVE": "auto", "SPECULATIVE_DRAFT_MODEL": str(DEFAULT_MODEL)},
        ),
    }


def decode_rate(level: LevelResult) -> float:
    """Tokens per second after the first, over the level's streams one after another."""
    tokens = sum(s.completion_tokens - 1 for s in level.streams if s.first is not None)
    seconds = sum(s.end - s.first for s in level.streams if s.first is not None)
    return tokens / seconds if seconds > 0 else 0.0


def run(url: str, body: BodyFactory, prompts: list[list[dict[str, str]]], max_tokens: int) -> LevelResult:
    """A batch's prompts at once; one stream's one after another."""
    groups = [prompts] if len(prompts) == BATCH else [[p] for p in prompts]
    results = [asyncio.run(run_level(url, body, group, max_tokens, CAP_S)) for group in groups]
    return LevelResult(
        len(groups[0]), sum(r.wall_s for r in results), [s for r in results for s in r.streams]
    )


def measure(rounds: int, mode: str, loads: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {"mode": mode, "rounds": rounds, "load_before": os.getloadavg()}
    figures["loads"], figures["speculation"] = measure_pair(server("off"), server(mode), rounds, loads)
    figures["load_after"] = os.getloadavg()
    return figures


def measure_drafts(rounds: int, rows: list[str]) -> dict[str, Any]:
    figures: dict[str, Any] = {"rounds": rounds, "rows": {}, "load_before": os.getloadavg()}
    for row, (what, target, speculating) in draft_rows().items():
        if row not in rows:
            continue
        off, spec = server("off", target, f"-{row}"), server("on", {**target, **speculating}, f"-{row}")
        loads, counters = measure_pair(off, spec, rounds, ["chat"])
        figures["rows"][row] = {"what": what, "mode": speculating["SPECULATIVE"], **loads["chat"], **counters}
        print(describe_draft(figures["rows"][row]), flush=True)
    figures["load_after"] = os.getloadavg()
    return figures


def measure_pair(
    off_system: System, spec_system: System, rounds: int, loads: list[str]
) -> tuple[dict[str, Any], dict[str, float]]:
    """Each load's figures, off against speculating, and the speculating server's counters."""
    figures: dict[str, Any] = {}
    with (
        Server(off_system, Sizing(BATCH), "spec") as off,
        Server(spec_system, Sizing(BATCH), "spec") as spec,
    ):
        off.wait_ready()
        spec.wait_ready()
        servers = {"off": off, "spec": spec}
        for load, max_tokens, fixed in (*LOADS, ("batch", 96, True)):
            if load not in loads:
                continue
            prompts = load_prompts("spec-batch", BATCH) if load == "batch" else prompts_for(load)
            body = {k: s.body_factory(fixed_length=fixed) for k, s in servers.items()}
            for kind, s in servers.items():  # warm-up: prompts cached, first-request costs paid on both
                run(s.base_url, body[kind], prompts, max_tokens)
            blocks: dict[str, list[LevelResult]] = {"off": [], "spec": []}
            for kind in ROUND * rounds:
                blocks[kind].append(run(servers[kind].base_url, body[kind], prompts, max_tokens))
            rate = decode_rate if load != "batch" else (lambda level: level.tokens_per_s)
            entry: dict[str, Any] = {
                kind: {
                    "tokens_per_s": statistics.mean(rate(b) for b in levels),
                    "blocks": [rate(b) for b in levels],
                    "tokens": [s.completion_tokens for s in levels[0].streams],
                    "errors": [e for b in levels for e in b.errors],
                }
                for kind, levels in blocks.items()
            }
            entry["same_answers"] = [s.text for s in blocks["off"][0].streams] == [
                s.text for s in blocks["spec"][0].streams
            ]
            entry["ratio"] = entry["spec"]["tokens_per_s"] / entry["off"]["tokens_per_s"]
            figures[load] = entry
            print(describe(load, entry), flush=True)
        counters = speculation_counters(spec.base_url)
    return figures, counters


def speculation_counters(url: str) -> dict[str, float]:
    """The spec server's proposed and accepted tokens over the whole run, from /metrics."""
    text = httpx.get(f"{url}/metrics", timeout=10).text
    counters = {}
    for line in text.splitlines():
        for name in ("proposed", "accepted"):
            if line.startswith(f"llm_spec_{name}_tokens_total"):
                counters[name] = counters.get(name, 0.0) + float(line.rsplit(" ", 1)[1])
    return counters


def describe(load: str, entry: dict[str, Any]) -> str:
    what = f"aggregate tokens/s, {BATCH} streams" if load == "batch" else "decode tokens/s, 1 stream"
    blocks = " / ".join(f"{' '.join(f'{x:.1f}' for x in entry[kind]['blocks'])}" for kind in ("off", "spec"))
    verdict = "met" if entry["ratio"] >= TARGETS[load] else "missed"
    same = "yes" if entry["same_answers"] else "NO"
    return (
        f"| {load} | {what} | {entry['off']['tokens_per_s']:.1f} | {entry['spec']['tokens_per_s']:.1f} | "
        f"{entry['ratio']:.2f}x | >= {TARGETS[load]}x: {verdict} | {same} | {blocks} |"
    )


def describe_draft(entry: dict[str, Any]) -> str:
    verdict = "met" if entry["ratio"] >= TARGETS["chat"] else "missed"
    blocks = " / ".join(f"{' '.join(f'{x:.1f}' for x in entry[kind]['blocks'])}" for kind in ("off", "spec"))
    proposed, accepted = entry.get("proposed", 0), entry.get("accepted", 0)
    share = f" ({accepted / proposed:.0%})" if proposed else ""
    return (
        f"| {entry['what']} | {entry['mode']} | {entry['off']['tokens_per_s']:.1f} | "
        f"{entry['spec']['tokens_per_s']:.1f} | {entry['ratio']:.2f}x | >= {TARGETS['chat']}x: {verdict} | "
        f"{'yes' if entry['same_answers'] else 'NO'} | {accepted:.0f} of {proposed:.0f}{share} | {blocks} |"
    )


def draft_markdown(figures: dict[str, Any]) -> str:
    """The page's draft-model section."""

    def loads(key: str) -> str:
        return ", ".join(f"{x:.2f}" for x in figures[key])

    return "\n".join(
        [
            DRAFT_HEADING,
            "",
            f"Written by `bench/speculative.py --draft --rounds {figures['rounds']}`: free chat at one "
            "stream (the chat load above, where prompt lookup has little to copy), decode tokens/s; each "
            "row its own two servers, SPECULATIVE=off against the draft model (SPECULATIVE=draft, or "
            "auto), requests interleaved off/spec/spec/off, greedy. The 1.7B is bench/model_size.py's "
            "random-weight model of SmolLM2-1.7B's shape (no Hub here): the 135M's drafts are never "
            "its tokens, the row where drafting does not pay.",
            "",
            "| Draft | SPECULATIVE | off | draft | Ratio | Target | Same answers | Accepted of proposed "
            "| Blocks |",
            "|---|---|---|---|---|---|---|---|---|",
            *(describe_draft(entry) for entry in figures["rows"].values()),
            "",
            f"Load average (1, 5, 15 min) before the run {loads('load_before')}, after "
            f"{loads('load_after')}.",
            "",
        ]
    )


def with_section(page: str, section: str) -> str:
    """The page with its draft-model section replaced by this one (added at the end if none)."""
    start = page.find(DRAFT_HEADING)
    if start < 0:
        return page.rstrip("\n") + "\n\n" + section
    end = page.find("\n## ", start + len(DRAFT_HEADING))
    return page[:start] + section + (page[end + 1 :] if end >= 0 else "")


def markdown(figures: dict[str, Any]) -> str:
    counters = figures["speculation"]
    rate = counters.get("accepted", 0) / counters["proposed"] if counters.get("proposed") else 0.0

    def loads(key: str) -> str:
        return ", ".join(f"{x:.2f}" for x in figures[key]) if key in figures else "not recorded"

    return "\n".join(
        [
            "# Speculative decoding (issue 28)",
            "",
            f"Written by `bench/speculative.py --rounds {figures['rounds']}` (see its docstring for the "
            "loads): our server on the default model, SPECULATIVE=off against "
            f"SPECULATIVE={figures['mode']}, "
            "both up, requests interleaved off/spec/spec/off; greedy answers, so both sides decode the "
            "same tokens (column 'Same answers'). One stream's figure is its decode rate (prefill left "
            "out: the same work on both sides, and cached by a warm-up); blocks: each block's figure, "
            "off then speculating.",
            "",
            "| Load | Figure | SPECULATIVE=off | speculating | Ratio | Target | Same answers | Blocks |",
            "|---|---|---|---|---|---|---|---|",
            *(describe(load, entry) for load, entry in figures["loads"].items()),
            "",
            f"The speculating server proposed {counters.get('proposed', 0):.0f} tokens over the run and "
            f"accepted {counters.get('accepted', 0):.0f} ({rate:.0%}). Load average (1, 5, 15 min) before "
            f"the run {loads('load_before')}, after {loads('load_after')}: other work on the machine makes "
            "single blocks vary; compare the interleaved means.",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=2, help="A/B/B/A rounds per load (default 2)")
    parser.add_argument("--mode", default="auto", choices=["auto", "ngram"], help="the speculating side")
    parser.add_argument("--loads", default="code,quote,chat,batch", help="which loads, comma-separated")
    parser.add_argument("--draft", action="store_true", help="the draft-model rows instead")
    parser.add_argument("--rows", default="self,q4_1,1.7b", help="with --draft: which rows")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--md", type=Path, default=MD)
    parser.add_argument(
        "--render", type=Path, help="write the page from these saved figures, measuring nothing"
    )
    args = parser.parse_args()
    if args.draft:
        figures = (
            json.loads(args.render.read_text())
            if args.render
            else measure_drafts(args.rounds, args.rows.split(","))
        )
        if not args.render:
            DRAFT_OUT.parent.mkdir(parents=True, exist_ok=True)
            DRAFT_OUT.write_text(json.dumps(figures, indent=1))
        args.md.write_text(with_section(args.md.read_text(), draft_markdown(figures)))
        print(draft_markdown(figures))
        return
    if args.render:
        figures = json.loads(args.render.read_text())
    else:
        figures = measure(args.rounds, args.mode, args.loads.split(","))
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(figures, indent=1))
    args.md.write_text(markdown(figures))
    print(markdown(figures))


if __name__ == "__main__":
    main()

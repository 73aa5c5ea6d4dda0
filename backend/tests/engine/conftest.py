"""An in-process engine on the real default model, shared by the engine tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import torch

from app.core.config import Settings
from app.engine.config import EngineConfig, ModelOptions
from app.engine.engine import Engine
from app.engine.loader import load_chat_model
from app.engine.sampling import SamplingParams, TokenLogprobs
from app.engine.speculative import Speculative


@dataclass
class Result:
    token_ids: list[int]
    text: str
    finish_reason: str | None
    logprobs: list[TokenLogprobs]


def load_model(**settings: Any) -> tuple[torch.nn.Module, Any]:
    """The chat model as the server loads it with these settings (the defaults otherwise)."""
    return load_chat_model(ModelOptions.of(Settings(**settings)))


@pytest.fixture(scope="session")
def model_and_tokenizer() -> tuple[torch.nn.Module, object]:
    """The model as the server loads it by default: same precision, same attention kernel."""
    return load_model()


@contextmanager
def running_engine(
    model: torch.nn.Module,
    tokenizer: object,
    fast_path: bool = True,
    kv_cache_memory_gb: float = 1.0,
    enable_prefix_caching: bool = True,
    max_num_seqs: int = 8,
    max_num_batched_tokens: int = 256,
    speculative: Speculative = "off",
    draft: tuple[torch.nn.Module, object] | None = None,
) -> Iterator[Engine]:
    """A small engine (8 slots, 256-token prefill chunks) on the given model, stopped afterwards."""
    config = EngineConfig(
        max_model_len=2048,
        max_num_seqs=max_num_seqs,
        max_waiting=4,
        max_num_batched_tokens=max_num_batched_tokens,
        kv_cache_memory_gb=kv_cache_memory_gb,
        enable_prefix_caching=enable_prefix_caching,
        queue_timeout_s=60,
        fast_path=fast_path,
        num_threads=0,
        speculative=speculative,
    )
    eng = Engine(model, tokenizer, config, draft)  # type: ignore[arg-type]
    eng.start()
    try:
        yield eng
    finally:
        eng.shutdown(10)


@pytest.fixture(scope="session")
def engine(model_and_tokenizer: tuple[torch.nn.Module, object]) -> Iterator[Engine]:
    with running_engine(*model_and_tokenizer) as eng:
        yield eng


def chat_ids(tokenizer: object, text: str) -> list[int]:
    prompt = tokenizer.apply_chat_template(  # type: ignore[attr-defined]
        [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
    )
    return tokenizer.encode(prompt, add_special_tokens=False)  # type: ignore[attr-defined]


async def collect(engine: Engine, prompt_ids: list[int], params: SamplingParams) -> Result:
    ids: list[int] = []
    logprobs: list[TokenLogprobs] = []
    text = ""
    finish = None
    async for out in engine.generate(prompt_ids, params):
        ids += out.token_ids
        logprobs += out.logprobs
        text += out.text
        finish = out.finish_reason
    return Result(ids, text, finish, logprobs)


def run_together(engine: Engine, jobs: list[tuple[list[int], SamplingParams]]) -> list[Result]:
    async def main() -> list[Result]:
        return await asyncio.gather(*(collect(engine, ids, p) for ids, p in jobs))

    return asyncio.run(main())


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "engine state did not settle"
        time.sleep(0.02)

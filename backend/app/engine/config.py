"""The engine's options: plain dataclasses whose field names are the server's settings.

The engine never imports the settings (app.core); whoever builds an engine picks these fields
from them with `of(settings)`, or writes them out (tests, benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Self

from .speculative import Speculative


class _FromSettings:
    @classmethod
    def of(cls, settings: object) -> Self:
        """These options taken from any object that has them as attributes (the settings)."""
        return cls(**{f.name: getattr(settings, f.name) for f in fields(cls)})  # type: ignore[arg-type]


@dataclass(frozen=True)
class ModelOptions(_FromSettings):
    """How to load the chat model (loader.load_chat_model)."""

    chat_model_path: Path
    device: str
    dtype: str
    attention: str
    quantization: str
    dense_prefill: str  # auto | true | false
    device_map: str | None
    fast_path: bool  # the engine will run the fast decoder: join sibling projections for it


@dataclass(frozen=True)
class EngineConfig(_FromSettings):
    """Continuous batching limits."""

    max_model_len: int  # caps the context below the model's own limit; 0: the model's
    max_num_seqs: int  # sequences decoded together
    max_waiting: int  # requests that may wait for a slot
    max_num_batched_tokens: int  # prompt tokens prefilled per step, at most
    kv_cache_memory_gb: float  # the KV cache's budget; 0: sized for the machine (memory.py)
    enable_prefix_caching: bool  # reuse the keys of prompt prefixes seen before (blocks.py)
    queue_timeout_s: float  # a request waiting longer for a slot fails
    fast_path: bool  # the lean Llama-family forward (fast_decoder.py)
    num_threads: int  # torch CPU threads; 0: all cores
    speculative: Speculative = "off"  # proposed tokens verified in the step's pass (speculative.py)

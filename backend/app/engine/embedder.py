"""The embedding model: sentence-transformers style pooling with Transformers alone.

It runs on its own worker thread, so embedding requests never touch the chat engine and never
block the event loop, with the chat engine's discipline: a bounded queue (EmbedderBusy when it is
full), batches that mix the inputs of every waiting request (round robin, so a small request is
not stuck behind a large one), and a request whose client left is dropped from the queue.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

from .threads import use_threads

BATCH_SIZE = 32
# Padded tokens per forward pass at most: a request arriving meanwhile waits for one pass, which
# stays short (32 inputs of 220 tokens took 9 s on a busy 2-core machine; 4,096 tokens ~1 s).
BATCH_TOKENS = 4096


class EmbedderBusy(Exception):
    """The embedding queue is full (HTTP 429)."""


@dataclass(eq=False)
class _Job:
    inputs: list[list[int]]
    deliver: Callable[[torch.Tensor | BaseException], None]
    rows: list[torch.Tensor | None] = field(init=False)
    next: int = 0  # the next input to put in a batch
    done: int = 0
    cancelled: bool = False

    def __post_init__(self) -> None:
        self.rows = [None] * len(self.inputs)


def _settle(future: asyncio.Future[torch.Tensor], result: torch.Tensor | BaseException) -> None:
    if future.done():  # cancelled meanwhile
        return
    if isinstance(result, BaseException):
        future.set_exception(result)
    else:
        future.set_result(result)


class Embedder:
    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype, max_waiting: int = 64) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = AutoModel.from_pretrained(path, local_files_only=True, dtype=dtype).to(device).eval()
        self.device = device
        self.pooling = self._read_pooling(path)
        modules = path / "modules.json"
        self.normalize = not modules.exists() or "Normalize" in modules.read_text()
        st_config = path / "sentence_bert_config.json"
        positions = getattr(self.model.config, "max_position_embeddings", 512)
        self.max_tokens = (
            json.loads(st_config.read_text()).get("max_seq_length", positions)
            if st_config.exists()
            else positions
        )
        self.dimensions = self.model.config.hidden_size
        self.max_waiting = max_waiting
        self.embedded = 0  # inputs embedded so far
        self.batches = 0  # forward passes that embedded them
        self._jobs: deque[_Job] = deque()
        self._closed = False
        self._wake = threading.Condition()
        self._thread = threading.Thread(target=self._run, name="embedder", daemon=True)
        self._thread.start()

    @property
    def waiting(self) -> int:
        """Requests queued or being embedded."""
        return len(self._jobs)

    @staticmethod
    def _read_pooling(path: Path) -> str:
        for config in path.glob("*Pooling/config.json"):
            settings = json.loads(config.read_text())
            if settings.get("pooling_mode_cls_token"):
                return "cls"
            if settings.get("pooling_mode_lasttoken"):
                return "last"
        return "mean"

    def close(self) -> None:
        """Ends the worker thread (its queue empty: the caller waits for idle), so the model can be freed."""
        with self._wake:
            self._closed = True
            self._wake.notify()
        self._thread.join()

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=True)["input_ids"]

    async def embed(self, inputs: list[list[int]]) -> torch.Tensor:
        """The vectors of `inputs`, in order; cancelling the await drops what is left of them."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[torch.Tensor] = loop.create_future()
        job = _Job(inputs, lambda result: loop.call_soon_threadsafe(_settle, future, result))
        with self._wake:
            if len(self._jobs) >= self.max_waiting:
                raise EmbedderBusy(
                    f"The embedding model is busy: {len(self._jobs)} requests wait. Retry shortly."
                )
            self._jobs.append(job)
            self._wake.notify()
        try:
            return await future
        finally:
            job.cancelled = True  # a no-op once delivered; else the worker drops the rest

    # ---- worker thread ---------------------------------------------------------------------

    def _run(self) -> None:
        # One CPU thread: a multi-threaded OpenMP team here would slow the chat engine's (see
        # loader.load_chat_model), and a small encoder gains little from more.
        use_threads(1)
        while True:
            with self._wake:
                while not self._jobs and not self._closed:
                    self._wake.wait()
                if self._closed:
                    return
                batch = self._next_batch()
            if not batch:
                continue
            try:
                vectors = self._forward([job.inputs[i] for job, i in batch])
            except Exception as exc:  # a failed batch fails its requests, not the embedder
                self._end({job for job, _ in batch}, exc)
                continue
            self.embedded += len(batch)
            self.batches += 1
            for (job, i), vector in zip(batch, vectors, strict=True):
                job.rows[i] = vector
                job.done += 1
            self._end({job for job, _ in batch if job.done == len(job.inputs)})

    def _next_batch(self) -> list[tuple[_Job, int]]:
        """Up to BATCH_SIZE inputs and BATCH_TOKENS padded tokens, one input from each waiting
        request in turn (holding the lock)."""
        for job in [j for j in self._jobs if j.cancelled]:
            self._jobs.remove(job)
        batch: list[tuple[_Job, int]] = []
        width = 0
        open_jobs = [job for job in self._jobs if job.next < len(job.inputs)]
        while open_jobs and len(batch) < BATCH_SIZE:
            for job in list(open_jobs):
                wider = max(width, len(job.inputs[job.next]))
                if len(batch) == BATCH_SIZE or (batch and wider * (len(batch) + 1) > BATCH_TOKENS):
                    return batch
                width = wider
                batch.append((job, job.next))
                job.next += 1
                if job.next == len(job.inputs):
                    open_jobs.remove(job)
        return batch

    def _end(self, jobs: set[_Job], error: BaseException | None = None) -> None:
        with self._wake:
            for job in jobs:
                if job in self._jobs:
                    self._jobs.remove(job)
        for job in jobs:
            job.deliver(error if error is not None else torch.stack(job.rows))  # type: ignore[arg-type]

    @torch.inference_mode()
    def _forward(self, batch: list[list[int]]) -> list[torch.Tensor]:
        pad = self.tokenizer.pad_token_id or 0
        width = max(len(ids) for ids in batch)
        ids = torch.full((len(batch), width), pad, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for i, row in enumerate(batch):
            ids[i, : len(row)] = torch.tensor(row)
            mask[i, : len(row)] = 1
        hidden = self.model(
            input_ids=ids.to(self.device), attention_mask=mask.to(self.device)
        ).last_hidden_state
        hidden = hidden.float()
        mask_f = mask.to(hidden.device).unsqueeze(-1).float()
        if self.pooling == "cls":
            pooled = hidden[:, 0]
        elif self.pooling == "last":
            pooled = hidden[torch.arange(len(batch)), mask.sum(1) - 1]
        else:
            pooled = (hidden * mask_f).sum(1) / mask_f.sum(1).clamp(min=1.0)
        if self.normalize:
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
        return list(pooled.cpu())

"""The embedding model: sentence-transformers style pooling with Transformers alone.

It runs on its own single worker thread, so embedding requests never touch the chat engine and
never block the event loop.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
from transformers import AutoModel, AutoTokenizer

BATCH_SIZE = 32


class Embedder:
    def __init__(self, path: Path, device: torch.device, dtype: torch.dtype) -> None:
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
        # One CPU thread: a multi-threaded OpenMP team here would slow the chat engine's (see
        # loader.load_chat_model), and a small encoder gains little from more.
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="embedder", initializer=torch.set_num_threads, initargs=(1,)
        )

    @staticmethod
    def _read_pooling(path: Path) -> str:
        for config in path.glob("*Pooling/config.json"):
            settings = json.loads(config.read_text())
            if settings.get("pooling_mode_cls_token"):
                return "cls"
            if settings.get("pooling_mode_lasttoken"):
                return "last"
        return "mean"

    def tokenize(self, texts: list[str]) -> list[list[int]]:
        return self.tokenizer(texts, add_special_tokens=True)["input_ids"]

    @torch.inference_mode()
    def _embed(self, inputs: list[list[int]]) -> torch.Tensor:
        vectors = []
        pad = self.tokenizer.pad_token_id or 0
        for start in range(0, len(inputs), BATCH_SIZE):
            batch = inputs[start : start + BATCH_SIZE]
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
            vectors.append(pooled.cpu())
        return torch.cat(vectors)

    async def embed(self, inputs: list[list[int]]) -> torch.Tensor:
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._embed, inputs)

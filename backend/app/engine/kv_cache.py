"""The key/value cache: a pool of fixed-size blocks shared by every sequence, for continuous batching.

Memory follows the tokens: a sequence holds ceil(tokens / BLOCK_SIZE) blocks (blocks.py decides
which), never the longest sequence's length times every slot. Transformers' own caches assume
every row of a batch sits at the same position; here the engine plans each forward pass: where
each row's new keys go (their pool positions), and which pool positions make up each row's keys
for the attention. The attention then sees the same [batch, heads, positions, dim] keys as with
one padded row per sequence, gathered from the pool. Padding tokens write to, and padding
positions read from, the pad block, whose contents are always finite (zeros, or keys of padding
tokens); being masked, they add exact zeros, so a row's result does not depend on its neighbours.

The pool is allocated once at the size of the memory budget, untouched: the operating system
maps its pages as blocks are first written, lowest blocks first.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache

from .blocks import BLOCK_SIZE, PAD_BLOCK


def bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
    return 2 * num_layers * num_kv_heads * head_dim * dtype.itemsize


class PagedKVCache(Cache):
    def __init__(
        self,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        num_blocks: int,
        dtype: torch.dtype,
        device: torch.device,
    ) -> None:
        super().__init__(layers=[])
        # Head-major, so one gather yields each head's keys for the whole batch contiguously.
        shape = (num_kv_heads, num_blocks * BLOCK_SIZE, head_dim)
        self.keys = [torch.empty(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        self.values = [torch.empty(shape, dtype=dtype, device=device) for _ in range(num_layers)]
        for store in (self.keys, self.values):
            for t in store:
                t[:, PAD_BLOCK * BLOCK_SIZE : (PAD_BLOCK + 1) * BLOCK_SIZE] = 0
        self._write = torch.zeros(0, dtype=torch.long)
        self._read = torch.zeros(0, dtype=torch.long)
        self._batch = 0
        self._q_len = 0
        self._kv_len = 0
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def plan(self, tables: list[list[int]], starts: list[int], lengths: list[int], q_len: int) -> int:
        """Set up the next forward: row i writes lengths[i] (<= q_len) new tokens at starts[i].

        Returns how many key positions the attention will see (the mask's width)."""
        kv_len = max(starts) + q_len
        blocks = -(-kv_len // BLOCK_SIZE)
        table = torch.full((len(tables), blocks), PAD_BLOCK, dtype=torch.long)
        for i, row in enumerate(tables):
            table[i, : len(row)] = torch.tensor(row[:blocks], dtype=torch.long)
        offsets = torch.arange(BLOCK_SIZE)
        slots = (table.unsqueeze(-1) * BLOCK_SIZE + offsets).view(len(tables), -1)[:, :kv_len]
        positions = torch.arange(kv_len)
        ends = torch.tensor([s + n for s, n in zip(starts, lengths, strict=True)]).unsqueeze(1)
        # Positions a row has not written read the pad block, never another sequence's stale keys.
        self._read = torch.where(positions < ends, slots, PAD_BLOCK * BLOCK_SIZE).view(-1)
        new = torch.tensor(starts).unsqueeze(1) + torch.arange(q_len)
        self._write = torch.where(new < ends, slots.gather(1, new), PAD_BLOCK * BLOCK_SIZE).view(-1)
        self._batch, self._q_len, self._kv_len = len(tables), q_len, kv_len
        self._on = {}
        return kv_len

    def _indices(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on:
            self._on[device] = (self._write.to(device), self._read.to(device))
        return self._on[device]

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if keys.device != key_states.device:
            # A model split over GPUs (device_map): each layer's cache lives beside the layer.
            keys = self.keys[layer_idx] = keys.to(key_states.device)
            values = self.values[layer_idx] = values.to(key_states.device)
        write, read = self._indices(keys.device)
        heads, dim = keys.shape[0], keys.shape[2]
        gathered = (self._batch, self._kv_len)
        for store, new in ((keys, key_states), (values, value_states)):
            store.index_copy_(1, write, new.transpose(0, 1).reshape(heads, -1, dim).to(store.dtype))
        # [batch, heads, positions, dim] views of head-major copies (attention.py reads them as such).
        return (
            keys.index_select(1, read).view(heads, *gathered, dim).transpose(0, 1),
            values.index_select(1, read).view(heads, *gathered, dim).transpose(0, 1),
        )

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._kv_len - self._q_len

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return self.keys[0].shape[1]

    @property
    def is_compileable(self) -> bool:
        return False

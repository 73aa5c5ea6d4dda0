"""A key/value cache with one row per running sequence, for continuous batching.

Transformers' own caches assume every row of a batch sits at the same position. Here each row
(slot) has its own length, so the engine plans every forward pass: which contiguous rows take
part, where each row's new keys go, and how far the attention must look. Rows stay contiguous
(the engine compacts slots when a sequence leaves) so the attention reads views, never copies.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache


class SlotKVCache(Cache):
    def __init__(
        self,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        max_slots: int,
        dtype: torch.dtype,
        device: torch.device,
        initial_capacity: int = 256,
    ) -> None:
        super().__init__(layers=[])
        self.num_layers = num_layers
        self.initial_shape = (max_slots, num_kv_heads, initial_capacity, head_dim)
        self.dtype = dtype
        self.device = device
        self.keys: list[torch.Tensor] = []
        self.values: list[torch.Tensor] = []
        self.shrink()
        self._rows = slice(0, 0)
        self._row_index = torch.zeros(0, dtype=torch.long, device=device)
        self._starts: list[int] = []
        self._start_index = torch.zeros(0, dtype=torch.long, device=device)
        self._q_len = 0
        self._kv_len = 0

    def shrink(self) -> None:
        """Back to the initial size: called when no sequence runs, so one long prompt's memory
        is given back once it is done."""
        self.shape = self.initial_shape
        device = self.keys[0].device if self.keys else self.device
        self.keys = [torch.zeros(self.shape, dtype=self.dtype, device=device) for _ in range(self.num_layers)]
        self.values = [
            torch.zeros(self.shape, dtype=self.dtype, device=device) for _ in range(self.num_layers)
        ]

    @property
    def capacity(self) -> int:
        return self.shape[2]

    def _grow(self, needed: int) -> None:
        new_cap = self.capacity
        while new_cap < needed:
            new_cap *= 2
        pad = new_cap - self.capacity
        for store in (self.keys, self.values):
            for i, t in enumerate(store):
                store[i] = torch.nn.functional.pad(t, (0, 0, 0, pad))
        self.shape = (self.shape[0], self.shape[1], new_cap, self.shape[3])

    def plan(self, first_row: int, starts: list[int], q_len: int) -> int:
        """Set up the next forward: rows first_row.. take q_len new tokens each at `starts`.

        Returns how many key positions the attention will see (the mask's width)."""
        kv_len = max(starts) + q_len
        if kv_len > self.capacity:
            self._grow(kv_len)
        self._rows = slice(first_row, first_row + len(starts))
        self._starts = starts
        self._q_len = q_len
        self._kv_len = kv_len
        if q_len == 1:
            self._row_index = torch.arange(first_row, first_row + len(starts), device=self.device)
            self._start_index = torch.tensor(starts, dtype=torch.long, device=self.device)
        return kv_len

    def update(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, *args: Any, **kwargs: Any
    ) -> tuple[torch.Tensor, torch.Tensor]:
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if keys.device != key_states.device:
            # A model split over GPUs (device_map): each layer's cache lives beside the layer.
            keys = self.keys[layer_idx] = keys.to(key_states.device)
            values = self.values[layer_idx] = values.to(key_states.device)
        if self._q_len == 1:
            rows, starts = self._row_index.to(keys.device), self._start_index.to(keys.device)
            keys[rows, :, starts] = key_states[:, :, 0]
            values[rows, :, starts] = value_states[:, :, 0]
        else:
            for i, start in enumerate(self._starts):
                row = self._rows.start + i
                keys[row, :, start : start + self._q_len] = key_states[i]
                values[row, :, start : start + self._q_len] = value_states[i]
        return keys[self._rows, :, : self._kv_len], values[self._rows, :, : self._kv_len]

    def move_row(self, src: int, dst: int, length: int) -> None:
        """Copy the first `length` positions of row src into row dst (slot compaction)."""
        for store in (self.keys, self.values):
            for t in store:
                t[dst, :, :length] = t[src, :, :length]

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self._kv_len - self._q_len

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return self.capacity

    @property
    def is_compileable(self) -> bool:
        return False

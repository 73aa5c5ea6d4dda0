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

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers.cache_utils import Cache

from .blocks import BLOCK_SIZE, PAD_BLOCK


def bytes_per_token(num_layers: int, num_kv_heads: int, head_dim: int, dtype: torch.dtype) -> int:
    return 2 * num_layers * num_kv_heads * head_dim * dtype.itemsize


@dataclass
class Plan:
    """One forward's rows: where their new keys go and which pool positions make up their keys."""

    write: torch.Tensor
    read: torch.Tensor
    batch: int
    q_len: int
    kv_len: int  # key positions the attention sees: the mask's width
    on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict)

    def indices(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self.on:
            self.on[device] = (self.write.to(device), self.read.to(device))
        return self.on[device]


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
        # The plan of the next forward through the Transformers model, which calls update()
        # without one; the fast decoder passes each group of rows' own.
        self.current = Plan(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), 0, 0, 0)

    def plan(self, tables: list[list[int]], starts: list[int], lengths: list[int], q_len: int) -> Plan:
        """Plan a forward of these rows: row i writes lengths[i] (<= q_len) new tokens at starts[i].
        The plan becomes the current one."""
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
        read = torch.where(positions < ends, slots, PAD_BLOCK * BLOCK_SIZE).view(-1)
        new = torch.tensor(starts).unsqueeze(1) + torch.arange(q_len)
        write = torch.where(new < ends, slots.gather(1, new), PAD_BLOCK * BLOCK_SIZE).view(-1)
        self.current = Plan(write, read, len(tables), q_len, kv_len)
        return self.current

    def update(
        self,
        key_states: torch.Tensor,
        value_states: torch.Tensor,
        layer_idx: int,
        *args: Any,
        plan: Plan | None = None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the new keys, then the batch's keys and values as [batch, heads, positions, dim]
        views of head-major copies (attention.py reads them as such)."""
        plan = plan or self.current
        keys, values = self.write(key_states, value_states, layer_idx, plan)
        _, read = plan.indices(keys.device)
        heads, dim = keys.shape[0], keys.shape[2]
        gathered = (plan.batch, plan.kv_len)
        return (
            keys.index_select(1, read).view(heads, *gathered, dim).transpose(0, 1),
            values.index_select(1, read).view(heads, *gathered, dim).transpose(0, 1),
        )

    def write(
        self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: int, plan: Plan
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store a forward's new keys and values ([batch, heads, q_len, dim]) where the plan puts
        them; returns the layer's pools."""
        keys, values = self.keys[layer_idx], self.values[layer_idx]
        if keys.device != key_states.device:
            # A model split over GPUs (device_map): each layer's cache lives beside the layer.
            keys = self.keys[layer_idx] = keys.to(key_states.device)
            values = self.values[layer_idx] = values.to(key_states.device)
        write, _ = plan.indices(keys.device)
        heads, dim = keys.shape[0], keys.shape[2]
        for store, new in ((keys, key_states), (values, value_states)):
            store.index_copy_(1, write, new.transpose(0, 1).reshape(heads, -1, dim).to(store.dtype))
        return keys, values

    def get_seq_length(self, layer_idx: int = 0) -> int:
        return self.current.kv_len - self.current.q_len

    def get_max_cache_shape(self, layer_idx: int = 0) -> int:
        return self.keys[0].shape[1]

    @property
    def is_compileable(self) -> bool:
        return False

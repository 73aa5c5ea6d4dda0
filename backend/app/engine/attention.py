"""Attention whose result for a row does not depend on the rest of the batch.

Fused SDPA kernels change their reduction order with the key length, so a sequence batched with
longer ones (its keys padded and masked) gets slightly different numbers than alone, and in
bfloat16 that is enough to flip greedy tokens. The native kernel (native.py, kernels.cpp) computes
each query on its own, over exactly the keys it sees, read in place from the paged cache: the
same numbers alone, batched, as one row of a long prompt or as a decode step, whatever the
padding. Scores and softmax are in float32.

Without it, PyTorch's matrix products stand in: scores, softmax and the weighted sum reduce over
head_dim or over key positions from position 0, so masked padding only adds exact zeros. But
MKL's products round a row of a 3-row product (a decode step) differently from the same row
among hundreds (a prompt), and padded keys can shift its blocking: rows then agree in practice,
in float32, and not by construction.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface, PreTrainedModel
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from .kv_cache import PagedKVCache, Plan, bytes_per_token
from .native import kernels

NAME = "batch_invariant"


# Queries per block: a block's float32 scores against a few thousand keys stay in cache instead
# of a whole prompt chunk's going through memory (4000-token prefill: 1.8x faster per layer).
QUERY_BLOCK = 128


def _kv_layout(model: PreTrainedModel) -> tuple[dict[str, int], torch.dtype]:
    text_config = model.config.get_text_config()
    shape = dict(
        num_layers=text_config.num_hidden_layers,
        num_kv_heads=getattr(text_config, "num_key_value_heads", None) or text_config.num_attention_heads,
        head_dim=getattr(text_config, "head_dim", None)
        or text_config.hidden_size // text_config.num_attention_heads,
    )
    # The batch-invariant kernel attends in float32: keys stored so are gathered without a
    # conversion per step (twice the bytes of bfloat16, in exchange).
    return shape, torch.float32 if model.config._attn_implementation == NAME else model.dtype


def kv_token_bytes(model: PreTrainedModel) -> int:
    """The bytes one token's keys and values take in this model's paged cache."""
    shape, dtype = _kv_layout(model)
    return bytes_per_token(dtype=dtype, **shape)


def paged_cache(model: PreTrainedModel, num_blocks: int) -> PagedKVCache:
    """A paged KV cache of num_blocks blocks (the pad block among them) for this model."""
    shape, dtype = _kv_layout(model)
    return PagedKVCache(num_blocks=num_blocks, dtype=dtype, device=model.device, **shape)


def additive_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """A boolean keep-mask as float32 0 / -inf, to add to the scores."""
    if attention_mask.dtype != torch.bool:
        return attention_mask.float()
    return torch.zeros(attention_mask.shape, device=attention_mask.device).masked_fill_(
        ~attention_mask, float("-inf")
    )


def layer_masks(
    config: Any, mask: torch.Tensor, positions: torch.Tensor
) -> torch.Tensor | dict[str, torch.Tensor]:
    """The engine's keep-mask ([batch, 1, q_len, kv_len], key j at position j) as a model with a
    sliding window needs it: Transformers takes a prepared mask as it is, so the window must be
    in it. The sliding mask alone where every layer slides (Mistral, Phi-3), one per layer type
    where some do not (Gemma 2 and 3, Qwen2 with max_window_layers). Without it, keys beyond the
    window were attended: other tokens once a conversation outgrew the window (measured on a tiny
    Gemma 3 and Mistral with a 4-token window)."""
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    if not window:
        return mask
    keys = torch.arange(mask.shape[-1], device=mask.device)
    sliding = mask & (keys > positions.to(mask.device)[:, None, :, None] - window)
    if "full_attention" in (getattr(config, "layer_types", None) or ()):
        return {"full_attention": mask, "sliding_attention": sliding}
    return sliding


def prefix_lengths(attention_mask: torch.Tensor) -> torch.Tensor | None:
    """[batch, q_len]: how many leading keys each query sees, where each sees a prefix of the
    keys (the engine's causal masks); None for any other mask."""
    if attention_mask.dim() != 4 or attention_mask.shape[1] != 1:
        return None
    keep = attention_mask[:, 0] if attention_mask.dtype == torch.bool else attention_mask[:, 0] == 0
    lengths = keep.sum(-1)
    prefix = torch.arange(keep.shape[-1], device=keep.device) < lengths.unsqueeze(-1)
    return lengths if torch.equal(keep, prefix) else None


def paged_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    cache: PagedKVCache,
    layer: int,
    plan: Plan,
    positions: torch.Tensor,
    mask: torch.Tensor,
    scaling: float,
) -> torch.Tensor:
    """Store a forward's new keys and values ([batch, heads, q_len, head_dim]) in the cache, then
    attend: query at position p sees keys 0..p. Returns [batch, q_len, heads, head_dim]."""
    native = kernels()
    pool = cache.keys[layer]
    if native is None or pool.dtype != torch.float32 or pool.device.type != "cpu":
        keys, values = cache.update(key, value, layer, plan=plan)
        return batch_invariant_attention(None, query, keys, values, mask, scaling=scaling)[0]  # type: ignore[arg-type]
    keys, values = cache.write(key, value, layer, plan)
    _, read = plan.indices(pool.device)
    slots = read.view(plan.batch, plan.kv_len)
    out = native.attention(query.transpose(1, 2), keys, values, slots, positions + 1, scaling)
    return out.to(query.dtype)


def batch_invariant_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float | None = None,
    dropout: float = 0.0,
    softcap: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    batch, heads, q_len, head_dim = query.shape
    kv_heads, kv_len = key.shape[1], key.shape[2]
    groups = heads // kv_heads
    scale = scaling if scaling is not None else head_dim**-0.5
    native = kernels()
    usable = native is not None and softcap is None and query.device.type == "cpu"
    lengths = prefix_lengths(attention_mask[..., :kv_len]) if usable and attention_mask is not None else None
    if native is not None and lengths is not None:
        # The gathered keys as a pool of batch * kv_len slots, row b's keys at b * kv_len.
        pools = [t.transpose(0, 1).float().reshape(kv_heads, batch * kv_len, head_dim) for t in (key, value)]
        slots = torch.arange(batch * kv_len, device=query.device).view(batch, kv_len)
        out = native.attention(query.transpose(1, 2), *pools, slots, lengths, scale)
        return out.to(query.dtype), None
    # Head-major: one matrix product per (kv head, sequence) over contiguous keys. The engine's
    # cache hands them over laid out so (the transposes below are then free); the query groups
    # of grouped-query attention fold into rows, so the keys are never repeated.
    q = query.float() * (1.0 if softcap is not None else scale)
    q = q.view(batch, kv_heads, groups, q_len, head_dim).transpose(0, 1)
    keys_t = key.transpose(0, 1).float().contiguous().transpose(-1, -2)
    values = value.transpose(0, 1).float().contiguous()
    bias = None
    if attention_mask is not None:
        bias = additive_mask(attention_mask[..., :kv_len]).unsqueeze(2)  # [batch, 1, 1, q_len, kv_len]
    blocks = []
    for start in range(0, q_len, QUERY_BLOCK):
        n = min(QUERY_BLOCK, q_len - start)
        scores = q[:, :, :, start : start + n].reshape(kv_heads, batch, groups * n, head_dim) @ keys_t
        if softcap is not None:
            scores = torch.tanh(scores * (scale / softcap)) * softcap
        if bias is not None:
            scores.view(kv_heads, batch, groups, n, kv_len).add_(
                bias[..., start : start + n, :].transpose(0, 1)
            )
        probs = torch.softmax(scores, dim=-1)
        blocks.append((probs @ values).view(kv_heads, batch, groups, n, head_dim))
    out = blocks[0] if len(blocks) == 1 else torch.cat(blocks, dim=3)
    # [batch, q_len, heads, head_dim], heads numbered kv head by kv head as in the query.
    return out.permute(1, 3, 0, 2, 4).reshape(batch, q_len, heads, head_dim).to(query.dtype), None


AttentionInterface.register(NAME, batch_invariant_attention)
# Outside the engine (which passes its own masks) Transformers builds the mask: an additive
# one, never None, since this kernel has no implicit causal mode.
AttentionMaskInterface.register(NAME, eager_mask)

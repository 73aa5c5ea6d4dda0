"""An attention kernel whose result for a row does not depend on the rest of the batch.

Fused SDPA kernels change their reduction order with the key length, so a sequence batched with
longer ones (its keys padded and masked) gets slightly different numbers than alone, and in
bfloat16 that is enough to flip greedy tokens. Here scores, softmax and the weighted sum reduce
over head_dim or over key positions from position 0, so masked padding only adds exact zeros:
a request's tokens are the same alone or batched. Scores and softmax are computed in float32.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

NAME = "batch_invariant"


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
    # Grouped-query attention without copying the keys: fold the query groups into rows.
    q = query.float().reshape(batch, kv_heads, groups * q_len, head_dim)
    scores = (q @ key.float().transpose(-1, -2)) * (scaling if scaling is not None else head_dim**-0.5)
    if softcap is not None:
        scores = torch.tanh(scores / softcap) * softcap
    scores = scores.view(batch, kv_heads, groups, q_len, kv_len)
    if attention_mask is not None:
        mask = attention_mask[..., :kv_len]
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask.view(batch, 1, 1, q_len, kv_len), float("-inf"))
        else:
            scores = scores + mask.view(batch, 1, 1, q_len, kv_len).float()
    probs = torch.softmax(scores.view(batch, kv_heads, groups * q_len, kv_len), dim=-1)
    out = (probs @ value.float()).view(batch, heads, q_len, head_dim)
    return out.transpose(1, 2).contiguous().to(query.dtype), None


AttentionInterface.register(NAME, batch_invariant_attention)
# Outside the engine (which passes its own masks) Transformers builds the mask: an additive
# one, never None, since this kernel has no implicit causal mode.
AttentionMaskInterface.register(NAME, eager_mask)

"""A lean forward pass for Llama-family decoders, reading the Transformers model's own weights.

On a CPU a small model's decode step is mostly Python overhead: Transformers' modules, hooks and
keyword plumbing cost more than the matrix products. This forward does the same operations in
the same order and dtype (so it gives the same tokens, which a test checks) with a fraction of
the calls. Architectures it does not know use the model's own forward.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel

from .attention import additive_mask, batch_invariant_attention
from .kv_cache import PagedKVCache
from .quantization import fuse_siblings, fused_layer

# Plain pre-norm decoders with rotary positions, RMSNorm and a SiLU-gated MLP.
SUPPORTED = {"llama", "qwen2", "mistral"}


Projection = Callable[[torch.Tensor], torch.Tensor]
Projections = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def _projections(layers: list[nn.Module]) -> Projections:
    """Sibling projections of one input: one product where they were fused at load
    (quantization.py), else one each. Each is its module's forward, called without nn.Module's
    hook machinery: a plain or a quantised linear layer alike."""
    fused = fused_layer(layers)
    if fused is not None:
        sizes = [layer.out_features for layer in layers]
        whole = fused.forward
        return lambda x: whole(x).split(sizes, dim=-1)
    forwards = [layer.forward for layer in layers]
    return lambda x: [forward(x) for forward in forwards]


@dataclass
class _Layer:
    ln1: torch.Tensor
    qkv: Projections
    o: Projection
    ln2: torch.Tensor
    gate_up: Projections
    down: Projection


def fast_decoder_for(model: PreTrainedModel) -> FastDecoder | None:
    config = model.config
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    if (
        config.model_type not in SUPPORTED
        or sliding
        or getattr(config, "hidden_act", "silu") != "silu"
        or config._attn_implementation != "batch_invariant"
        or len(set(getattr(model, "hf_device_map", {}).values())) > 1
    ):
        return None
    # One product per group of fp16 siblings; the Transformers path computes through the parts.
    fuse_siblings(model)
    return FastDecoder(model)


class FastDecoder:
    def __init__(self, model: PreTrainedModel) -> None:
        base = model.model
        self.embed = base.embed_tokens.weight
        self.rotary = base.rotary_emb
        self.norm = base.norm.weight
        self.eps = base.norm.variance_epsilon
        self.lm_head: Projection = model.lm_head.forward
        self.heads = model.config.num_attention_heads
        self.kv_heads = model.config.num_key_value_heads
        self.head_dim = getattr(model.config, "head_dim", None) or model.config.hidden_size // self.heads
        self.scaling = base.layers[0].self_attn.scaling
        self.layers = []
        for layer in base.layers:
            attn, mlp = layer.self_attn, layer.mlp
            self.layers.append(
                _Layer(
                    ln1=layer.input_layernorm.weight,
                    qkv=_projections([attn.q_proj, attn.k_proj, attn.v_proj]),
                    o=attn.o_proj.forward,
                    ln2=layer.post_attention_layernorm.weight,
                    gate_up=_projections([mlp.gate_proj, mlp.up_proj]),
                    down=mlp.down_proj.forward,
                )
            )

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # Exactly LlamaRMSNorm: float32 statistics, scaled in the input dtype.
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x32.to(x.dtype)

    @staticmethod
    def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        half = x.shape[-1] // 2
        return (x * cos) + (torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin)

    def __call__(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cache: PagedKVCache,
        logits_to_keep: int | torch.Tensor,
    ) -> torch.Tensor:
        batch, seq = input_ids.shape
        hidden = F.embedding(input_ids, self.embed)
        cos, sin = self.rotary(hidden, position_ids=position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        mask = additive_mask(attention_mask)  # once, not in every layer
        for index, w in enumerate(self.layers):
            residual = hidden
            x = self._rms_norm(hidden, w.ln1)
            q, k, v = w.qkv(x)
            q = q.view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
            k = k.view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
            v = v.view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            k, v = cache.update(k, v, index)
            attn, _ = batch_invariant_attention(None, q, k, v, mask, scaling=self.scaling)  # type: ignore[arg-type]
            hidden = residual + w.o(attn.reshape(batch, seq, -1))
            residual = hidden
            x = self._rms_norm(hidden, w.ln2)
            gate, up = w.gate_up(x)
            hidden = residual + w.down(F.silu(gate) * up)
        hidden = self._rms_norm(hidden, self.norm)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        return self.lm_head(hidden[:, keep])

"""A lean forward pass for Llama-family decoders, reading the Transformers model's own weights.

On a CPU a small model's decode step is mostly Python overhead: Transformers' modules, hooks and
keyword plumbing cost more than the matrix products. This forward does the same operations in
the same order and dtype (so it gives the same tokens, which a test checks) with a fraction of
the calls. Architectures it does not know use the model's own forward.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from transformers import PreTrainedModel

from .attention import batch_invariant_attention
from .kv_cache import SlotKVCache

# Plain pre-norm decoders with rotary positions, RMSNorm and a SiLU-gated MLP.
SUPPORTED = {"llama", "qwen2", "mistral"}


@dataclass
class _Layer:
    ln1: torch.Tensor
    q: torch.Tensor
    k: torch.Tensor
    v: torch.Tensor
    q_bias: torch.Tensor | None
    k_bias: torch.Tensor | None
    v_bias: torch.Tensor | None
    o: torch.Tensor
    ln2: torch.Tensor
    gate: torch.Tensor
    up: torch.Tensor
    down: torch.Tensor


def fast_decoder_for(model: PreTrainedModel) -> FastDecoder | None:
    config = model.config
    sliding = getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True)
    llama_bias = config.model_type == "llama" and getattr(config, "attention_bias", False)
    if (
        config.model_type not in SUPPORTED
        or sliding
        or llama_bias
        or getattr(config, "hidden_act", "silu") != "silu"
        or getattr(config, "mlp_bias", False)
        or config._attn_implementation != "batch_invariant"
        or len(set(getattr(model, "hf_device_map", {}).values())) > 1
    ):
        return None
    return FastDecoder(model)


class FastDecoder:
    def __init__(self, model: PreTrainedModel) -> None:
        base = model.model
        self.embed = base.embed_tokens.weight
        self.rotary = base.rotary_emb
        self.norm = base.norm.weight
        self.eps = base.norm.variance_epsilon
        self.lm_head = model.lm_head.weight
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
                    q=attn.q_proj.weight,
                    k=attn.k_proj.weight,
                    v=attn.v_proj.weight,
                    q_bias=attn.q_proj.bias,
                    k_bias=attn.k_proj.bias,
                    v_bias=attn.v_proj.bias,
                    o=attn.o_proj.weight,
                    ln2=layer.post_attention_layernorm.weight,
                    gate=mlp.gate_proj.weight,
                    up=mlp.up_proj.weight,
                    down=mlp.down_proj.weight,
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
        cache: SlotKVCache,
        logits_to_keep: int | torch.Tensor,
    ) -> torch.Tensor:
        batch, seq = input_ids.shape
        hidden = F.embedding(input_ids, self.embed)
        cos, sin = self.rotary(hidden, position_ids=position_ids)
        cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)
        for index, w in enumerate(self.layers):
            residual = hidden
            x = self._rms_norm(hidden, w.ln1)
            q = F.linear(x, w.q, w.q_bias).view(batch, seq, self.heads, self.head_dim).transpose(1, 2)
            k = F.linear(x, w.k, w.k_bias).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
            v = F.linear(x, w.v, w.v_bias).view(batch, seq, self.kv_heads, self.head_dim).transpose(1, 2)
            q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
            k, v = cache.update(k, v, index)
            attn, _ = batch_invariant_attention(None, q, k, v, attention_mask, scaling=self.scaling)  # type: ignore[arg-type]
            hidden = residual + F.linear(attn.reshape(batch, seq, -1), w.o)
            residual = hidden
            x = self._rms_norm(hidden, w.ln2)
            hidden = residual + F.linear(F.silu(F.linear(x, w.gate)) * F.linear(x, w.up), w.down)
        hidden = self._rms_norm(hidden, self.norm)
        keep = slice(-logits_to_keep, None) if isinstance(logits_to_keep, int) else logits_to_keep
        return F.linear(hidden[:, keep], self.lm_head)

"""A lean forward pass for Llama-family decoders, reading the Transformers model's own weights.

The family: Llama 1/2/3 (Llama 3's RoPE scaling comes with the model's own rotary module), Qwen2
and 2.5 (biased q/k/v), Qwen3 (RMSNorm on each head's queries and keys), Mistral (without a
sliding window narrower than its context), Phi-3 (q/k/v and gate/up joined in its weights) and
GLM-4 (norms after attention and MLP too, half the dims turned, pairwise).

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

from .attention import additive_mask, paged_attention
from .kv_cache import PagedKVCache, Plan
from .native import kernels
from .quantization import fused_layer

# Plain pre-norm decoders with rotary positions, RMSNorm and a SiLU-gated MLP.
SUPPORTED = {"llama", "qwen2", "qwen3", "mistral", "phi3", "glm4"}


@dataclass
class Rows:
    """Rows of a forward pass that attend together: [batch, q_len] tokens, padded alike."""

    input_ids: torch.Tensor
    positions: torch.Tensor
    mask: torch.Tensor  # [batch, 1, q_len, plan.kv_len]: which keys each position sees
    plan: Plan
    keep: int | torch.Tensor  # logits of the last `keep` positions, or of these positions


Projection = Callable[[torch.Tensor], torch.Tensor]
Projections = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def _projections(layers: list[nn.Module]) -> Projections:
    """Sibling projections of one input: one product where they were joined at load
    (quantization.fuse_siblings), else one each. Each is its module's forward, called without nn.Module's
    hook machinery: a plain or a quantised linear layer alike."""
    fused = fused_layer(layers)
    if fused is not None:
        sizes = [layer.out_features for layer in layers]
        whole = fused.forward
        return lambda x: whole(x).split(sizes, dim=-1)
    forwards = [layer.forward for layer in layers]
    return lambda x: [forward(x) for forward in forwards]


def _split(layer: nn.Module, sizes: list[int]) -> Projections:
    """A projection stored joined (Phi-3's qkv_proj and gate_up_proj), cut into its parts."""
    whole = layer.forward
    return lambda x: whole(x).split(sizes, dim=-1)


def _weight(module: nn.Module, name: str) -> torch.Tensor | None:
    norm = getattr(module, name, None)
    return None if norm is None else norm.weight


@dataclass
class _Layer:
    ln1: torch.Tensor
    qkv: Projections
    o: Projection
    ln2: torch.Tensor
    gate_up: Projections
    down: Projection
    q_norm: torch.Tensor | None  # Qwen3's RMSNorm of each head's queries and keys
    k_norm: torch.Tensor | None
    post_attn: torch.Tensor | None  # GLM-4's RMSNorm of the attention's and the MLP's outputs
    post_mlp: torch.Tensor | None


def runs_fast(model: PreTrainedModel) -> bool:
    """Whether the fast decoder can run this model (the loader then joins its siblings). Its
    attention sees every earlier key: a sliding window must reach over the whole context."""
    config = model.config
    window = getattr(config, "sliding_window", None) if getattr(config, "use_sliding_window", True) else None
    sliding = window is not None and window < config.max_position_embeddings
    return not (
        config.model_type not in SUPPORTED
        or sliding
        or getattr(config, "hidden_act", "silu") != "silu"
        or config._attn_implementation != "batch_invariant"
        or len(set(getattr(model, "hf_device_map", {}).values())) > 1
    )


def fast_decoder_for(model: PreTrainedModel) -> FastDecoder | None:
    return FastDecoder(model) if runs_fast(model) else None


class FastDecoder:
    def __init__(self, model: PreTrainedModel) -> None:
        base = model.model
        self.embed = base.embed_tokens.weight
        self.rotary = base.rotary_emb
        self.norm = base.norm.weight
        self.eps = base.norm.variance_epsilon
        self.lm_head: Projection = model.lm_head.forward
        # GLM-4 turns dims (0, 1), (2, 3)... where Llama turns (0, d/2), (1, d/2 + 1)...
        self.pairwise = model.config.model_type == "glm4"
        self.heads = model.config.num_attention_heads
        self.kv_heads = model.config.num_key_value_heads
        self.head_dim = getattr(model.config, "head_dim", None) or model.config.hidden_size // self.heads
        self.scaling = base.layers[0].self_attn.scaling
        qkv_sizes = [self.heads * self.head_dim, *[self.kv_heads * self.head_dim] * 2]
        self.layers = []
        for layer in base.layers:
            attn, mlp = layer.self_attn, layer.mlp
            joined = hasattr(attn, "qkv_proj")
            gate_up = getattr(mlp, "gate_up_proj", None)
            self.layers.append(
                _Layer(
                    ln1=layer.input_layernorm.weight,
                    qkv=_split(attn.qkv_proj, qkv_sizes)
                    if joined
                    else _projections([attn.q_proj, attn.k_proj, attn.v_proj]),
                    o=attn.o_proj.forward,
                    ln2=layer.post_attention_layernorm.weight,
                    gate_up=_split(gate_up, [model.config.intermediate_size] * 2)
                    if gate_up is not None
                    else _projections([mlp.gate_proj, mlp.up_proj]),
                    down=mlp.down_proj.forward,
                    q_norm=_weight(attn, "q_norm"),
                    k_norm=_weight(attn, "k_norm"),
                    post_attn=_weight(layer, "post_self_attn_layernorm"),
                    post_mlp=_weight(layer, "post_mlp_layernorm"),
                )
            )

    def _rms_norm(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        # Exactly LlamaRMSNorm: float32 statistics, scaled in the input dtype.
        x32 = x.to(torch.float32)
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + self.eps)
        return weight * x32.to(x.dtype)

    def _rotate(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        # Partial rotary (Phi-4-mini, GLM-4): the first dims turn, the rest pass.
        if (dims := cos.shape[-1]) < x.shape[-1]:
            return torch.cat((self._rotate(x[..., :dims], cos, sin), x[..., dims:]), dim=-1)
        if self.pairwise:
            turned = torch.stack((-x[..., 1::2], x[..., 0::2]), dim=-1).flatten(-2)
            return (x * cos) + (turned * sin)
        half = x.shape[-1] // 2
        return (x * cos) + (torch.cat((-x[..., half:], x[..., :half]), dim=-1) * sin)

    def __call__(self, groups: Sequence[Rows], cache: PagedKVCache) -> list[torch.Tensor]:
        """Logits of each group's kept positions. The groups share every matrix product (one call
        on all their tokens) and attend apart, each over its own keys."""
        shapes = [tuple(g.input_ids.shape) for g in groups]
        sizes = [b * n for b, n in shapes]
        hidden = F.embedding(torch.cat([g.input_ids.reshape(-1) for g in groups]), self.embed)
        rotations = []
        for g in groups:
            cos, sin = self.rotary(hidden, position_ids=g.positions)
            if self.pairwise:  # each angle for a pair of neighbouring dims, as GLM-4 pairs them
                cos, sin = (t[..., : t.shape[-1] // 2].repeat_interleave(2, dim=-1) for t in (cos, sin))
            rotations.append((cos.unsqueeze(1), sin.unsqueeze(1)))
        # The fallback attention's additive masks, once, not in every layer (the native kernel
        # reads the positions instead).
        masks = [g.mask if kernels() else additive_mask(g.mask) for g in groups]
        for index, w in enumerate(self.layers):
            residual = hidden
            x = self._rms_norm(hidden, w.ln1)
            attended = []
            split = (t.split(sizes) for t in w.qkv(x))
            for (b, n), g, (cos, sin), mask, q, k, v in zip(
                shapes, groups, rotations, masks, *split, strict=True
            ):
                q = q.view(b, n, self.heads, self.head_dim)
                k = k.view(b, n, self.kv_heads, self.head_dim)
                if w.q_norm is not None and w.k_norm is not None:
                    q, k = self._rms_norm(q, w.q_norm), self._rms_norm(k, w.k_norm)
                q, k = q.transpose(1, 2), k.transpose(1, 2)
                v = v.view(b, n, self.kv_heads, self.head_dim).transpose(1, 2)
                q, k = self._rotate(q, cos, sin), self._rotate(k, cos, sin)
                attn = paged_attention(q, k, v, cache, index, g.plan, g.positions, mask, self.scaling)
                attended.append(attn.reshape(b * n, -1))
            out = w.o(attended[0] if len(attended) == 1 else torch.cat(attended))
            hidden = residual + (out if w.post_attn is None else self._rms_norm(out, w.post_attn))
            residual = hidden
            x = self._rms_norm(hidden, w.ln2)
            gate, up = w.gate_up(x)
            out = w.down(F.silu(gate) * up)
            hidden = residual + (out if w.post_mlp is None else self._rms_norm(out, w.post_mlp))
        hidden = self._rms_norm(hidden, self.norm)
        kept = [
            h.view(b, n, -1)[:, slice(-g.keep, None) if isinstance(g.keep, int) else g.keep]
            for (b, n), g, h in zip(shapes, groups, hidden.split(sizes), strict=True)
        ]
        if len(kept) == 1:
            return [self.lm_head(kept[0])]
        logits = self.lm_head(torch.cat([k.reshape(-1, k.shape[-1]) for k in kept]))
        return [
            part.view(*k.shape[:2], -1)
            for part, k in zip(logits.split([k.shape[0] * k.shape[1] for k in kept]), kept, strict=True)
        ]

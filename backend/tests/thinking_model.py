"""A tiny model that thinks, built at run time: SmolLM2's tokenizer with `<think>`, `</think>` and
the Hermes tool-call tags added, a chat template that renders earlier thinking (as Qwen3's reads
`reasoning_content`) and, by default, opens `<think>` in its generation prompt (as DeepSeek-R1
distills' does), and a one-layer Llama whose random weights are rewired so that each token alone
decides the next: a bigram table, so the answer to any prompt is known in advance.

From `<think>`, the end of the generation prompt, it writes THOUGHT, `</think>` and ANSWER, then
`<|im_end|>`. After `</think>`, CALL is its second choice (a logit_bias against ANSWER's first
token makes it the first)."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from server_process import CHAT_MODEL_DIR

NAME = "tiny-thinker"
THOUGHT = "Let me think."
ANSWER = "Hello!"
CALL = '{"name":"now","arguments":{}}'  # compact: each of its tokens differs from the others

_TURNS = (
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' + message.role + '\\n' }}"
    "{%- if message.role == 'assistant' and message.reasoning_content is defined "
    "and message.reasoning_content -%}"
    "{{ '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}"
    "{%- endif -%}"
    "{{ message.content + '<|im_end|>\\n' }}"
    "{%- endfor -%}"
)


def template(opens_thinking: bool) -> str:
    """The chat template; `opens_thinking`: its generation prompt ends with `<think>`."""
    prompt = "<|im_start|>assistant\\n" + ("<think>" if opens_thinking else "")
    return _TURNS + "{%- if add_generation_prompt -%}{{ '" + prompt + "' }}{%- endif -%}"


def thinking_tokenizer(opens_thinking: bool = True) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(CHAT_MODEL_DIR)
    tokenizer.add_tokens(["<think>", "</think>", "<tool_call>", "</tool_call>"])
    tokenizer.chat_template = template(opens_thinking)
    return tokenizer


def build(path: Path) -> None:
    """Writes the model folder at `path`."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = thinking_tokenizer()
    eos = tokenizer.eos_token_id

    def tokens(*pieces: str) -> list[int]:
        # Piece by piece: "\n\n" is then its own token, not the "\n" after <think> twice.
        return [token for piece in pieces for token in tokenizer.encode(piece)]

    answer = [*tokens("<think>", "\n", THOUGHT, "</think>", "\n\n", ANSWER), eos]
    call = [*tokens("</think>", "<tool_call>", CALL, "</tool_call>"), eos]
    # token -> {next token: weight}; the strongest next token wins.
    table: dict[int, dict[int, float]] = {}
    for ids, weight in ((answer, 4.0), (call, 2.0)):
        for token, following in pairwise(ids):
            assert token == call[0] or token not in table, f"token {token} would have two successors"
            table.setdefault(token, {})[following] = weight
    torch.manual_seed(0)
    hidden = 64
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=False,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=eos,
    )
    model = LlamaForCausalLM(config)
    assert len(table) <= hidden
    with torch.no_grad():
        # No attention and no MLP output: the last hidden state is the token's own embedding.
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        for k, (token, following) in enumerate(table.items()):
            model.model.embed_tokens.weight[token] = torch.nn.functional.one_hot(torch.tensor(k), hidden)
            for successor, weight in following.items():
                # The final norm scales a one-hot row by sqrt(hidden): logits of 8 x weight.
                model.lm_head.weight[successor, k] = weight
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)

# ruff: noqa: E501 (the chat templates keep their own long lines)
"""Tiny random-weight models of each model family the server supports, built at run time.

Each family is its Transformers config class at test size (hidden 64, 2 layers), SmolLM2's
tokenizer with the family's special tokens added, and the family's chat template as its models
ship it (written out below for string contents; the real ones also take lists of parts). The
weights are rewired as in thinking_model.py: no attention or MLP output, so each token alone
decides the next (a bigram table), and from the end of the generation prompt the model writes
the family's tool call of `now` ({} arguments), then its end-of-turn token. Without tools that
call is the answer's text; with them, the server must read it as a call.

`random_model` builds the same configs with all their random weights, to compare forwards.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import torch
from server_process import CHAT_MODEL_DIR

HIDDEN = 64

LLAMA2 = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}"
    "{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}"
    "{% set system_message = false %}{% endif %}"
    "{% for message in loop_messages %}"
    "{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
    "{% if loop.index0 == 0 and system_message != false %}"
    "{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
    "{% else %}{% set content = message['content'] %}{% endif %}"
    "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}"
    "{% elif message['role'] == 'assistant' %}{{ ' ' + content.strip() + ' ' + eos_token }}{% endif %}"
    "{% endfor %}"
)

# Llama 3.1's: tools go into the first user message; calls are JSON with "parameters".
LLAMA3 = """{{- bos_token }}
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- if messages[0]['role'] == 'system' %}
    {%- set system_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
{%- else %}
    {%- set system_message = "" %}
{%- endif %}
{{- "<|start_header_id|>system<|end_header_id|>\\n\\n" }}
{%- if tools is not none %}{{- "Environment: ipython\\n" }}{%- endif %}
{{- "Cutting Knowledge Date: December 2023\\nToday Date: 26 Jul 2024\\n\\n" }}
{{- system_message }}
{{- "<|eot_id|>" }}
{%- if tools is not none %}
    {%- set first_user_message = messages[0]['content']|trim %}
    {%- set messages = messages[1:] %}
    {{- '<|start_header_id|>user<|end_header_id|>\\n\\n' -}}
    {{- "Given the following functions, please respond with a JSON for a function call " }}
    {{- "with its proper arguments that best answers the given prompt.\\n\\n" }}
    {{- 'Respond in the format {"name": function name, "parameters": dictionary of argument name and its value}.' }}
    {{- "Do not use variables.\\n\\n" }}
    {%- for t in tools %}{{- t | tojson(indent=4) }}{{- "\\n\\n" }}{%- endfor %}
    {{- first_user_message + "<|eot_id|>"}}
{%- endif %}
{%- for message in messages %}
    {%- if not (message.role == 'ipython' or message.role == 'tool' or 'tool_calls' in message) %}
        {{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}
    {%- elif 'tool_calls' in message %}
        {%- set tool_call = message.tool_calls[0].function %}
        {%- if builtin_tools is defined and tool_call.name in builtin_tools %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n<|python_tag|>' + tool_call.name }}
        {%- else %}
            {{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' -}}
            {{- '{"name": "' + tool_call.name + '", "parameters": ' + tool_call.arguments | tojson + '}' }}
        {%- endif %}
        {{- "<|eot_id|>" }}
    {%- else %}
        {{- "<|start_header_id|>ipython<|end_header_id|>\\n\\n" + message.content + "<|eot_id|>" }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}
"""

_QWEN_TOOLS = (
    "{{- '\\n\\n# Tools\\n\\nYou may call one or more functions to assist with the user query.\\n\\n"
    "You are provided with function signatures within <tools></tools> XML tags:\\n<tools>' }}"
    "{%- for tool in tools %}{{- '\\n' }}{{- tool | tojson }}{%- endfor %}"
    "{{- '\\n</tools>\\n\\nFor each function call, return a json object with function name and "
    "arguments within <tool_call></tool_call> XML tags:\\n<tool_call>\\n"
    '{\\"name\\": <function-name>, \\"arguments\\": <args-json-object>}\\n</tool_call><|im_end|>\\n\' }}'
)
_QWEN_TURNS = """{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant" and not message.tool_calls) %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- elif message.role == "assistant" %}
        {{- '<|im_start|>' + message.role }}
        {%- if message.content %}{{- '\\n' + message.content }}{%- endif %}
        {%- for tool_call in message.tool_calls %}
            {%- if tool_call.function is defined %}{%- set tool_call = tool_call.function %}{%- endif %}
            {{- '\\n<tool_call>\\n{"name": "' + tool_call.name + '", "arguments": ' + tool_call.arguments | tojson + '}\\n</tool_call>' }}
        {%- endfor %}
        {{- '<|im_end|>\\n' }}
    {%- elif message.role == "tool" %}
        {%- if (loop.index0 == 0) or (messages[loop.index0 - 1].role != "tool") %}{{- '<|im_start|>user' }}{%- endif %}
        {{- '\\n<tool_response>\\n' + message.content + '\\n</tool_response>' }}
        {%- if loop.last or (messages[loop.index0 + 1].role != "tool") %}{{- '<|im_end|>\\n' }}{%- endif %}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}
"""
# Qwen 2.5's: a default system message, tools in it.
QWEN2 = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] }}"
    "{%- else %}{{- 'You are Qwen, created by Alibaba Cloud. You are a helpful assistant.' }}{%- endif %}"
    + _QWEN_TOOLS
    + "{%- else %}{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
    "{%- else %}{{- '<|im_start|>system\\nYou are Qwen, created by Alibaba Cloud. You are a helpful "
    "assistant.<|im_end|>\\n' }}{%- endif %}{%- endif %}" + _QWEN_TURNS
)
# Qwen 3's: no default system message; earlier thinking as <think> blocks; thinking switchable.
QWEN3 = (
    "{%- if tools %}{{- '<|im_start|>system\\n' }}"
    "{%- if messages[0].role == 'system' %}{{- messages[0].content + '\\n\\n' }}{%- endif %}"
    + _QWEN_TOOLS.replace("'\\n\\n# Tools", "'# Tools")
    + "{%- elif messages[0].role == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0].content + '<|im_end|>\\n' }}{%- endif %}"
    + _QWEN_TURNS.replace(
        "{%- if message.content %}{{- '\\n' + message.content }}{%- endif %}",
        "{{- '\\n' }}{%- if message.reasoning_content %}"
        "{{- '<think>\\n' + message.reasoning_content + '\\n</think>\\n\\n' }}{%- endif %}"
        "{%- if message.content %}{{- message.content }}{%- endif %}",
    ).replace(
        "{{- '<|im_start|>assistant\\n' }}",
        "{{- '<|im_start|>assistant\\n' }}{%- if enable_thinking is defined and enable_thinking is false %}"
        "{{- '<think>\\n\\n</think>\\n\\n' }}{%- endif %}",
    )
)

# Mistral 7B v0.3's: tools before the last user message; calls after [TOOL_CALLS] with 9-character ids.
MISTRAL = """{%- if messages[0]["role"] == "system" %}
    {%- set system_message = messages[0]["content"] %}
    {%- set loop_messages = messages[1:] %}
{%- else %}
    {%- set loop_messages = messages %}
{%- endif %}
{%- if not tools is defined %}{%- set tools = none %}{%- endif %}
{%- set user_messages = loop_messages | selectattr("role", "equalto", "user") | list %}
{{- bos_token }}
{%- for message in loop_messages %}
    {%- if message["role"] == "user" %}
        {%- if tools is not none and (message == user_messages[-1]) %}
            {{- "[AVAILABLE_TOOLS] [" }}
            {%- for tool in tools %}
                {{- '{"type": "function", "function": ' + tool.function | tojson + '}' }}
                {%- if not loop.last %}{{- ", " }}{%- else %}{{- "]" }}{%- endif %}
            {%- endfor %}
            {{- "[/AVAILABLE_TOOLS]" }}
        {%- endif %}
        {%- if loop.last and system_message is defined %}
            {{- "[INST] " + system_message + "\\n\\n" + message["content"] + "[/INST]" }}
        {%- else %}
            {{- "[INST] " + message["content"] + "[/INST]" }}
        {%- endif %}
    {%- elif message.tool_calls is defined and message.tool_calls is not none %}
        {{- "[TOOL_CALLS] [" }}
        {%- for tool_call in message.tool_calls %}
            {%- if not tool_call.id is defined or tool_call.id|length != 9 %}
                {{- raise_exception("Tool call IDs should be alphanumeric strings with length 9!") }}
            {%- endif %}
            {{- '{"name": "' + tool_call.function.name + '", "arguments": ' + tool_call.function.arguments | tojson + ', "id": "' + tool_call.id + '"}' }}
            {%- if not loop.last %}{{- ", " }}{%- else %}{{- "]" + eos_token }}{%- endif %}
        {%- endfor %}
    {%- elif message["role"] == "assistant" %}
        {{- " " + message["content"]|trim + eos_token}}
    {%- elif message["role"] == "tool" %}
        {{- '[TOOL_RESULTS] {"content": ' + message.content|tojson + ', "call_id": "' + message.tool_call_id + '"}[/TOOL_RESULTS]' }}
    {%- else %}
        {{- raise_exception("Only user and assistant roles are supported, with the exception of an initial optional system message!") }}
    {%- endif %}
{%- endfor %}
"""

_ALTERNATE = (
    "{%- if (message['role'] == 'user') != (loop.index0 % 2 == 0) -%}"
    "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{%- endif -%}"
    "{%- if (message['role'] == 'assistant') -%}{%- set role = 'model' -%}"
    "{%- else -%}{%- set role = message['role'] -%}{%- endif -%}"
)
# Gemma 2's: no system role at all.
GEMMA2 = (
    "{{ bos_token }}{% if messages[0]['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
    "{% endif %}{% for message in messages %}" + _ALTERNATE + "{{ '<start_of_turn>' + role + '\\n' + "
    "message['content'] | trim + '<end_of_turn>\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{'<start_of_turn>model\\n'}}{% endif %}"
)
# Gemma 3's: a system message opens the first user turn.
GEMMA3 = (
    "{{ bos_token }}{%- if messages[0]['role'] == 'system' -%}"
    "{%- set first_user_prefix = messages[0]['content'] + '\\n\\n' -%}{%- set loop_messages = messages[1:] -%}"
    "{%- else -%}{%- set first_user_prefix = '' -%}{%- set loop_messages = messages -%}{%- endif -%}"
    "{%- for message in loop_messages -%}" + _ALTERNATE + "{{ '<start_of_turn>' + role + '\\n' + "
    "(first_user_prefix if loop.first else '') }}{{ message['content'] | trim }}{{ '<end_of_turn>\\n' }}"
    "{%- endfor -%}{%- if add_generation_prompt -%}{{'<start_of_turn>model\\n'}}{%- endif -%}"
)
PHI3 = (
    "{% for message in messages %}{% if message['role'] == 'system' %}"
    "{{'<|system|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'user' %}"
    "{{'<|user|>\\n' + message['content'] + '<|end|>\\n'}}{% elif message['role'] == 'assistant' %}"
    "{{'<|assistant|>\\n' + message['content'] + '<|end|>\\n'}}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% else %}{{ eos_token }}{% endif %}"
)
# GLM-4-0414's turns and its tool section: a call is the function's name after `<|assistant|>`,
# then its arguments' JSON on the next line; results come back as `<|observation|>` turns.
GLM4 = (
    "[gMASK]<sop>{%- if tools -%}<|system|>\n# 可用工具{%- for tool in tools %}"
    "{%- set function = tool.function if tool.get('function') else tool %}\n\n## {{ function.name }}\n\n"
    "{{ function | tojson(indent=4, ensure_ascii=False) }}\n在调用上述函数时，请使用 Json 格式表示调用的参数。"
    "{%- endfor %}{%- endif -%}"
    "{%- for msg in messages %}{%- if msg.role == 'system' %}<|system|>\n{{ msg.content }}"
    "{%- elif msg.role == 'user' %}<|user|>\n{{ msg.content }}"
    "{%- elif msg.role == 'assistant' %}{%- if msg.content %}<|assistant|>\n{{ msg.content }}{%- endif %}"
    "{%- for tc in msg.tool_calls or [] %}<|assistant|>{{ tc.function.name }}\n{{ tc.function.arguments }}"
    "{%- endfor %}"
    "{%- elif msg.role == 'tool' %}<|observation|>\n{{ msg.content }}{%- endif %}{%- endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)

HERMES_CALL = ("<tool_call>", '{"name":"now","arguments":{}}', "</tool_call>")


@dataclass(frozen=True)
class Family:
    name: str  # the served model's name
    model_type: str
    config: Callable[..., Any]  # (**sizes) -> a Transformers config
    template: str
    special: tuple[str, ...]  # special tokens added to the tokenizer
    bos: str
    eos: str  # the tokenizer's end token (the template's eos_token)
    stops: tuple[str, ...]  # the end-of-turn tokens generation stops at
    markers: tuple[str, ...]  # what a rendered prompt holds
    call: tuple[str, ...]  # the call of `now` as the model writes it, piece by piece
    tool_format: str  # what app.serving.tools.tool_format reads from the tokenizer
    plain: tuple[str, ...] = ()  # added tokens that are not special (Qwen's <tool_call>)
    extra: dict[str, Any] = field(default_factory=dict)  # config fields of the family

    def tokenizer(self) -> Any:
        """SmolLM2's tokenizer made the family's: one per family (callers only read it)."""
        if (tokenizer := _TOKENIZERS.get(self.name)) is None:
            tokenizer = copy.deepcopy(_base_tokenizer())  # 4x cheaper than reading it again
            tokenizer.add_tokens(list(self.special), special_tokens=True)
            tokenizer.add_tokens(list(self.plain))
            tokenizer.bos_token, tokenizer.eos_token = self.bos, self.eos
            tokenizer.chat_template = self.template
            _TOKENIZERS[self.name] = tokenizer
        return tokenizer

    def make_config(self, tokenizer: Any, layers: int = 2, hidden: int = HIDDEN) -> Any:
        return self.config(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            head_dim=hidden // 4,
            tie_word_embeddings=False,
            bos_token_id=tokenizer.convert_tokens_to_ids(self.bos),
            eos_token_id=[tokenizer.convert_tokens_to_ids(t) for t in self.stops],
            pad_token_id=tokenizer.convert_tokens_to_ids(self.eos),
            **self.extra,
        )


_TOKENIZERS: dict[str, Any] = {}


@functools.cache
def _base_tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(CHAT_MODEL_DIR)


def _config(name: str) -> Callable[..., Any]:
    def make(**fields: Any) -> Any:
        import transformers

        return getattr(transformers, name)(**fields)

    return make


QWEN_SPECIAL = ("<|im_start|>", "<|im_end|>")
FAMILIES = [
    # Llama 1 and 2 share the architecture; Llama 2's template.
    Family(
        "tiny-llama2", "llama", _config("LlamaConfig"), LLAMA2, ("<s>", "</s>"), "<s>", "</s>", ("</s>",),
        ("<s>[INST] ", " [/INST]"), HERMES_CALL, "hermes", plain=HERMES_CALL[::2],
    ),
    Family(
        "tiny-llama3", "llama", _config("LlamaConfig"), LLAMA3,
        ("<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>",
         "<|python_tag|>"),
        "<|begin_of_text|>", "<|eot_id|>", ("<|eot_id|>", "<|eom_id|>"),
        ("<|start_header_id|>user<|end_header_id|>", "<|eot_id|>"),
        ("<|python_tag|>", '{"name":"now","parameters":{}}'), "llama3_json",
        extra={
            "max_position_embeddings": 131072,
            "rope_parameters": {
                "rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                "high_freq_factor": 4.0, "original_max_position_embeddings": 8192,
            },
        },
    ),
    Family(
        "tiny-qwen2", "qwen2", _config("Qwen2Config"), QWEN2, QWEN_SPECIAL, "<|im_start|>", "<|im_end|>",
        ("<|im_end|>",), ("<|im_start|>system\nYou are Qwen",), HERMES_CALL, "hermes",
        plain=HERMES_CALL[::2],
    ),
    Family(
        "tiny-qwen3", "qwen3", _config("Qwen3Config"), QWEN3, QWEN_SPECIAL, "<|im_start|>", "<|im_end|>",
        ("<|im_end|>",), ("<|im_start|>user\n",), HERMES_CALL, "hermes",
        plain=(*HERMES_CALL[::2], "<think>", "</think>"),
    ),
    # Mistral 7B's sliding window: served through Transformers.
    Family(
        "tiny-mistral", "mistral", _config("MistralConfig"), MISTRAL,
        ("<s>", "</s>", "[INST]", "[/INST]", "[TOOL_CALLS]", "[AVAILABLE_TOOLS]", "[/AVAILABLE_TOOLS]",
         "[TOOL_RESULTS]", "[/TOOL_RESULTS]"),
        "<s>", "</s>", ("</s>",), ("<s>[INST] ", "[/INST]"),
        ("[TOOL_CALLS]", '[{"name":"now","arguments":{}}]'), "mistral", extra={"sliding_window": 4096},
    ),
    Family(
        "tiny-gemma2", "gemma2", _config("Gemma2Config"), GEMMA2,
        ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"), "<bos>", "<eos>", ("<eos>", "<end_of_turn>"),
        ("<bos><start_of_turn>user\n", "<start_of_turn>model\n"), HERMES_CALL, "hermes",
        plain=HERMES_CALL[::2], extra={"query_pre_attn_scalar": HIDDEN // 4, "sliding_window": 64},
    ),
    Family(
        "tiny-gemma3", "gemma3_text", _config("Gemma3TextConfig"), GEMMA3,
        ("<bos>", "<eos>", "<start_of_turn>", "<end_of_turn>"), "<bos>", "<eos>", ("<eos>", "<end_of_turn>"),
        ("<bos><start_of_turn>user\n", "<start_of_turn>model\n"), HERMES_CALL, "hermes",
        plain=HERMES_CALL[::2], extra={"query_pre_attn_scalar": HIDDEN // 4, "sliding_window": 64},
    ),
    Family(
        "tiny-phi3", "phi3", _config("Phi3Config"), PHI3,
        ("<s>", "<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"), "<s>", "<|endoftext|>",
        ("<|endoftext|>", "<|end|>"), ("<|user|>\n", "<|end|>\n<|assistant|>\n"), HERMES_CALL, "hermes",
        plain=HERMES_CALL[::2], extra={"partial_rotary_factor": 0.75},  # as Phi-4-mini's
    ),
    Family(
        "tiny-glm4", "glm4", _config("Glm4Config"), GLM4,
        ("<|endoftext|>", "[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>"),
        "[gMASK]", "<|endoftext|>", ("<|endoftext|>", "<|user|>", "<|observation|>"),
        ("[gMASK]<sop><|user|>\n", "<|assistant|>"), ("now", "\n{}"), "glm4",
    ),
]  # fmt: skip
BY_NAME = {f.name: f for f in FAMILIES}


def random_model(family: Family, layers: int = 2, hidden: int = HIDDEN, seed: int = 0) -> tuple[Any, Any]:
    """The family's model with all its random weights (float32), and its tokenizer."""
    from transformers import AutoModelForCausalLM

    tokenizer = family.tokenizer()
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(
        family.make_config(tokenizer, layers, hidden), dtype=torch.float32
    )
    return model.eval(), tokenizer


def prompt_end(tokenizer: Any) -> int:
    """The last token of the chat template's generation prompt."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Hi"}], add_generation_prompt=True, tokenize=False
    )
    return int(tokenizer.encode(text, add_special_tokens=False)[-1])


def build(family: Family, path: Path) -> None:
    """Writes the family's calling model folder at `path` (see the module's docstring)."""
    model, tokenizer = random_model(family)
    chain = [prompt_end(tokenizer)]
    for piece in family.call:
        chain += tokenizer.encode(piece, add_special_tokens=False)
    chain.append(tokenizer.convert_tokens_to_ids(family.stops[0]))
    table = dict(pairwise(chain))
    assert len(table) == len(chain) - 1 <= HIDDEN, f"{family.name}: a token of {chain} has two successors"
    with torch.no_grad():
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        model.lm_head.weight.zero_()
        for k, (token, successor) in enumerate(table.items()):
            # Every norm scales a one-hot row to sqrt(HIDDEN) (Gemma's embedding is scaled by it
            # first): a logit of 8 x 4 for the successor, 0 for every other token.
            model.model.embed_tokens.weight[token] = torch.nn.functional.one_hot(torch.tensor(k), HIDDEN)
            model.lm_head.weight[successor, k] = 4.0
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)

"""POST /v1/chat/completions, non-streamed: schema, messages, chat template, usage, lengths."""

from __future__ import annotations

from typing import Any

import openai
from api_support import SchemaValidator, chat_prompt_len
from server_process import CHAT_MODEL

# SmolLM2 answers this at temperature 0 in 8 tokens and then stops by itself.
SHORT_ANSWER = [{"role": "user", "content": "What is 2+2? Answer with a number only."}]


def test_response_matches_schema(client: openai.OpenAI, schemas: SchemaValidator) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=CHAT_MODEL, messages=SHORT_ANSWER, max_tokens=4, temperature=0
    )
    body = raw.http_response.json()
    schemas.validate("CreateChatCompletionResponse", body)
    assert body["object"] == "chat.completion"
    assert body["model"] == CHAT_MODEL
    choice = body["choices"][0]
    # Required by the spec even when not asked for: present and null.
    assert "logprobs" in choice and choice["logprobs"] is None
    assert "refusal" in choice["message"] and choice["message"]["refusal"] is None
    assert choice["message"]["role"] == "assistant"
    assert isinstance(choice["message"]["content"], str) and choice["message"]["content"]
    parsed = raw.parse()
    assert parsed.choices[0].message.content == choice["message"]["content"]


def test_natural_stop_is_finish_reason_stop(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=SHORT_ANSWER, max_tokens=16, temperature=0
    )
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage is not None
    assert resp.usage.completion_tokens < 16
    assert "4" in (resp.choices[0].message.content or "")
    # The end-of-turn token is not text.
    assert "<|im_end|>" not in (resp.choices[0].message.content or "")


def test_ignore_eos_generates_exactly_max_tokens(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=SHORT_ANSWER, max_tokens=12, temperature=0, extra_body={"ignore_eos": True}
    )
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 12
    assert resp.choices[0].finish_reason == "length"


def test_max_tokens_cuts_with_finish_reason_length(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Tell me a story."}],
        max_tokens=3,
        temperature=0,
    )
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 3
    assert resp.choices[0].finish_reason == "length"


def test_max_completion_tokens_is_honoured(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": "Tell me a story."}],
        max_completion_tokens=5,
        temperature=0,
    )
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 5
    assert resp.choices[0].finish_reason == "length"


def test_usage_is_exact_for_system_user_assistant(client: openai.OpenAI, tokenizer: Any) -> None:
    messages: list[Any] = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue."},
        {"role": "user", "content": "Another one."},
    ]
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=messages, max_tokens=6, temperature=0, extra_body={"ignore_eos": True}
    )
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == chat_prompt_len(tokenizer, messages)
    assert resp.usage.completion_tokens == 6
    assert resp.usage.total_tokens == resp.usage.prompt_tokens + resp.usage.completion_tokens


def test_template_adds_default_system_prompt_only_without_system(
    client: openai.OpenAI, tokenizer: Any
) -> None:
    # SmolLM2's template inserts its own system message when none is given: the count shows it was used.
    messages: list[Any] = [{"role": "user", "content": "Name a colour."}]
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=1, temperature=0)
    assert resp.usage is not None
    assert resp.usage.prompt_tokens == chat_prompt_len(tokenizer, messages)
    with_system = [{"role": "system", "content": "Hi."}, *messages]
    resp2 = client.chat.completions.create(
        model=CHAT_MODEL, messages=with_system, max_tokens=1, temperature=0
    )
    assert resp2.usage is not None
    assert resp2.usage.prompt_tokens == chat_prompt_len(tokenizer, with_system)
    assert resp2.usage.prompt_tokens < resp.usage.prompt_tokens


def test_content_as_list_of_text_parts_equals_string_content(client: openai.OpenAI) -> None:
    text = "Name three fruits."
    as_string = client.chat.completions.create(
        model=CHAT_MODEL, messages=[{"role": "user", "content": text}], max_tokens=8, temperature=0
    )
    as_parts = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "user", "content": [{"type": "text", "text": text}]}],
        max_tokens=8,
        temperature=0,
    )
    assert as_parts.choices[0].message.content == as_string.choices[0].message.content
    assert as_parts.usage is not None and as_string.usage is not None
    assert as_parts.usage.prompt_tokens == as_string.usage.prompt_tokens


def test_system_message_as_text_parts_is_accepted(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "You are terse."}]},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "text", "text": " there"}]},
        ],
        max_tokens=2,
        temperature=0,
    )
    assert resp.choices[0].finish_reason in ("stop", "length")


def test_user_field_is_accepted(client: openai.OpenAI) -> None:
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=SHORT_ANSWER, max_tokens=2, temperature=0, user="user-1234"
    )
    assert resp.choices[0].message.content is not None


def test_default_response_format_text_is_accepted(client: openai.OpenAI) -> None:
    # The default value of an unimplemented-looking field must not be refused.
    resp = client.chat.completions.create(
        model=CHAT_MODEL, messages=SHORT_ANSWER, max_tokens=2, temperature=0, response_format={"type": "text"}
    )
    assert resp.choices[0].message.content is not None


def test_chat_equals_completion_of_the_templated_prompt(client: openai.OpenAI, tokenizer: Any) -> None:
    # The model's own chat template, exactly: the rendered prompt completes to the same text.
    messages: list[Any] = [{"role": "system", "content": "You are terse."}, *SHORT_ANSWER]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    chat = client.chat.completions.create(model=CHAT_MODEL, messages=messages, max_tokens=8, temperature=0)
    completion = client.completions.create(model=CHAT_MODEL, prompt=rendered, max_tokens=8, temperature=0)
    assert chat.choices[0].message.content == completion.choices[0].text
    assert chat.usage is not None and completion.usage is not None
    assert chat.usage.prompt_tokens == completion.usage.prompt_tokens

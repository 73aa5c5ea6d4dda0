"""POST /tokenize and /detokenize (vLLM's shapes): counts that match what generation reads."""

from __future__ import annotations

from typing import Any

import httpx
import openai
from api_support import assert_error
from server_process import CHAT_MODEL

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"}]


def test_prompt_form_counts_the_tokenizer_ids(http: httpx.Client, tokenizer: Any) -> None:
    text = "Tokenizers split text into pieces: 日本語 too."
    body = http.post(
        "/tokenize", json={"model": CHAT_MODEL, "prompt": text, "return_token_strs": True}
    ).json()
    assert body["tokens"] == tokenizer.encode(text)
    assert body["count"] == len(body["tokens"])
    assert body["max_model_len"] > body["count"]
    assert body["token_strs"] == tokenizer.convert_ids_to_tokens(body["tokens"])
    back = http.post("/detokenize", json={"model": CHAT_MODEL, "tokens": body["tokens"]}).json()
    assert back == {"prompt": text}


def test_chat_form_counts_what_a_completion_reads(http: httpx.Client, client: openai.OpenAI) -> None:
    body = http.post("/tokenize", json={"model": CHAT_MODEL, "messages": MESSAGES}).json()
    assert "token_strs" not in body or body["token_strs"] is None
    resp = client.chat.completions.create(model=CHAT_MODEL, messages=MESSAGES, max_tokens=1)  # type: ignore[arg-type]
    assert resp.usage is not None and body["count"] == resp.usage.prompt_tokens


def test_tokenizer_errors(http: httpx.Client, base_url: str) -> None:
    assert_error(http.post("/tokenize", json={"model": "nope", "prompt": "x"}), 404, param="model")
    assert_error(http.post("/tokenize", json={"model": CHAT_MODEL}), 400)
    assert_error(http.post("/tokenize", json={"model": CHAT_MODEL, "prompt": "x", "messages": MESSAGES}), 400)
    assert_error(
        http.post("/detokenize", json={"model": CHAT_MODEL, "tokens": [10**9]}), 400, param="tokens[0]"
    )
    assert_error(
        http.post("/detokenize", json={"model": CHAT_MODEL, "tokens": [-1]}), 400, param_prefix="tokens"
    )
    # The API key guards these routes as it guards /v1.
    assert httpx.post(f"{base_url}/tokenize", json={"model": CHAT_MODEL, "prompt": "x"}).status_code == 401

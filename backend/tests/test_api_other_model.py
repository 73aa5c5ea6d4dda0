"""Another Hugging Face causal-LM folder works by changing one setting: a tiny, randomly initialised
GPT-2 (learned positions, no rotary embedding, no grouped KV heads: unlike SmolLM2 in every way that
matters to a KV cache) with SmolLM2's tokenizer, served with no embedding model at all."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import torch
from api_support import REQUEST_TIMEOUT_S, assert_error, chat_stream_text, post_stream
from server_process import CHAT_MODEL_DIR, EMBEDDING_MODEL, ServerProcess, start_server

NAME = "tiny-gpt2"
MESSAGES = [{"role": "user", "content": "Hi there, how are you?"}]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    path = tmp_path_factory.mktemp("other-model") / NAME
    tokenizer = AutoTokenizer.from_pretrained(CHAT_MODEL_DIR)
    torch.manual_seed(0)
    # A wide initialisation gives peaked logits, so greedy decoding has no near-ties to flip.
    config = GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=512,
        n_embd=64,
        n_layer=2,
        n_head=4,
        initializer_range=0.3,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    GPT2LMHeadModel(config).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def other(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("other") / "server.log",
        CHAT_MODEL_PATH=str(folder),
        CHAT_MODEL_NAME=NAME,
        EMBEDDING_MODEL_PATH="",
        DTYPE="float32",  # to compare with Transformers' own fp32 generate
    )
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def other_http(other: ServerProcess) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=other.url, timeout=REQUEST_TIMEOUT_S) as c:
        yield c


def chat_body(**extra: Any) -> dict[str, Any]:
    body = {"model": NAME, "messages": MESSAGES, "max_tokens": 12, "temperature": 0, "ignore_eos": True}
    return body | extra


def test_only_the_configured_model_is_served(other_http: httpx.Client) -> None:
    resp = other_http.get("/v1/models")
    assert resp.status_code == 200
    assert [m["id"] for m in resp.json()["data"]] == [NAME]
    assert_error(
        other_http.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hi"}),
        404,
        code="model_not_found",
    )


def test_greedy_output_equals_transformers_generate(folder: Path, other_http: httpx.Client) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    encoded = tokenizer.apply_chat_template(
        MESSAGES, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    ids = encoded["input_ids"]
    # Plain greedy steps over the whole sequence: no KV cache, and an EOS is just another token.
    generated = ids
    with torch.no_grad():
        for _ in range(12):
            next_id = model(generated).logits[0, -1].argmax()
            generated = torch.cat([generated, next_id.view(1, 1)], dim=1)
    expected = tokenizer.decode(generated[0, ids.shape[1] :], skip_special_tokens=True)
    resp = other_http.post("/v1/chat/completions", json=chat_body())
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["model"] == NAME
    assert body["usage"]["prompt_tokens"] == ids.shape[1]
    assert body["choices"][0]["message"]["content"] == expected


def test_stream_equals_non_stream(other_http: httpx.Client) -> None:
    plain = other_http.post("/v1/chat/completions", json=chat_body()).json()
    stream = post_stream(other_http, "/v1/chat/completions", chat_body(stream=True))
    assert chat_stream_text(stream.chunks) == plain["choices"][0]["message"]["content"]

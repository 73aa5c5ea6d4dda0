"""POST /v1/embeddings: string and list input, float and base64, normalised vectors, semantics."""

from __future__ import annotations

import base64
import math
import struct

import httpx
import openai
import pytest
from api_support import SchemaValidator, assert_error, assert_serves
from server_process import EMBEDDING_MODEL

DIM = 384  # all-MiniLM-L6-v2


def norm(v: list[float]) -> float:
    return math.sqrt(sum(x * x for x in v))


def cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (norm(a) * norm(b))


def test_float_response_matches_schema(http: httpx.Client, schemas: SchemaValidator) -> None:
    resp = http.post(
        "/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hello world", "encoding_format": "float"}
    )
    assert resp.status_code == 200, resp.text
    body = resp.json()
    schemas.validate("CreateEmbeddingResponse", body)
    assert body["model"] == EMBEDDING_MODEL
    assert len(body["data"]) == 1
    vector = body["data"][0]["embedding"]
    assert len(vector) == DIM
    assert math.isclose(norm(vector), 1.0, abs_tol=1e-3)
    assert body["usage"]["prompt_tokens"] > 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"]


def test_base64_decodes_to_the_float_vector(http: httpx.Client) -> None:
    def embed(fmt: str) -> httpx.Response:
        resp = http.post(
            "/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hello world", "encoding_format": fmt}
        )
        assert resp.status_code == 200, resp.text
        return resp

    as_float = embed("float").json()["data"][0]["embedding"]
    encoded = embed("base64").json()["data"][0]["embedding"]
    assert isinstance(encoded, str)
    raw = base64.b64decode(encoded)
    # OpenAI's base64 is little-endian float32, as the SDK decodes it.
    decoded = list(struct.unpack(f"<{len(raw) // 4}f", raw))
    assert len(decoded) == DIM
    assert all(math.isclose(a, b, abs_tol=1e-6) for a, b in zip(decoded, as_float, strict=True))


def test_sdk_default_base64_single_string(client: openai.OpenAI) -> None:
    resp = client.embeddings.create(model=EMBEDDING_MODEL, input="The quick brown fox")
    assert len(resp.data) == 1
    assert len(resp.data[0].embedding) == DIM
    assert math.isclose(norm(resp.data[0].embedding), 1.0, abs_tol=1e-3)


def test_sdk_list_input_keeps_order(client: openai.OpenAI) -> None:
    texts = ["first sentence", "a second, rather different one", "third"]
    batch = client.embeddings.create(model=EMBEDDING_MODEL, input=texts, encoding_format="float")
    assert [d.index for d in batch.data] == [0, 1, 2]
    for text, item in zip(texts, batch.data, strict=True):
        single = client.embeddings.create(model=EMBEDDING_MODEL, input=text).data[0].embedding
        # Batched (padded) and single inputs give the same vector.
        assert cosine(single, item.embedding) > 0.9999
        assert math.isclose(norm(item.embedding), 1.0, abs_tol=1e-3)
    assert batch.usage.prompt_tokens > 0


def test_paraphrase_is_closer_than_unrelated(client: openai.OpenAI) -> None:
    anchor, paraphrase, unrelated = (
        d.embedding
        for d in client.embeddings.create(
            model=EMBEDDING_MODEL,
            input=[
                "The cat is sitting on the mat.",
                "A cat sits on the rug.",
                "Stock markets fell sharply after the interest rate decision.",
            ],
        ).data
    )
    assert cosine(anchor, paraphrase) > cosine(anchor, unrelated) + 0.2


def test_dimensions_is_refused(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.embeddings.create(model=EMBEDDING_MODEL, input="hi", dimensions=64)
    assert info.value.status_code == 400
    assert_error(
        http.post("/v1/embeddings", json={"model": EMBEDDING_MODEL, "input": "hi", "dimensions": 64}),
        400,
        param="dimensions",
    )
    assert_serves(http)


def test_unknown_embedding_model_is_404(http: httpx.Client) -> None:
    assert_error(
        http.post("/v1/embeddings", json={"model": "no-such-embedder", "input": "hi"}),
        404,
        code="model_not_found",
    )


@pytest.mark.parametrize(
    "body",
    [
        {"model": EMBEDDING_MODEL, "input": "hi", "encoding_format": "hex"},
        {"model": EMBEDDING_MODEL, "input": 12},
        {"model": EMBEDDING_MODEL},
        {"model": EMBEDDING_MODEL, "input": []},
        {"model": EMBEDDING_MODEL, "input": ""},
        # Longer than the model's 256-token window.
        {"model": EMBEDDING_MODEL, "input": "word " * 3000},
    ],
    ids=["bad-encoding", "number-input", "missing-input", "empty-list", "empty-string", "too-long"],
)
def test_invalid_embedding_requests(http: httpx.Client, body: dict[str, object]) -> None:
    expected = "encoding_format" if "encoding_format" in body else "input"
    assert_error(http.post("/v1/embeddings", json=body), 400, param=expected)
    assert_serves(http)


def test_inputs_over_the_per_request_token_cap_are_refused(http: httpx.Client) -> None:
    # 2,048 inputs of about 20 tokens: within OpenAI's count, over MAX_EMBEDDING_TOKENS (32,768).
    body = {"model": EMBEDDING_MODEL, "input": ["lorem ipsum dolor sit amet " * 4] * 2048}
    error = assert_error(
        http.post("/v1/embeddings", json=body), 400, param="input", code="max_tokens_per_request"
    )
    assert "MAX_EMBEDDING_TOKENS" in error["message"], error
    assert_serves(http)

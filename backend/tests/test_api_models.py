"""GET /v1/models, /v1/models/{id}, /health and /docs."""

from __future__ import annotations

import re
import time

import httpx
import openai
import pytest
from api_support import SchemaValidator, assert_error, stream_in_background, tiny_chat
from server_process import CHAT_MODEL, EMBEDDING_MODEL


def test_list_models_matches_schema_and_lists_both_models(
    http: httpx.Client, schemas: SchemaValidator
) -> None:
    resp = http.get("/v1/models")
    assert resp.status_code == 200
    body = resp.json()
    schemas.validate("ListModelsResponse", body)
    ids = [m["id"] for m in body["data"]]
    assert CHAT_MODEL in ids
    assert EMBEDDING_MODEL in ids


def test_sdk_lists_models(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {CHAT_MODEL, EMBEDDING_MODEL} <= ids


@pytest.mark.parametrize("model", [CHAT_MODEL, EMBEDDING_MODEL])
def test_retrieve_model(client: openai.OpenAI, schemas: SchemaValidator, model: str) -> None:
    raw = client.models.with_raw_response.retrieve(model)
    schemas.validate("Model", raw.http_response.json())
    parsed = raw.parse()
    assert parsed.id == model
    assert parsed.object == "model"


def test_retrieve_unknown_model_is_404_model_not_found(client: openai.OpenAI, http: httpx.Client) -> None:
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("no-such-model")
    assert_error(http.get("/v1/models/no-such-model"), 404, code="model_not_found")


def test_health(http: httpx.Client) -> None:
    resp = http.get("/health")
    assert resp.status_code == 200


def test_docs_and_openapi_are_served(http: httpx.Client) -> None:
    docs = http.get("/docs")
    assert docs.status_code == 200
    assert "text/html" in docs.headers["content-type"]
    spec = http.get("/openapi.json")
    assert spec.status_code == 200
    paths = spec.json()["paths"]
    for path in ("/v1/models", "/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/health"):
        assert path in paths, f"{path} missing from /openapi.json"
    # Every schema it points to is in it (clients are generated from it).
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', spec.text))
    assert "ModelLoadRequest" in refs
    assert refs <= set(spec.json()["components"]["schemas"]), refs - set(spec.json()["components"]["schemas"])


def test_cors_preflight_for_an_allowed_origin_needs_no_key(base_url: str) -> None:
    # Browsers send preflights without credentials, so the API key must not block them.
    resp = httpx.options(
        f"{base_url}/v1/chat/completions",
        headers={
            "Origin": "http://localhost:5173",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
        timeout=30,
    )
    assert resp.status_code == 200, resp.text
    assert resp.headers.get("access-control-allow-origin") == "http://localhost:5173"


def test_cors_allows_configured_origins_only(http: httpx.Client) -> None:
    allowed = http.get("/v1/models", headers={"Origin": "http://127.0.0.1:5173"})
    assert allowed.headers.get("access-control-allow-origin") == "http://127.0.0.1:5173"
    other = http.get("/v1/models", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_event_loop_stays_responsive_during_generation(http: httpx.Client, base_url: str) -> None:
    # The model runs off the event loop: /health answers at once while a long answer is generated.
    long_answer = tiny_chat(max_tokens=250, ignore_eos=True, stream=True)
    with stream_in_background(
        base_url, "/v1/chat/completions", long_answer, started_within=60, timeout=120, headers=http.headers
    ) as worker:
        during: list[float] = []
        while worker.is_alive() and len(during) < 8:
            started = time.monotonic()
            assert http.get("/health").status_code == 200
            elapsed = time.monotonic() - started
            if worker.is_alive():
                during.append(elapsed)
            time.sleep(0.2)
    assert len(during) >= 3, "the long answer ended too soon to measure anything"
    assert max(during) < 2.0, f"/health blocked while generating: {during}"

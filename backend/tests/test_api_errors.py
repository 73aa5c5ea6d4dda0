"""The one error contract: every error is an OpenAI ErrorResponse with the right status and param,
and after any bad request the server answers the next good one normally."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from api_support import API_KEY, assert_error, assert_serves, chat_prompt_len, tiny_chat
from server_process import CHAT_MODEL, EMBEDDING_MODEL, REPO_ROOT, ServerProcess

CHAT = "/v1/chat/completions"
COMPLETIONS = "/v1/completions"


def tiny_completion(**extra: Any) -> dict[str, Any]:
    return {"model": CHAT_MODEL, "prompt": "Hi", "max_tokens": 1, "temperature": 0, **extra}


def without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


def user(content: Any, role: str = "user") -> dict[str, Any]:
    return {"model": CHAT_MODEL, "max_tokens": 1, "messages": [{"role": role, "content": content}]}


# (path, body, param): each must be a 400 naming `param` (a prefix for fields inside messages).
INVALID: list[tuple[str, dict[str, Any], str]] = [
    (CHAT, tiny_chat(temperature=2.5), "temperature"),
    (CHAT, tiny_chat(temperature=-0.1), "temperature"),
    (CHAT, tiny_chat(temperature="hot"), "temperature"),
    (CHAT, tiny_chat(max_tokens=-1), "max_tokens"),
    (CHAT, tiny_chat(max_tokens="ten"), "max_tokens"),
    (CHAT, {**without(tiny_chat(), "max_tokens"), "max_completion_tokens": -5}, "max_completion_tokens"),
    (CHAT, tiny_chat(top_p=1.5), "top_p"),
    (CHAT, tiny_chat(n=0), "n"),
    (CHAT, tiny_chat(presence_penalty=3), "presence_penalty"),
    (CHAT, tiny_chat(frequency_penalty=-3), "frequency_penalty"),
    (CHAT, tiny_chat(repetition_penalty=0), "repetition_penalty"),
    (CHAT, tiny_chat(top_k="many"), "top_k"),
    (CHAT, tiny_chat(logprobs=True, top_logprobs=21), "top_logprobs"),
    (CHAT, tiny_chat(seed="abc"), "seed"),
    # Beyond the int64 range OpenAI's schema allows for a seed.
    (CHAT, tiny_chat(seed=2**70), "seed"),
    (CHAT, tiny_chat(stop=["a", "b", "c", "d", "e"]), "stop"),
    (CHAT, tiny_chat(stop=5), "stop"),
    (CHAT, tiny_chat(stream="maybe"), "stream"),
    (CHAT, tiny_chat(ignore_eos="sometimes"), "ignore_eos"),
    (CHAT, {**tiny_chat(), "messages": []}, "messages"),
    (CHAT, {**tiny_chat(), "messages": "hello"}, "messages"),
    (CHAT, without(tiny_chat(), "messages"), "messages"),
    (CHAT, user("Hi", role="wizard"), "messages"),
    (CHAT, {**tiny_chat(), "messages": [{"role": "user"}]}, "messages"),
    (CHAT, {**tiny_chat(), "messages": [{"content": "Hi"}]}, "messages"),
    (CHAT, user([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]), "messages"),
    (CHAT, user([{"type": "text"}]), "messages"),
    (CHAT, without(tiny_chat(), "model"), "model"),
    # Fields of OpenAI's schema that we do not implement, with non-default values.
    (CHAT, tiny_chat(tools=[{"type": "custom", "custom": {"name": "f"}}]), "tools[0].type"),
    (
        CHAT,
        tiny_chat(tools=[{"type": "function", "function": {"name": "no spaces allowed"}}]),
        "tools[0].function.name",
    ),
    (CHAT, tiny_chat(tool_choice="sometimes"), "tool_choice"),
    (
        CHAT,
        tiny_chat(response_format={"type": "json_schema", "json_schema": {"schema": {}}}),
        "response_format.json_schema.name",
    ),
    (CHAT, tiny_chat(modalities=["text", "audio"]), "modalities"),
    # stream_options would silently do nothing without stream (OpenAI refuses it too).
    (CHAT, tiny_chat(stream_options={"include_usage": True}), "stream_options"),
    (CHAT, tiny_chat(audio={"voice": "alloy", "format": "mp3"}), "audio"),
    # logit_bias keys are token ids in ASCII digits; int() takes "٣" as 3 and refuses "²" (a 500).
    (CHAT, tiny_chat(logit_bias={"²": 1}), "logit_bias"),
    (CHAT, tiny_chat(logit_bias={"①": 1}), "logit_bias"),
    (CHAT, tiny_chat(logit_bias={"٣": 1}), "logit_bias"),
    (CHAT, tiny_chat(logit_bias={"-1": 1}), "logit_bias"),
    # Strict types, as OpenAI's: a string where a number or a boolean belongs is refused.
    (CHAT, tiny_chat(max_tokens="1"), "max_tokens"),
    (CHAT, tiny_chat(stream="no"), "stream"),
    (CHAT, tiny_chat(stream="true"), "stream"),
    (CHAT, tiny_chat(temperature="0.5"), "temperature"),
    (CHAT, tiny_chat(n="2"), "n"),
    (CHAT, tiny_chat(logprobs="true"), "logprobs"),
    (CHAT, tiny_chat(max_tokens=True), "max_tokens"),
    (CHAT, tiny_chat(seed=1.5), "seed"),
    # Not in OpenAI's schema at all.
    (CHAT, tiny_chat(frobnicate=1), "frobnicate"),
    (COMPLETIONS, tiny_completion(temperature=3), "temperature"),
    (COMPLETIONS, tiny_completion(max_tokens=-2), "max_tokens"),
    (COMPLETIONS, without(tiny_completion(), "prompt"), "prompt"),
    (COMPLETIONS, tiny_completion(prompt=None), "prompt"),
    (COMPLETIONS, tiny_completion(logprobs=6), "logprobs"),
    (COMPLETIONS, tiny_completion(suffix="end"), "suffix"),
    (COMPLETIONS, tiny_completion(frobnicate=True), "frobnicate"),
    (COMPLETIONS, tiny_completion(echo="yes"), "echo"),
    (COMPLETIONS, tiny_completion(logit_bias={"²": 1}), "logit_bias"),
    # More sequences than the engine ever holds (16 running + 64 waiting by default): they could
    # never be admitted, so a 429 would have the client retry forever.
    (COMPLETIONS, tiny_completion(prompt=["Hi"] * 81), "prompt"),
    (COMPLETIONS, tiny_completion(prompt=["Hi"] * 6, n=16), "n"),
]


@pytest.mark.parametrize(("path", "body", "param"), INVALID, ids=[f"{p[4:]}-{x}" for p, _, x in INVALID])
def test_invalid_request_is_400_naming_param(
    http: httpx.Client, path: str, body: dict[str, Any], param: str
) -> None:
    if param == "messages":
        assert_error(http.post(path, json=body), 400, param_prefix="messages")
    else:
        assert_error(http.post(path, json=body), 400, param=param)
    assert_serves(http)


@pytest.mark.parametrize("top_k", [100_000, 2**63, 10**30])
def test_top_k_beyond_the_vocabulary_is_clamped_or_refused(http: httpx.Client, top_k: int) -> None:
    # Sampled (not greedy), so top_k is really applied; "more than the vocabulary" means all of it.
    resp = http.post(CHAT, json=tiny_chat(max_tokens=2, temperature=1, top_k=top_k))
    if resp.status_code != 200:
        assert_error(resp, 400, param="top_k")
    assert_serves(http)


def test_sdk_raises_bad_request_naming_param(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        client.chat.completions.create(
            model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}], max_tokens=1, temperature=5
        )
    assert info.value.status_code == 400
    assert isinstance(info.value.body, dict)
    assert info.value.body.get("param") == "temperature"


@pytest.mark.parametrize(
    "content",
    [
        b'{"model": "x", "messages": [',
        b"not json at all",
        b"",
        b"[1, 2, 3]",
        b'{"model": "\xff\xfe"}',
        b"null",
    ],
    ids=["truncated", "garbage", "empty", "array", "invalid-utf8", "null"],
)
@pytest.mark.parametrize("path", [CHAT, COMPLETIONS, "/v1/embeddings"])
def test_malformed_body_is_400(http: httpx.Client, path: str, content: bytes) -> None:
    resp = http.post(path, content=content, headers={"content-type": "application/json"})
    assert_error(resp, 400)
    assert_serves(http)


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (
            CHAT,
            b'{"model": "%s", "max_tokens": 1, "messages": [{"role": "user", "content": "\\ud83d hi"}]}',
            "messages",
        ),
        (COMPLETIONS, b'{"model": "%s", "max_tokens": 1, "prompt": "\\udfff"}', "prompt"),
        ("/v1/embeddings", b'{"model": "%s", "input": "\\ud83d"}', "input"),
    ],
    ids=["chat", "completions", "embeddings"],
)
def test_lone_surrogate_is_not_a_server_error(http: httpx.Client, path: str, body: bytes, param: str) -> None:
    # Valid JSON, but "\ud83d" alone is no character: handle it or refuse it, never a 500.
    model = EMBEDDING_MODEL if "embeddings" in path else CHAT_MODEL
    resp = http.post(path, content=body % model.encode(), headers={"content-type": "application/json"})
    if resp.status_code != 200:
        assert_error(resp, 400, param_prefix=param)
    assert_serves(http)


@pytest.mark.parametrize(
    ("path", "rest"),
    [
        (CHAT, b'"max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]'),
        (COMPLETIONS, b'"max_tokens": 1, "prompt": "Hi"'),
        ("/v1/embeddings", b'"input": "Hi"'),
    ],
    ids=["chat", "completions", "embeddings"],
)
@pytest.mark.parametrize("model", [b"\\ud800", b"\\udfff x"])
def test_lone_surrogate_as_model_is_a_400(http: httpx.Client, path: str, rest: bytes, model: bytes) -> None:
    # A 404 naming such a model cannot be encoded as UTF-8: it used to be a 500.
    body = b'{"model": "' + model + b'", ' + rest + b"}"
    assert_error(
        http.post(path, content=body, headers={"content-type": "application/json"}), 400, param="model"
    )
    assert_serves(http)


@pytest.mark.parametrize(
    ("path", "body", "says"),
    [
        # Not "should be a valid string (got list)": the list is the right type, and too long.
        (CHAT, tiny_chat(stop=["a", "b", "c", "d", "e"]), "at most 4"),
        (CHAT, user([{"type": "image_url", "image_url": {"url": "http://x/y.png"}}]), "image_url"),
        (CHAT, user([{"type": "input_audio", "input_audio": {"data": "", "format": "wav"}}]), "input_audio"),
        ("/v1/embeddings", {"model": EMBEDDING_MODEL, "input": ["word"] * 10_000}, "at most 2048"),
        (CHAT, tiny_chat(max_tokens="1"), "integer"),
    ],
    ids=["5-stops", "image-url", "input-audio", "10000-inputs", "string-for-integer"],
)
def test_messages_say_what_is_wrong(http: httpx.Client, path: str, body: dict[str, Any], says: str) -> None:
    error = assert_error(http.post(path, json=body), 400)
    assert says in error["message"], error
    assert "valid string" not in error["message"], error


def test_nulls_mean_defaults(http: httpx.Client) -> None:
    body = tiny_chat(
        max_tokens=2,
        temperature=None,
        top_p=None,
        stop=None,
        seed=None,
        n=None,
        presence_penalty=None,
        user=None,
    )
    resp = http.post(CHAT, json=body)
    assert resp.status_code == 200, resp.text


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (CHAT, tiny_chat(model="no-such-model")),
        (COMPLETIONS, tiny_completion(model="no-such-model")),
        # The embedding model cannot chat, and the chat model is not an embedder here.
        (CHAT, tiny_chat(model=EMBEDDING_MODEL)),
    ],
    ids=["chat", "completions", "embedder-for-chat"],
)
def test_unknown_model_is_404_model_not_found(http: httpx.Client, path: str, body: dict[str, Any]) -> None:
    error = assert_error(http.post(path, json=body), 404, code="model_not_found")
    assert error["param"] == "model"
    assert_serves(http)


def test_sdk_unknown_model(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/v1/nope"), ("POST", "/v1/chat/completion"), ("GET", "/v1/models/a/b/c"), ("POST", "/v1")],
)
def test_unknown_route_is_openai_shaped_404(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path, json={}), 404)


# API paths without /v1 whose /v1 route exists: the 404 names it. Then paths of other servers'
# APIs (llama-server, vLLM, Ollama) and /v1 itself: the 404 says where the API is.
MEANT_V1 = [
    ("GET", "/models"),
    ("GET", f"/models/{CHAT_MODEL}"),
    ("POST", "/chat/completions"),
    ("GET", "/chat/completions"),
    ("POST", "/completions"),
    ("POST", "/embeddings"),
]
OTHER_API = [
    "/v1",
    "/slots",
    "/props",
    "/completion",
    "/api/tags",
    "/api/chat",
    "/healthz",
    "/health/ready",
    "/version",
    "/infill",
    "/tokenize/x",
    "/metrics/x",
    "/docs/x",
]


@pytest.mark.parametrize(("method", "path"), MEANT_V1)
def test_path_without_v1_is_a_404_naming_the_route(
    http: httpx.Client, base_url: str, method: str, path: str
) -> None:
    error = assert_error(http.request(method, path, json={}), 404, code="unknown_url")
    assert f"did you mean /v1{path}?" in error["message"], error
    assert f"base URL to {base_url}/v1 " in error["message"], error


@pytest.mark.parametrize("path", OTHER_API)
def test_api_looking_path_is_a_json_404_not_the_page(http: httpx.Client, base_url: str, path: str) -> None:
    """Even asked as a browser asks: a scraper gets JSON that says where the API is."""
    resp = http.get(path, headers={"Accept": "text/html,*/*;q=0.8"})
    error = assert_error(resp, 404, code="unknown_url")
    assert f"OpenAI API is under /v1/: set the client's base URL to {base_url}/v1 " in error["message"]


def test_sdk_without_v1_in_its_base_url_is_told_where_the_api_is(base_url: str) -> None:
    sdk = openai.OpenAI(base_url=base_url, api_key=API_KEY, max_retries=0)
    with pytest.raises(openai.NotFoundError, match="did you mean /v1/models"):
        sdk.models.list()
    with pytest.raises(openai.NotFoundError, match="did you mean /v1/chat/completions"):
        sdk.chat.completions.create(model=CHAT_MODEL, messages=[{"role": "user", "content": "Hi"}])


@pytest.mark.skipif(not (REPO_ROOT / "frontend" / "dist" / "index.html").is_file(), reason="page not built")
def test_page_route_is_the_page_for_a_browser_and_a_json_404_for_an_api_client(base_url: str) -> None:
    browser = httpx.get(f"{base_url}/c/8f2e61", headers={"Accept": "text/html,*/*;q=0.8"}, timeout=30)
    assert browser.status_code == 200
    assert browser.headers["content-type"].startswith("text/html")
    for accept in ("application/json", "application/problem+json, application/json;q=0.5"):
        resp = httpx.get(f"{base_url}/c/8f2e61", headers={"Accept": accept}, timeout=30)
        assert_error(resp, 404, code="unknown_url")


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", CHAT), ("GET", COMPLETIONS), ("GET", "/v1/embeddings"), ("DELETE", "/v1/models"), ("PUT", CHAT)],
)
def test_wrong_method_is_405(http: httpx.Client, method: str, path: str) -> None:
    assert_error(http.request(method, path), 405)
    assert_serves(http)


AUTH_ROUTES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/v1/models", None),
    ("GET", f"/v1/models/{CHAT_MODEL}", None),
    ("POST", CHAT, tiny_chat()),
    ("POST", COMPLETIONS, tiny_completion()),
    ("POST", "/v1/embeddings", {"model": EMBEDDING_MODEL, "input": "hi"}),
]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong-key"}, {"Authorization": API_KEY}, {"Authorization": "Basic eDp5"}],
    ids=["missing", "wrong", "no-bearer", "basic"],
)
@pytest.mark.parametrize(("method", "path", "body"), AUTH_ROUTES, ids=[r[1] for r in AUTH_ROUTES])
def test_wrong_or_missing_key_is_401(
    base_url: str, method: str, path: str, body: dict[str, Any] | None, headers: dict[str, str]
) -> None:
    resp = httpx.request(method, f"{base_url}{path}", json=body, headers=headers, timeout=30)
    assert_error(resp, 401)


def test_sdk_wrong_key(base_url: str) -> None:
    bad = openai.OpenAI(base_url=f"{base_url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_right_key_is_accepted(base_url: str) -> None:
    resp = httpx.get(f"{base_url}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
    assert resp.status_code == 200


def big_body() -> dict[str, Any]:
    # Just over the default 4 MiB limit.
    return tiny_chat(messages=[{"role": "user", "content": "a " * (2 * 1024 * 1024 + 1000)}])


def test_oversized_body_is_413(http: httpx.Client) -> None:
    assert_error(http.post(CHAT, json=big_body()), 413)
    assert_serves(http)


def test_oversized_chunked_body_is_413(http: httpx.Client) -> None:
    # No Content-Length: the limit must hold for a streamed upload as well.
    payload = httpx.Request("POST", "/", json=big_body()).content

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(payload), 64 * 1024):
            yield payload[i : i + 64 * 1024]

    resp = http.post(CHAT, content=chunks(), headers={"content-type": "application/json"})
    assert_error(resp, 413)
    assert_serves(http)


def test_context_length_exceeded_on_default_limit(http: httpx.Client, tokenizer: Any) -> None:
    # SmolLM2's own context is 8192 tokens; this prompt is well over it.
    messages = [{"role": "user", "content": "hello " * 9000}]
    n_prompt = chat_prompt_len(tokenizer, messages)
    error = assert_error(
        http.post(CHAT, json=tiny_chat(messages=messages)), 400, code="context_length_exceeded"
    )
    assert str(n_prompt) in error["message"], error
    assert "8192" in error["message"], error
    assert_serves(http)


ALLOWED_ORIGIN = "http://127.0.0.1:5173"  # the Vite dev server, in CORS_ORIGINS by default


def test_oversized_body_is_413_the_page_can_read(http: httpx.Client) -> None:
    resp = http.post(CHAT, json=big_body(), headers={"Origin": ALLOWED_ORIGIN})
    assert_error(resp, 413)
    assert resp.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN, resp.headers


def test_wrong_key_is_401_the_page_can_read(base_url: str) -> None:
    resp = httpx.get(f"{base_url}/v1/models", headers={"Origin": ALLOWED_ORIGIN}, timeout=30)
    assert_error(resp, 401)
    assert resp.headers.get("access-control-allow-origin") == ALLOWED_ORIGIN, resp.headers


def test_refused_cors_preflight_is_json(base_url: str) -> None:
    resp = httpx.options(
        f"{base_url}{CHAT}",
        headers={"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"},
        timeout=30,
    )
    error = assert_error(resp, 400, code="cors_refused")
    assert "CORS_ORIGINS" in error["message"], error


def test_key_is_checked_before_the_body_is_read(server: ServerProcess) -> None:
    # Headers announcing a 1 MB body, and no body: only a server that reads the body first waits.
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(
            f"POST {CHAT} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000000\r\n\r\n".encode()
        )
        head = sock.recv(4096)
    assert head.startswith(b"HTTP/1.1 401"), head[:200]


@pytest.mark.parametrize(
    ("path", "public"),
    [("/health", True), ("/openapi.json", True), ("/metrics", False), ("/v1/models", False)],
)
def test_public_and_guarded_routes(base_url: str, path: str, public: bool) -> None:
    # With API_KEY set, /metrics (request and token counts, memory) needs the key too.
    resp = httpx.get(f"{base_url}{path}", timeout=30)
    if public:
        assert resp.status_code == 200, resp.text
    else:
        assert_error(resp, 401, code="invalid_api_key")
        keyed = httpx.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=30)
        assert keyed.status_code == 200, keyed.text

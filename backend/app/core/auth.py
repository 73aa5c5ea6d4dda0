"""The API key check, before anything of the request is read (its body included)."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import OpenAIError


class ApiKeyGuard:
    """With a key set, `/v1/…`, `/tokenize`, `/detokenize`, `/models/load`, `/models/unload` (and
    `/metrics` unless made public)
    need `Authorization: Bearer <key>` or, as Anthropic's clients send it, `x-api-key: <key>`;
    the page, `/health` and the API description stay public.
    A request without the key is answered 401 before its body is read, so it costs the server
    nothing."""

    def __init__(self, app: ASGIApp, api_key: str | None, metrics_public: bool) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        api = ("/v1", "/tokenize", "/detokenize", "/models/load", "/models/unload")
        self.guarded = api if metrics_public else (*api, "/metrics")

    def protects(self, path: str) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.guarded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or not self.protects(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        scheme, _, token = headers.get(b"authorization", b"").partition(b" ")
        bearer = scheme.lower() == b"bearer" and secrets.compare_digest(token.strip(), self.expected)
        if bearer or secrets.compare_digest(headers.get(b"x-api-key", b"").strip(), self.expected):
            await self.app(scope, receive, send)
            return
        response = OpenAIError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>' or 'x-api-key: <key>' "
            "(the server's API_KEY).",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        ).response(scope["path"])
        await response(scope, receive, send)

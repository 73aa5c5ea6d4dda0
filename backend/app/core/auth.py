"""The API key check, before anything of the request is read (its body included)."""

from __future__ import annotations

import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import OpenAIError

# What a key (or, with accounts, a signed-in person) is asked for (/api: what people keep on the
# server); the operators' routes among them.
API_PATHS = ("/v1", "/tokenize", "/detokenize", "/api")
OPERATOR_PATHS = ("/models/load", "/models/unload", "/metrics")


class GuardedPaths:
    """The paths a guard protects: the API and the operators' routes (/metrics only when it is not
    made public); the page, /health and the API description stay public."""

    def __init__(self, metrics_public: bool) -> None:
        operator = tuple(p for p in OPERATOR_PATHS if not (metrics_public and p == "/metrics"))
        self.operator = operator
        self.all = (*API_PATHS, *operator)

    @staticmethod
    def _under(path: str, prefixes: tuple[str, ...]) -> bool:
        return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)

    def protects(self, path: str) -> bool:
        return self._under(path, self.all)

    def for_operators(self, path: str) -> bool:
        return self._under(path, self.operator)


class ApiKeyGuard:
    """With a key set, the guarded paths (GuardedPaths) need `Authorization: Bearer <key>` or, as
    Anthropic's clients send it, `x-api-key: <key>`.
    A request without the key is answered 401 before its body is read, so it costs the server
    nothing."""

    def __init__(self, app: ASGIApp, api_key: str | None, metrics_public: bool) -> None:
        self.app = app
        self.expected = api_key.encode() if api_key else None
        self.paths = GuardedPaths(metrics_public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or not self.paths.protects(scope["path"]):
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

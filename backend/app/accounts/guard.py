"""Who sent each request, before any of it is read: the operator's API_KEY, a personal API key
(`Authorization: Bearer` or `x-api-key`), a session cookie, or with AUTH=header a trusted
proxy's X-Forwarded-User/-Email. The answer goes to `request.state.principal` and to the usage
meter (usage.py: what the request's tokens are counted against); the API routes without one get
a 401, a browser request from another site that would change something gets a 403 (CSRF), and a
generation or embedding request over its user's limits a 429 (limits.py)."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Literal
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from ..core.auth import GuardedPaths
from ..core.config import Settings
from ..core.errors import OpenAIError
from ..db.engine import database_url, make_engine
from .limits import Limits, metered
from .network import Network, Peer, parse_networks, peer
from .service import KEY_PREFIX, AccountError, Accounts, Principal, digest
from .throttle import Throttle
from .usage import Meter, UsageBook, metering

log = logging.getLogger(__name__)

SESSION_COOKIE = "localchat_session"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
# How long a replica trusts a personal key it has checked: revoking a key (or disabling its
# owner) takes effect at once on the replica that did it, within this on the others.
KEY_CACHE_S = 10.0


@dataclass
class Gate:
    """What the guard and the /auth routes share: the accounts and the settings they obey."""

    accounts: Accounts
    mode: Literal["password", "header"]
    operator_key: str | None
    trusted: list[Network]
    allowed_origins: list[str]
    metrics_public: bool
    usage: UsageBook
    limits: Limits
    # Failed sign-ins: 5 per account, 20 per address, in any 5 minutes.
    account_failures: Throttle
    address_failures: Throttle
    keys: dict[str, tuple[float, Principal]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: Settings) -> Gate:
        engine = make_engine(database_url(settings.data_dir, settings.database_url))
        if settings.auth == "header" and not settings.trusted_proxies:
            log.warning("AUTH=header with no TRUSTED_PROXIES: no proxy is believed, so nobody can sign in")
        usage = UsageBook(engine, settings.metrics_per_user)
        return cls(
            Accounts(engine, timedelta(hours=settings.session_ttl_hours)),
            "header" if settings.auth == "header" else "password",
            settings.api_key,
            parse_networks(settings.trusted_proxies),
            settings.cors_origins,
            settings.metrics_public,
            usage,
            Limits(settings.user_rpm, settings.user_tokens_per_day, usage),
            Throttle(engine, "account", 5, 300),
            Throttle(engine, "address", 20, 300),
        )

    def forget_keys(self) -> None:
        """After a key is revoked or a user changed: check every key afresh."""
        self.keys.clear()

    async def key_owner(self, token: str) -> Principal | None:
        hashed = digest(token)
        cached = self.keys.get(hashed)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        principal = await asyncio.to_thread(self.accounts.key_principal, token)
        if principal is not None:
            if len(self.keys) > 10_000:
                self.keys.clear()
            self.keys[hashed] = (time.monotonic() + KEY_CACHE_S, principal)
        return principal


def presented_token(headers: dict[bytes, bytes]) -> str | None:
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return headers.get(b"x-api-key", b"").decode("latin-1").strip() or None


def cookie(headers: dict[bytes, bytes], name: str) -> str | None:
    for part in headers.get(b"cookie", b"").decode("latin-1").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name and value:
            return value
    return None


def cross_site(method: str, headers: dict[bytes, bytes], allowed: list[str]) -> bool:
    """A state-changing browser request sent by another site's page. Browsers send
    Sec-Fetch-Site (all current ones) or at least Origin on such requests; SDKs and curl send
    neither and carry no ambient credentials, so they pass."""
    if method in SAFE_METHODS:
        return False
    origin = headers.get(b"origin", b"").decode("latin-1")
    site = headers.get(b"sec-fetch-site", b"").decode("latin-1")
    if origin in allowed or site in ("same-origin", "none"):
        return False
    if site in ("cross-site", "same-site"):
        return True
    # An older browser: no Sec-Fetch-Site, so compare Origin with the host it was sent to.
    if origin and origin != "null":
        return urlsplit(origin).netloc != headers.get(b"host", b"").decode("latin-1")
    return origin == "null"


class AccountGuard:
    def __init__(self, app: ASGIApp, gate: Gate) -> None:
        self.app = app
        self.gate = gate
        self.paths = GuardedPaths(gate.metrics_public)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        # The page, its assets and /health need nobody: no database lookup for them.
        if not (self.paths.protects(path) or path == "/auth" or path.startswith("/auth/")):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        client = peer(scope, headers, self.gate.trusted)
        try:
            if (
                cross_site(scope["method"], headers, self.gate.allowed_origins)
                and presented_token(headers) is None
            ):
                raise OpenAIError(
                    403,
                    "Cross-site request refused: this server only takes changes from its own page "
                    "(or from an SDK with an API key).",
                    type="permission_error",
                    code="csrf_refused",
                )
            principal = await self.identify(headers, client)
            if self.paths.protects(path):
                if principal is None:
                    raise OpenAIError(
                        401,
                        "Sign in, or send an API key as 'Authorization: Bearer <key>' or 'x-api-key: <key>' "
                        "(a personal key from POST /auth/keys, or the server's API_KEY).",
                        code="invalid_api_key",
                        headers={"WWW-Authenticate": "Bearer"},
                    )
                if self.paths.for_operators(path) and not principal.admin:
                    raise OpenAIError(403, f"{path} is for admins.", type="permission_error")
                if metered(scope["method"], path):
                    await self.gate.limits.admit(principal)
        except OpenAIError as exc:
            await exc.response(path)(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        state["principal"] = principal
        state["peer"] = client
        if principal is None:
            await self.app(scope, receive, send)
            return
        meter = Meter(self.gate.usage, principal.user_id, principal.api_key_id, principal.username)
        with metering(meter):
            await self.app(scope, receive, send)

    async def identify(self, headers: dict[bytes, bytes], client: Peer) -> Principal | None:
        token = presented_token(headers)
        if token is not None:
            operator = self.gate.operator_key
            if operator and secrets.compare_digest(token.encode(), operator.encode()):
                return Principal(None, "operator", "admin", "operator")
            owner = await self.gate.key_owner(token) if token.startswith(KEY_PREFIX) else None
            if owner is None:
                raise OpenAIError(
                    401,
                    "This API key is not valid (revoked, mistyped, or its account disabled); "
                    "create one with POST /auth/keys.",
                    code="invalid_api_key",
                    headers={"WWW-Authenticate": "Bearer"},
                )
            return owner
        if self.gate.mode == "header":
            user = headers.get(b"x-forwarded-user", b"").decode("latin-1").strip()
            email = headers.get(b"x-forwarded-email", b"").decode("latin-1").strip() or None
            if client.via_trusted_proxy and (user or email):
                try:
                    return await asyncio.to_thread(self.gate.accounts.header_user, user or email or "", email)
                except AccountError as exc:
                    raise OpenAIError(exc.status, exc.message, code=exc.code) from None
            return None
        session = cookie(headers, SESSION_COOKIE)
        if session is None:
            return None
        return await asyncio.to_thread(self.gate.accounts.session_principal, session)

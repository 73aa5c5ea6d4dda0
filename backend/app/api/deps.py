"""What route handlers need: the loaded services, and the API key check."""

from __future__ import annotations

import secrets

from fastapi import Request

from ..core.config import get_settings
from ..core.errors import OpenAIError
from ..services import Services


def services(request: Request) -> Services:
    loaded: Services | None = getattr(request.app.state, "services", None)
    if loaded is None:
        raise OpenAIError(503, "The model is still loading; retry in a few seconds.", type="server_error")
    return loaded


def require_api_key(request: Request) -> None:
    expected = get_settings().api_key
    if expected is None:
        return
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(token.strip().encode(), expected.encode()):
        raise OpenAIError(
            401,
            "Incorrect or missing API key. Send it as 'Authorization: Bearer <key>' (the server's API_KEY).",
            code="invalid_api_key",
            headers={"WWW-Authenticate": "Bearer"},
        )

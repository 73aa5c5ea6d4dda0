"""What route handlers need: the loaded services."""

from __future__ import annotations

from fastapi import Request

from ..core.errors import OpenAIError
from ..services import Services


def services(request: Request) -> Services:
    loaded: Services | None = getattr(request.app.state, "services", None)
    if loaded is None:
        raise OpenAIError(503, "The model is still loading; retry in a few seconds.", type="server_error")
    return loaded

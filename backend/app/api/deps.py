"""What route handlers need: the loaded services, and blocking service calls made from them."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from fastapi import Request

from ..core.errors import OpenAIError, Refusal
from ..services import Services

P = ParamSpec("P")
T = TypeVar("T")


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """A service call (accounts, storage: database work) off the event loop, its refusals as API
    errors (a conflict's with the server's copy)."""
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except Refusal as exc:
        raise exc.error() from None


def services(request: Request) -> Services:
    loaded: Services | None = getattr(request.app.state, "services", None)
    if loaded is None:
        raise OpenAIError(503, "The model is still loading; retry in a few seconds.", type="server_error")
    return loaded

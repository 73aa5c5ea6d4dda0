"""Serving the built chat page (frontend/dist) beside the API, as a single-page app."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

API_PREFIXES = ("/v1/", "/health", "/metrics", "/docs", "/openapi.json")


class SinglePageApp(StaticFiles):
    """Files from the build, and `index.html` for any other page path (client-side routes)."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            response = await super().get_response("index.html", scope)
        if path.startswith("assets/"):
            # Vite puts a content hash in every asset name: safe to cache for good.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        return response


class FrontendMount(Mount):
    """Mounted at `/` after the API, but never claiming an API path: those keep their 404/405."""

    def __init__(self, app: SinglePageApp) -> None:
        super().__init__("/", app=app, name="frontend")

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        path = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD") or path == "/v1" or path.startswith(API_PREFIXES):
            return Match.NONE, {}
        return super().matches(scope)

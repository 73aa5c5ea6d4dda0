"""Serving the built chat page (frontend/dist) beside the API, as a single-page app."""

from __future__ import annotations

import re
from typing import Any

from starlette.datastructures import Headers
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.responses import Response
from starlette.routing import Match, Mount
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from .errors import OpenAIError

# API paths: this server's, and those of the servers a client may have meant (llama-server,
# vLLM, Ollama, OpenAI's without /v1). An unknown one is a JSON 404, never the page: an SDK or
# a scraper handed HTML fails with a confusing error. deploy/nginx.conf lists the same paths.
API_PATH = re.compile(
    r"/(v1|api|health\w*|metrics|docs|redoc|openapi\.json|models|chat/completions|completions?"
    r"|embeddings?|tokenize|detokenize|apply-template|infill|rerank|reranking|slots|props|lora-adapters"
    r"|version|ping|pooling|score|classify|invocations|responses|auth)(/|$)"
)

# The same policy as deploy/nginx.conf, for the page served without Nginx in front.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self' http: https:; "
        "worker-src 'self' blob:; object-src 'none'; base-uri 'self'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "X-Frame-Options": "DENY",
}


def wants_json(scope: Scope) -> bool:
    """Whether the request's Accept header names JSON and nothing that covers HTML: an API
    client, not a browser navigating (q-values are not weighed, as in deploy/nginx.conf)."""
    accept = Headers(scope=scope).get("accept", "")
    ranges = {item.split(";")[0].strip().lower() for item in accept.split(",")}
    return any(r.endswith("json") for r in ranges) and not ranges & {"text/html", "text/*", "*/*"}


class SinglePageApp(StaticFiles):
    """Files from the build, and `index.html` for any other page path (client-side routes)
    unless an API client asks.

    A missing file (a name with an extension, or anything under assets/) is a 404: answering
    index.html there would cache HTML as a year-immutable script."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            response = await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            if path.startswith("assets/") or "." in path.rsplit("/", 1)[-1]:
                response = OpenAIError(
                    404, f"No file /{path} in the chat page.", code="unknown_url"
                ).response()
                response.headers.update({"Cache-Control": "no-cache", **SECURITY_HEADERS})
                return response
            if wants_json(scope):
                raise  # an API client with a wrong URL: the app's JSON 404 says what to fix
            path = "index.html"
            response = await super().get_response(path, scope)
        if path.startswith("assets/"):
            # Vite puts a content hash in every asset name: safe to cache for good.
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        else:
            response.headers["Cache-Control"] = "no-cache"
        response.headers.update(SECURITY_HEADERS)
        return response


class FrontendMount(Mount):
    """Mounted at `/` after the API, but never claiming an API path: those keep their 404/405.
    The page is gzipped for clients that accept it (its script is ~670 kB, ~210 kB gzipped)."""

    def __init__(self, app: SinglePageApp) -> None:
        super().__init__("/", app=GZipMiddleware(app, minimum_size=512), name="frontend")

    def matches(self, scope: Scope) -> tuple[Match, dict[str, Any]]:
        path = scope.get("path", "")
        if scope.get("method") not in ("GET", "HEAD") or API_PATH.match(path):
            return Match.NONE, {}
        return super().matches(scope)

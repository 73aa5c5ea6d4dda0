"""CORS, with a refused preflight answered in OpenAI's error shape like every other error."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response

from .errors import OpenAIError


class OpenAICORSMiddleware(CORSMiddleware):
    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        refused = bytes(response.body).decode(errors="replace")  # "Disallowed CORS origin, …"
        error = OpenAIError(
            response.status_code,
            f"CORS preflight refused: {refused}. The server's CORS_ORIGINS lists the allowed origins.",
            code="cors_refused",
        ).response()
        for name, value in response.headers.items():
            if name not in ("content-type", "content-length"):
                error.headers[name] = value
        return error

"""One error contract per API: OpenAI's `{"error": {message, type, param, code}}`, and on the
routes of Anthropic's Messages API (/v1/messages…) Anthropic's `{"type": "error", "error":
{type, message}}`. Every error is raised as an OpenAIError and shaped by the path it answers."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger(__name__)


ANTHROPIC_PREFIX = "/v1/messages"
# Anthropic's error type for each status; other statuses are invalid_request_error or api_error.
ANTHROPIC_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def anthropic_route(path: str) -> bool:
    """Whether `path` is one of Anthropic's Messages API routes."""
    return path == ANTHROPIC_PREFIX or path.startswith(ANTHROPIC_PREFIX + "/")


class Refusal(Exception):
    """A request a service below the API (accounts, storage) cannot honour, with the HTTP status
    that says why; the routes answer it as an OpenAIError (`error()`), with `extra` fields beside
    the error where it carries some."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.extra = extra

    def error(self) -> OpenAIError:
        """This refusal as the API answers it."""
        return OpenAIError(self.status, self.message, param=self.param, code=self.code, extra=self.extra)


class OpenAIError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers
        self.extra = extra  # fields beside "error" (a conflict's server copy)

    def body(self) -> dict[str, Any]:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return {"error": error, **(self.extra or {})}

    def anthropic_body(self) -> dict[str, Any]:
        default = "invalid_request_error" if self.status < 500 else "api_error"
        kind = ANTHROPIC_TYPES.get(self.status, default)
        return {"type": "error", "error": {"type": kind, "message": self.message}}

    def response(self, path: str = "") -> JSONResponse:
        """The error in the shape of the API that `path` belongs to."""
        body = self.anthropic_body() if anthropic_route(path) else self.body()
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def model_not_found(name: str) -> OpenAIError:
    return OpenAIError(
        404,
        f"The model '{name}' does not exist. GET /v1/models lists the models served here.",
        param="model",
        code="model_not_found",
    )


def server_busy(message: str) -> OpenAIError:
    """A full queue: 429 with Retry-After, as OpenAI's rate limits answer."""
    return OpenAIError(
        429, message, type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": "1"}
    )


def unknown_url(request: Request) -> OpenAIError:
    """A 404 that says where the API is: a client whose base URL lacks /v1 is told the route
    it meant and the base URL to set."""
    method, path = request.method, request.url.path
    message = f"Unknown request URL: {method} {path}."
    if path.startswith("/v1/"):
        message += " Check the URL and method."
    else:
        meant = {"type": "http", "path": f"/v1{path}", "method": method}
        routed = path != "/v1" and any(r.matches(meant)[0] != Match.NONE for r in request.app.router.routes)
        message += (
            " This server's OpenAI API is under /v1/"
            + (f" (did you mean /v1{path}?)" if routed else "")
            + f": set the client's base URL to {request.base_url}v1 (GET /v1/models lists the models)."
        )
    return OpenAIError(404, message, code="unknown_url")


def _param_from_loc(loc: tuple[int | str, ...]) -> str | None:
    """('body', 'messages', 0, 'role') -> 'messages[0].role'; union-branch tags are dropped."""
    param = ""
    for part in loc[1:] if loc and loc[0] in ("body", "query", "path") else loc:
        if isinstance(part, int):
            param += f"[{part}]"
        elif (
            "[" in part
            or part in ("str", "int", "float", "bool", "list", "dict")
            or "-" in part
            or part[:1].isupper()  # a model's name, tagging a union branch
        ):
            continue
        else:
            param += f".{part}" if param else part
    return param or None


def _telling(errors: Sequence[Any]) -> dict[str, Any]:
    """The error that says what is wrong. Each branch of a union fails on its own; the first
    branch's "should be a valid string" misleads when the value is a list with 5 items, so an
    error from a branch that matched the type (too long, out of range, missing) wins."""
    for error in errors:
        kind = error.get("type", "")
        if not kind.endswith("_type") and kind != "none_required":
            return dict(error)
    return dict(errors[0]) if errors else {"type": "value_error", "loc": (), "msg": "Invalid request."}


def validation_error(errors: Sequence[Any]) -> OpenAIError:
    """OpenAI's 400 for pydantic's errors (locations starting with 'body')."""
    first = _telling(errors)
    loc = tuple(first.get("loc", ()))
    param = _param_from_loc(loc)
    kind = first.get("type", "")
    if kind == "json_invalid" or (kind in ("model_attributes_type", "model_type") and loc == ("body",)):
        return OpenAIError(
            400,
            "We could not parse the JSON body of your request. The body must be a JSON object "
            "(check quoting and that Content-Type is application/json).",
            code="invalid_json",
        )
    if kind == "missing" and loc == ("body",):
        return OpenAIError(400, "The request body is empty: send a JSON object.", code="invalid_json")
    if kind == "extra_forbidden":
        return OpenAIError(400, f"Unrecognized request argument supplied: {param}", param=param)
    if kind == "missing":
        return OpenAIError(
            400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter"
        )
    ctx = first.get("ctx") or {}
    if kind == "too_long":
        return OpenAIError(
            400,
            f"'{param}' holds {ctx.get('actual_length')} items; at most {ctx.get('max_length')} are allowed.",
            param=param,
            code="array_above_max_length",
        )
    got = first.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else type(got).__name__
    if len(shown) > 80:  # a 4 MB string where a number belongs is not echoed back whole
        shown = shown[:60] + f"... ({len(shown)} characters)"
    what = "type" if kind.endswith("_type") else "value"
    return OpenAIError(
        400,
        f"Invalid {what} for '{param}': {first.get('msg', 'invalid')} (got {shown}).",
        param=param,
        code=f"invalid_{what}",
    )


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(OpenAIError)
    async def _openai(request: Request, exc: OpenAIError) -> JSONResponse:
        return exc.response(request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc.errors()).response(request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            err = unknown_url(request)
        elif exc.status_code == 405:
            err = OpenAIError(
                405,
                f"Method {request.method} is not allowed on {request.url.path}.",
                code="method_not_allowed",
            )
        else:
            err = OpenAIError(exc.status_code, str(exc.detail))
        err.headers = dict(exc.headers or {}) or None
        return err.response(request.url.path)


class BodySizeLimit:
    """Answers 413 for a request body over the limit, declared or streamed (uvicorn has no cap)."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._reject(scope, send)
            return
        seen = 0
        rejected = False

        async def counting_receive() -> Message:
            nonlocal seen, rejected
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes and not rejected:
                    # Answer now; the app sees a client that went away and stops.
                    rejected = True
                    await self._reject(scope, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not rejected:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _reject(self, scope: Scope, send: Send) -> None:
        response = OpenAIError(
            413,
            f"The request body is larger than {self.max_bytes} bytes. Shorten the conversation "
            "or raise MAX_REQUEST_BYTES.",
            code="request_too_large",
        ).response(scope["path"])
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class UnexpectedErrors:
    """A bug becomes an OpenAI-shaped 500 with no traceback, and the connection stays usable.

    (Starlette's own catch-all answers too but then re-raises, and uvicorn drops the connection.)
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                raise
            response = OpenAIError(
                500, "The server had an error while processing your request.", type="server_error"
            ).response(scope["path"])
            await response(scope, receive, send)

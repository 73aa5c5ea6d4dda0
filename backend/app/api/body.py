"""Request bodies parsed and validated in a worker thread, so a 4 MB body never stalls the
event loop (and with it every running stream), and described in the OpenAPI all the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.requests import ClientDisconnect

from ..core.errors import OpenAIError, validation_error

M = TypeVar("M", bound=BaseModel)


def _number(text: str) -> int | float:
    """A JSON number: 5.0 is the integer 5, as JSON Schema (and OpenAI) have it, so an integer
    field takes it; strict validation still refuses "5" and true."""
    value = float(text)
    return int(value) if value.is_integer() else value


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request body as `model` (strict), or a 400 naming the field."""

    def parse(raw: bytes) -> M | OpenAIError:
        try:
            # The standard parser, not pydantic's: it keeps a lone surrogate ("\ud800"), which
            # then gets a 400 naming its field instead of "invalid JSON".
            data = json.loads(raw, parse_float=_number)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, or nested beyond the stack
            return validation_error([{"type": "json_invalid", "loc": ("body",), "msg": "Invalid JSON"}])
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Built here too: a list of 10,000 bad inputs makes 10,000 errors.
            errors = exc.errors(include_url=False)
            return validation_error([{**e, "loc": ("body", *e["loc"])} for e in errors])

    async def body(request: Request) -> M:
        try:
            raw = await request.body()
        except ClientDisconnect:  # gone, or cut off by the read timeout: nobody to answer
            raise OpenAIError(400, "The connection closed before the whole body arrived.") from None
        result = await asyncio.to_thread(parse, raw)
        if isinstance(result, OpenAIError):
            raise result
        return result

    return body


# Every model documented_body has named, for openapi.py to describe (a $ref to a schema that
# is not described breaks clients generated from /openapi.json).
DOCUMENTED: dict[str, type[BaseModel]] = {}


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose body comes from json_body (see openapi.py)."""
    DOCUMENTED[model.__name__] = model
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }

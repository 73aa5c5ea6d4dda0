"""Request bodies parsed and validated in a worker thread, so a 4 MB body never stalls the
event loop (and with it every running stream), and described in the OpenAPI all the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError

from ..core.errors import OpenAIError, validation_error

M = TypeVar("M", bound=BaseModel)


def json_body(model: type[M]) -> Callable[[Request], Awaitable[M]]:
    """A dependency giving the request body as `model` (strict), or a 400 naming the field."""

    def parse(raw: bytes) -> M | OpenAIError:
        try:
            # The standard parser, not pydantic's: it keeps a lone surrogate ("\ud800"), which
            # then gets a 400 naming its field instead of "invalid JSON".
            data = json.loads(raw)
        except (ValueError, RecursionError):  # bad JSON or UTF-8, or nested beyond the stack
            return validation_error([{"type": "json_invalid", "loc": ("body",), "msg": "Invalid JSON"}])
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            # Built here too: a list of 10,000 bad inputs makes 10,000 errors.
            errors = exc.errors(include_url=False)
            return validation_error([{**e, "loc": ("body", *e["loc"])} for e in errors])

    async def body(request: Request) -> M:
        result = await asyncio.to_thread(parse, await request.body())
        if isinstance(result, OpenAIError):
            raise result
        return result

    return body


def documented_body(model: type[BaseModel]) -> dict[str, Any]:
    """`openapi_extra` for a route whose body comes from json_body (see openapi.py)."""
    return {
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }

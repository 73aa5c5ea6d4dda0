"""Request fields that parse but that this server refuses: never silently ignored."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from ..core.errors import OpenAIError
from ..protocol import SamplingRequest

# Fields declared in the request models but not implemented: (field, allowed values).
UNSUPPORTED: dict[str, tuple[Any, ...]] = {
    "functions": (None, []),
    "function_call": (None, "none"),
    "audio": (None,),
    "prediction": (None,),
    "web_search_options": (None,),
    "reasoning_effort": (None,),
    "verbosity": (None,),
    "moderation": (None,),
    "suffix": (None, ""),
    "store": (None, False),
    "modalities": (None, ["text"]),
}


def refuse_unsupported(request: BaseModel) -> None:
    for name, allowed in UNSUPPORTED.items():
        value = getattr(request, name, None)
        if value not in allowed:
            raise OpenAIError(
                400,
                f"'{name}' is not supported by this server (the local model has no such feature); "
                "remove it from the request.",
                param=name,
                code="unsupported_parameter",
            )


def refuse_stream_options_without_stream(request: SamplingRequest) -> None:
    # As OpenAI does: the option would silently do nothing.
    if request.stream_options is not None and not request.stream:
        raise OpenAIError(400, "stream_options is only allowed when stream is true.", param="stream_options")

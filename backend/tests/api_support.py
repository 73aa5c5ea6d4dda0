"""Shared helpers for the API tests: a real server process, OpenAI schema validation, SSE parsing."""

from __future__ import annotations

import copy
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import httpx
import yaml
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from server_process import CHAT_MODEL

# OpenAI's published spec, kept in the repository (see reference/README.md).
SPEC_PATH = Path(__file__).resolve().parent / "reference" / "openai-openapi.yaml"
API_KEY = "test-key-5f1c"
REQUEST_TIMEOUT_S = 60.0

SPEC_URI = "urn:openai-openapi"
# Streamed completion chunks carry `finish_reason: null` until the last one, and `usage: null`
# before the usage chunk (as OpenAI itself sends them; its chat chunk schema allows both), which
# the published CreateCompletionResponse does not allow; chunks are validated against a copy of
# it that differs only in those two nulls.
COMPLETION_CHUNK_SCHEMA = "_CompletionStreamChunk"


def _nullable_to_anyof(node: Any) -> Any:
    """OpenAPI's `nullable: true` (left over in places of this 3.1 spec) is not JSON Schema."""
    if isinstance(node, list):
        return [_nullable_to_anyof(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {key: _nullable_to_anyof(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted


class SchemaValidator:
    """Validates bodies against `#/components/schemas/<name>` of OpenAI's published spec."""

    def __init__(self, spec_path: Path) -> None:
        if not spec_path.is_file():
            raise FileNotFoundError(f"OpenAI spec not found at {spec_path}; the API tests need it")
        with spec_path.open(encoding="utf-8") as f:
            spec = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if not str(spec.get("openapi", "")).startswith("3."):
            raise ValueError(f"{spec_path} is not an OpenAPI 3.x document")
        spec = _nullable_to_anyof(spec)
        schemas = spec["components"]["schemas"]
        chunk = copy.deepcopy(schemas["CreateCompletionResponse"])
        finish = chunk["properties"]["choices"]["items"]["properties"]["finish_reason"]
        chunk["properties"]["choices"]["items"]["properties"]["finish_reason"] = {
            "anyOf": [finish, {"type": "null"}]
        }
        chunk["properties"]["usage"] = {"anyOf": [chunk["properties"]["usage"], {"type": "null"}]}
        schemas[COMPLETION_CHUNK_SCHEMA] = chunk
        self._schemas = schemas
        resource = Resource.from_contents(spec, default_specification=DRAFT202012)
        self._registry: Registry = Registry().with_resource(SPEC_URI, resource)
        self._validators: dict[str, Draft202012Validator] = {}

    def validate(self, name: str, body: Any) -> None:
        """Raises AssertionError listing every violation of schema `name`."""
        if name not in self._validators:
            if name not in self._schemas:
                raise KeyError(f"no schema {name!r} in the spec")
            ref = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
            self._validators[name] = Draft202012Validator(ref, registry=self._registry)
        errors = sorted(self._validators[name].iter_errors(body), key=lambda e: list(e.absolute_path))
        if errors:
            lines = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors[:10]]
            raise AssertionError(f"body does not match {name}:\n" + "\n".join(lines) + f"\nbody: {body!r}")


@lru_cache(maxsize=1)
def schema_validator() -> SchemaValidator:
    return SchemaValidator(SPEC_PATH)


# --- SSE ------------------------------------------------------------------------------------------


@dataclass
class SSEStream:
    status: int
    headers: httpx.Headers
    data: list[str]  # payload of every event, in order, `[DONE]` included
    comments: list[str]  # SSE comment lines (keep-alives), without the leading colon
    raw: str

    @property
    def chunks(self) -> list[dict[str, Any]]:
        """The JSON events before `[DONE]`; asserts the stream is framed as OpenAI frames it."""
        assert self.data, f"stream has no data events: {self.raw[:500]!r}"
        assert self.data[-1] == "[DONE]", f"stream does not end with data: [DONE]: {self.data[-3:]!r}"
        assert self.data.count("[DONE]") == 1, "more than one [DONE]"
        return [json.loads(d) for d in self.data[:-1]]


def parse_sse(raw: str) -> tuple[list[str], list[str]]:
    """Splits an SSE body into event payloads and comments (per the WHATWG event-stream rules)."""
    data: list[str] = []
    comments: list[str] = []
    pending: list[str] = []
    for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if line == "":
            if pending:
                data.append("\n".join(pending))
                pending = []
        elif line.startswith(":"):
            comments.append(line[1:].strip())
        elif line.startswith("data:"):
            value = line[5:]
            pending.append(value[1:] if value.startswith(" ") else value)
    assert not pending, f"stream ended in the middle of an event: {raw[-300:]!r}"
    return data, comments


def post_stream(http: httpx.Client, path: str, body: dict[str, Any]) -> SSEStream:
    with http.stream("POST", path, json=body) as resp:
        raw = "".join(resp.iter_text())
    data, comments = parse_sse(raw) if resp.status_code == 200 else ([], [])
    return SSEStream(resp.status_code, resp.headers, data, comments, raw)


@contextmanager
def stream_in_background(
    base_url: str,
    path: str,
    body: dict[str, Any],
    started_within: float,
    timeout: float,
    headers: dict[str, str] | None = None,
) -> Iterator[threading.Thread]:
    """Streams `body` from another thread; enters once its first data event arrived (else fails)
    and hangs up when the block ends, which cancels the rest of the answer. Yields the thread,
    alive while the stream runs."""
    started, release = threading.Event(), threading.Event()

    def run() -> None:
        with httpx.stream("POST", f"{base_url}{path}", json=body, headers=headers, timeout=timeout) as resp:
            for line in resp.iter_lines():
                if line.startswith("data:"):
                    started.set()
                if release.is_set() or line == "data: [DONE]":
                    break

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert started.wait(started_within), f"the streamed request to {path} never started"
        yield worker
    finally:
        release.set()
        worker.join(timeout=timeout)


def chat_stream_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(
        c["delta"].get("content") or "" for ch in chunks for c in ch["choices"] if c["index"] == index
    )


def completion_stream_text(chunks: list[dict[str, Any]], index: int = 0) -> str:
    return "".join(c["text"] for ch in chunks for c in ch["choices"] if c["index"] == index)


def finish_reasons(chunks: list[dict[str, Any]], index: int = 0) -> list[str]:
    return [
        c["finish_reason"]
        for ch in chunks
        for c in ch["choices"]
        if c["index"] == index and c.get("finish_reason") is not None
    ]


# --- errors ---------------------------------------------------------------------------------------


def assert_error(
    resp: httpx.Response,
    status: int,
    *,
    param: str | None = None,
    param_prefix: str | None = None,
    code: str | None = None,
) -> dict[str, Any]:
    """Checks the one error contract: status, OpenAI ErrorResponse body, and the named param."""
    assert resp.status_code == status, f"expected {status}, got {resp.status_code}: {resp.text[:500]}"
    assert resp.headers.get("content-type", "").startswith("application/json"), resp.headers
    assert "Traceback" not in resp.text
    body = resp.json()
    schema_validator().validate("ErrorResponse", body)
    error = body["error"]
    assert error["message"], "error message is empty"
    if status == 400:
        assert error["type"] == "invalid_request_error", error
    if param is not None:
        assert error["param"] == param, f"param should be {param!r}: {error}"
    if param_prefix is not None:
        assert (error["param"] or "").startswith(param_prefix), f"param should name {param_prefix}: {error}"
    if code is not None:
        assert error["code"] == code, f"code should be {code!r}: {error}"
    return error


def tiny_chat(max_tokens: int = 1, **extra: Any) -> dict[str, Any]:
    """A cheap valid chat request body."""
    return {
        "model": CHAT_MODEL,
        "messages": [{"role": "user", "content": "Hi"}],
        "max_tokens": max_tokens,
        "temperature": 0,
        **extra,
    }


def assert_serves(http: httpx.Client) -> None:
    """The server still answers a good request normally (after a bad one)."""
    resp = http.post("/v1/chat/completions", json=tiny_chat())
    assert resp.status_code == 200, f"server no longer answers a good request: {resp.status_code} {resp.text}"
    assert resp.json()["choices"][0]["finish_reason"] in ("stop", "length")


def chat_prompt_len(tokenizer: Any, messages: list[dict[str, Any]]) -> int:
    """Prompt length as the model sees it: its own chat template, with the generation prompt."""
    encoded = tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, tokenize=True, return_dict=True
    )
    return len(encoded["input_ids"])

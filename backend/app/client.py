"""`python -m app.client "question"`: ask the running server from a terminal or a script.

The answer streams to stdout as it is generated. The server's address and API key come from the
same settings as the server's own (HOST, PORT, API_KEY from the environment or `.env`), so on
the server's machine no option is needed; `--base-url` points it elsewhere (Nginx, a cluster).
On any error the server's message goes to stderr and the exit status is 1. Standard library
only, so it runs wherever the backend is installed.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any, TextIO

from .core.config import get_settings


class ClientError(Exception):
    """What the server (or the network) said went wrong, ready to show to a person."""


def _error_message(status: int | None, body: bytes) -> str:
    try:
        error = json.loads(body)["error"]
        message = str(error["message"])
    except (ValueError, KeyError, TypeError):
        message = body.decode(errors="replace").strip()[:500] or "no error message"
    return f"HTTP {status}: {message}" if status else message


def _events(response: Any) -> Iterator[dict[str, Any]]:
    """The JSON `data:` events of an SSE body, until `data: [DONE]`."""
    for raw in response:
        line = raw.decode().strip()
        if not line.startswith("data:"):
            continue  # blank separators and `: ping` keep-alive comments
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)
    raise ClientError("the connection closed before the answer was complete")


def stream_chat(
    base_url: str, api_key: str | None, body: dict[str, Any], out: TextIO, timeout_s: float
) -> dict[str, Any] | None:
    """POST a streamed chat completion, write the text to `out` as it arrives; return the usage."""
    headers = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/chat/completions",
        data=json.dumps({**body, "stream": True, "stream_options": {"include_usage": True}}).encode(),
        headers=headers,
        method="POST",
    )
    usage = None
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            for event in _events(response):
                if "error" in event:
                    raise ClientError(_error_message(None, json.dumps(event).encode()))
                for choice in event.get("choices", []):
                    out.write(choice.get("delta", {}).get("content") or "")
                    out.flush()
                usage = event.get("usage") or usage
    except urllib.error.HTTPError as exc:
        raise ClientError(_error_message(exc.code, exc.read())) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ClientError(f"cannot reach {base_url}: {reason}") from None
    return usage


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app.client", description=__doc__.split("\n")[0])
    parser.add_argument("question", help="the user message")
    parser.add_argument("--base-url", default=settings.base_url, help="default: %(default)s")
    parser.add_argument("--model", default=settings.chat_model_name, help="default: %(default)s")
    parser.add_argument("--system", help="a system prompt")
    parser.add_argument("--temperature", type=float)
    parser.add_argument("--max-tokens", type=int)
    parser.add_argument("--usage", action="store_true", help="print token counts to stderr at the end")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds without data before giving up")
    args = parser.parse_args(argv)

    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.question})
    body: dict[str, Any] = {"model": args.model, "messages": messages}
    if args.temperature is not None:
        body["temperature"] = args.temperature
    if args.max_tokens is not None:
        body["max_tokens"] = args.max_tokens
    try:
        usage = stream_chat(args.base_url, settings.api_key, body, sys.stdout, args.timeout)
    except ClientError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print()
    if args.usage and usage:
        print(
            f"prompt_tokens={usage['prompt_tokens']} completion_tokens={usage['completion_tokens']}",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())

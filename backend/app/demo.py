"""`make demo` (`python -m app.demo`): a Gradio chat for quick demos, talking to the running server.

It is a client like any other: the official `openai` SDK against the server's OpenAI API
(address and key from the same settings as the server's: HOST, PORT, API_KEY, or --base-url),
streamed, with a model picker, a system prompt and the temperature. Gradio and the SDK are the
optional extra `demo` (`pip install -e './backend[demo]'`); the server never imports this module.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterator
from typing import Any

# Before Gradio is imported: no usage statistics or version checks leave the machine.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import gradio as gr
import openai

from .core.config import get_settings


def chat_models(client: openai.OpenAI) -> list[str]:
    """The served chat models: by this server's `capabilities` extension, else every model."""
    models = client.models.list().data
    with_caps = [m for m in models if isinstance(getattr(m, "capabilities", None), list)]
    if with_caps:
        return [m.id for m in with_caps if "chat" in m.capabilities]  # type: ignore[attr-defined]
    return [m.id for m in models]


def server_message(exc: openai.APIError) -> str:
    """The `message` of the server's OpenAI-shaped error (the SDK keeps its `error` object as body)."""
    body = exc.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return body["message"]
    return exc.message


def _text(content: Any) -> str:
    """A Gradio history message's content as plain text (a string, or a list of content parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return ""  # a file or component: this demo sends text only


def make_reply(client: openai.OpenAI) -> Callable[..., Iterator[str]]:
    def reply(
        message: str, history: list[dict[str, Any]], model: str, system_prompt: str, temperature: float
    ) -> Iterator[str]:
        messages: list[dict[str, str]] = []
        if system_prompt.strip():
            messages.append({"role": "system", "content": system_prompt})
        for turn in history:
            if turn.get("role") in ("user", "assistant"):
                messages.append({"role": turn["role"], "content": _text(turn.get("content"))})
        messages.append({"role": "user", "content": message})
        answer = ""
        try:
            stream = client.chat.completions.create(
                model=model,
                messages=messages,
                temperature=temperature,
                stream=True,  # type: ignore[arg-type]
            )
            for chunk in stream:
                if chunk.choices and chunk.choices[0].delta.content:
                    answer += chunk.choices[0].delta.content
                    yield answer
        except openai.APIError as exc:
            # The server's own message (e.g. the context is too long), shown in the page: an
            # answer of the server's, not a bug of the demo, so no traceback in the demo's log.
            raise gr.Error(server_message(exc), print_exception=False) from None

    return reply


def build(client: openai.OpenAI, models: list[str]) -> gr.ChatInterface:
    return gr.ChatInterface(
        make_reply(client),
        title="Local LLM chat",
        description=f"Gradio demo of the OpenAI-compatible server at {client.base_url}",
        additional_inputs=[
            gr.Dropdown(models, value=models[0], label="Model"),
            gr.Textbox("You are a helpful assistant.", label="System prompt", lines=2),
            gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature"),
        ],
        additional_inputs_accordion=gr.Accordion("Settings", open=True),
        api_name="chat",
    )


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m app.demo", description=__doc__.split("\n")[0])
    parser.add_argument("--base-url", default=settings.base_url, help="the API (default: %(default)s)")
    parser.add_argument("--host", default="127.0.0.1", help="where the demo listens")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args()

    client = openai.OpenAI(base_url=args.base_url, api_key=settings.api_key or "unused", max_retries=0)
    try:
        models = chat_models(client)
    except openai.APIConnectionError:  # (a subclass of APIError: first)
        sys.exit(f"demo: nothing answers at {args.base_url}: start the server first (`make serve`)")
    except openai.APIError as exc:
        sys.exit(f"demo: the server at {args.base_url} refused: {server_message(exc)}")
    if not models:
        sys.exit(f"demo: the server at {args.base_url} serves no chat model")
    print(f"demo of {args.base_url} on http://{args.host}:{args.port}", flush=True)
    build(client, models).queue().launch(server_name=args.host, server_port=args.port)


if __name__ == "__main__":
    main()

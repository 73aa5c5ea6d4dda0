"""`make demo` for real: the Gradio demo (app/demo.py) started against the running server and
driven with gradio_client as a user would: the answer streams in growing pieces and is the
server's own answer; the model picker lists the server's chat models; a server error is shown."""

from __future__ import annotations

import itertools
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest
from api_support import API_KEY
from gradio_client import Client
from gradio_client.exceptions import AppError
from server_process import BACKEND_DIR, CHAT_MODEL, LOGS, ServerProcess, free_port, log_tail, server_env

STARTUP_TIMEOUT_S = 120.0


@pytest.fixture(scope="module")
def demo(server: ServerProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    port = free_port()
    log_path: Path = tmp_path_factory.mktemp("demo") / "demo.log"
    LOGS.append(log_path)
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.demo", "--host", "127.0.0.1", "--port", str(port)],
            cwd=BACKEND_DIR,
            env=server_env(HOST="127.0.0.1", PORT=str(server.port), API_KEY=API_KEY),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + STARTUP_TIMEOUT_S
            while True:
                assert proc.poll() is None, f"the demo exited:\n{log_tail(log_path)}"
                assert time.monotonic() < deadline, f"the demo did not start:\n{log_tail(log_path)}"
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                time.sleep(0.5)
            yield Client(f"http://127.0.0.1:{port}/", verbose=False)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def test_answer_streams_from_the_server(demo: Client, client: openai.OpenAI) -> None:
    system, question = "Answer in one short sentence.", "What is the capital of France?"
    expected = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        temperature=0,
    )
    job = demo.submit(question, CHAT_MODEL, system, 0.0, api_name="/chat")
    final = job.result(timeout=120)
    updates = [u for u in job.outputs() if isinstance(u, str)]
    # Streamed: the text grew through several updates, each extending the one before.
    assert len(updates) >= 3, updates
    assert all(b.startswith(a) for a, b in itertools.pairwise(updates)), updates
    assert final == expected.choices[0].message.content


def test_model_picker_lists_the_servers_chat_models(demo: Client) -> None:
    info = demo.view_api(print_info=False, return_format="dict")
    params = {p["label"]: p for p in info["named_endpoints"]["/chat"]["parameters"]}
    assert params["Model"]["parameter_default"] == CHAT_MODEL
    assert set(params) >= {"Model", "System prompt", "Temperature"}


def test_server_errors_are_shown(demo: Client) -> None:
    """A message longer than the model's context: the demo shows the server's own message."""
    with pytest.raises(AppError, match=r"^This model's maximum context length is \d+ tokens"):
        demo.predict("word " * 10000, CHAT_MODEL, "", 0.0, api_name="/chat")

"""`python -m app.client` against the real server: the answer streams to stdout in pieces and is
the model's own answer; address and key come from the server's settings (HOST, PORT, API_KEY);
errors exit 1 with the server's own message on stderr."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import httpx
import openai
from api_support import API_KEY
from server_process import BACKEND_DIR, CHAT_MODEL, ServerProcess, free_port, server_env

QUESTION = "Count from one to ten in words."


def client_env(server: ServerProcess, **overrides: str) -> dict[str, str]:
    return server_env(**{"HOST": "127.0.0.1", "PORT": str(server.port), "API_KEY": API_KEY, **overrides})


def run_client(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.client", *args],
        cwd=BACKEND_DIR,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_answer_streams_to_stdout(server: ServerProcess, client: openai.OpenAI) -> None:
    expected = client.chat.completions.create(
        model=CHAT_MODEL,
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        temperature=0,
        max_tokens=40,
    )
    args = ["-m", "app.client", QUESTION, "--system", "Be brief.", "--temperature", "0", "--max-tokens", "40"]
    proc = subprocess.Popen(
        [sys.executable, *args, "--usage"],
        cwd=BACKEND_DIR,
        env=client_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    pieces: list[bytes] = []
    while piece := os.read(proc.stdout.fileno(), 65536):
        pieces.append(piece)
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    out = b"".join(pieces).decode()
    # Written as it was generated: many reads, not one at the end.
    assert len(pieces) >= 5, pieces
    assert out == expected.choices[0].message.content + "\n"
    usage: Any = expected.usage
    assert f"prompt_tokens={usage.prompt_tokens} completion_tokens={usage.completion_tokens}" in stderr


def test_wrong_key_exits_1_with_the_servers_message(server: ServerProcess) -> None:
    said = httpx.get(f"{server.url}/v1/models", headers={"Authorization": "Bearer wrong"}).json()
    res = run_client(client_env(server, API_KEY="wrong"), "hi")
    assert res.returncode == 1
    assert res.stdout.strip() == ""
    assert res.stderr.strip() == f"error: HTTP 401: {said['error']['message']}"


def test_unknown_model_exits_1_with_the_servers_message(server: ServerProcess) -> None:
    res = run_client(client_env(server), "hi", "--model", "no-such-model")
    assert res.returncode == 1
    assert res.stderr.startswith("error: HTTP 404: ") and "no-such-model" in res.stderr, res.stderr


def test_no_server_exits_1_and_says_where_it_looked(server: ServerProcess) -> None:
    port = free_port()
    res = run_client(client_env(server), "hi", "--base-url", f"http://127.0.0.1:{port}/v1")
    assert res.returncode == 1
    assert f"cannot reach http://127.0.0.1:{port}/v1" in res.stderr, res.stderr

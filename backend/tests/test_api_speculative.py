"""SPECULATIVE=draft over real HTTP: a server whose draft model (the default model, drafting for
itself) proposes its tokens answers exactly as the shared server does, and /metrics counts the
draft proposer's tokens."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from api_support import REQUEST_TIMEOUT_S
from server_process import CHAT_MODEL, CHAT_MODEL_DIR, ServerProcess, start_server

BODY = {
    "model": CHAT_MODEL,
    "messages": [{"role": "user", "content": "List the days of the week."}],
    "max_tokens": 32,
    "temperature": 0,
}


@pytest.fixture(scope="module")
def drafting(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    proc = start_server(
        tmp_path_factory.mktemp("draft") / "server.log",
        SPECULATIVE="draft",
        SPECULATIVE_DRAFT_MODEL=str(CHAT_MODEL_DIR),
        EMBEDDING_MODEL_PATH="",
    )
    yield proc
    proc.stop()


def test_a_draft_model_server_answers_as_the_plain_one(drafting: ServerProcess, http: httpx.Client) -> None:
    with httpx.Client(base_url=drafting.url, timeout=REQUEST_TIMEOUT_S) as client:
        resp = client.post("/v1/chat/completions", json=BODY)
        assert resp.status_code == 200, resp.text
        metrics = client.get("/metrics").text
    plain = http.post("/v1/chat/completions", json=BODY)
    assert plain.status_code == 200, plain.text
    answer = resp.json()["choices"][0]["message"]["content"]
    assert answer and answer == plain.json()["choices"][0]["message"]["content"]
    counts = {
        kind: float(m.group(1))
        for kind in ("proposed", "accepted")
        if (m := re.search(rf'llm_spec_{kind}_tokens_total\{{[^}}]*proposer="draft"[^}}]*\}} (\S+)', metrics))
    }
    # Drafted where verification is exact (the fast path with the native kernels, as here).
    assert counts.get("accepted", 0) > 0 and counts["proposed"] >= counts["accepted"], metrics

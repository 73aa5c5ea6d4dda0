"""Fixtures: one real server for the whole session, clients that talk to it, the spec, the tokenizer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from api_support import API_KEY, REQUEST_TIMEOUT_S, SchemaValidator, schema_validator
from db_support import database_url, engine, postgres  # noqa: F401  (fixtures: SQLite and PostgreSQL databases)
from server_process import CHAT_MODEL_DIR, LOGS, ServerProcess, log_problems, log_tail, start_server


@pytest.fixture(scope="session", autouse=True)
def server_logs_report_no_error() -> Iterator[None]:
    """At the end of the session, no server started by it has logged an ERROR or a traceback: bad
    requests, clients that hang up and shutdowns are part of serving, not errors."""
    yield
    problems = [f"{path}: {line}" for path in LOGS for line in log_problems(path.read_text(errors="replace"))]
    if problems:
        pytest.fail("errors in the servers' logs:\n" + "\n".join(problems), pytrace=False)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """The server under test, with an API key set so that every request must carry it."""
    proc = start_server(tmp_path_factory.mktemp("server") / "server.log", api_key=API_KEY)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def base_url(server: ServerProcess) -> str:
    return server.url


@pytest.fixture(scope="session")
def client(base_url: str) -> openai.OpenAI:
    # No retries: a retried request would hide a failure of the first one.
    return openai.OpenAI(base_url=f"{base_url}/v1", api_key=API_KEY, max_retries=0, timeout=REQUEST_TIMEOUT_S)


@pytest.fixture(scope="session")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=REQUEST_TIMEOUT_S
    ) as c:
        yield c


@pytest.fixture(scope="session")
def schemas() -> SchemaValidator:
    return schema_validator()


@pytest.fixture(scope="session")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(CHAT_MODEL_DIR)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """When anything failed, show the tail of each server's log next to the failures."""
    if not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    for path in LOGS:
        terminalreporter.section(f"server log {path}")
        terminalreporter.write_line(log_tail(path, 120))

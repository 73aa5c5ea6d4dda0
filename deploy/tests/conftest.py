"""Session fixtures: two real backend replicas (the real SmolLM2 model) behind a real Nginx that
runs deploy/nginx.conf, serving a release copy of frontend/dist."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from server_process import LOGS, ServerProcess, free_port, log_tail, wait_healthy

from support import Nginx, make_run_dir, release_copy, start_nginx, start_replica


@dataclass
class Site:
    nginx: Nginx
    replicas: list[ServerProcess]
    html: Path

    @property
    def url(self) -> str:
        return self.nginx.url


@pytest.fixture(scope="session")
def run_root() -> Iterator[Path]:
    root = make_run_dir("deploy-tests")
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def html(run_root: Path) -> Path:
    return release_copy(run_root / "html")


@pytest.fixture(scope="session")
def replicas(run_root: Path) -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    try:
        for i in range(2):
            started.append(start_replica(free_port(), run_root / f"backend-{i}.log"))
        wait_healthy(started)
        yield started
    finally:
        for r in started:
            r.stop()


@pytest.fixture(scope="session")
def site(run_root: Path, html: Path, replicas: list[ServerProcess]) -> Iterator[Site]:
    """The production site: Nginx with both replicas in its upstream."""
    nginx = start_nginx(run_root / "nginx", html, [f"127.0.0.1:{r.port}" for r in replicas])
    yield Site(nginx=nginx, replicas=replicas, html=html)
    nginx.stop()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=120) as client:
        yield client


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`first` tests start processes of their own: run them before the shared replicas exist.
    `destructive` tests kill the shared replicas: run them after all others."""

    def rank(item: pytest.Item) -> int:
        if item.get_closest_marker("first"):
            return 0
        return 2 if item.get_closest_marker("destructive") else 1

    items.sort(key=rank)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "first: starts its own backends; runs before the shared ones start")
    config.addinivalue_line("markers", "destructive: kills the session's backend replicas; runs last")


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if not (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        return
    for path in LOGS:
        terminalreporter.section(f"log {path}")
        terminalreporter.write_line(log_tail(path, 60))

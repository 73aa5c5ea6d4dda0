"""Databases for the account tests: a SQLite file in a temporary DATA_DIR, and a real PostgreSQL
(Debian's `postgresql`, installed by `make sysdeps`): a throwaway cluster in a temporary folder
on a free loopback port, started once per session and stopped at its end, one fresh database per
test. Outside CI a machine without PostgreSQL skips those tests and says so; in CI it fails."""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import count
from pathlib import Path

import psycopg
import pytest
from argon2 import PasswordHasher
from server_process import free_port
from sqlalchemy import Engine

from app.db.engine import make_engine
from app.db.migrate import upgrade

# Argon2id as the server hashes, but cheap: the account tests hash dozens of passwords.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)


@dataclass
class PostgresCluster:
    port: int
    folder: Path
    run: list[str]  # prefix that runs a PostgreSQL tool as the cluster's owner
    bin: Path
    numbers = count()

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        name = f"t{next(self.numbers)}"
        with psycopg.connect(self.url(), autocommit=True) as connection:
            connection.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        tool = [
            *self.run,
            str(self.bin / "pg_ctl"),
            "stop",
            "-D",
            str(self.folder / "data"),
            "-m",
            "immediate",
        ]
        subprocess.run(tool, capture_output=True, timeout=60)
        shutil.rmtree(self.folder, ignore_errors=True)


def postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def start_postgres() -> PostgresCluster:
    bin = postgres_bin()
    if bin is None:
        message = "PostgreSQL is not installed (Debian: apt-get install postgresql, or `make sysdeps`)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    folder = Path(tempfile.mkdtemp(prefix="localchat-pg-"))
    run: list[str] = []
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: its own user owns the cluster.
        shutil.chown(folder, "postgres")
        run = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    tools = [
        [str(bin / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"],
        [
            str(bin / "pg_ctl"),
            "start",
            "-w",
            "-D",
            str(data),
            "-l",
            str(folder / "log"),
            "-o",
            f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off",
        ],
    ]
    for tool in tools:
        done = subprocess.run([*run, *tool], capture_output=True, text=True, timeout=120)
        if done.returncode:
            log = (folder / "log").read_text() if (folder / "log").exists() else ""
            shutil.rmtree(folder, ignore_errors=True)
            pytest.fail(f"{tool[0]} failed:\n{done.stdout}\n{done.stderr}\n{log}")
    return PostgresCluster(port, folder, run, bin)


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = start_postgres()
    yield cluster
    cluster.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database of each kind, as DATABASE_URL names it."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'localchat.db'}"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.new_database()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """That database, migrated to the newest revision."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()

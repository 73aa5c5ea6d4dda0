"""The SQLAlchemy engine for a database URL: SQLite (the default, a file under DATA_DIR) in WAL
mode, so readers never wait for the writer and a killed process loses no committed row, or
PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

DATABASE_FILE = "localchat.db"


def database_url(data_dir: Path, url: str | None) -> str:
    """DATABASE_URL as SQLAlchemy needs it (`postgres://…` and `postgresql://…` through psycopg 3),
    or the SQLite file under DATA_DIR."""
    if not url:
        return f"sqlite:///{data_dir.resolve() / DATABASE_FILE}"
    for plain in ("postgres://", "postgresql://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for PostgreSQL or an in-memory database)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def make_engine(url: str) -> Engine:
    file = sqlite_file(url)
    if file is None:
        # pool_pre_ping: a replica outlives a database restart without a failed request.
        return create_engine(url, pool_pre_ping=True)
    file.parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 15})

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        # In WAL mode NORMAL is durable across a process kill (only a power cut may lose the
        # last commits), and much faster than FULL.
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.close()

    return engine

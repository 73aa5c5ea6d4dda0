"""Alembic migrations to the newest revision, run at start-up by every replica: one at a time
(a PostgreSQL advisory lock, or a lock file next to the SQLite file), so replicas starting
together never run the same migration twice; the later ones find it done.

`python -m app.db.migrate` runs them alone (for example, as a Kubernetes init step)."""

from __future__ import annotations

import fcntl
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, text

from .engine import sqlite_file

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
# Any fixed 64-bit number: the advisory lock's name, shared by every replica.
PG_LOCK_ID = 0x6C6F63616C636874


@contextmanager
def migration_lock(engine: Engine) -> Iterator[Connection]:
    """A connection held while no other process migrates the same database."""
    file = sqlite_file(str(engine.url))
    if file is not None:
        with open(file.with_name(file.name + ".migrate-lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            with engine.connect() as connection:
                yield connection
        return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": PG_LOCK_ID})
            connection.commit()
        try:
            yield connection
        finally:
            if engine.dialect.name == "postgresql":
                connection.rollback()
                connection.execute(text("SELECT pg_advisory_unlock(:id)"), {"id": PG_LOCK_ID})
                connection.commit()


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Brings the database to the newest revision (nothing to do if it is there already)."""
    with migration_lock(engine) as connection:
        command.upgrade(alembic_config(connection), "head")
        connection.commit()
    log.info("database %s is at the newest revision", engine.url.render_as_string(hide_password=True))


def main() -> None:
    from ..core.config import get_settings
    from .engine import database_url, make_engine

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = get_settings()
    engine = make_engine(database_url(settings.data_dir, settings.database_url))
    upgrade(engine)
    engine.dispose()


if __name__ == "__main__":
    main()

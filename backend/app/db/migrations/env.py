"""Alembic's environment: migrations run on the connection that app.db.migrate hands over
(holding the migration lock); `alembic revision --autogenerate` compares against the models."""

from __future__ import annotations

from alembic import context

from app.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through app.db.migrate.upgrade(), which holds the migration lock")
# render_as_batch: SQLite alters a table by copying it, which batch mode does for us.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()

"""The database: SQLAlchemy 2 models, the engine (SQLite in WAL mode under DATA_DIR, or
PostgreSQL from DATABASE_URL) and Alembic migrations, run at start-up (migrate.py)."""

"""What each person keeps on the server: conversations in the page's shape (frontend/src/types.ts)
with every branch, synced between devices with versions and a change cursor, presets, files and
documents with their chunks' embeddings, within a per-user quota (service.py). Synchronous
SQLAlchemy: callers on the event loop run it in a thread."""

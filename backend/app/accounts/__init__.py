"""Accounts (AUTH=password and AUTH=header): users and roles, Argon2id passwords, server-side
sessions, personal API keys, login throttling (service.py, throttle.py), and the ASGI guard that
tells who sent each request (guard.py). Synchronous SQLAlchemy: callers on the event loop run it
in a thread."""

"""`python -m app`: check the model folders, then serve with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from types import FrameType

import uvicorn
from fastapi import FastAPI

from .core.config import Settings, get_settings
from .core.connections import guarded_protocol
from .engine.loader import ModelLoadError
from .services import build_services

log = logging.getLogger(__name__)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class DrainingServer(uvicorn.Server):
    """SIGTERM drains: new generations get 503 and /health turns 503 (so a balancer moves on)
    while the server keeps listening; running sequences finish within the grace period, then
    the server exits with status 0. Sequences still running when the grace period ends get an
    error (a stream: one error event, then [DONE]) instead of a cut connection. A second signal
    exits at once."""

    def __init__(self, config: uvicorn.Config, app: FastAPI, grace_s: float) -> None:
        super().__init__(config)
        self.app = app
        self.grace_s = grace_s
        self.draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        services = getattr(self.app.state, "services", None)
        if services is None or self.draining:
            super().handle_exit(sig, frame)
            return
        self.draining = True
        engines = services.drain()
        log.info("draining: waiting up to %.0f s for running requests", self.grace_s)

        def drain() -> None:
            deadline = time.monotonic() + self.grace_s
            while not all(engine.idle for engine in engines) and time.monotonic() < deadline:
                time.sleep(0.1)
            if not all(engine.idle for engine in engines):
                log.warning("grace period over: ending the requests still running with an error")
                # The worker ends every sequence with an error output before it stops.
                for engine in engines:
                    engine.shutdown(timeout=5)
                deadline = time.monotonic() + 5
            # The engine is done before the HTTP side has written the last tokens (or the error
            # event) and [DONE]: wait for the responses in progress too, so none loses its end.
            while self.server_state.tasks and time.monotonic() < deadline:
                time.sleep(0.05)
            # Set here, not through handle_exit, which records the signal for uvicorn to re-raise
            # at the end: the process would die of SIGTERM (-15) instead of exiting with 0.
            self.should_exit = True

        threading.Thread(target=drain, name="drain", daemon=True).start()


def open_to_everyone(settings: Settings, host: str) -> bool:
    """Whether the server would answer anyone on the network, with no sign-in and no key."""
    return settings.auth == "none" and not settings.api_key and host not in ("127.0.0.1", "localhost", "::1")


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Serve the OpenAI-compatible API and the chat page.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if open_to_everyone(settings, args.host):
        log.warning(
            "\n%s\nHOST=%s with AUTH=none and no API_KEY: anyone who can reach this machine can use the "
            "model. Set AUTH=password (accounts) or API_KEY, or listen on 127.0.0.1 behind Nginx "
            "(docs/accounts.md).\n%s",
            "!" * 78,
            args.host,
            "!" * 78,
        )
    from .main import create_app

    # Load before listening, so a broken model folder ends here with one line, not a traceback.
    try:
        services = build_services(settings)
        services.registry.load_pinned()
    except (ModelLoadError, ValueError) as exc:  # ValueError: MODELS_FILE, MODELS_DIR or KEEP_ALIVE
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    app = create_app(settings, services)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        # The engine has drained by then; this only bounds flushing the last responses.
        timeout_graceful_shutdown=5,
        log_level="info",
        http=guarded_protocol(settings.request_read_timeout_s, settings.max_connections),
        # With accounts, the guard believes X-Forwarded-* from TRUSTED_PROXIES only (it must see
        # the proxy's own address to trust X-Forwarded-User), instead of uvicorn from 127.0.0.1.
        proxy_headers=settings.auth == "none",
    )
    DrainingServer(config, app, settings.shutdown_grace_s).run()


if __name__ == "__main__":
    main()

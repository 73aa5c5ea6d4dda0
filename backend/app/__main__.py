"""`python -m app`: check the model folders, then serve with uvicorn."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from types import FrameType

import uvicorn
from fastapi import FastAPI

from .core.config import get_settings
from .engine.loader import ModelLoadError
from .services import check_model_folders

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


class DrainingServer(uvicorn.Server):
    """On SIGTERM/SIGINT, refuse new generations (503) while running ones finish."""

    def __init__(self, config: uvicorn.Config, app: FastAPI) -> None:
        super().__init__(config)
        self.app = app

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        services = getattr(self.app.state, "services", None)
        if services is not None:
            services.ctx.engine.stop_admitting()
        super().handle_exit(sig, frame)


def main() -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(description="Serve the OpenAI-compatible API and the chat page.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        check_model_folders(settings)
    except ModelLoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
    from .main import create_app

    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        log_level="info",
    )
    DrainingServer(config, app).run()


if __name__ == "__main__":
    main()

"""The FastAPI application: middleware, error contract, routes, and the model's lifetime."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from .accounts.guard import AccountGuard, Gate
from .api import openapi
from .api.auth_routes import router as auth_router
from .api.routes import anthropic, health, models, tokenizer, v1
from .core.auth import ApiKeyGuard
from .core.config import Settings, get_settings
from .core.cors import OpenAICORSMiddleware
from .core.errors import BodySizeLimit, UnexpectedErrors, install_error_handlers
from .core.metrics import RequestMetrics, track_models
from .core.metrics import router as metrics_router
from .core.static import FrontendMount, SinglePageApp
from .db.migrate import upgrade
from .services import Services, build_services

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The app; `services` already built, or built at start-up (the models loaded off the event loop)."""
    settings = settings or get_settings()
    # Accounts (AUTH=password or header) live in the database; AUTH=none never opens one.
    gate = Gate.from_settings(settings) if settings.auth != "none" else None

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if gate is not None:
            await asyncio.to_thread(upgrade, gate.accounts.engine)
            await gate.usage.start()
        built = services or await asyncio.to_thread(build_services, settings)
        await built.registry.start()
        app.state.services = built
        track_models(built.gauges)
        yield
        await built.registry.stop()
        if gate is not None:
            await gate.usage.stop()  # after the requests, so the last ones' usage is written

    app = FastAPI(
        title="Local LLM chat API",
        summary="OpenAI-compatible API over a locally loaded Hugging Face model.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_error_handlers(app)
    openapi.install(app)
    # Outermost last: metrics see every answer; CORS headers go on every answer (413 and 401
    # included, so the page can read them); the key is checked before the body is read.
    app.add_middleware(UnexpectedErrors)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_request_bytes)
    if gate is None:
        app.add_middleware(ApiKeyGuard, api_key=settings.api_key, metrics_public=settings.metrics_public)
    else:
        app.state.gate = gate
        app.add_middleware(AccountGuard, gate=gate)
        app.include_router(auth_router)
    app.add_middleware(
        OpenAICORSMiddleware,
        allow_origins=settings.cors_origins,
        allow_methods=["GET", "POST", "OPTIONS"],
        allow_headers=["*"],
        expose_headers=["Retry-After"],
    )
    app.add_middleware(RequestMetrics)
    app.include_router(health)
    app.include_router(metrics_router)
    app.include_router(v1)
    app.include_router(anthropic)
    app.include_router(tokenizer)
    app.include_router(models)
    if (settings.frontend_dist / "index.html").is_file():
        app.router.routes.append(FrontendMount(SinglePageApp(directory=settings.frontend_dist, html=True)))
    return app

"""The app factory: ``create_app(settings)`` builds the HTTP service from settings read at the edge."""

from __future__ import annotations

from fastapi import FastAPI

from vam.api import errors, health, uploads
from vam.runtime import Runtime
from vam.settings import Settings


def api_keys(settings: Settings) -> list[str]:
    return [k.strip() for k in settings.api_keys.split(",") if k.strip()]


def create_app(settings: Settings) -> FastAPI:
    """The vam HTTP service: tus uploads at ``/files/``, ``/health``, OpenAPI at ``/docs``."""
    app = FastAPI(title="vam", description="video asset management: resumable uploads (tus 1.0)", version="1")
    rt = Runtime(settings)
    app.state.runtime = rt
    app.state.api_keys = api_keys(settings)
    app.state.tus = uploads.make_store(rt)
    errors.install(app)
    app.include_router(health.router)
    app.include_router(uploads.router)
    return app

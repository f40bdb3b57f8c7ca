"""The app factory: ``create_app(settings)`` builds the HTTP service from settings read at the edge."""

from __future__ import annotations

import secrets

from fastapi import FastAPI, Request

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


def require_api_key(request: Request) -> None:
    """A dependency: with keys configured, ``X-Api-Key: KEY`` or ``Authorization: Bearer KEY``."""
    keys: list[str] = request.app.state.api_keys
    if not keys:
        return
    given = request.headers.get("x-api-key")
    if given is None:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        given = token.strip() if scheme.lower() == "bearer" else None
    if given and any(secrets.compare_digest(given, k) for k in keys):
        return
    raise errors.ApiError(
        401,
        "unauthorized",
        "an API key is required: send X-Api-Key: KEY or Authorization: Bearer KEY",
        {"WWW-Authenticate": "Bearer"},
    )

"""The app factory: ``create_app(settings)`` builds the HTTP service from settings read at the edge."""

from __future__ import annotations

from fastapi import FastAPI

from vam.api import assets, errors, health, origin, pages, transforms, uploads
from vam.runtime import Runtime
from vam.settings import Settings
from vam.steps.delivery import AssetIndex, keyring


def api_keys(settings: Settings) -> list[str]:
    return [k.strip() for k in settings.api_keys.split(",") if k.strip()]


def create_app(settings: Settings) -> FastAPI:
    """The vam HTTP service: tus uploads at ``/files/``, ``/health``, OpenAPI at ``/docs``."""
    app = FastAPI(
        title="vam",
        description="video asset management: resumable uploads (tus 1.0), assets and search,"
        " an HLS/DASH origin with signed URLs, player and upload pages",
        version="1",
    )
    rt = Runtime(settings)
    app.state.runtime = rt
    app.state.api_keys = api_keys(settings)
    app.state.tus = uploads.make_store(rt)
    app.state.keyring = keyring(rt)  # signing keys: configured, or generated once into the data dir
    app.state.asset_index = AssetIndex(rt)
    app.state.cors_origins = [o.strip() for o in settings.cors_origins.split(",") if o.strip()]
    errors.install(app)
    app.include_router(health.router)
    app.include_router(uploads.router)
    app.include_router(assets.router)
    app.include_router(origin.router)
    app.include_router(pages.router)
    app.include_router(transforms.router)
    return app

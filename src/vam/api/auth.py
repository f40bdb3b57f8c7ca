"""API keys: required on every route but health and OPTIONS when the setting ``api_keys`` is set."""

from __future__ import annotations

import secrets

from fastapi import Request

from vam.api.errors import ApiError


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
    raise ApiError(
        401,
        "unauthorized",
        "an API key is required: send X-Api-Key: KEY or Authorization: Bearer KEY",
        {"WWW-Authenticate": "Bearer"},
    )

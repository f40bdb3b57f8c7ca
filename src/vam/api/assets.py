"""Assets: list, get and search (the JSON of ``vam search --json`` and ``vam show --json``), update
tags, and signed playback URLs. Every route needs the API key when keys are configured."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import Response

from vam.api.auth import require_api_key
from vam.api.errors import ApiError
from vam.errors import CatalogError, VamError
from vam.runtime import Runtime

router = APIRouter(tags=["assets"], dependencies=[Depends(require_api_key)])


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def cli_json(data: Any) -> Response:
    """``data`` as the CLI's ``--json`` prints it (datetimes as ``str()`` gives them)."""
    return Response(json.dumps(data, default=str), media_type="application/json")


def _bad(exc: Exception) -> ApiError:
    return ApiError(400, "invalid_request", str(exc))


def _search(request: Request, **kw: Any) -> list[dict[str, Any]]:
    from vam.catalog.search import SearchError, SearchFilters
    from vam.enrich.tags import parse_assignments
    from vam.steps.search import search

    rt = _rt(request)
    tags = kw.pop("tag")
    try:
        filters = SearchFilters(
            min_duration=kw["min_duration"],
            max_duration=kw["max_duration"],
            min_height=kw["min_height"],
            max_height=kw["max_height"],
            codec=kw["codec"],
            status=kw["status"],
            tags=rt.taxonomy.filter_values(parse_assignments(tags)) if tags else None,
            labels=kw["label"] or None,
            flagged=kw["flagged"],
        )
        return search(rt, kw["q"], mode=kw["mode"], filters=filters, limit=kw["limit"])
    except SearchError as exc:
        raise _bad(exc) from exc
    except CatalogError:
        raise
    except VamError as exc:  # bad tag filters
        raise _bad(exc) from exc


@router.get("/assets")
@router.get("/search", include_in_schema=False)
def list_assets(
    request: Request,
    q: str = Query("", description="words or a phrase; empty lists the assets the filters select"),
    mode: str = Query("text", pattern="^(text|semantic)$"),
    limit: int = Query(20, ge=1, le=1000),
    min_duration: float | None = None,
    max_duration: float | None = None,
    min_height: int | None = None,
    max_height: int | None = None,
    codec: str | None = None,
    status: str | None = None,
    tag: Annotated[list[str] | None, Query(description="key=value tag filter (repeatable)")] = None,
    label: Annotated[list[str] | None, Query(description="a visual label the asset must have")] = None,
    flagged: bool | None = None,
) -> Response:
    """List or search assets: the hits of ``vam search --json`` (asset id, title, status, score,
    transcript matches with time offsets), best first."""
    hits = _search(
        request,
        q=q,
        mode=mode,
        limit=limit,
        min_duration=min_duration,
        max_duration=max_duration,
        min_height=min_height,
        max_height=max_height,
        codec=codec,
        status=status,
        tag=tag,
        label=label,
        flagged=flagged,
    )
    return cli_json(hits)


def _known(rt: Runtime, asset_id: str) -> None:
    with rt.catalog() as cat:
        try:
            cat.get_asset(asset_id)
        except CatalogError:
            raise ApiError(404, "not_found", f"no asset {asset_id}: GET /assets lists them") from None


@router.get("/assets/{asset_id}")
def get_asset(asset_id: str, request: Request, events: bool = False) -> Response:
    """One asset: the JSON of ``vam show --json`` (summary, objects, and with ``events`` its audit log)."""
    from vam.steps.show import show

    rt = _rt(request)
    _known(rt, asset_id)
    return cli_json(show(rt, asset_id, events=events))


@router.patch("/assets/{asset_id}/tags")
def update_tags(
    asset_id: str,
    request: Request,
    body: Annotated[dict[str, Any], Body(examples=[{"assignments": ["campaign=spring", "tags+=a,b"]}])],
) -> dict[str, Any]:
    """Change manual tags, validated against the taxonomy and audited: ``{"assignments": [...]}`` in
    ``vam tag`` syntax (``key=value``, ``key=``, ``key+=a,b``, ``key-=a``) or ``{"changes": {...}}``."""
    from vam.enrich.tags import parse_assignments
    from vam.steps.enrich import update_tags as apply

    rt = _rt(request)
    _known(rt, asset_id)
    try:
        if isinstance(body.get("assignments"), list):
            changes = parse_assignments([str(a) for a in body["assignments"]])
        elif isinstance(body.get("changes"), dict):
            changes = body["changes"]
        else:
            raise VamError('send {"assignments": ["key=value", ...]} or {"changes": {"key": value}}')
        actor = "api:" + (request.client.host if request.client else "unknown")
        tags = apply(rt, asset_id, changes, actor=actor, source="api")
    except CatalogError:
        raise
    except VamError as exc:
        raise _bad(exc) from exc
    return {"asset_id": asset_id, "tags": tags}


@router.get("/assets/{asset_id}/playback")
def playback(
    asset_id: str,
    request: Request,
    format: str | None = Query(None, pattern="^(hls|dash)$"),
    ttl: int | None = Query(None, ge=1, description="seconds (default: signed_url_ttl_seconds)"),
) -> dict[str, Any]:
    """Signed playback URLs (what ``vam url --json`` prints): the manifest URL, HLS, DASH, captions,
    chapters, the player page, the token and its expiry."""
    from vam.steps.delivery import NotServable
    from vam.steps.delivery import playback as sign

    rt = _rt(request)
    base = rt.settings.public_url or str(request.base_url)
    try:
        return sign(rt, asset_id, base=base, ttl_seconds=ttl, fmt=format, keys=request.app.state.keyring)
    except NotServable as exc:
        raise ApiError(exc.status, "not_found" if exc.status == 404 else "not_ready", str(exc)) from None
    except VamError as exc:
        raise _bad(exc) from exc

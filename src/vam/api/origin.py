"""The origin: an asset's manifests, segments, captions, chapters and keyframes from whichever store
holds them.

``GET|HEAD /v/{token}/{asset_id}/{path}`` serves a path the signed token covers (403 when the token
is missing, altered, expired or for another asset); ``/o/{asset_id}/{path}`` serves without a token
unless the deployment requires signed URLs (setting ``require_signed_urls``). Bodies are streamed
in chunks of at most 1 MiB (memory flat whatever the object size) with the media type, a single
``Range`` (206 with exactly those bytes, 416 past the end), a strong ``ETag`` (``If-None-Match``:
304), ``Cache-Control`` (segments a year and immutable, manifests 10 s) and CORS headers, so a
player on another origin can play. Reads record the asset's last access at most every few minutes.
"""

from __future__ import annotations

import email.utils
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from vam import storage
from vam.api.errors import ApiError
from vam.delivery import http
from vam.delivery.reader import read_range
from vam.delivery.signing import TokenError
from vam.errors import StorageError
from vam.steps.delivery import AssetIndex, NotServable, Served

log = logging.getLogger(__name__)

router = APIRouter(tags=["origin"])
EXPOSED = "Content-Length, Content-Range, Accept-Ranges, ETag, Last-Modified, Cache-Control"


def cors_headers(request: Request) -> dict[str, str]:
    allowed: list[str] = request.app.state.cors_origins
    origin = request.headers.get("origin")
    if "*" in allowed:
        value = "*"
    elif origin and origin in allowed:
        value = origin
    else:
        return {}
    headers = {"Access-Control-Allow-Origin": value, "Access-Control-Expose-Headers": EXPOSED}
    if value != "*":
        headers["Vary"] = "Origin"
    return headers


def _fail(request: Request, status: int, code: str, message: str) -> ApiError:
    return ApiError(status, code, message, {**cors_headers(request), "Cache-Control": "no-store"})


async def _served(request: Request, asset_id: str, path: str) -> Served:
    index: AssetIndex = request.app.state.asset_index
    served = index.peek(asset_id, path)
    if served is not None:
        return served
    try:
        return await run_in_threadpool(index.lookup, asset_id, path)
    except NotServable as exc:
        raise _fail(request, exc.status, "not_found", str(exc)) from None


async def _info(served: Served) -> storage.ObjectInfo:
    store = storage.store_for(served.uri)
    if store.local_path(served.uri) is not None:
        return store.head(served.uri)  # a stat: no need for a worker thread
    return await run_in_threadpool(store.head, served.uri)


async def _readable(request: Request, asset_id: str, path: str) -> tuple[Served, storage.ObjectInfo]:
    """The object and its metadata. When the cached map points at a copy that is gone (a lifecycle
    move re-pointed the asset since the map was read), the catalog is read again once."""
    served = await _served(request, asset_id, path)
    try:
        return served, await _info(served)
    except StorageError as exc:
        error = exc
    index: AssetIndex = request.app.state.asset_index
    try:
        entry = await run_in_threadpool(index.get, asset_id, fresh=True)
    except NotServable as exc:
        raise _fail(request, exc.status, "not_found", str(exc)) from None
    moved = entry.files.get(path)
    if moved is not None and moved.uri != served.uri:
        try:
            return moved, await _info(moved)
        except StorageError as exc:
            error = exc
    log.warning("origin: %s/%s listed in the catalog but not readable: %s", asset_id, path, error)
    raise _fail(request, 404, "not_found", f"asset {asset_id}: {path} is not in its store")


async def _serve(request: Request, asset_id: str, path: str) -> Response:
    served, info = await _readable(request, asset_id, path)
    modified = info.last_modified.timestamp() if info.last_modified else None
    etag = http.make_etag(sha256=served.sha256, store_etag=info.etag, size=info.size, modified=modified)
    headers: dict[str, Any] = {
        **cors_headers(request),
        "ETag": etag,
        "Cache-Control": http.cache_control(path),
        "Accept-Ranges": "bytes",
    }
    if modified is not None:
        headers["Last-Modified"] = email.utils.formatdate(modified, usegmt=True)
    index: AssetIndex = request.app.state.asset_index
    background = BackgroundTask(index.touch, asset_id) if index.touch_due(asset_id) else None
    if http.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers, background=background)
    try:
        wanted = http.parse_range(request.headers.get("range"), info.size)
    except http.RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{info.size}"
        raise ApiError(416, "range_not_satisfiable", f"{path} has {info.size} bytes", headers) from None
    if_range = request.headers.get("if-range")
    if wanted is not None and if_range is not None and if_range.strip() != etag:
        wanted = None  # the client's copy is stale: send the whole object
    status, start, length = 200, 0, info.size
    if wanted is not None:
        status, start, length = 206, wanted.start, wanted.length
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{info.size}"
    headers["Content-Length"] = str(length)
    media_type = http.media_type(path)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=media_type, background=background)
    return StreamingResponse(
        read_range(served.uri, start, length),
        status_code=status,
        headers=headers,
        media_type=media_type,
        background=background,
    )


@router.api_route("/v/{token}/{asset_id}/{path:path}", methods=["GET", "HEAD"])
async def signed(token: str, asset_id: str, path: str, request: Request) -> Response:
    """An object of the asset through a signed URL (``vam url`` or ``GET /assets/{id}/playback``)."""
    try:
        request.app.state.keyring.verify(token, f"{asset_id}/{path}")
    except TokenError as exc:
        raise _fail(request, 403, f"token_{exc.reason}", str(exc)) from None
    return await _serve(request, asset_id, path)


@router.api_route("/o/{asset_id}/{path:path}", methods=["GET", "HEAD"])
async def unsigned(asset_id: str, path: str, request: Request) -> Response:
    """An object of the asset without a token (403 when the deployment requires signed URLs)."""
    if request.app.state.runtime.settings.require_signed_urls:
        raise _fail(
            request,
            403,
            "token_missing",
            "this service requires signed URLs: get one with `vam url ASSET_ID` or GET /assets/{id}/playback",
        )
    return await _serve(request, asset_id, path)


@router.options("/v/{rest:path}", include_in_schema=False)
@router.options("/o/{rest:path}", include_in_schema=False)
def preflight(rest: str, request: Request) -> Response:
    """CORS preflight: GET/HEAD with Range and If-None-Match from any allowed origin."""
    headers = {
        **cors_headers(request),
        "Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
        "Access-Control-Allow-Headers": "Range, If-None-Match, If-Range",
        "Access-Control-Max-Age": "86400",
    }
    return Response(status_code=204, headers=headers)

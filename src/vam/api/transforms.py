"""Transformation URLs: ``GET /t/{transformation}/{asset_id}.{ext}`` (and ``/t/s--{token}/...``).

The first request for a transformation starts its build and answers **202** with ``Retry-After``
(``Cache-Control: no-store``, a JSON body saying ``queued``/``building``); once it is built, **200**
with the file, streamed in bounded chunks with a strong ``ETag`` (304 on ``If-None-Match``) and
``Range`` support. Never a half-built file: the object is published whole before the catalog says
it is ready. A bad parameter is a **400** whose JSON names it (``error.parameter``); an unknown asset
404, an asset not ready 409, too many builds at once 503 with ``Retry-After``, a failed build 500
with its reason (built again on a request a minute later).

Small builds run in this process's worker threads (``transform_max_builds`` of them, the same cap
held across processes by the catalog); larger ones (see :func:`vam.steps.transform.runs_inline`) are
queued as ``vam_transform`` Airflow runs when ``airflow_api_url`` is set.

Signing: ``/t/s--{token}/{transformation}/{asset_id}.{ext}`` carries a token of
:mod:`vam.delivery.signing` over ``t/{canonical transformation}/{asset_id}.{format}`` (so any
spelling of the same transformation is covered). With ``require_signed_urls`` only signed
transformation URLs are served or built (Cloudinary's "strict transformations"). ``POST
/t/sign`` (API key) returns a signed URL; ``POST /overlays/{id}`` (API key) uploads a watermark.
"""

from __future__ import annotations

import email.utils
import logging
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.background import BackgroundTasks
from starlette.concurrency import run_in_threadpool

from vam import storage
from vam.api.auth import require_api_key
from vam.api.errors import ApiError
from vam.delivery import http
from vam.delivery.reader import read_range
from vam.delivery.signing import TokenError
from vam.errors import StorageError, VamError
from vam.runtime import Runtime
from vam.steps.transform import SIGNED_PREFIX, signed_path, signed_url

log = logging.getLogger(__name__)

router = APIRouter(tags=["transformations"])
CACHE_CONTROL = "public, max-age=86400"
RETRY_FAILED_AFTER_S = 60.0
READY_TTL_S = 30.0  # how long this process trusts a ready transformation without the catalog
READY_MAX = 10_000
HIT_FLUSH_S = 5.0
DEFAULT_SIGN_TTL_S = 365 * 86400


class Builds:
    """This process's build threads; the catalog's claims make the limit hold across processes."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.pool = ThreadPoolExecutor(
            max_workers=max(1, rt.settings.transform_max_builds), thread_name_prefix="vam-transform"
        )
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.started = 0

    def _run(self, prepared: Any, owner: str) -> None:
        from vam.steps.transform import build_claimed

        try:
            build_claimed(self.rt, prepared, owner)
        except Exception:
            log.exception("transformation %s of %s failed", prepared.canonical, prepared.asset_id)
        finally:
            with self.lock:
                self.running.discard(prepared.digest)

    def request(self, prepared: Any, ext: str) -> dict[str, Any]:
        """Start (or find) the build: ``{"state": "ready"|"queued"|"building"|"failed", ...}``."""
        from vam.steps.transform import (
            TransformUnavailable,
            cached,
            claim,
            new_owner,
            runs_inline,
            start_dag_run,
        )

        rt = self.rt
        with rt.catalog() as cat:
            row = cat.get_transformation(prepared.asset_id, prepared.digest)
        if row is not None and row["status"] == "failed" and row["age"] < RETRY_FAILED_AFTER_S:
            return {"state": "failed", "error": row["error"]}
        if row is not None and row["status"] in ("queued", "building") and row["live"]:
            return {
                "state": row["status"],
                "via": "airflow" if str(row["owner"]).startswith("airflow:") else "inline",
            }
        inline = runs_inline(rt, prepared)
        if inline:
            owner = new_owner()
            got = claim(rt, prepared, owner)
        else:
            import uuid

            run_id = f"t__{prepared.asset_id}__{prepared.digest}__{uuid.uuid4().hex[:6]}"
            owner = f"airflow:{run_id}"
            got = claim(rt, prepared, owner, status="queued")
        if got["state"] == "ready":
            hit = cached(rt, prepared)
            if hit is not None:
                return {"state": "ready", "row": hit}
            return {"state": "building", "via": "inline"}
        if got["state"] == "busy":
            return {"state": got["row"]["status"], "via": "other"}
        if got["state"] == "full":
            raise TransformUnavailable(
                503, "too_many_builds",
                f"{rt.settings.transform_max_builds} transformations are being built; try again shortly",
                max(rt.settings.transform_retry_after_seconds, 5),
            )  # fmt: skip
        if inline:
            with self.lock:
                self.running.add(prepared.digest)
                self.started += 1
            self.pool.submit(self._run, prepared, owner)
            return {"state": "building", "via": "inline"}
        try:
            start_dag_run(rt, prepared, ext, run_id=run_id, owner=owner)
        except VamError as exc:
            with rt.catalog() as cat:
                cat.fail_transformation(prepared.asset_id, prepared.digest, owner, str(exc))
            raise
        return {"state": "queued", "via": "airflow", "run_id": run_id}


class ReadyCache:
    """Ready transformations this process served lately: a repeat request costs no catalog query.
    Hits are counted in memory and added to the catalog at most every :data:`HIT_FLUSH_S`."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.lock = threading.Lock()
        self.rows: dict[tuple[str, str], tuple[dict[str, Any], float]] = {}
        self.pending: dict[tuple[str, str], int] = {}
        self.flushed = time.monotonic()

    def get(self, asset_id: str, canonical: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self.lock:
            entry = self.rows.get((asset_id, canonical))
            if entry is None or now - entry[1] > READY_TTL_S:
                return None
            key = (asset_id, entry[0]["digest"])
            self.pending[key] = self.pending.get(key, 0) + 1
            return entry[0]

    def put(self, asset_id: str, canonical: str, row: dict[str, Any]) -> None:
        with self.lock:
            if len(self.rows) > READY_MAX:
                self.rows.clear()
            self.rows[(asset_id, canonical)] = (row, time.monotonic())

    def drop(self, asset_id: str, canonical: str) -> None:
        with self.lock:
            self.rows.pop((asset_id, canonical), None)

    def flush_due(self) -> bool:
        return bool(self.pending) and time.monotonic() - self.flushed >= HIT_FLUSH_S

    def flush(self) -> None:
        with self.lock:
            pending, self.pending, self.flushed = self.pending, {}, time.monotonic()
        if not pending:
            return
        try:
            with self.rt.catalog(actor="transforms") as cat:
                for (asset_id, digest), hits in pending.items():
                    cat.add_transformation_hits(asset_id, digest, hits)
        except VamError as exc:
            log.warning("could not record %d transformation hits: %s", sum(pending.values()), exc)


def _ready(request: Request) -> ReadyCache:
    state = request.app.state
    cache = getattr(state, "transform_ready", None)
    if cache is None:
        with _init_lock:
            cache = getattr(state, "transform_ready", None)
            if cache is None:
                cache = state.transform_ready = ReadyCache(state.runtime)
    return cache


def _builds(request: Request) -> Builds:
    state = request.app.state
    builds = getattr(state, "transform_builds", None)
    if builds is None:
        with _init_lock:
            builds = getattr(state, "transform_builds", None)
            if builds is None:
                builds = state.transform_builds = Builds(state.runtime)
    return builds


_init_lock = threading.Lock()


def _error(
    status: int, code: str, message: str, parameter: str | None = None, **headers: str
) -> JSONResponse:
    body: dict[str, Any] = {"status": status, "code": code, "message": message}
    if parameter is not None:
        body["parameter"] = parameter
    return JSONResponse({"error": body}, status_code=status, headers={"Cache-Control": "no-store", **headers})


async def _stream(request: Request, row: dict[str, Any], content_type: str) -> Response | None:
    """The transformation's object as the answer; None when the object has gone."""
    uri = row["uri"]
    store = storage.store_for(uri)
    try:
        info = (
            store.head(uri) if store.local_path(uri) is not None else await run_in_threadpool(store.head, uri)
        )
    except StorageError:
        return None
    tasks = BackgroundTasks()
    ready = _ready(request)
    if ready.flush_due():
        tasks.add_task(ready.flush)
    index = getattr(request.app.state, "asset_index", None)
    if index is not None and index.touch_due(row["asset_id"]):
        tasks.add_task(index.touch, row["asset_id"])  # lifecycle policies see the read
    modified = info.last_modified.timestamp() if info.last_modified else None
    etag = http.make_etag(sha256=row.get("sha256"), store_etag=info.etag, size=info.size, modified=modified)
    headers: dict[str, str] = {"ETag": etag, "Cache-Control": CACHE_CONTROL, "Accept-Ranges": "bytes"}
    headers["Vam-Transformation"] = row["canonical"]
    if modified is not None:
        headers["Last-Modified"] = email.utils.formatdate(modified, usegmt=True)
    if http.etag_matches(request.headers.get("if-none-match"), etag):
        return Response(status_code=304, headers=headers, background=tasks)
    try:
        wanted = http.parse_range(request.headers.get("range"), info.size)
    except http.RangeNotSatisfiable:
        headers["Content-Range"] = f"bytes */{info.size}"
        return _error(416, "range_not_satisfiable", f"the file has {info.size} bytes", **headers)
    status, start, length = 200, 0, info.size
    if wanted is not None:
        status, start, length = 206, wanted.start, wanted.length
        headers["Content-Range"] = f"bytes {wanted.start}-{wanted.end}/{info.size}"
    headers["Content-Length"] = str(length)
    if request.method == "HEAD":
        return Response(status_code=status, headers=headers, media_type=content_type, background=tasks)
    body = read_range(uri, start, length)
    return StreamingResponse(
        body, status_code=status, headers=headers, media_type=content_type, background=tasks
    )


@router.get("/t/{transformation:path}/{asset_file}", operation_id="get_transformation")
@router.head("/t/{transformation:path}/{asset_file}", operation_id="head_transformation")
async def transformation(transformation: str, asset_file: str, request: Request) -> Response:
    """The asset transformed as the URL says (202 while it is built, then 200 with the file)."""
    from vam.media.transform import TransformError, parse
    from vam.steps.transform import TransformUnavailable, cached, forget, prepare

    rt: Runtime = request.app.state.runtime
    token = None
    if transformation.startswith(SIGNED_PREFIX):
        first, _, transformation = transformation.partition("/")
        token = first[len(SIGNED_PREFIX) :]
    asset_id, dot, ext = asset_file.rpartition(".")
    if not dot or not asset_id:
        return _error(404, "not_found", "name the output {asset_id}.{ext}, e.g. 0123456789abcdef.mp4")
    try:
        spec = parse(transformation, ext)
    except TransformError as exc:
        return _error(400, "invalid_transformation", str(exc), exc.parameter)
    if token is not None or rt.settings.require_signed_urls:
        try:
            request.app.state.keyring.verify(token, signed_path(spec.canonical, asset_id, spec.fmt))
        except TokenError as exc:
            message = str(exc)
            if exc.reason == "missing":
                message = "this service builds only signed transformation URLs: get one with POST /t/sign"
            return _error(403, f"token_{exc.reason}", message)
    ready = _ready(request)
    row = ready.get(asset_id, spec.canonical)
    if row is not None:
        answer = await _stream(request, row, spec.content_type)
        if answer is not None:
            return answer
        ready.drop(asset_id, spec.canonical)
    try:
        prepared = await run_in_threadpool(prepare, rt, asset_id, transformation, ext)
        row = await run_in_threadpool(lambda: cached(rt, prepared, verify=False))
        if row is not None:
            answer = await _stream(request, row, spec.content_type)
            if answer is not None:
                ready.put(asset_id, spec.canonical, row)
                return answer
            log.warning(
                "transformation %s of %s: %s is gone; building it again", spec.canonical, asset_id, row["uri"]
            )
            await run_in_threadpool(forget, rt, asset_id, prepared.digest)
        state = await run_in_threadpool(_builds(request).request, prepared, ext)
    except TransformError as exc:
        return _error(400, "invalid_transformation", str(exc), exc.parameter)
    except TransformUnavailable as exc:
        extra = {"Retry-After": str(exc.retry_after)} if exc.retry_after else {}
        return _error(exc.status, exc.code, str(exc), **extra)
    if state["state"] == "ready":
        answer = await _stream(request, state["row"], spec.content_type)
        if answer is not None:
            return answer
    if state["state"] == "failed":
        return _error(500, "build_failed", f"building {spec.canonical} failed: {state['error']}")
    retry = rt.settings.transform_retry_after_seconds
    body = {
        "status": state["state"],
        "transformation": spec.canonical,
        "asset_id": asset_id,
        "via": state.get("via"),
        "retry_after": retry,
    }
    return JSONResponse(
        body, status_code=202, headers={"Retry-After": str(retry), "Cache-Control": "no-store"}
    )


@router.post("/t/sign", dependencies=[Depends(require_api_key)])
def sign(
    request: Request,
    asset_id: Annotated[str, Body()],
    transformation: Annotated[str, Body()],
    ext: Annotated[str | None, Body()] = None,
    ttl_seconds: Annotated[int, Body(ge=1, le=DEFAULT_SIGN_TTL_S)] = DEFAULT_SIGN_TTL_S,
) -> dict[str, Any]:
    """A signed transformation URL: ``{"url", "expires", "transformation"}``."""
    from vam.media.transform import TransformError
    from vam.steps.delivery import base_url

    rt: Runtime = request.app.state.runtime
    base = base_url(rt, rt.settings.public_url or str(request.base_url))
    try:
        return signed_url(request.app.state.keyring, base, asset_id, transformation, ext, ttl_seconds)
    except TransformError as exc:
        raise ApiError(400, "invalid_transformation", str(exc)) from None


@router.post("/overlays/{overlay_id}", status_code=201, dependencies=[Depends(require_api_key)])
async def upload_overlay(overlay_id: str, request: Request) -> dict[str, Any]:
    """Upload a watermark image (the request body: PNG with alpha, JPEG or WebP) as ``l_{overlay_id}``."""
    from vam.steps.transform import OverlayError, save_overlay

    rt: Runtime = request.app.state.runtime
    limit = rt.settings.overlay_max_bytes
    with tempfile.TemporaryDirectory(prefix="vam-overlay-") as tmp:
        path = Path(tmp) / "upload"
        size = 0
        with path.open("wb") as out:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    raise ApiError(413, "too_large", f"overlay images may be up to {limit} bytes")
                out.write(chunk)
        if size == 0:
            raise ApiError(400, "invalid_overlay", "the request body is empty: send the image's bytes")
        try:
            row = await run_in_threadpool(save_overlay, rt, overlay_id, path)
        except OverlayError as exc:
            raise ApiError(400, "invalid_overlay", str(exc)) from None
    return {
        k: row[k] for k in ("overlay_id", "uri", "sha256", "size_bytes", "width", "height", "content_type")
    }


@router.get("/overlays", dependencies=[Depends(require_api_key)])
def list_overlays(request: Request) -> list[dict[str, Any]]:
    """The watermark images, as ``l_`` ids with their sizes."""
    rt: Runtime = request.app.state.runtime
    with rt.catalog() as cat:
        return [
            {k: r[k] for k in ("overlay_id", "sha256", "width", "height", "content_type", "size_bytes")}
            for r in cat.list_overlays()
        ]

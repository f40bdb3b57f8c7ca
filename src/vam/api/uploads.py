"""The tus 1.0 endpoint (``/files/``): core protocol, creation, creation-with-upload,
creation-defer-length, expiration, checksum (sha1, sha256), termination and concatenation.

Bodies are streamed to the upload's data (a part file, or S3 parts spooled on local disk) in
pieces of at most 1 MiB: nothing holds a whole chunk in memory. The answer to the request that
completes an upload carries ``Vam-Asset-Id`` (and ``Vam-Source-Uri``, ``Vam-Run``).
"""

from __future__ import annotations

import base64
import email.utils
import logging
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from vam.api.auth import require_api_key
from vam.errors import StorageError
from vam.ingest.tus import (
    CHECKSUMS,
    EXTENSIONS,
    MIB,
    TUS_VERSION,
    TusError,
    TusStore,
    Upload,
    parse_checksum,
    parse_metadata,
)
from vam.runtime import Runtime
from vam.steps import uploads as steps

log = logging.getLogger(__name__)

router = APIRouter(prefix="/files", tags=["uploads"])
OCTET = "application/offset+octet-stream"
BUFFER = MIB


def make_store(rt: Runtime) -> TusStore:
    return steps.tus_store(rt)


def _store(request: Request) -> TusStore:
    return request.app.state.tus


def _rt(request: Request) -> Runtime:
    return request.app.state.runtime


def _check_version(request: Request) -> None:
    version = request.headers.get("tus-resumable")
    if version != TUS_VERSION:
        raise TusError(
            412,
            "unsupported_version",
            f"Tus-Resumable {version!r} is not supported; this server speaks {TUS_VERSION}",
        )


def _int_header(request: Request, name: str) -> int | None:
    value = request.headers.get(name)
    if value is None:
        return None
    if not value.strip().isdigit():
        raise TusError(400, "bad_header", f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


def _expires(ts: float) -> str:
    return email.utils.formatdate(ts, usegmt=True)


def _location(request: Request, upload_id: str) -> str:
    public = _rt(request).settings.public_url
    base = public.rstrip("/") if public else str(request.base_url).rstrip("/")
    return f"{base}/files/{upload_id}"


def _encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def _headers(upload: Upload, *, head: bool = False) -> dict[str, str]:
    h = {"Tus-Resumable": TUS_VERSION, "Upload-Offset": str(upload.offset)}
    if upload.length is not None and (head or upload.concat == "final"):
        h["Upload-Length"] = str(upload.length)
    if upload.length is None:
        h["Upload-Defer-Length"] = "1"
    if upload.state == "open" and upload.expires_at:
        h["Upload-Expires"] = _expires(upload.expires_at)
    if head:
        h["Cache-Control"] = "no-store"
        if upload.metadata:
            h["Upload-Metadata"] = _encode_metadata(upload.metadata)
        if upload.concat == "partial":
            h["Upload-Concat"] = "partial"
        elif upload.concat == "final":
            h["Upload-Concat"] = "final;" + " ".join(f"/files/{p}" for p in upload.parts)
    if upload.result.get("asset_id"):
        h["Vam-Asset-Id"] = upload.result["asset_id"]
        h["Vam-Source-Uri"] = upload.result.get("source_uri") or ""
        h["Vam-Run"] = str(upload.result.get("run") or "")
    return h


class _Held:
    """The upload's lock, taken and released off the event loop."""

    def __init__(self, store: TusStore, upload_id: str) -> None:
        self.store, self.upload_id = store, upload_id
        self.cm: Any = None

    async def __aenter__(self) -> None:
        self.cm = self.store.lock(self.upload_id)
        await run_in_threadpool(self.cm.__enter__)

    async def __aexit__(self, *exc: Any) -> None:
        await run_in_threadpool(self.cm.__exit__, None, None, None)


async def _receive(request: Request, store: TusStore, upload: Upload, offset: int) -> Upload:
    """Stream the request body into the upload at ``offset``; record it (hold the lock)."""
    checksum = parse_checksum(request.headers.get("upload-checksum"))
    store.check_write(upload, offset)
    declared = _int_header(request, "content-length")
    limit = store.limit_for(upload)
    if declared is not None and limit is not None and declared > limit:
        raise TusError(
            413, "too_large", f"the request carries {declared} bytes; the upload takes {limit} more"
        )
    writer = await run_in_threadpool(store.writer, upload, offset, checksum)
    buffer = bytearray()
    interrupted = False
    try:
        try:
            async for piece in request.stream():
                buffer += piece
                if len(buffer) >= BUFFER:
                    data, buffer = bytes(buffer), bytearray()
                    await run_in_threadpool(writer.write, data)
        except ClientDisconnect:
            interrupted = True
            log.info("upload %s: client went away after %d bytes", upload.id, writer.received + len(buffer))
        if buffer:
            await run_in_threadpool(writer.write, bytes(buffer))
    except BaseException:
        await run_in_threadpool(writer.abort)
        raise
    return await run_in_threadpool(lambda: writer.commit(interrupted=interrupted))


async def _maybe_finish(request: Request, store: TusStore, upload: Upload) -> Upload:
    if upload.complete and upload.state in ("open", "complete") and upload.concat != "partial":
        await run_in_threadpool(steps.finish, _rt(request), store, upload)
    return upload


@router.options("/", include_in_schema=False)
@router.options("/{upload_id}", include_in_schema=False)
def options(request: Request) -> Response:
    """What this server speaks (no API key needed)."""
    headers = {
        "Tus-Resumable": TUS_VERSION,
        "Tus-Version": TUS_VERSION,
        "Tus-Extension": ",".join(EXTENSIONS),
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS),
    }
    if _store(request).max_bytes:
        headers["Tus-Max-Size"] = str(_store(request).max_bytes)
    return Response(status_code=204, headers=headers)


@router.post("/", status_code=201, dependencies=[Depends(require_api_key)])
async def create(request: Request) -> Response:
    """Creation (+ creation-with-upload, creation-defer-length, concatenation)."""
    _check_version(request)
    store = _store(request)
    length = _int_header(request, "upload-length")
    defer = request.headers.get("upload-defer-length")
    concat_header = (request.headers.get("upload-concat") or "").strip()
    concat, parts = None, []
    if concat_header == "partial":
        concat = "partial"
    elif concat_header.startswith("final;"):
        concat = "final"
        parts = [u.rstrip("/").rsplit("/", 1)[-1] for u in concat_header[len("final;") :].split()]
    elif concat_header:
        raise TusError(
            400, "bad_concat", f"Upload-Concat {concat_header!r}: expected partial or final;URL URL..."
        )
    if concat != "final":
        if defer is not None and defer != "1":
            raise TusError(400, "bad_header", "Upload-Defer-Length must be 1")
        if (length is None) == (defer is None):
            raise TusError(400, "bad_header", "give exactly one of Upload-Length and Upload-Defer-Length: 1")
    metadata = parse_metadata(request.headers.get("upload-metadata"))
    rt = _rt(request)
    await run_in_threadpool(steps.check_metadata, rt, metadata)  # before any byte: 400 naming the key
    upload = await run_in_threadpool(lambda: store.create(length, metadata, concat=concat, parts=parts))
    has_body = (request.headers.get("content-type") or "").split(";")[0].strip() == OCTET and (
        (_int_header(request, "content-length") or 0) > 0 or "transfer-encoding" in request.headers
    )
    if concat == "final":
        async with _Held(store, upload.id):
            upload = await _maybe_finish(request, store, upload)
    elif has_body:
        async with _Held(store, upload.id):
            upload = await _receive(request, store, upload, 0)
            upload = await _maybe_finish(request, store, upload)
    elif upload.length == 0:
        async with _Held(store, upload.id):
            upload = await _maybe_finish(request, store, upload)
    headers = _headers(upload)
    headers["Location"] = _location(request, upload.id)
    return Response(status_code=201, headers=headers)


@router.head("/{upload_id}", dependencies=[Depends(require_api_key)])
async def head(upload_id: str, request: Request) -> Response:
    """The upload's offset (and length, metadata, expiry)."""
    store = _store(request)
    try:
        _check_version(request)
        async with _Held(store, upload_id):
            upload = await run_in_threadpool(store.load, upload_id)
    except TusError as exc:  # a HEAD answer has no body
        headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
        return Response(status_code=exc.status, headers=headers)
    return Response(status_code=200, headers=_headers(upload, head=True))


@router.patch("/{upload_id}", status_code=204, dependencies=[Depends(require_api_key)])
async def patch(upload_id: str, request: Request) -> Response:
    """Append the body at Upload-Offset (409 when it is not the upload's offset)."""
    _check_version(request)
    ctype = (request.headers.get("content-type") or "").split(";")[0].strip()
    if ctype != OCTET:
        raise TusError(415, "bad_content_type", f"a PATCH needs Content-Type: {OCTET}")
    offset = _int_header(request, "upload-offset")
    if offset is None:
        raise TusError(400, "bad_header", "a PATCH needs Upload-Offset")
    length = _int_header(request, "upload-length")
    store = _store(request)
    async with _Held(store, upload_id):
        upload = await run_in_threadpool(store.load, upload_id)
        if length is not None:
            await run_in_threadpool(store.set_length, upload, length)
        store.touch(upload)
        upload = await _receive(request, store, upload, offset)
        upload = await _maybe_finish(request, store, upload)
    return Response(status_code=204, headers=_headers(upload))


@router.delete("/{upload_id}", status_code=204, dependencies=[Depends(require_api_key)])
async def terminate(upload_id: str, request: Request) -> Response:
    """Termination: the upload's data is deleted; later requests get 410."""
    _check_version(request)
    store = _store(request)
    async with _Held(store, upload_id):
        upload = await run_in_threadpool(store.load, upload_id)
        if upload.state == "landed":
            raise TusError(403, "finished", f"upload {upload_id} is finished and landed: not terminated")
        try:
            await run_in_threadpool(store.terminate, upload)
        except StorageError as exc:
            raise TusError(500, "storage", str(exc)) from exc
    return Response(status_code=204, headers={"Tus-Resumable": TUS_VERSION})

"""Pages: ``/watch/{asset_id}`` (hls.js for HLS, dash.js for DASH, WebVTT captions, chapters from
the scenes, a quality selector) and ``/upload`` (tus-js-client against ``/files/``: progress, and
resuming after a page reload). The player libraries are served from the npm packages installed by
scripts/install_node_tools.sh (``/static/vendor/...``): no CDN at run time.

The watch page plays through the signed URLs of ``?token=`` (from ``vam url`` or
``GET /assets/{id}/playback``); without a token it uses unsigned ``/o/`` URLs, which the origin
refuses when the deployment requires signed URLs (the player then shows the error).
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from string import Template
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from starlette.concurrency import run_in_threadpool

from vam.api.errors import ApiError

router = APIRouter(tags=["pages"])
HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
# what /static/vendor/{name} serves: file below the player_libs_dir (node_modules)
VENDOR = {
    "hls.min.js": "hls.js/dist/hls.min.js",
    "dash.all.min.js": "dashjs/dist/legacy/umd/dash.all.min.js",
    "tus.min.js": "tus-js-client/dist/tus.min.js",
}
OWN_STATIC = {"watch.js", "upload.js", "vam.css"}
LIB_CACHE = "public, max-age=86400"


def _page(name: str, **values: Any) -> HTMLResponse:
    text = Template((TEMPLATES / name).read_text()).substitute(**values)
    return HTMLResponse(text, headers={"Cache-Control": "no-store"})


def _config_json(config: dict[str, Any]) -> str:
    """JSON safe inside a <script type="application/json"> element."""
    return json.dumps(config).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _root(request: Request) -> str:
    return str(request.base_url).rstrip("/")  # same origin as the page: no CORS needed


@router.get("/watch/{asset_id}", response_class=HTMLResponse)
async def watch(
    asset_id: str,
    request: Request,
    token: str | None = Query(None, description="a playback token (from `vam url`)"),
    format: str = Query("hls", pattern="^(hls|dash)$"),
) -> HTMLResponse:
    """The player page of an asset."""
    from vam.steps.delivery import NotServable, signed_urls, unsigned_urls

    index = request.app.state.asset_index
    try:
        entry = await run_in_threadpool(index.get, asset_id, fresh=True)
    except NotServable as exc:
        raise ApiError(exc.status, "not_found", str(exc)) from None
    root = _root(request)
    urls = signed_urls(root, entry, token) if token else unsigned_urls(root, entry)
    title = entry.title or asset_id
    config = {"asset_id": asset_id, "format": format, "status": entry.status, "urls": urls, "title": title}
    return _page(
        "watch.html",
        title=html.escape(str(title)),
        asset_id=html.escape(asset_id),
        config=_config_json(config),
    )


@router.get("/upload", response_class=HTMLResponse)
def upload_page(
    request: Request,
    chunk_mib: float = Query(1.0, gt=0, le=512, description="MiB per PATCH request"),
) -> HTMLResponse:
    """The upload page (tus): pick a file, watch the progress, reload and pick it again to resume."""
    config = {
        "endpoint": _root(request) + "/files/",
        "chunk_size": int(chunk_mib * 1024 * 1024),
        "needs_key": bool(request.app.state.api_keys),
    }
    return _page("upload.html", config=_config_json(config))


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return Response(status_code=204, headers={"Cache-Control": LIB_CACHE})


@router.get("/static/vendor/{name}", include_in_schema=False)
def vendor(name: str, request: Request) -> FileResponse:
    """hls.js, dash.js and tus-js-client from the project's npm install."""
    rel = VENDOR.get(name)
    if rel is None:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    path = Path(request.app.state.runtime.settings.player_libs_dir) / rel
    if not path.is_file():
        raise ApiError(
            500,
            "player_libs_missing",
            f"{path} is missing: run scripts/install_node_tools.sh (make install) to install the player"
            " libraries",
        )
    return FileResponse(path, media_type="text/javascript", headers={"Cache-Control": LIB_CACHE})


@router.get("/static/{name}", include_in_schema=False)
def own_static(name: str) -> FileResponse:
    if name not in OWN_STATIC:
        raise ApiError(404, "not_found", f"no static file {name!r}")
    media = "text/css" if name.endswith(".css") else "text/javascript"
    return FileResponse(STATIC / name, media_type=media, headers={"Cache-Control": "no-cache"})

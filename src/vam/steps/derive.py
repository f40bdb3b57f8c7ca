"""Derived outputs of a ready asset: social-media crops (square, vertical) of its source.

A derived output is stored at ``{processed}/{asset_id}/derived/{name}.mp4``, recorded in the
catalog as a derived object of the asset (``vam show`` lists it) and measured with the same
quality step as the ladder, against the source cropped and trimmed the same way.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.errors import PermanentFailure
from vam.runtime import Runtime
from vam.steps._common import WRITE_TIER, load_asset, source_meta

log = logging.getLogger(__name__)


def social_crop(
    rt: Runtime,
    asset_id: str,
    aspect: str,
    *,
    gravity: str = "center",
    max_seconds: float | None = 15.0,
    max_height: int | None = 1080,
    min_vmaf: float = 80.0,
) -> dict[str, Any]:
    """Crop the asset's source to ``aspect`` ("1:1", "9:16", ...) at ``gravity``, trimmed to at most
    ``max_seconds``; store and catalog it. Returns what the quality step needs (``kind: derived``,
    ``reference``: how to cut the source the same way, ``min_vmaf``: its floor)."""
    from vam.media.derive import parse_aspect
    from vam.media.derive import social_crop as crop_media

    w, h = parse_aspect(str(aspect).replace("x", ":"))  # 9:16 or 9x16; InvalidTransform otherwise
    name = f"social-{w}x{h}" + ("" if gravity == "center" else f"-{gravity}")
    asset = load_asset(rt, asset_id)
    if asset["status"] != "ready":
        raise PermanentFailure(f"asset {asset_id} is {asset['status']}, not ready: crop ready assets only")
    work = rt.fresh_work(asset_id, "derive", name)
    out = work / f"{name}.mp4"
    made = crop_media(
        rt.source_file(asset),
        out,
        source_meta(asset),
        aspect=f"{w}:{h}",
        gravity=gravity,
        max_seconds=max_seconds,
        max_height=max_height,
        threads=rt.settings.ffmpeg_threads,
    )
    uri = rt.output_uri(asset_id, "derived", f"{name}.mp4")
    sha256 = storage.sha256_file(out)
    size = out.stat().st_size
    store = storage.store_for(uri)
    store.put(out, uri, content_type="video/mp4")
    spec = {"aspect": f"{w}:{h}", "gravity": gravity, "max_seconds": max_seconds, "max_height": max_height}
    row = {**made, "uri": uri, "sha256": sha256, "size_bytes": size}
    with rt.catalog() as cat:
        cat.upsert_derived(asset_id, name, "social_crop", {**spec, "reference": made["reference"]}, row)
        cat.record_object(
            uri, asset_id=asset_id, kind="derived", size_bytes=size, sha256=sha256, tier=WRITE_TIER
        )
    if store.local_path(uri) is None:
        rt.keep_local(out, asset_id, name, sha256)
    shutil.rmtree(work, ignore_errors=True)
    log.info(
        "%s of %s: %sx%s, %.2f s -> %s", name, asset_id, made["width"], made["height"], made["duration"], uri
    )
    return {
        "asset_id": asset_id,
        "kind": "derived",
        "name": name,
        "uri": uri,
        "sha256": sha256,
        "width": made["width"],
        "height": made["height"],
        "duration": made["duration"],
        "reference": made["reference"],
        "min_vmaf": min_vmaf,
        "min_ssim": 0.0,
        "min_psnr": 0.0,
    }

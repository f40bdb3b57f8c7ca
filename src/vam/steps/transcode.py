"""Encode one rendition of the ladder."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)

_PLAN_EXTRA = ("profile_key", "profile_sha256")


def transcode(rt: Runtime, asset_id: str, rendition: dict[str, Any]) -> dict[str, Any]:
    """Encode one rendition (a dict from :func:`vam.steps.plan.plan`) and store it at its
    deterministic key ``{asset_id}/{profile}/renditions/{name}.mp4``. Returns the rendition's
    catalog row plus its quality floors and the pinned profile, for the quality step."""
    from vam.media.encode import encode_rendition
    from vam.media.types import RenditionPlan

    prof = rt.pinned_profile(rendition["profile_key"], rendition["profile_sha256"])
    plan_ = RenditionPlan.from_dict({k: v for k, v in rendition.items() if k not in _PLAN_EXTRA})
    asset = load_asset(rt, asset_id)
    source = rt.source_file(asset)
    out = rt.fresh_work(asset_id, "transcode", plan_.name) / f"{plan_.name}.mp4"
    result = encode_rendition(
        source, plan_, prof, out, source_meta(asset), threads=rt.settings.ffmpeg_threads
    )
    uri = rt.output_uri(asset_id, prof.key, "renditions", f"{plan_.name}.mp4")
    sha256 = storage.sha256_file(out)
    store = storage.store_for(uri)
    store.put(out, uri, content_type="video/mp4")
    row = {**result, "name": plan_.name, "uri": uri, "sha256": sha256, "size_bytes": out.stat().st_size}
    with rt.catalog() as cat:
        cat.upsert_rendition(asset_id, prof.key, row)
        cat.record_object(
            uri, asset_id=asset_id, kind="rendition", size_bytes=row["size_bytes"], sha256=sha256
        )
    if store.local_path(uri) is None:  # keep it for the next tasks on this worker
        rt.keep_local(out, asset_id, f"{prof.key}-{plan_.name}", sha256)
    shutil.rmtree(out.parent, ignore_errors=True)
    return {
        **row,
        "kind": "rendition",
        "min_vmaf": plan_.min_vmaf,
        "min_ssim": plan_.min_ssim,
        "min_psnr": plan_.min_psnr,
        "profile_key": rendition["profile_key"],
        "profile_sha256": rendition["profile_sha256"],
    }

"""Encode one rendition of the ladder."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import WRITE_TIER, load_asset, source_meta

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
    stored = _store(rt, asset_id, prof, plan_, out, result, rendition)
    shutil.rmtree(out.parent, ignore_errors=True)
    return stored


def _store(
    rt: Runtime,
    asset_id: str,
    prof: Any,
    plan_: Any,
    out: Any,
    result: dict[str, Any],
    rendition: dict[str, Any],
) -> dict[str, Any]:
    """Store one encoded rendition at its key, catalog it, and say what the quality step needs."""
    uri = rt.output_uri(asset_id, prof.key, "renditions", f"{plan_.name}.mp4")
    sha256 = storage.sha256_file(out)
    store = storage.store_for(uri)
    store.put(out, uri, content_type="video/mp4")
    row = {**result, "name": plan_.name, "uri": uri, "sha256": sha256, "size_bytes": out.stat().st_size}
    with rt.catalog() as cat:
        cat.upsert_rendition(asset_id, prof.key, row)
        cat.record_object(
            uri,
            asset_id=asset_id,
            kind="rendition",
            size_bytes=row["size_bytes"],
            sha256=sha256,
            tier=WRITE_TIER,
        )
    if store.local_path(uri) is None:  # keep it for the next tasks on this worker
        rt.keep_local(out, asset_id, f"{prof.key}-{plan_.name}", sha256)
    return {
        **row,
        "kind": "rendition",
        "min_vmaf": plan_.min_vmaf,
        "min_ssim": plan_.min_ssim,
        "min_psnr": plan_.min_psnr,
        "profile_key": rendition["profile_key"],
        "profile_sha256": rendition["profile_sha256"],
    }


def transcode_group(rt: Runtime, asset_id: str, renditions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Encode a group of renditions (items of the plan): one alone as :func:`transcode` does, two or
    more from one decode of the source (:func:`vam.media.grouped.encode_group`, a ``split`` filter).
    Each is stored, cataloged and returned as :func:`transcode` does it, in order."""
    from vam.media.grouped import encode_group
    from vam.media.types import RenditionPlan

    renditions = list(renditions)
    if len(renditions) == 1:
        return [transcode(rt, asset_id, renditions[0])]
    prof = rt.pinned_profile(renditions[0]["profile_key"], renditions[0]["profile_sha256"])
    plans = [
        RenditionPlan.from_dict({k: v for k, v in r.items() if k not in _PLAN_EXTRA}) for r in renditions
    ]
    asset = load_asset(rt, asset_id)
    work = rt.fresh_work(asset_id, "transcode", "group")
    outs = [work / f"{p.name}.mp4" for p in plans]
    results = encode_group(
        rt.source_file(asset), plans, prof, outs, source_meta(asset), threads=rt.settings.ffmpeg_threads
    )
    stored = [
        _store(rt, asset_id, prof, p, out, result, r)
        for p, out, result, r in zip(plans, outs, results, renditions, strict=True)
    ]
    shutil.rmtree(work, ignore_errors=True)
    return stored

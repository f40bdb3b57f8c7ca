"""Probe and validate a source; unusable input is rejected with a reason and quarantined."""

from __future__ import annotations

import logging
import re
from pathlib import PurePosixPath
from typing import Any

from vam import storage
from vam.errors import RejectedInput, VamError
from vam.runtime import Runtime
from vam.steps._common import load_asset

log = logging.getLogger(__name__)


def probe(rt: Runtime, asset_id: str, profile: str | None = None) -> dict[str, Any]:
    """ffprobe + a full decode of the source, validated against the bounds of ``profile`` (its
    ``limits:``: duration, size, frame rate; default: the default profile). Returns the source's
    metadata (``MediaInfo`` as a dict), also stored on the asset. Unusable input: quarantine copy,
    status ``rejected``, raise :class:`~vam.errors.RejectedInput`."""
    from vam.media.probe import ValidationLimits
    from vam.media.probe import probe as probe_media

    asset = load_asset(rt, asset_id)
    path = rt.source_file(asset)
    limits = ValidationLimits.from_profile(rt.profile(profile))
    try:
        info = probe_media(path, limits=limits, threads=rt.settings.ffmpeg_threads)
    except RejectedInput as exc:
        reject(rt, asset, exc)
        raise
    meta = info.to_dict()
    with rt.catalog() as cat:
        cat.update_asset(asset_id, source_meta=meta)
        cat.set_status(asset_id, "processing", expect=("ingesting", "processing"))
    return meta


def reject(rt: Runtime, asset: dict[str, Any], exc: RejectedInput) -> None:
    """Keep a verified copy of the source under the quarantine prefix (named from the asset id,
    never from the source's name) and mark the asset rejected. The source itself is never deleted."""
    src = asset["source_uri"]
    sha256 = asset.get("sha256") or asset.get("content_sha256")
    suffix = PurePosixPath(src.split("?", 1)[0]).suffix.lower()
    ext = suffix if re.fullmatch(r"\.[a-z0-9]{1,8}", suffix) else ""
    dst: str | None = storage.uri_join(rt.settings.quarantine_uri, asset["asset_id"], f"source{ext}")
    with rt.catalog() as cat:
        try:
            copied = storage.copy_verified(src, dst)
            cat.record_object(
                dst, asset_id=asset["asset_id"], kind="quarantine", size_bytes=copied.size, sha256=sha256
            )
        except VamError as copy_exc:  # the rejection still stands; say why there is no copy
            log.warning("could not quarantine %s: %s", src, copy_exc)
            dst = None
        cat.set_status(
            asset["asset_id"],
            "rejected",
            exc.message,
            expect=("ingesting", "processing"),
            code=exc.code,
            quarantine_uri=dst,
        )

"""Publish an asset: manifests promoted last, tracks recorded, search index refreshed, ``ready``."""

from __future__ import annotations

import logging
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import WRITE_TIER, content_type, sha256_bytes

log = logging.getLogger(__name__)


def publish(
    rt: Runtime,
    asset_id: str,
    packaged: dict[str, Any],
    transcript: dict[str, Any] | None = None,
    scenes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Promote the staged manifests (variant playlists first, master and MPD last), record the
    caption and chapter tracks, index the asset for search, then ``ready``."""
    entry_points = {packaged["hls_uri"], packaged["dash_uri"]}
    ordered = sorted(packaged["staged"], key=lambda m: m["final"] in entry_points)
    with rt.catalog() as cat:
        for m in ordered:
            data = storage.store_for(m["staged"]).read_bytes(m["staged"])
            storage.store_for(m["final"]).put_bytes(data, m["final"], content_type=content_type(m["final"]))
            cat.record_object(
                m["final"],
                asset_id=asset_id,
                kind="manifest",
                size_bytes=len(data),
                sha256=sha256_bytes(data),
                tier=WRITE_TIER,
            )
        for staging in {m["staged"].split("/_staging/", 1)[0] + "/_staging/" for m in ordered}:
            storage.delete_prefix(staging)  # the staged manifests, and their folders on file://
        cat.update_asset(asset_id, hls_uri=packaged["hls_uri"], dash_uri=packaged["dash_uri"])
        cat.set_published_tracks(
            asset_id, (transcript or {}).get("captions_uri"), (scenes or {}).get("chapters_uri")
        )
        cat.refresh_search_document(asset_id)
        cat.set_status(
            asset_id,
            "ready",
            expect=("processing",),
            hls_uri=packaged["hls_uri"],
            dash_uri=packaged["dash_uri"],
        )
    return {"asset_id": asset_id, "hls_uri": packaged["hls_uri"], "dash_uri": packaged["dash_uri"]}

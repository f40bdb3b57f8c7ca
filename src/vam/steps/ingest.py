"""Landing places: find the new sources under a landing URI (content hash is the dedup key)."""

from __future__ import annotations

import logging
from typing import Any

from vam import storage
from vam.catalog import asset_id_for
from vam.ingest.discover import is_candidate
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def unseen_objects(rt: Runtime, landing_uri: str | None = None, limit: int = 1000) -> list[dict[str, Any]]:
    """Candidate objects under the landing URI that the catalog has not seen under the same key,
    ETag and size (cheap: nothing is hashed). What a sensor waits for."""
    landing = landing_uri or rt.settings.landing_uri
    found = []
    with rt.catalog(actor="vam_ingest") as cat:
        for obj in storage.store_for(landing).list(landing):
            if len(found) >= limit:
                break
            if is_candidate(obj.uri) and not cat.known_source(obj.uri, obj.etag, obj.size):
                found.append({"uri": obj.uri, "size_bytes": obj.size, "etag": obj.etag})
    return found


def discover(rt: Runtime, landing_uri: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """The new sources under the landing URI: one entry per new asset, at most ``limit``.

    Objects already seen (same key, ETag and size) are skipped; the others are hashed: bytes the
    catalog already has are recorded as a duplicate of that asset, new bytes are returned as
    ``{"asset_id", "source_uri", "sha256", "size_bytes"}``.
    """
    landing = landing_uri or rt.settings.landing_uri
    found: dict[str, dict[str, Any]] = {}
    with rt.catalog(actor="vam_ingest") as cat:
        for obj in storage.store_for(landing).list(landing):
            if len(found) >= limit:
                break
            if not is_candidate(obj.uri) or cat.known_source(obj.uri, obj.etag, obj.size):
                continue
            sha256 = storage.sha256_object(obj.uri)
            if cat.asset_by_sha256(sha256) is not None:
                asset_id, _ = cat.register_asset(
                    sha256=sha256, source_uri=obj.uri, size_bytes=obj.size, etag=obj.etag
                )
                log.info("%s holds the same bytes as asset %s: recorded as a duplicate", obj.uri, asset_id)
                continue
            asset_id = asset_id_for(sha256)
            if asset_id in found:  # same bytes twice in one poll: the next poll records the duplicate
                continue
            found[asset_id] = {
                "asset_id": asset_id,
                "source_uri": obj.uri,
                "sha256": sha256,
                "size_bytes": obj.size,
            }
            log.info("new source %s -> asset %s", obj.uri, asset_id)
    return list(found.values())

"""Finding new sources under a landing prefix.

A source is new when no asset has its bytes yet (content SHA-256 is the dedup key). An object
already seen under the same key, ETag and size is not hashed again. The same bytes under a
second key become a ``duplicate`` event of the existing asset, not a second asset.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import PurePosixPath
from typing import Any

from vam import storage
from vam.catalog import Catalog
from vam.catalog.repo import asset_id_for

log = logging.getLogger(__name__)

# Names a writer uses while an upload is in progress, sidecar metadata files (read with their
# video, see vam.enrich.tags.load_sidecar) and hidden files: never ingested as sources.
IGNORED_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".json", ".yaml", ".yml")


def is_candidate(uri: str) -> bool:
    if uri.endswith("/"):  # a "folder" marker object (the S3 console makes them)
        return False
    name = PurePosixPath(uri).name
    return bool(name) and not name.startswith(".") and not name.lower().endswith(IGNORED_SUFFIXES)


def discover_new(
    cat: Catalog, objects: Iterable[storage.ObjectInfo], limit: int = 100
) -> list[dict[str, Any]]:
    """The new sources among ``objects``: one entry per new asset, at most ``limit`` per call."""
    found: dict[str, dict[str, Any]] = {}
    for obj in objects:
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


def poll(cat: Catalog, landing_uri: str, limit: int = 100) -> list[dict[str, Any]]:
    """List the landing prefix and return the new sources in it."""
    return discover_new(cat, storage.store_for(landing_uri).list(landing_uri), limit=limit)

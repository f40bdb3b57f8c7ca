"""Register a source: hash its bytes and create (or find) its asset."""

from __future__ import annotations

import logging
from pathlib import PurePosixPath
from typing import Any

from vam import storage
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def register(rt: Runtime, source: str, *, title: str | None = None) -> dict[str, Any]:
    """Hash the source and create (or find) its asset. Same bytes, same asset.

    Returns ``{"asset_id", "source_uri", "sha256", "size_bytes", "created"}``.
    """
    uri = storage.to_uri(source)
    info = storage.store_for(uri).head(uri)
    sha256 = storage.sha256_object(uri)
    with rt.catalog() as cat:
        asset_id, created = cat.register_asset(
            sha256=sha256,
            source_uri=uri,
            size_bytes=info.size,
            title=title or PurePosixPath(uri).name,
            etag=info.etag,
        )
        if created:
            cat.record_object(uri, asset_id=asset_id, kind="source", size_bytes=info.size, sha256=sha256)
        else:
            cat.set_status(asset_id, "ingesting", source_uri=uri, rerun=True)
    log.info("source %s is asset %s (%s)", uri, asset_id, "new" if created else "known")
    return {
        "asset_id": asset_id,
        "source_uri": uri,
        "sha256": sha256,
        "size_bytes": info.size,
        "created": created,
    }

"""What several steps share: reading an asset back, the content types of outputs."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from vam.runtime import Runtime

CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".vtt": "text/vtt",
    ".jpg": "image/jpeg",
    ".png": "image/png",
}


# The tier recorded for what the steps write (under processed_uri): the shipped policies call the
# tier of that prefix "hot"; the lifecycle planner tiers objects by their URI in any case.
WRITE_TIER = "hot"


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of an object written from memory (recorded with it: the mover verifies moves on it)."""
    import hashlib

    return hashlib.sha256(data).hexdigest()


def content_type(uri: str) -> str | None:
    return CONTENT_TYPES.get(PurePosixPath(uri.split("?", 1)[0]).suffix.lower())


def load_asset(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """The asset's catalog row (source URI, content hash, source metadata, profile, status)."""
    with rt.catalog() as cat:
        return cat.get_asset(asset_id)


def source_meta(asset: dict[str, Any]):  # -> vam.media.types.MediaInfo
    """The probed description of the asset's source; a clear error when probe has not run."""
    from vam.errors import VamError
    from vam.media.types import MediaInfo

    if not asset.get("source_meta"):
        raise VamError(f"asset {asset['asset_id']} has not been probed yet: run its probe step first")
    return MediaInfo.from_dict(asset["source_meta"])

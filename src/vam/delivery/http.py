"""The HTTP rules of serving media objects: media types, cache lifetimes, ETags, Range requests.

Pure functions, so the origin (vam.api.origin) does them the same way for every storage backend.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import PurePosixPath

MEDIA_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".m4a": "audio/mp4",
    ".m4v": "video/mp4",
    ".ts": "video/mp2t",
    ".aac": "audio/aac",
    ".vtt": "text/vtt; charset=utf-8",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".json": "application/json",
}
MANIFESTS = {".m3u8", ".mpd"}
TRACKS = {".vtt", ".json"}
MANIFEST_CACHE = "public, max-age=10"  # short: a re-publish reaches players within seconds
TRACK_CACHE = "public, max-age=300"  # captions/chapters may be re-made by a later enrichment run
SEGMENT_CACHE = "public, max-age=31536000, immutable"  # deterministic keys: a segment never changes


class RangeNotSatisfiable(ValueError):
    """A Range header none of whose ranges lies within the object (answer 416)."""


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1


def media_type(path: str) -> str:
    return MEDIA_TYPES.get(PurePosixPath(path).suffix.lower(), "application/octet-stream")


def cache_control(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in MANIFESTS:
        return MANIFEST_CACHE
    if suffix in TRACKS:
        return TRACK_CACHE
    return SEGMENT_CACHE


def make_etag(*, sha256: str | None, store_etag: str | None, size: int, modified: float | None) -> str:
    """A strong ETag: the content hash when the catalog has it, else the store's ETag, else one
    derived from size and modification time (file:// objects, like nginx and Starlette do)."""
    if sha256:
        return f'"{sha256[:32]}"'
    if store_etag:
        return '"' + store_etag.strip('"').replace('"', "") + '"'
    basis = f"{size}-{modified or 0}".encode()
    return '"' + hashlib.md5(basis, usedforsecurity=False).hexdigest() + '"'


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    """Whether an If-None-Match header names ``etag`` (weak comparison, ``*`` matches)."""
    if not if_none_match:
        return False
    tags = [t.strip() for t in if_none_match.split(",")]
    bare = etag.removeprefix("W/")
    return any(t == "*" or t.removeprefix("W/") == bare for t in tags)


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The one byte range a ``Range`` header asks for, or None to send the whole object (no header,
    a unit other than bytes, a malformed header, or several ranges: RFC 9110 lets a server ignore
    them). RangeNotSatisfiable when the range starts past the end."""
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    first, last = first.strip(), last.strip()
    if not (first.isdigit() or first == "") or not (last.isdigit() or last == ""):
        return None
    if first == "":
        if last == "":
            return None
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(header)
        return ByteRange(max(0, size - suffix), size - 1)
    start = int(first)
    end = int(last) if last else size - 1
    if last and end < start:
        return None
    if start >= size:
        raise RangeNotSatisfiable(header)
    return ByteRange(start, min(end, size - 1))

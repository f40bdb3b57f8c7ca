"""Landing places: where sources arrive, and when an object there is complete.

Several landing places can be configured at once (setting ``landings``: a list in the YAML file
named by ``VAM_CONFIG``, or JSON in ``VAM_LANDINGS``); with none, ``landing_uri`` alone is the one
landing place. Each has its own options::

    landings:
      - uri: ftp://partner.example/drop/
        marker: .done          # clip.mp4 is complete once clip.mp4.done exists beside it
        stable_window_s: 120   # without a marker: size and mtime unchanged for this long...
        stable_polls: 2        # ... and across this many polls
        profile: default       # the encoding profile of the assets that arrive here
        tags: {campaign: spring}
      - uri: gs://bucket/in/

A writer that uploads in place (FTP, a shared folder) is still writing when a poll sees the file,
so without a marker an object is taken only once its size and etag (modification time) have been
the same across ``stable_polls`` polls spanning at least ``stable_window_s`` seconds, and the bytes
read when it is hashed equal the size listed. That cannot see a writer that pauses for longer than
the window: the marker convention is the safe choice for partners. Object stores (s3, gs, az)
show an object only once its upload is complete, so their default window is 0.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from vam.errors import VamError

IN_PROGRESS_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", "~")
SIDECAR_SUFFIXES = (".json", ".yaml", ".yml")
IN_PLACE_SCHEMES = ("ftp", "ftps", "file")  # writers append in place: completeness is watched
DEFAULT_WINDOW_S = 60.0
DEFAULT_POLLS = 2
_KEYS = {"uri", "marker", "stable_window_s", "stable_polls", "profile", "tags", "name"}


@dataclass(frozen=True)
class Landing:
    """One landing place and its options (see the module docstring)."""

    uri: str
    marker: str | None = None
    stable_window_s: float | None = None  # None: the scheme's default
    stable_polls: int = DEFAULT_POLLS
    profile: str | None = None
    tags: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    name: str = ""

    @property
    def scheme(self) -> str:
        return self.uri.partition("://")[0].lower()

    @property
    def window_s(self) -> float:
        """How long an object must look the same before it is taken (0: at once)."""
        if self.marker:
            return 0.0
        if self.stable_window_s is not None:
            return float(self.stable_window_s)
        return DEFAULT_WINDOW_S if self.scheme in ("ftp", "ftps") else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "marker": self.marker,
            "stable_window_s": self.stable_window_s,
            "stable_polls": self.stable_polls,
            "profile": self.profile,
            "tags": dict(self.tags),
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, where: str = "landing") -> Landing:
        if not isinstance(data, dict):
            raise VamError(f"{where} must be a mapping with at least a uri, got {data!r}")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise VamError(f"{where}: unknown keys {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
        uri = str(data.get("uri") or "")
        if "://" not in uri:
            raise VamError(f"{where}.uri must be a URI such as s3://bucket/in/ or ftp://host/drop/: {uri!r}")
        if not uri.endswith("/"):
            uri += "/"
        marker = data.get("marker") or None
        if marker is not None and (not isinstance(marker, str) or "/" in marker):
            raise VamError(f"{where}.marker must be a file-name suffix such as .done, got {marker!r}")
        window = data.get("stable_window_s")
        polls = data.get("stable_polls", DEFAULT_POLLS)
        try:
            window = None if window is None else float(window)
            polls = int(polls)
        except (TypeError, ValueError):
            raise VamError(f"{where}: stable_window_s must be seconds and stable_polls a count") from None
        if (window is not None and window < 0) or polls < 1:
            raise VamError(f"{where}: stable_window_s must be >= 0 and stable_polls >= 1")
        tags = data.get("tags") or {}
        if not isinstance(tags, dict):
            raise VamError(f"{where}.tags must be a mapping of tag keys to values")
        return cls(
            uri=uri,
            marker=marker,
            stable_window_s=window,
            stable_polls=polls,
            profile=data.get("profile") or None,
            tags=dict(tags),
            name=str(data.get("name") or uri),
        )


def parse_landings(landings: str, landing_uri: str) -> list[Landing]:
    """The configured landing places: the ``landings`` setting (JSON text of a list), else the one
    at ``landing_uri``."""
    if not landings.strip():
        return [Landing.from_dict({"uri": landing_uri})]
    try:
        data = json.loads(landings)
    except json.JSONDecodeError as exc:
        raise VamError(f"setting landings is not a list of landing places: {exc}") from None
    if not isinstance(data, list) or not data:
        raise VamError("setting landings must be a non-empty list of {uri: ..., ...}")
    found = [Landing.from_dict(item, where=f"landings[{i}]") for i, item in enumerate(data)]
    uris = [item.uri for item in found]
    if len(set(uris)) != len(uris):
        raise VamError(f"setting landings lists a landing place twice: {uris}")
    return found


def is_candidate(uri: str, marker: str | None = None) -> bool:
    """True when the object at ``uri`` may be a source: not an upload in progress (``.part``,
    ``.tmp``, ``.filepart``, ``~``...), not a sidecar (``.json``, ``.yaml``), not a marker, not
    hidden, not a folder marker."""
    if uri.endswith("/"):  # a "folder" marker object (the S3 console makes them)
        return False
    name = PurePosixPath(uri).name
    lower = name.lower()
    if not name or name.startswith("."):
        return False
    if marker and lower.endswith(marker.lower()):
        return False
    return not lower.endswith(IN_PROGRESS_SUFFIXES + SIDECAR_SUFFIXES)

"""Delivery: what the origin, the pages and ``vam url`` need from the catalog and the stores.

An asset's servable objects (manifests, segments, captions, chapters, keyframes, renditions,
derived outputs: never the source) are addressed by their path below the asset's id, whatever
store or tier holds them: ``{asset_id}/default@1/hls/master.m3u8`` maps to the URI the catalog
records for it. The origin keeps each asset's map for a short while (:class:`AssetIndex`), so a
segment request costs no catalog query, and records reads at most once every few minutes.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from vam import storage
from vam.delivery.signing import KeyRing
from vam.errors import CatalogError, VamError
from vam.runtime import Runtime

log = logging.getLogger(__name__)

SERVED_KINDS = ("manifest", "segment", "captions", "chapters", "keyframe", "rendition", "derived")
FORMATS = ("hls", "dash")
INDEX_TTL_S = 30.0  # how long the origin trusts its map of an asset's objects
TOUCH_EVERY_S = 300.0  # assets.last_accessed_at is written at most this often per asset
MAX_TTL_S = 7 * 86400
MAX_CACHED_ASSETS = 10_000


class NotServable(VamError):
    """An asset or path the origin does not serve; ``status`` is the HTTP answer (404, 409, 410)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Served:
    """One servable object: its URI, kind and what the catalog knows of its content."""

    uri: str
    kind: str
    size: int | None
    sha256: str | None


@dataclass
class AssetFiles:
    asset_id: str
    status: str
    files: dict[str, Served]
    hls: str | None  # paths below the asset id
    dash: str | None
    captions: str | None
    chapters: str | None
    title: str | None = None
    loaded: float = field(default_factory=time.monotonic)


def relative_path(uri: str, asset_id: str) -> str | None:
    """The object's path below ``{asset_id}/`` in its URI (percent-decoding file:// URIs), or None."""
    marker = f"/{asset_id}/"
    at = uri.find(marker)
    if at < 0:
        return None
    rest = uri[at + len(marker) :]
    return urllib.parse.unquote(rest) if uri.startswith("file:") else rest


def asset_files(rt: Runtime, asset_id: str) -> AssetFiles:
    """The asset's servable objects, read from the catalog now."""
    with rt.catalog() as cat:
        try:
            asset = cat.get_asset(asset_id)
        except CatalogError:
            raise NotServable(404, f"no asset {asset_id}: check the id (vam search lists assets)") from None
        if asset.get("deleted_at"):
            raise NotServable(
                410,
                f"asset {asset_id} deleted {asset['deleted_at']}: `vam undelete {asset_id}` brings it back",
            )
        objects = [o for o in cat.objects(asset_id) if o["kind"] in SERVED_KINDS]
    files: dict[str, Served] = {}
    for o in objects:
        rel = relative_path(o["uri"], asset_id)
        if rel:
            files[rel] = Served(o["uri"], o["kind"], o.get("size_bytes"), o.get("sha256"))

    def rel_of(uri: str | None) -> str | None:
        return relative_path(uri, asset_id) if uri else None

    return AssetFiles(
        asset_id=asset_id,
        status=asset["status"],
        files=files,
        hls=rel_of(asset.get("hls_uri")),
        dash=rel_of(asset.get("dash_uri")),
        captions=rel_of(asset.get("captions_uri")),
        chapters=rel_of(asset.get("chapters_uri")),
        title=asset.get("title"),
    )


class AssetIndex:
    """The origin's per-process cache of :func:`asset_files` (``INDEX_TTL_S``) and its throttle of
    access-time writes. Thread-safe; the origin calls it from worker threads."""

    def __init__(self, rt: Runtime, ttl_s: float = INDEX_TTL_S, touch_every_s: float = TOUCH_EVERY_S) -> None:
        self.rt, self.ttl_s, self.touch_every_s = rt, ttl_s, touch_every_s
        self._lock = threading.Lock()
        self._assets: dict[str, AssetFiles] = {}
        self._touched: dict[str, float] = {}

    def get(self, asset_id: str, *, fresh: bool = False) -> AssetFiles:
        now = time.monotonic()
        with self._lock:
            entry = self._assets.get(asset_id)
        if entry is None or fresh or now - entry.loaded > self.ttl_s:
            entry = asset_files(self.rt, asset_id)
            with self._lock:
                if len(self._assets) >= MAX_CACHED_ASSETS:  # bounded: forget the stale maps
                    limit = time.monotonic() - self.ttl_s
                    self._assets = {k: v for k, v in self._assets.items() if v.loaded > limit}
                    if len(self._assets) >= MAX_CACHED_ASSETS:
                        self._assets.clear()
                self._assets[asset_id] = entry
        return entry

    def peek(self, asset_id: str, path: str) -> Served | None:
        """The object at ``path`` when the cached map is fresh and has it (no I/O), else None."""
        with self._lock:
            entry = self._assets.get(asset_id)
        if entry is None or time.monotonic() - entry.loaded > self.ttl_s:
            return None
        return entry.files.get(path)

    def touch_due(self, asset_id: str) -> bool:
        """Whether :meth:`touch` would write now (no I/O)."""
        last = self._touched.get(asset_id)
        return last is None or time.monotonic() - last >= self.touch_every_s

    def lookup(self, asset_id: str, path: str) -> Served:
        """The object at ``path`` below the asset (the map is re-read once when the path is new)."""
        entry = self.get(asset_id)
        served = entry.files.get(path)
        if served is None and time.monotonic() - entry.loaded > 1.0:
            entry = self.get(asset_id, fresh=True)
            served = entry.files.get(path)
        if served is None:
            raise NotServable(404, f"asset {asset_id} has no object {path!r}")
        return served

    def touch(self, asset_id: str) -> None:
        """Record a read of the asset (at most one catalog write per asset every few minutes)."""
        now = time.monotonic()
        with self._lock:
            last = self._touched.get(asset_id)
            if last is not None and now - last < self.touch_every_s:
                return
            if len(self._touched) >= MAX_CACHED_ASSETS:
                self._touched = {k: t for k, t in self._touched.items() if now - t < self.touch_every_s}
            self._touched[asset_id] = now
        try:
            with self.rt.catalog(actor="origin") as cat:
                cat.touch_access(asset_id, min_interval_s=self.touch_every_s)
        except VamError as exc:  # a read must not fail because the access time could not be written
            log.warning("could not record the access of asset %s: %s", asset_id, exc)


def keyring(rt: Runtime) -> KeyRing:
    """The signing keys of this deployment (configured, or generated once into the data dir)."""
    return KeyRing(rt.settings.signing_keys, rt.settings.home)


def base_url(rt: Runtime, base: str | None) -> str:
    chosen = base or rt.settings.public_url
    if not chosen:
        raise VamError(
            "no base URL for the playback URL: pass --base http://HOST:PORT or set VAM_PUBLIC_URL"
            " (the address viewers reach `vam serve` at)"
        )
    return chosen.rstrip("/")


def _quote(path: str) -> str:
    return urllib.parse.quote(path, safe="/@")


def playback(
    rt: Runtime,
    asset_id: str,
    *,
    base: str | None = None,
    ttl_seconds: int | None = None,
    fmt: str | None = None,
    keys: KeyRing | None = None,
    entry: AssetFiles | None = None,
) -> dict[str, Any]:
    """Signed playback URLs of a ready asset: ``url`` (the ``fmt`` manifest, HLS by default),
    ``hls``, ``dash``, ``captions``, ``chapters``, ``watch`` (the player page), ``token`` and
    ``expires`` (Unix time). The token covers every path below the asset id."""
    if fmt is not None and fmt not in FORMATS:
        raise VamError(f"unknown playback format {fmt!r}: use one of {', '.join(FORMATS)}")
    ttl = rt.settings.signed_url_ttl_seconds if ttl_seconds is None else int(ttl_seconds)
    if ttl <= 0 or ttl > MAX_TTL_S:
        raise VamError(f"a signed URL's lifetime must be 1..{MAX_TTL_S} seconds, got {ttl}")
    root = base_url(rt, base)
    entry = entry or asset_files(rt, asset_id)
    if entry.status != "ready" or not (entry.hls or entry.dash):
        raise NotServable(409, f"asset {asset_id} is {entry.status}, not ready: nothing to play yet")
    token, expires = (keys or keyring(rt)).sign(f"{asset_id}/", ttl)
    prefix = f"{root}/v/{token}/{asset_id}/"

    def url(rel: str | None) -> str | None:
        return prefix + _quote(rel) if rel else None

    urls = {"hls": url(entry.hls), "dash": url(entry.dash)}
    chosen = fmt or ("hls" if urls["hls"] else "dash")
    if not urls[chosen]:
        raise NotServable(404, f"asset {asset_id} has no {chosen} manifest")
    query = urllib.parse.urlencode({"token": token, "format": chosen})
    return {
        "asset_id": asset_id,
        "format": chosen,
        "url": urls[chosen],
        **urls,
        "captions": url(entry.captions),
        "chapters": url(entry.chapters),
        "watch": f"{root}/watch/{asset_id}?{query}",
        "token": token,
        "expires": expires,
        "ttl_seconds": ttl,
    }


def unsigned_urls(root: str, entry: AssetFiles) -> dict[str, str | None]:
    """Playback URLs without a token (``/o/...``), for deployments that do not require signing."""

    def url(rel: str | None) -> str | None:
        return f"{root}/o/{entry.asset_id}/{_quote(rel)}" if rel else None

    return {k: url(getattr(entry, k)) for k in ("hls", "dash", "captions", "chapters")}


def signed_urls(root: str, entry: AssetFiles, token: str) -> dict[str, str | None]:
    """The asset's URLs carrying ``token`` (for the player page; the token is not checked here)."""

    def url(rel: str | None) -> str | None:
        return f"{root}/v/{token}/{entry.asset_id}/{_quote(rel)}" if rel else None

    return {k: url(getattr(entry, k)) for k in ("hls", "dash", "captions", "chapters")}


def object_info(served: Served) -> storage.ObjectInfo:
    """The store's metadata of a served object (size, ETag, modification time)."""
    return storage.store_for(served.uri).head(served.uri)

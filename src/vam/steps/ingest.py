"""Landing places: find the new, complete sources under each (content hash is the dedup key).

The rules of a landing place (markers, the stability window for writers that upload in place) are
in :mod:`vam.ingest.landings`.
"""

from __future__ import annotations

import logging
from typing import Any

from vam import storage
from vam.catalog import asset_id_for
from vam.ingest.landings import Landing, is_candidate, parse_landings
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def landings(rt: Runtime) -> list[dict[str, Any]]:
    """The configured landing places, as dicts (see :class:`vam.ingest.landings.Landing`)."""
    return [item.to_dict() for item in parse_landings(rt.settings.landings, rt.settings.landing_uri)]


def _landing(rt: Runtime, landing: dict[str, Any] | str | None) -> Landing:
    if landing is None:
        return parse_landings(rt.settings.landings, rt.settings.landing_uri)[0]
    if isinstance(landing, str):
        configured = {
            item.uri: item for item in parse_landings(rt.settings.landings, rt.settings.landing_uri)
        }
        uri = landing if landing.endswith("/") else landing + "/"
        return configured.get(uri) or Landing.from_dict({"uri": landing})
    return Landing.from_dict(landing)


def unseen_objects(
    rt: Runtime, landing: dict[str, Any] | str | None = None, limit: int = 1000
) -> list[dict[str, Any]]:
    """Candidate objects under the landing place that the catalog has not seen under the same key,
    ETag and size (cheap: nothing is hashed). What a sensor waits for."""
    place = _landing(rt, landing)
    found = []
    with rt.catalog(actor="vam_ingest") as cat:
        for obj in storage.store_for(place.uri).list(place.uri):
            if len(found) >= limit:
                break
            if is_candidate(obj.uri, place.marker) and not cat.known_source(obj.uri, obj.etag, obj.size):
                found.append({"uri": obj.uri, "size_bytes": obj.size, "etag": obj.etag})
    return found


def discover(
    rt: Runtime, landing: dict[str, Any] | str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The new, complete sources under one landing place (a dict from :func:`landings`, a URI, or
    None for the first configured): one entry per new asset, at most ``limit``.

    Objects already seen (same key, ETag and size) are skipped. An object still being written is
    left for a later poll: no marker yet when the place has one, else not yet the same size and
    etag across the stability window, or fewer bytes read than listed. Complete objects are hashed:
    bytes the catalog already has are recorded as a duplicate of that asset, new bytes are returned
    as ``{"asset_id", "source_uri", "sha256", "size_bytes", "landing", "profile", "tags"}``.
    """
    place = _landing(rt, landing)
    found: dict[str, dict[str, Any]] = {}
    listing = list(storage.store_for(place.uri).list(place.uri))
    names = {obj.uri for obj in listing}
    with rt.catalog(actor="vam_ingest") as cat:
        for obj in listing:
            if len(found) >= limit:
                break
            if not is_candidate(obj.uri, place.marker) or cat.known_source(obj.uri, obj.etag, obj.size):
                continue
            if place.marker and obj.uri + place.marker not in names:
                log.debug("%s: waiting for its marker %s", obj.uri, place.marker)
                continue
            if place.window_s > 0 or place.scheme in ("ftp", "ftps"):
                seen = cat.observe(obj.uri, obj.size, obj.etag)
                if not place.marker and (
                    seen["polls"] < place.stable_polls or seen["stable_seconds"] < place.window_s
                ):
                    log.info(
                        "%s: %d bytes, unchanged for %d poll(s) over %.0f s; waiting for %d over %.0f s",
                        obj.uri, obj.size or 0, seen["polls"], seen["stable_seconds"],
                        place.stable_polls, place.window_s,
                    )  # fmt: skip
                    continue
            sha256, read = storage.hash_object(obj.uri)
            if obj.size is not None and read != obj.size:
                log.info("%s changed while it was read: still being written, left for the next poll", obj.uri)
                cat.forget_observation(obj.uri)
                continue
            cat.forget_observation(obj.uri)
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
                "landing": place.uri,
                "profile": place.profile,
                "tags": dict(place.tags),
            }
            log.info("new source %s -> asset %s (landing %s)", obj.uri, asset_id, place.uri)
    return list(found.values())


def trigger_args(found: list[list[dict[str, Any]]] | list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One ``vam_process`` run per new asset (run id derived from the asset id, so overlapping
    polls never start one twice), from what :func:`discover` found in each landing place."""
    flat = [item for group in found for item in (group if isinstance(group, list) else [group])]
    return [
        {
            "trigger_run_id": f"asset__{item['asset_id']}",
            "conf": {
                "source_uri": item["source_uri"],
                "landing": item.get("landing") or "",
                "profile": item.get("profile") or "",
                "tags": item.get("tags") or {},
            },
        }
        for item in flat
    ]

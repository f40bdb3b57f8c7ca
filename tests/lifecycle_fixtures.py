"""Helpers of the lifecycle tests: assets with objects written the way the steps write them (bytes
in a tier, a catalog row with the SHA-256 recorded at write time), and the invariants every crash
test checks afterwards (nothing lost, checksums right, one live copy, catalog = storage)."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from typing import Any

from vam import storage
from vam.runtime import Runtime

PACKAGE = (("manifest", "default@1/master.m3u8"), ("manifest", "default@1/manifest.mpd"))


def make_asset(
    rt: Runtime,
    *,
    hot: str,
    segments: int = 3,
    size: int = 2048,
    status: str = "ready",
    tags: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An asset with a source, a rendition, a package (manifests + segments) and a keyframe under
    the ``hot`` prefix; every object's SHA-256 recorded in the catalog. Returns ``{asset_id, objects:
    {uri: sha256}}``."""
    source = os.urandom(size)
    sha = hashlib.sha256(source + uuid.uuid4().bytes).hexdigest()
    objects: dict[str, str] = {}
    with rt.catalog() as cat:
        asset_id, _ = cat.register_asset(sha256=sha, source_uri="pending://", size_bytes=size)
        items = [
            ("source", "source/clip.mp4", source),
            ("rendition", "default@1/renditions/360p.mp4", os.urandom(size)),
        ]
        items += [(kind, key, f"#EXTM3U {key} {asset_id}\n".encode()) for kind, key in PACKAGE]
        items += [("segment", f"default@1/360p/seg_{i:05d}.m4s", os.urandom(size)) for i in range(segments)]
        items.append(("keyframe", "keyframes/0001.jpg", os.urandom(size // 4 or 1)))
        for kind, key, data in items:
            uri = storage.uri_join(hot, asset_id, key)
            storage.store_for(uri).put_bytes(data, uri)
            digest = hashlib.sha256(data).hexdigest()
            cat.record_object(
                uri, asset_id=asset_id, kind=kind, size_bytes=len(data), sha256=digest, tier="hot"
            )
            objects[uri] = digest
        src_uri = next(u for u in objects if "/source/" in u)
        hls = next(u for u in objects if u.endswith(".m3u8"))
        dash = next(u for u in objects if u.endswith(".mpd"))
        cat.set_status(asset_id, status)
        with cat.conn, cat.conn.cursor() as cur:  # test setup: the asset as publish leaves it
            cur.execute(
                "UPDATE assets SET source_uri = %s, hls_uri = %s, dash_uri = %s, tags = %s"
                " WHERE asset_id = %s",
                (src_uri, hls, dash, json.dumps(tags or {}), asset_id),
            )
    return {"asset_id": asset_id, "objects": objects}


def listing(prefixes: list[str]) -> dict[str, int]:
    """Every object under the prefixes (lifecycle plan reports left out): uri -> size."""
    found = {}
    for prefix in prefixes:
        for info in storage.store_for(prefix).list(prefix):
            if "/_lifecycle/" not in info.uri:
                found[info.uri] = info.size
    return found


def check_invariants(rt: Runtime, assets: list[dict[str, Any]], prefixes: list[str]) -> dict[str, str]:
    """Zero lost, zero wrong checksums, exactly one live copy, catalog consistent with storage.
    Returns the catalog's uri -> sha256 of the assets' objects."""
    catalog: dict[str, str] = {}
    with rt.catalog() as cat:
        assert cat.journal_pending() == [], "the journal is not empty after recovery"
        for a in assets:
            rows = cat.objects(a["asset_id"])
            assert len(rows) == len(a["objects"]), (
                f"asset {a['asset_id']}: {len(rows)} rows, {len(a['objects'])} objects"
            )
            assert sorted(r["sha256"] for r in rows) == sorted(a["objects"].values()), "a checksum changed"
            asset = cat.get_asset(a["asset_id"])
            uris = {r["uri"] for r in rows}
            for ref in ("source_uri", "hls_uri", "dash_uri"):
                assert asset[ref] in uris, f"{ref} {asset[ref]} is not one of the asset's objects"
            for r in rows:
                catalog[r["uri"]] = r["sha256"]
    stored = listing(prefixes)
    ours = {u for u in stored if any(f"/{a['asset_id']}/" in u for a in assets)}
    assert ours == set(catalog), (
        f"storage and catalog differ: orphans {sorted(ours - set(catalog))[:5]}, "
        f"lost {sorted(set(catalog) - ours)[:5]}"
    )
    for uri, digest in catalog.items():
        assert storage.sha256_object(uri) == digest, f"{uri} does not verify"
    return catalog

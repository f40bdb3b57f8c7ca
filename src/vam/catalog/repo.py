"""Catalog access: every read and write of asset state goes through :class:`Catalog`.

Each status change is written together with its audit event in one transaction, so the
event log is the history of every asset. Writes are UPSERTs keyed on deterministic ids, so a
re-run of any task rewrites its own rows and never duplicates them.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg2.extensions
from psycopg2.extras import RealDictCursor

from vam.catalog.db import open_catalog_connection
from vam.catalog.enrichment import EnrichmentRows, _json
from vam.catalog.ladders import LadderRows
from vam.catalog.lifecycle import LifecycleRows
from vam.catalog.retention import RetentionRows
from vam.catalog.transforms import TransformRows
from vam.errors import CatalogError

log = logging.getLogger(__name__)

STATUSES = ("ingesting", "processing", "ready", "rejected", "failed")
TERMINAL_STATUSES = frozenset({"ready", "rejected", "failed"})


def asset_id_for(sha256: str) -> str:
    """Assets are named by their content: the same bytes are always the same asset."""
    return sha256[:16]


class Catalog(EnrichmentRows, RetentionRows, LifecycleRows, TransformRows, LadderRows):
    """A catalog session over one connection. Use as a context manager, or call close().

    The one public API of the catalog: every module outside ``vam.catalog`` reads and writes the
    catalog through these methods (the enrichment rows' methods come from
    :class:`~vam.catalog.enrichment.EnrichmentRows`)."""

    def __init__(self, conn: psycopg2.extensions.connection, actor: str = "vam") -> None:
        self.conn = conn
        self.actor = actor

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    @contextmanager
    def _tx(self) -> Iterator[RealDictCursor]:
        with self.conn, self.conn.cursor(cursor_factory=RealDictCursor) as cur:
            yield cur

    # -- assets -------------------------------------------------------------------------------

    def register_asset(
        self,
        *,
        sha256: str,
        source_uri: str,
        size_bytes: int,
        title: str | None = None,
        etag: str | None = None,
    ) -> tuple[str, bool]:
        """Create the asset for these bytes, or find the existing one. Returns (asset_id, created)."""
        asset_id = asset_id_for(sha256)
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO assets (asset_id, content_sha256, source_uri, title, status, size_bytes)"
                " VALUES (%s, %s, %s, %s, 'ingesting', %s)"
                " ON CONFLICT (content_sha256) DO NOTHING RETURNING asset_id",
                (asset_id, sha256, source_uri, title, size_bytes),
            )
            created = cur.fetchone() is not None
            cur.execute(
                "INSERT INTO asset_sources (source_uri, asset_id, etag, size_bytes) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (source_uri) DO UPDATE SET asset_id = EXCLUDED.asset_id,"
                " etag = EXCLUDED.etag, size_bytes = EXCLUDED.size_bytes",
                (source_uri, asset_id, etag, size_bytes),
            )
            self._event(
                cur,
                asset_id,
                "registered" if created else "duplicate",
                to_status="ingesting" if created else None,
                detail={"source_uri": source_uri, "sha256": sha256, "size_bytes": size_bytes},
            )
        return asset_id, created

    def known_source(self, source_uri: str, etag: str | None, size_bytes: int | None) -> str | None:
        """The asset id already registered for this object (same key, etag and size), if any."""
        with self._tx() as cur:
            cur.execute(
                "SELECT asset_id FROM asset_sources WHERE source_uri = %s"
                " AND etag IS NOT DISTINCT FROM %s AND size_bytes IS NOT DISTINCT FROM %s",
                (source_uri, etag, size_bytes),
            )
            row = cur.fetchone()
        return row["asset_id"] if row else None

    def asset_by_sha256(self, sha256: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT * FROM assets WHERE content_sha256 = %s", (sha256,))
            return cur.fetchone()

    def get_asset(self, asset_id: str) -> dict[str, Any]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM assets WHERE asset_id = %s", (asset_id,))
            row = cur.fetchone()
        if row is None:
            raise CatalogError(f"no asset {asset_id} in the catalog")
        return dict(row)

    def update_asset(self, asset_id: str, **fields: Any) -> None:
        allowed = {"title", "source_meta", "profile", "hls_uri", "dash_uri", "landing_uri"}
        unknown = set(fields) - allowed
        if unknown:
            raise CatalogError(f"cannot update asset fields {sorted(unknown)}")
        if not fields:
            return
        names = sorted(fields)
        values = [_json(fields[n]) if isinstance(fields[n], dict | list) else fields[n] for n in names]
        assignments = ", ".join(f"{n} = %s" for n in names)  # names come from the allow-list above
        with self._tx() as cur:
            cur.execute(
                f"UPDATE assets SET {assignments}, updated_at = now() WHERE asset_id = %s",
                (*values, asset_id),
            )

    def touch_access(self, asset_id: str, *, min_interval_s: float = 300.0) -> bool:
        """Record that the asset was read now, unless it was recorded less than
        ``min_interval_s`` ago (one write per asset every few minutes, whatever the traffic).
        Returns whether a write happened."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE assets SET last_accessed_at = now() WHERE asset_id = %s AND"
                " (last_accessed_at IS NULL OR last_accessed_at < now() - make_interval(secs => %s))",
                (asset_id, min_interval_s),
            )
            return cur.rowcount == 1

    def set_status(
        self,
        asset_id: str,
        status: str,
        reason: str | None = None,
        *,
        expect: tuple[str, ...] | None = None,
        **detail: Any,
    ) -> str:
        """Move an asset to ``status`` and write the event. Returns the previous status. With
        ``expect``, the change happens only from one of those statuses (else CatalogError): a run
        never overwrites an outcome another run has written."""
        if status not in STATUSES:
            raise CatalogError(f"unknown status {status!r}; one of {', '.join(STATUSES)}")
        with self._tx() as cur:
            cur.execute("SELECT status FROM assets WHERE asset_id = %s FOR UPDATE", (asset_id,))
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            previous = row["status"]
            if expect is not None and previous not in expect:
                raise CatalogError(
                    f"asset {asset_id} is {previous}, so it cannot become {status} here"
                    f" (only from {', '.join(expect)}): another run changed it"
                )
            cur.execute(
                "UPDATE assets SET status = %s, reason = %s, updated_at = now() WHERE asset_id = %s",
                (status, reason, asset_id),
            )
            if reason:
                detail = {**detail, "reason": reason}
            self._event(cur, asset_id, "status", from_status=previous, to_status=status, detail=detail)
        log.info("asset %s: %s -> %s%s", asset_id, previous, status, f" ({reason})" if reason else "")
        return previous

    # -- one run in flight per asset --------------------------------------------------------------

    def claim_run(
        self, asset_id: str, run_id: str, *, lease_seconds: float, force: bool = False
    ) -> str | None:
        """Make ``run_id`` the asset's one run in flight. Returns None when it is (now) the holder,
        else the run id holding it. A lease that has expired (its run died without finalize) is
        taken over; ``force`` takes it over in any case."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE assets SET run_id = %s, run_lease_until = now() + make_interval(secs => %s)"
                " WHERE asset_id = %s AND (run_id IS NULL OR run_id = %s OR run_lease_until < now() OR %s)"
                " RETURNING asset_id",
                (run_id, lease_seconds, asset_id, run_id, force),
            )
            if cur.fetchone() is not None:
                return None
            cur.execute("SELECT run_id FROM assets WHERE asset_id = %s", (asset_id,))
            row = cur.fetchone()
        if row is None:
            raise CatalogError(f"no asset {asset_id} in the catalog")
        return row["run_id"]

    def release_run(self, asset_id: str, run_id: str) -> bool:
        """End ``run_id``'s hold on the asset (a no-op when another run holds it)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE assets SET run_id = NULL, run_lease_until = NULL WHERE asset_id = %s AND run_id = %s",
                (asset_id, run_id),
            )
            return cur.rowcount > 0

    def forget_outputs(self, asset_id: str, prefix: str) -> int:
        """Drop the catalog rows of the asset's outputs under ``prefix`` (objects, renditions and
        their metrics, published manifests and tracks), after the objects were deleted. Returns how
        many object rows went."""
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM stored_objects WHERE asset_id = %s AND left(uri, length(%s)) = %s",
                (asset_id, prefix, prefix),
            )
            removed = cur.rowcount
            cur.execute("DELETE FROM renditions WHERE asset_id = %s", (asset_id,))
            cur.execute("UPDATE scenes SET keyframe_uri = NULL WHERE asset_id = %s", (asset_id,))
            cur.execute(
                "UPDATE assets SET hls_uri = NULL, dash_uri = NULL, captions_uri = NULL, chapters_uri = NULL,"
                " updated_at = now() WHERE asset_id = %s",
                (asset_id,),
            )
            self._event(cur, asset_id, "outputs_discarded", detail={"prefix": prefix, "objects": removed})
        return removed

    def add_event(self, asset_id: str, kind: str, **detail: Any) -> None:
        with self._tx() as cur:
            self._event(cur, asset_id, kind, detail=detail)

    def events(self, asset_id: str) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM asset_events WHERE asset_id = %s ORDER BY event_id", (asset_id,))
            return [dict(r) for r in cur.fetchall()]

    def last_event(self, asset_id: str, kind: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM asset_events WHERE asset_id = %s AND kind = %s ORDER BY event_id DESC LIMIT 1",
                (asset_id, kind),
            )
            row = cur.fetchone()
        return dict(row) if row else None

    def _event(
        self,
        cur: RealDictCursor,
        asset_id: str,
        kind: str,
        *,
        from_status: str | None = None,
        to_status: str | None = None,
        detail: dict[str, Any] | None = None,
        actor: str | None = None,
    ) -> None:
        """The one writer of audit events (inside the caller's transaction)."""
        cur.execute(
            "INSERT INTO asset_events (asset_id, kind, from_status, to_status, detail, actor)"
            " VALUES (%s, %s, %s, %s, %s, %s)",
            (asset_id, kind, from_status, to_status, _json(detail or {}), actor or self.actor),
        )

    # -- renditions, metrics, objects -----------------------------------------------------------

    def upsert_rendition(self, asset_id: str, profile: str, r: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO renditions (asset_id, profile, name, codec, width, height, bitrate_kbps,"
                " duration, frame_count, size_bytes, sha256, uri)"
                " VALUES (%(asset_id)s, %(profile)s, %(name)s, %(codec)s, %(width)s, %(height)s,"
                " %(bitrate_kbps)s, %(duration)s, %(frame_count)s, %(size_bytes)s, %(sha256)s, %(uri)s)"
                " ON CONFLICT (asset_id, profile, name) DO UPDATE SET codec = EXCLUDED.codec,"
                " width = EXCLUDED.width, height = EXCLUDED.height, bitrate_kbps = EXCLUDED.bitrate_kbps,"
                " duration = EXCLUDED.duration, frame_count = EXCLUDED.frame_count,"
                " size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, uri = EXCLUDED.uri,"
                " updated_at = now()",
                {
                    "asset_id": asset_id,
                    "profile": profile,
                    **{k: r.get(k) for k in ("name", "codec", "width", "height", "bitrate_kbps")},
                    **{k: r.get(k) for k in ("duration", "frame_count", "size_bytes", "sha256", "uri")},
                },
            )

    def prune_renditions(self, asset_id: str, profile: str, keep: list[str]) -> None:
        """Drop rendition rows of this profile that the current plan no longer has."""
        with self._tx() as cur:
            cur.execute(
                "DELETE FROM renditions WHERE asset_id = %s AND profile = %s AND NOT (name = ANY(%s))",
                (asset_id, profile, keep),
            )

    def renditions(self, asset_id: str, profile: str | None = None) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM renditions WHERE asset_id = %s AND (%s::text IS NULL OR profile = %s)"
                " ORDER BY height DESC, name",
                (asset_id, profile, profile),
            )
            return [dict(r) for r in cur.fetchall()]

    def upsert_quality(
        self,
        asset_id: str,
        profile: str,
        rendition: str,
        metric: str,
        pooled: dict[str, float],
        *,
        model: str | None,
        n_subsample: int | None,
        frames_uri: str | None,
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO quality_metrics (asset_id, profile, rendition, metric, mean, min, harmonic_mean,"
                " model, n_subsample, frames_uri) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (asset_id, profile, rendition, metric) DO UPDATE SET mean = EXCLUDED.mean,"
                " min = EXCLUDED.min, harmonic_mean = EXCLUDED.harmonic_mean, model = EXCLUDED.model,"
                " n_subsample = EXCLUDED.n_subsample, frames_uri = EXCLUDED.frames_uri, updated_at = now()",
                (
                    asset_id,
                    profile,
                    rendition,
                    metric,
                    pooled.get("mean"),
                    pooled.get("min"),
                    pooled.get("harmonic_mean"),
                    model,
                    n_subsample,
                    frames_uri,
                ),
            )

    def quality(self, asset_id: str, profile: str | None = None) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM quality_metrics WHERE asset_id = %s AND (%s::text IS NULL OR profile = %s)"
                " ORDER BY rendition, metric",
                (asset_id, profile, profile),
            )
            return [dict(r) for r in cur.fetchall()]

    def record_object(
        self,
        uri: str,
        *,
        asset_id: str | None,
        kind: str,
        size_bytes: int | None = None,
        sha256: str | None = None,
        storage_class: str | None = None,
        tier: str | None = None,
    ) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO stored_objects (uri, asset_id, kind, size_bytes, sha256, storage_class, tier)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (uri) DO UPDATE SET asset_id = EXCLUDED.asset_id, kind = EXCLUDED.kind,"
                " size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256,"
                " storage_class = EXCLUDED.storage_class, tier = EXCLUDED.tier, updated_at = now(),"
                " written_at = now()",
                (uri, asset_id, kind, size_bytes, sha256, storage_class, tier),
            )

    def objects(self, asset_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM stored_objects WHERE asset_id = %s AND (%s::text IS NULL OR kind = %s)"
                " ORDER BY uri",
                (asset_id, kind, kind),
            )
            return [dict(r) for r in cur.fetchall()]

    # -- landing places ---------------------------------------------------------------------------

    def observe(self, uri: str, size_bytes: int | None, etag: str | None) -> dict[str, Any]:
        """Record that a poll saw the object at ``uri`` with this size and etag. Returns
        ``{"polls", "stable_seconds"}``: how many polls in a row saw it like this, and for how long."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO landing_observations AS o (uri, size_bytes, etag) VALUES (%s, %s, %s)"
                " ON CONFLICT (uri) DO UPDATE SET"
                " polls = CASE WHEN o.size_bytes IS NOT DISTINCT FROM EXCLUDED.size_bytes"
                "   AND o.etag IS NOT DISTINCT FROM EXCLUDED.etag THEN o.polls + 1 ELSE 1 END,"
                " first_seen_at = CASE WHEN o.size_bytes IS NOT DISTINCT FROM EXCLUDED.size_bytes"
                "   AND o.etag IS NOT DISTINCT FROM EXCLUDED.etag THEN o.first_seen_at ELSE now() END,"
                " size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag, last_seen_at = now()"
                " RETURNING polls, extract(epoch FROM now() - first_seen_at) AS stable_seconds",
                (uri, size_bytes, etag),
            )
            row = cur.fetchone()
        return {"polls": int(row["polls"]), "stable_seconds": float(row["stable_seconds"])}

    def forget_observation(self, uri: str) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM landing_observations WHERE uri = %s", (uri,))

    # -- pinned profile versions ----------------------------------------------------------------

    def pin_profile(self, key: str, name: str, version: str, definition: dict[str, Any]) -> str:
        """Record the exact definition of profile ``key`` (name@version) a run uses; returns its
        SHA-256, with which :meth:`pinned_profile` reads it back. The same key with another
        definition is logged: the file was edited without a version bump, so outputs of two
        definitions share one output prefix."""
        digest = hashlib.sha256(json.dumps(definition, sort_keys=True).encode()).hexdigest()
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO profile_versions (profile_key, sha256, name, version, definition)"
                " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (profile_key, sha256) DO NOTHING",
                (key, digest, name, version, _json(definition)),
            )
            cur.execute(
                "SELECT count(*) AS n FROM profile_versions WHERE profile_key = %s AND sha256 <> %s",
                (key, digest),
            )
            if cur.fetchone()["n"]:
                log.warning(
                    "profile %s has changed since a run first used it: bump its version when you edit it", key
                )
        return digest

    def pinned_profile(self, key: str, sha256: str) -> dict[str, Any]:
        """The definition of profile ``key`` recorded by :meth:`pin_profile`."""
        with self._tx() as cur:
            cur.execute(
                "SELECT definition FROM profile_versions WHERE profile_key = %s AND sha256 = %s",
                (key, sha256),
            )
            row = cur.fetchone()
        if row is None:
            raise CatalogError(f"profile {key} ({sha256[:12]}) was never pinned: run the plan step first")
        return dict(row["definition"])

    # -- derived outputs ------------------------------------------------------------------------

    def upsert_derived(
        self, asset_id: str, name: str, kind: str, spec: dict[str, Any], out: dict[str, Any]
    ) -> None:
        """Record (or replace) a derived output of the asset, e.g. a social-media crop."""
        keys = ("uri", "width", "height", "duration", "frame_count", "size_bytes", "sha256")
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO derived_outputs (asset_id, name, kind, spec, uri, width, height, duration,"
                " frame_count, size_bytes, sha256) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (asset_id, name) DO UPDATE SET kind = EXCLUDED.kind, spec = EXCLUDED.spec,"
                " uri = EXCLUDED.uri, width = EXCLUDED.width, height = EXCLUDED.height,"
                " duration = EXCLUDED.duration, frame_count = EXCLUDED.frame_count,"
                " size_bytes = EXCLUDED.size_bytes, sha256 = EXCLUDED.sha256, vmaf = NULL, ssim = NULL,"
                " psnr = NULL, quality = NULL, updated_at = now()",
                (asset_id, name, kind, _json(spec), *(out.get(k) for k in keys)),
            )
            self._event(cur, asset_id, "derived", detail={"name": name, "kind": kind, "uri": out.get("uri")})

    def set_derived_quality(self, asset_id: str, name: str, quality: dict[str, Any]) -> None:
        """Store the quality measured for a derived output (``{"vmaf": {"mean"...}, "ssim"..., ...}``)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE derived_outputs SET vmaf = %s, ssim = %s, psnr = %s, quality = %s, updated_at = now()"
                " WHERE asset_id = %s AND name = %s",
                (
                    *((quality.get(m) or {}).get("mean") for m in ("vmaf", "ssim", "psnr")),
                    _json(quality),
                    asset_id,
                    name,
                ),
            )
            if cur.rowcount == 0:
                raise CatalogError(f"asset {asset_id} has no derived output {name!r}")

    def derived(self, asset_id: str) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM derived_outputs WHERE asset_id = %s ORDER BY name", (asset_id,))
            return [dict(r) for r in cur.fetchall()]


def open_catalog(dsn: str, actor: str = "vam") -> Catalog:
    """A :class:`Catalog` on a fresh connection to a migrated database."""
    return Catalog(open_catalog_connection(dsn), actor=actor)

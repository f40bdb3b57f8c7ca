"""Catalog rows of transformation URLs: each build's state and lease, the hit counter, overlays.

A transformation of an asset is one row keyed by (asset, digest of the canonical text). Builds
are claimed in one transaction under an advisory lock, so across every process sharing the
catalog at most ``max_builds`` run at once and one transformation is built by one owner at a
time; a lease that runs out (a killed builder) lets another take it over.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from psycopg2.extras import RealDictCursor

log = logging.getLogger(__name__)

_BUILD_LOCK = 0x7A6D_0013  # pg_advisory_xact_lock key: one claimer at a time
_ROW_KEYS = ("uri", "size_bytes", "sha256", "width", "height", "duration", "build_seconds")
_RETURNED = ", ".join(
    f"t.{c}"
    for c in (
        "asset_id", "digest", "canonical", "format", "status", "size_bytes", "sha256", "width", "height",
        "duration", "build_seconds", "hits", "builds", "last_hit_at", "created_at",
    )
)  # fmt: skip


class TransformRows:
    """Mixed into :class:`vam.catalog.Catalog`."""

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[RealDictCursor]: ...

    def claim_transformation(
        self,
        asset_id: str,
        digest: str,
        canonical: str,
        fmt: str,
        *,
        owner: str,
        lease_seconds: float,
        max_builds: int,
        status: str = "building",
    ) -> dict[str, Any]:
        """Take the build of a transformation for ``owner``: ``{"state": ..., "row": ...}`` where
        state is ``claimed`` (build it now), ``ready`` (built already), ``busy`` (another owner
        holds a live lease) or ``full`` (``max_builds`` builds are running). ``status="queued"``
        reserves it for an Airflow run (whose owner claims it again when it starts; queued rows do
        not count against ``max_builds``)."""
        with self._tx() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_BUILD_LOCK,))
            cur.execute(
                "SELECT *, lease_expires_at > now() AS live, EXISTS (SELECT 1 FROM derived_outputs d"
                "  WHERE d.asset_id = t.asset_id AND d.name = 't-' || t.digest) AS published"
                " FROM transformations t WHERE asset_id = %s AND digest = %s FOR UPDATE OF t",
                (asset_id, digest),
            )
            row = cur.fetchone()
            if row is not None and row["status"] == "ready" and row["published"]:
                return {"state": "ready", "row": dict(row)}
            if (
                row is not None
                and row["status"] in ("queued", "building")
                and row["live"]
                and row["owner"] != owner
            ):
                return {"state": "busy", "row": dict(row)}
            if status == "building":
                cur.execute(
                    "SELECT count(*) AS n FROM transformations WHERE status = 'building'"
                    " AND lease_expires_at > now() AND NOT (asset_id = %s AND digest = %s)",
                    (asset_id, digest),
                )
                if cur.fetchone()["n"] >= max_builds:
                    return {"state": "full", "row": dict(row) if row else None}
            cur.execute(
                "INSERT INTO transformations AS t (asset_id, digest, canonical, format, status, owner,"
                " lease_expires_at, builds) VALUES (%s, %s, %s, %s, %s, %s,"
                " now() + make_interval(secs => %s), %s)"
                " ON CONFLICT (asset_id, digest) DO UPDATE SET status = EXCLUDED.status,"
                " owner = EXCLUDED.owner, lease_expires_at = EXCLUDED.lease_expires_at, error = NULL,"
                " builds = t.builds + EXCLUDED.builds, updated_at = now() RETURNING *",
                (
                    asset_id,
                    digest,
                    canonical,
                    fmt,
                    status,
                    owner,
                    float(lease_seconds),
                    1 if status == "building" else 0,
                ),
            )
            return {"state": "claimed", "row": dict(cur.fetchone())}

    def finish_transformation(self, asset_id: str, digest: str, owner: str, out: dict[str, Any]) -> bool:
        """Mark a built transformation ready (published at ``out["uri"]``). False when ``owner`` had
        lost its lease (the row is marked ready all the same: the object is complete)."""
        with self._tx() as cur:
            cur.execute(
                "SELECT owner FROM transformations WHERE asset_id = %s AND digest = %s FOR UPDATE",
                (asset_id, digest),
            )
            row = cur.fetchone()
            cur.execute(
                "UPDATE transformations SET status = 'ready', uri = %s, size_bytes = %s, sha256 = %s,"
                " width = %s, height = %s, duration = %s, build_seconds = %s, error = NULL,"
                " lease_expires_at = NULL, updated_at = now(), owner = NULL"
                " WHERE asset_id = %s AND digest = %s",
                (*(out.get(k) for k in _ROW_KEYS), asset_id, digest),
            )
        return bool(row) and row["owner"] == owner

    def fail_transformation(self, asset_id: str, digest: str, owner: str, error: str) -> None:
        """Record a failed build (the next request builds it again)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE transformations SET status = 'failed', error = %s, lease_expires_at = NULL,"
                " updated_at = now() WHERE asset_id = %s AND digest = %s AND owner IS NOT DISTINCT FROM %s",
                (error[:2000], asset_id, digest, owner),
            )

    def forget_transformation(self, asset_id: str, digest: str) -> None:
        """Drop a transformation whose object is gone (it is built again on the next request)."""
        with self._tx() as cur:
            cur.execute("DELETE FROM transformations WHERE asset_id = %s AND digest = %s", (asset_id, digest))

    def hit_transformation(self, asset_id: str, digest: str) -> dict[str, Any] | None:
        """The ready transformation, its hit counted; None when it is not ready."""
        with self._tx() as cur:
            # the URI is the derived output's: lifecycle moves re-point that one (and expiry deletes it)
            cur.execute(
                "UPDATE transformations t SET hits = t.hits + 1, last_hit_at = now() FROM derived_outputs d"
                " WHERE t.asset_id = %s AND t.digest = %s AND t.status = 'ready'"
                " AND d.asset_id = t.asset_id AND d.name = 't-' || t.digest"
                f" RETURNING {_RETURNED}, d.uri",
                (asset_id, digest),
            )
            row = cur.fetchone()
        return dict(row) if row else None

    def add_transformation_hits(self, asset_id: str, digest: str, hits: int) -> None:
        """Add hits counted in a process's memory (the service's cache of ready transformations)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE transformations SET hits = hits + %s, last_hit_at = now()"
                " WHERE asset_id = %s AND digest = %s",
                (int(hits), asset_id, digest),
            )

    def get_transformation(self, asset_id: str, digest: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute(
                "SELECT *, lease_expires_at > now() AS live,"
                " extract(epoch FROM now() - updated_at) AS age FROM transformations"
                " WHERE asset_id = %s AND digest = %s",
                (asset_id, digest),
            )
            row = cur.fetchone()
        return dict(row) if row else None

    def transformations(self, asset_id: str) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM transformations WHERE asset_id = %s ORDER BY canonical", (asset_id,))
            return [dict(r) for r in cur.fetchall()]

    # -- overlays (watermark images) -------------------------------------------------------------

    def save_overlay(self, overlay_id: str, row: dict[str, Any]) -> None:
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO overlays (overlay_id, uri, sha256, size_bytes, width, height, content_type)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (overlay_id) DO UPDATE SET"
                " uri = EXCLUDED.uri, sha256 = EXCLUDED.sha256, size_bytes = EXCLUDED.size_bytes,"
                " width = EXCLUDED.width, height = EXCLUDED.height, content_type = EXCLUDED.content_type,"
                " updated_at = now()",
                (
                    overlay_id,
                    *(row[k] for k in ("uri", "sha256", "size_bytes", "width", "height")),
                    row.get("content_type"),
                ),
            )

    def overlays_by_id(self, overlay_ids: list[str]) -> dict[str, dict[str, Any]]:
        if not overlay_ids:
            return {}
        with self._tx() as cur:
            cur.execute("SELECT * FROM overlays WHERE overlay_id = ANY(%s)", (list(overlay_ids),))
            return {r["overlay_id"]: dict(r) for r in cur.fetchall()}

    def list_overlays(self) -> Iterator[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM overlays ORDER BY overlay_id")
            rows = [dict(r) for r in cur.fetchall()]
        yield from rows

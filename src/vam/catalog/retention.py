"""Catalog rows of retention: soft deletion and purge, dedup re-pointing, pending object deletions.

An asset is deleted softly (``deleted_at``, ``purge_after``): it leaves search at once and can be
undeleted until ``purge_after``. The purge then drops its rows in one transaction that also records
every object storage must delete (``pending_deletes``) and writes the ``purged`` audit event, which
outlives the asset (``asset_events`` has no foreign key). A held asset (``legal_hold``) is never
deleted nor purged: both refuse it under the row lock, so a hold placed at any time wins.

Dedup re-points every catalog reference of a redundant copy to the copy kept, in one transaction
that also queues the redundant copy for deletion. Storage deletes a queued object only when nothing
in the catalog points at it any more and it is unchanged since it was queued.

Mixed into :class:`vam.catalog.repo.Catalog`; uses its ``_tx`` and ``_event``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from vam.catalog.references import OBJECT_URI_COLUMNS
from vam.errors import CatalogError, LegalHoldError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from psycopg2.extras import RealDictCursor

log = logging.getLogger(__name__)

# Every catalog column that holds the URI of an object: (table, column). Dedup re-points all but
# stored_objects (whose row of the redundant copy goes) and asset_sources (the keys a source was seen
# under are history: their rows stay).
URI_COLUMNS: tuple[tuple[str, str], ...] = (
    *OBJECT_URI_COLUMNS,
    ("stored_objects", "uri"),
    ("asset_sources", "source_uri"),
)
_REPOINTED = tuple((t, c) for t, c in URI_COLUMNS if t not in ("stored_objects", "asset_sources"))
_POINTERS = tuple((t, c) for t, c in URI_COLUMNS if t != "asset_sources")


def _refs_sql(columns: Sequence[tuple[str, str]]) -> str:
    # Table and column names come from the constants above, never from input; the URIs are bound.
    return " UNION ALL ".join(
        f"SELECT '{t}' AS tbl, '{c}' AS col, asset_id, {c} AS uri FROM {t} WHERE {c} = ANY(%(uris)s)"
        for t, c in columns
    )


class RetentionRows:
    """Soft deletion, purge, dedup and pending deletions (see the module docstring)."""

    if TYPE_CHECKING:
        actor: str

        def _tx(self) -> AbstractContextManager[RealDictCursor]: ...

        def _event(self, cur: RealDictCursor, asset_id: str, kind: str, **kw: Any) -> None: ...

    # -- soft deletion ----------------------------------------------------------------------------

    def _locked_asset(self, cur: RealDictCursor, asset_id: str) -> dict[str, Any]:
        cur.execute("SELECT * FROM assets WHERE asset_id = %s FOR UPDATE", (asset_id,))
        row = cur.fetchone()
        if row is None:
            raise CatalogError(f"no asset {asset_id} in the catalog (purged already, or a wrong id?)")
        return dict(row)

    def soft_delete(
        self,
        asset_id: str,
        *,
        grace: dt.timedelta,
        reason: str | None = None,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Mark the asset deleted; it is purged once ``grace`` has passed. Deleting a deleted asset
        changes nothing. Refused (LegalHoldError) for a held asset, and (CatalogError) while a run is
        processing it. Returns ``{"asset_id", "deleted_at", "purge_after", "already_deleted"}``."""
        with self._tx() as cur:
            row = self._locked_asset(cur, asset_id)
            if row.get("legal_hold"):
                raise LegalHoldError(
                    f"asset {asset_id} is under legal hold ({row.get('hold_reason') or 'no reason given'}):"
                    " it cannot be deleted; release the hold first (vam release)"
                )
            if row["deleted_at"] is not None:
                return {
                    "asset_id": asset_id,
                    "deleted_at": row["deleted_at"],
                    "purge_after": row["purge_after"],
                    "already_deleted": True,
                }
            if row["status"] in ("ingesting", "processing") and row.get("run_id"):
                raise CatalogError(
                    f"asset {asset_id} is {row['status']} (run {row['run_id']}): delete it once its run"
                    " has finished"
                )
            cur.execute(
                "UPDATE assets SET deleted_at = coalesce(%(now)s, now()),"
                " purge_after = coalesce(%(now)s, now()) + %(grace)s, delete_reason = %(reason)s,"
                " updated_at = now() WHERE asset_id = %(id)s RETURNING deleted_at, purge_after",
                {"now": now, "grace": grace, "reason": reason, "id": asset_id},
            )
            done = cur.fetchone()
            self._event(
                cur,
                asset_id,
                "deleted",
                detail={"purge_after": done["purge_after"].isoformat(), "reason": reason},
            )
        log.info("asset %s deleted; purged after %s", asset_id, done["purge_after"])
        return {**done, "asset_id": asset_id, "already_deleted": False}

    def undelete(self, asset_id: str, *, now: dt.datetime | None = None) -> dict[str, Any]:
        """Bring a deleted asset back within its grace period (CatalogError after it, or when the
        asset is not deleted). Returns ``{"asset_id", "deleted_at", "purge_after"}`` as they were."""
        with self._tx() as cur:
            row = self._locked_asset(cur, asset_id)
            if row["deleted_at"] is None:
                raise CatalogError(f"asset {asset_id} is not deleted: nothing to undelete")
            cur.execute("SELECT coalesce(%s, now()) AS now", (now,))
            at = cur.fetchone()["now"]
            if row["purge_after"] <= at:
                raise CatalogError(
                    f"asset {asset_id}'s grace period ended at {row['purge_after']:%Y-%m-%d %H:%M:%S %Z}:"
                    " it is being purged and cannot be undeleted"
                )
            cur.execute(
                "UPDATE assets SET deleted_at = NULL, purge_after = NULL, delete_reason = NULL,"
                " updated_at = now() WHERE asset_id = %s",
                (asset_id,),
            )
            self._event(
                cur, asset_id, "undeleted", detail={"was_purge_after": row["purge_after"].isoformat()}
            )
        return {"asset_id": asset_id, "deleted_at": row["deleted_at"], "purge_after": row["purge_after"]}

    def due_purges(self, *, now: dt.datetime | None = None, limit: int = 1000) -> list[str]:
        """Deleted assets whose grace period has ended, oldest first."""
        with self._tx() as cur:
            cur.execute(
                "SELECT asset_id FROM assets WHERE deleted_at IS NOT NULL"
                " AND purge_after <= coalesce(%s, now()) ORDER BY purge_after, asset_id LIMIT %s",
                (now, limit),
            )
            return [r["asset_id"] for r in cur.fetchall()]

    def purge_targets(self, asset_id: str) -> list[dict[str, Any]]:
        """What a purge of the asset would delete from storage: its stored objects, every other object
        its rows name (e.g. per-frame quality logs) and every key its source was seen under before
        it was deleted (``{"uri", "kind", "size_bytes", "etag"}``; etag of keys only)."""
        others = " UNION ".join(
            f"SELECT {c} AS uri FROM {t} WHERE asset_id = %(id)s AND {c} IS NOT NULL"
            for t, c in _POINTERS
            if t != "stored_objects"
        )
        with self._tx() as cur:
            cur.execute(
                "SELECT uri, kind, size_bytes, NULL AS etag FROM stored_objects WHERE asset_id = %(id)s"
                " UNION ALL SELECT s.source_uri, 'source_key', s.size_bytes, s.etag FROM asset_sources s"
                " JOIN assets a ON a.asset_id = s.asset_id"
                " WHERE s.asset_id = %(id)s AND NOT EXISTS"
                " (SELECT 1 FROM stored_objects o WHERE o.uri = s.source_uri)"
                # a key first seen after the delete is a new drop of the same bytes: once the asset
                # is purged, the next landing poll ingests it as a new asset
                " AND s.first_seen_at <= coalesce(a.deleted_at, now())"
                f" UNION ALL SELECT r.uri, 'reference', NULL, NULL FROM ({others}) r"
                " WHERE NOT EXISTS (SELECT 1 FROM stored_objects o WHERE o.uri = r.uri)"
                " AND NOT EXISTS (SELECT 1 FROM asset_sources s WHERE s.source_uri = r.uri) ORDER BY 1",
                {"id": asset_id},
            )
            return [dict(r) for r in cur.fetchall()]

    def purge_asset(
        self,
        asset_id: str,
        objects: Iterable[dict[str, Any]],
        *,
        now: dt.datetime | None = None,
    ) -> dict[str, Any]:
        """Drop the deleted asset's rows, in one transaction that queues ``objects`` (``{"uri",
        "size_bytes", "etag"}`` as storage answers now; see :meth:`purge_targets`) for deletion and
        writes the ``purged`` event. Objects another asset points at (after a dedup) are not queued:
        their stored-object row passes to that asset. Refuses (LegalHoldError) a held asset and
        (CatalogError) one that is not deleted or not due. Returns ``{"asset_id", "queued", "kept",
        "bytes"}``."""
        objects = list(objects)
        with self._tx() as cur:
            row = self._locked_asset(cur, asset_id)
            if row.get("legal_hold"):
                raise LegalHoldError(
                    f"asset {asset_id} is under legal hold ({row.get('hold_reason') or 'no reason given'}):"
                    " the purge leaves it alone until the hold is released"
                )
            cur.execute("SELECT coalesce(%s, now()) AS now", (now,))
            at = cur.fetchone()["now"]
            if row["deleted_at"] is None or row["purge_after"] > at:
                raise CatalogError(f"asset {asset_id} is not deleted or its grace period has not ended")
            cur.execute("SELECT count(*) AS n FROM lifecycle_journal WHERE asset_id = %s", (asset_id,))
            if cur.fetchone()["n"]:
                raise CatalogError(
                    f"asset {asset_id} has a lifecycle move in flight: the next purge takes it once"
                    " the lifecycle run has finished the move"
                )
            others = self._pointers(cur, [o["uri"] for o in objects], exclude=asset_id)
            queued, kept, nbytes = [], [], 0
            for obj in objects:
                owners = sorted({r["asset_id"] for r in others.get(obj["uri"], []) if r["asset_id"]})
                if owners:  # shared after a dedup: the copy stays, owned by an asset that uses it
                    cur.execute(
                        "UPDATE stored_objects SET asset_id = %s, updated_at = now() WHERE uri = %s",
                        (owners[0], obj["uri"]),
                    )
                    kept.append(obj["uri"])
                    continue
                cur.execute(
                    "INSERT INTO pending_deletes (uri, asset_id, reason, size_bytes, etag)"
                    " VALUES (%s, %s, 'purge', %s, %s) ON CONFLICT (uri) DO UPDATE SET"
                    " asset_id = EXCLUDED.asset_id, reason = EXCLUDED.reason,"
                    " size_bytes = EXCLUDED.size_bytes, etag = EXCLUDED.etag",
                    (obj["uri"], asset_id, obj.get("size_bytes"), obj.get("etag")),
                )
                queued.append(obj["uri"])
                nbytes += obj.get("size_bytes") or 0
            self._event(
                cur,
                asset_id,
                "purged",
                detail={
                    "deleted_at": row["deleted_at"].isoformat(),
                    "reason": row.get("delete_reason"),
                    "title": row.get("title"),
                    "sha256": row["content_sha256"],
                    "objects": len(queued),
                    "bytes": nbytes,
                    "kept_shared": kept,
                },
            )
            cur.execute("DELETE FROM assets WHERE asset_id = %s", (asset_id,))
        log.info(
            "asset %s purged: %d objects queued for deletion, %d shared kept",
            asset_id,
            len(queued),
            len(kept),
        )
        return {"asset_id": asset_id, "queued": queued, "kept": kept, "bytes": nbytes}

    # -- references -------------------------------------------------------------------------------

    def _pointers(
        self, cur: RealDictCursor, uris: Sequence[str], *, exclude: str | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        if not uris:
            return found
        cur.execute(_refs_sql(_POINTERS), {"uris": list(uris)})
        for r in cur.fetchall():
            if exclude is None or r["asset_id"] != exclude:
                found.setdefault(r["uri"], []).append(dict(r))
        return found

    def references(self, uris: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """Every catalog row that names each URI: ``{uri: [{"tbl", "col", "asset_id"}]}`` (keys a
        source was seen under included)."""
        found: dict[str, list[dict[str, Any]]] = {}
        if not uris:
            return found
        with self._tx() as cur:
            cur.execute(_refs_sql(URI_COLUMNS), {"uris": list(uris)})
            for r in cur.fetchall():
                found.setdefault(r["uri"], []).append(dict(r))
        return found

    # -- pending deletions ------------------------------------------------------------------------

    def pending_deletes(self, limit: int = 10000) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM pending_deletes ORDER BY created_at, uri LIMIT %s", (limit,))
            return [dict(r) for r in cur.fetchall()]

    def is_pointed_at(self, uri: str) -> bool:
        """Whether a catalog row (other than the history of source keys) points at ``uri``."""
        return bool(self.pointed_at([uri]))

    def pointed_at(self, uris: Sequence[str]) -> set[str]:
        """Those of ``uris`` a catalog row (other than the history of source keys) points at."""
        with self._tx() as cur:
            return set(self._pointers(cur, list(uris)))

    def forget_pending(self, uri: str) -> None:
        self.finish_pending([{"uri": uri}], ["deleted"])

    def finish_pending(self, rows: Sequence[dict[str, Any]], outcomes: Sequence[str]) -> None:
        """Forget queued deletions storage has dealt with, in one transaction that writes an
        ``object_kept`` event for each object left in place (``referenced``, ``changed``)."""
        with self._tx() as cur:
            for row, outcome in zip(rows, outcomes, strict=True):
                if outcome in ("referenced", "changed") and row.get("asset_id"):
                    detail = {"uri": row["uri"], "why": outcome, "queued_by": row.get("reason")}
                    self._event(cur, row["asset_id"], "object_kept", detail=detail)
            cur.execute("DELETE FROM pending_deletes WHERE uri = ANY(%s)", ([r["uri"] for r in rows],))

    # -- storage report ---------------------------------------------------------------------------

    def storage_inventory(self) -> list[dict[str, Any]]:
        """Every stored object with its asset's title, campaign tag and deletion: ``{"uri",
        "asset_id", "title", "kind", "size_bytes", "tier", "storage_class", "campaign", "deleted"}``."""
        with self._tx() as cur:
            cur.execute(
                "SELECT o.uri, o.asset_id, a.title, o.kind, o.size_bytes, o.tier, o.storage_class,"
                " a.tags ->> 'campaign' AS campaign, a.deleted_at IS NOT NULL AS deleted"
                " FROM stored_objects o LEFT JOIN assets a ON a.asset_id = o.asset_id ORDER BY o.uri"
            )
            return [dict(r) for r in cur.fetchall()]

    # -- dedup ------------------------------------------------------------------------------------

    def duplicate_candidates(self) -> list[dict[str, Any]]:
        """Stored objects whose recorded SHA-256 another stored object or source key shares, plus
        the keys a source was seen under that are not stored objects (``kind`` 'source_key'): each
        ``{"uri", "sha256", "size_bytes", "kind", "asset_id", "tier", "storage_class", "etag",
        "deleted"}``, ordered by sha256 and uri. Objects of a lifecycle move in flight are left out."""
        with self._tx() as cur:
            cur.execute(
                "WITH copies AS ("
                "  SELECT o.uri, o.sha256, o.size_bytes, o.kind, o.asset_id, o.tier, o.storage_class,"
                "         NULL::text AS etag FROM stored_objects o WHERE o.sha256 IS NOT NULL"
                "  UNION ALL"
                "  SELECT s.source_uri, a.content_sha256, s.size_bytes, 'source_key', s.asset_id, NULL, NULL,"
                "         s.etag FROM asset_sources s JOIN assets a ON a.asset_id = s.asset_id"
                "  WHERE NOT EXISTS (SELECT 1 FROM stored_objects o WHERE o.uri = s.source_uri)"
                "), dup AS (SELECT sha256 FROM copies GROUP BY sha256 HAVING count(*) > 1)"
                " SELECT c.*, a.deleted_at IS NOT NULL AS deleted FROM copies c"
                " JOIN dup USING (sha256) LEFT JOIN assets a ON a.asset_id = c.asset_id"
                " WHERE NOT EXISTS (SELECT 1 FROM lifecycle_journal j"
                "                   WHERE j.src_uri = c.uri OR j.dst_uri = c.uri)"
                " ORDER BY c.sha256, c.uri"
            )
            return [dict(r) for r in cur.fetchall()]

    def repoint(self, redundant: str, keep: str, *, sha256: str, etag: str | None = None) -> list[str]:
        """Make every catalog reference of the copy ``redundant`` name the copy ``keep`` (same
        bytes, checked by the caller), drop its stored-object row and queue it for deletion, in one
        transaction with a ``deduplicated`` event per asset concerned. Returns those assets."""
        with self._tx() as cur:
            cur.execute("SELECT sha256 FROM stored_objects WHERE uri = %s FOR UPDATE", (keep,))
            kept = cur.fetchone()
            if kept is None or kept["sha256"] != sha256:
                raise CatalogError(
                    f"{keep} is no longer a stored object with SHA-256 {sha256}: dedup skipped"
                )
            assets: set[str] = set()
            for table, column in _REPOINTED:
                cur.execute(
                    f"UPDATE {table} SET {column} = %s WHERE {column} = %s RETURNING asset_id",  # noqa: S608
                    (keep, redundant),
                )
                assets.update(r["asset_id"] for r in cur.fetchall())
            cur.execute(
                "DELETE FROM stored_objects WHERE uri = %s RETURNING asset_id, size_bytes", (redundant,)
            )
            gone = cur.fetchone()
            if gone:
                assets.add(gone["asset_id"])
            cur.execute("SELECT asset_id FROM asset_sources WHERE source_uri = %s", (redundant,))
            assets.update(r["asset_id"] for r in cur.fetchall())
            cur.execute(
                "INSERT INTO pending_deletes (uri, asset_id, reason, size_bytes, etag)"
                " VALUES (%s, %s, 'dedup', %s, %s) ON CONFLICT (uri) DO NOTHING",
                (redundant, gone["asset_id"] if gone else None, gone["size_bytes"] if gone else None, etag),
            )
            for asset_id in sorted(a for a in assets if a):
                self._event(
                    cur,
                    asset_id,
                    "deduplicated",
                    detail={"removed": redundant, "kept": keep, "sha256": sha256},
                )
        return sorted(a for a in assets if a)

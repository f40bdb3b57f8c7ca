"""Catalog rows of the storage lifecycle: the objects the planner reads, the mover's journal and
commit, legal holds and restores.

The mover's commit re-points every catalog reference of a moved object (stored_objects, renditions,
derived outputs, keyframes, quality logs, the asset's source/HLS/DASH/caption/chapter URIs) in one
transaction that also marks the journal committed and writes the audit event; a held asset is
refused there, under the row lock, whatever the planner said. Audit events have no foreign key, so
they outlive the assets they describe.

Mixed into :class:`vam.catalog.repo.Catalog`; uses its ``_tx`` and ``_event``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vam.catalog.enrichment import _json
from vam.catalog.references import OBJECT_URI_COLUMNS
from vam.errors import CatalogError, LegalHoldError

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from psycopg2.extras import RealDictCursor

log = logging.getLogger(__name__)

# Every column holding an object's URI that a move re-points (stored_objects handled on its own;
# asset_sources keeps the keys a source was seen under: history).
MOVED_REFERENCES = OBJECT_URI_COLUMNS
_OBJECTS_SQL = """
SELECT o.uri, o.asset_id, o.kind, o.size_bytes, o.sha256, o.storage_class, o.tier, o.written_at,
       a.created_at, a.last_accessed_at, a.status, a.tags, a.legal_hold,
       (SELECT max(e.at) FROM asset_events e
         WHERE e.asset_id = a.asset_id AND e.kind = 'status' AND e.to_status = 'ready') AS ready_at,
       r.state AS restore_state, r.expires_at AS restore_expires_at, r.restored_from
  FROM stored_objects o
  JOIN assets a ON a.asset_id = o.asset_id
  LEFT JOIN asset_restores r ON r.asset_id = a.asset_id
 WHERE (to_jsonb(a) ->> 'deleted_at') IS NULL
   AND (%(asset_id)s::text IS NULL OR o.asset_id = %(asset_id)s)
   AND NOT EXISTS (SELECT 1 FROM lifecycle_journal j WHERE j.src_uri = o.uri)
 ORDER BY o.asset_id, o.uri
"""


class LifecycleRows:
    """Lifecycle methods of :class:`~vam.catalog.repo.Catalog`."""

    actor: str

    if TYPE_CHECKING:

        def _tx(self) -> AbstractContextManager[RealDictCursor]: ...

        def _event(self, cur: RealDictCursor, asset_id: str, kind: str, **kw: Any) -> None: ...

    # -- what the planner reads ----------------------------------------------------------------------

    def lifecycle_objects(self, asset_id: str | None = None) -> list[dict[str, Any]]:
        """Every stored object of a live (not deleted) asset with what the rules look at: the
        asset's status, tags, dates, hold and restore state. Objects in a move in flight are left out."""
        with self._tx() as cur:
            cur.execute(_OBJECTS_SQL, {"asset_id": asset_id})
            return [dict(r) for r in cur.fetchall()]

    # -- the mover's ledger ----------------------------------------------------------------------------

    def is_held(self, asset_id: str) -> bool:
        with self._tx() as cur:
            cur.execute("SELECT legal_hold FROM assets WHERE asset_id = %s", (asset_id,))
            row = cur.fetchone()
        return bool(row and row["legal_hold"])

    def journal_begin(self, entries: Sequence[dict[str, Any]]) -> None:
        from psycopg2.extras import execute_values

        with self._tx() as cur:
            execute_values(
                cur,
                "INSERT INTO lifecycle_journal (src_uri, dst_uri, asset_id, group_id, action, state, sha256,"
                " dst_tier, dst_class) VALUES %s"
                " ON CONFLICT (src_uri) DO UPDATE SET dst_uri = EXCLUDED.dst_uri,"
                " group_id = EXCLUDED.group_id,"
                " action = EXCLUDED.action, state = 'copying', sha256 = EXCLUDED.sha256,"
                " dst_tier = EXCLUDED.dst_tier, dst_class = EXCLUDED.dst_class, started_at = now()",
                list(entries),
                template="(%(src_uri)s, %(dst_uri)s, %(asset_id)s, %(group_id)s, %(action)s, 'copying',"
                " %(sha256)s, %(dst_tier)s, %(dst_class)s)",
                page_size=1000,
            )

    def journal_commit(
        self, asset_id: str, entries: Sequence[dict[str, Any]], detail: dict[str, Any]
    ) -> None:
        """The catalog half of a move group, in one transaction (see the module docstring)."""
        moves = [e for e in entries if e["action"] == "move"]
        deletes = [e["src_uri"] for e in entries if e["action"] == "delete"]
        with self._tx() as cur:
            cur.execute("SELECT legal_hold FROM assets WHERE asset_id = %s FOR UPDATE", (asset_id,))
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"no asset {asset_id} in the catalog: its objects are not moved")
            if row["legal_hold"]:
                raise LegalHoldError(f"asset {asset_id} was put under legal hold: its move is not committed")
            srcs = [e["src_uri"] for e in entries]
            cur.execute(
                "SELECT state, count(*) AS n FROM lifecycle_journal WHERE src_uri = ANY(%s)"
                " AND group_id = %s GROUP BY state",
                (srcs, entries[0]["group_id"]),
            )
            counts = {r["state"]: r["n"] for r in cur.fetchall()}
            if counts.get("committed") == len(entries):
                return  # committed by an earlier try of this task
            if counts.get("copying") != len(entries):
                raise CatalogError(f"the journal of asset {asset_id}'s move changed under it: not committed")
            if moves:
                src = [e["src_uri"] for e in moves]
                dst = [e["dst_uri"] for e in moves]
                cur.execute(
                    "UPDATE stored_objects o SET uri = m.dst, tier = m.tier, storage_class = m.cls,"
                    " sha256 = m.sha, written_at = now(), updated_at = now()"
                    " FROM unnest(%s::text[], %s::text[], %s::text[], %s::text[], %s::text[])"
                    " AS m(src, dst, tier, cls, sha) WHERE o.uri = m.src",
                    (
                        src,
                        dst,
                        [e["dst_tier"] for e in moves],
                        [e["dst_class"] for e in moves],
                        [e["sha256"] for e in moves],
                    ),
                )
                moved = _json(dict(zip(src, dst, strict=True)))
                asset_cols = [c for t, c in MOVED_REFERENCES if t == "assets"]
                cur.execute(  # column names from the constant above, URIs bound
                    "UPDATE assets SET "
                    + ", ".join(f"{c} = COALESCE(%(m)s::jsonb ->> {c}, {c})" for c in asset_cols)
                    + " WHERE asset_id = %(a)s",
                    {"m": moved, "a": asset_id},
                )
                for table, column in MOVED_REFERENCES:
                    if table != "assets":
                        cur.execute(
                            f"UPDATE {table} SET {column} = %(m)s::jsonb ->> {column}"
                            f" WHERE asset_id = %(a)s AND %(m)s::jsonb ? {column}",
                            {"m": moved, "a": asset_id},
                        )
            if deletes:
                self._drop_rows(cur, asset_id, deletes)
            cur.execute("UPDATE lifecycle_journal SET state = 'committed' WHERE src_uri = ANY(%s)", (srcs,))
            self._event(
                cur, asset_id, "lifecycle", detail={**detail, "moved": len(moves), "deleted": len(deletes)}
            )

    def _drop_rows(self, cur: RealDictCursor, asset_id: str, uris: list[str]) -> None:
        """Forget deleted objects: their stored_objects rows and whatever pointed at them (a dropped
        rendition's row and metrics; a dropped package's HLS/DASH URIs)."""
        cur.execute("DELETE FROM stored_objects WHERE uri = ANY(%s)", (uris,))
        cur.execute("DELETE FROM renditions WHERE asset_id = %s AND uri = ANY(%s)", (asset_id, uris))
        cur.execute("DELETE FROM derived_outputs WHERE asset_id = %s AND uri = ANY(%s)", (asset_id, uris))
        cur.execute(
            "UPDATE scenes SET keyframe_uri = NULL WHERE asset_id = %s AND keyframe_uri = ANY(%s)",
            (asset_id, uris),
        )
        for column in ("hls_uri", "dash_uri", "captions_uri", "chapters_uri"):  # constant names
            cur.execute(
                f"UPDATE assets SET {column} = NULL, updated_at = now()"
                f" WHERE asset_id = %s AND {column} = ANY(%s)",
                (asset_id, uris),
            )

    def journal_finish(self, src_uris: Sequence[str]) -> None:
        with self._tx() as cur:
            cur.execute("DELETE FROM lifecycle_journal WHERE src_uri = ANY(%s)", (list(src_uris),))

    def journal_pending(self) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute("SELECT * FROM lifecycle_journal ORDER BY group_id, src_uri")
            return [dict(r) for r in cur.fetchall()]

    def referenced_uris(self, uris: Sequence[str]) -> set[str]:
        """Which of ``uris`` a catalog row points at."""
        uris = list(uris)
        if not uris:
            return set()
        union = " UNION ".join(  # names from the constant above, URIs bound
            f"SELECT {c} AS uri FROM {t} WHERE {c} = ANY(%(u)s)"
            for t, c in (("stored_objects", "uri"), *MOVED_REFERENCES)
        )
        with self._tx() as cur:
            cur.execute(union, {"u": uris})
            return {r["uri"] for r in cur.fetchall()}

    # -- legal hold ----------------------------------------------------------------------------------

    def set_hold(self, asset_id: str, reason: str, *, actor: str | None = None) -> dict[str, Any]:
        """Put the asset under legal hold: nothing moves or deletes it until :meth:`release_hold`."""
        if not reason or not reason.strip():
            raise CatalogError("a legal hold needs a reason (--reason TEXT)")
        with self._tx() as cur:
            cur.execute(
                "UPDATE assets SET legal_hold = true, hold_reason = %s, held_at = now(), updated_at = now()"
                " WHERE asset_id = %s RETURNING asset_id, legal_hold, hold_reason, held_at",
                (reason, asset_id),
            )
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            self._event(cur, asset_id, "hold", detail={"reason": reason}, actor=actor)
        return dict(row)

    def release_hold(self, asset_id: str, *, actor: str | None = None) -> dict[str, Any]:
        with self._tx() as cur:
            cur.execute(
                "SELECT legal_hold, hold_reason FROM assets WHERE asset_id = %s FOR UPDATE", (asset_id,)
            )
            before = cur.fetchone()
            if before is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            cur.execute(
                "UPDATE assets SET legal_hold = false, hold_reason = NULL, held_at = NULL, updated_at = now()"
                " WHERE asset_id = %s",
                (asset_id,),
            )
            detail = {"was_held": before["legal_hold"], "reason": before["hold_reason"]}
            self._event(cur, asset_id, "release", detail=detail, actor=actor)
        return {"asset_id": asset_id, "legal_hold": False}

    # -- restores ------------------------------------------------------------------------------------

    def restore_state(self, asset_id: str) -> dict[str, Any] | None:
        with self._tx() as cur:
            cur.execute("SELECT * FROM asset_restores WHERE asset_id = %s", (asset_id,))
            row = cur.fetchone()
        return dict(row) if row else None

    def set_restore(
        self,
        asset_id: str,
        state: str,
        *,
        days: int,
        restored_from: str | None = None,
        expires_at: dt.datetime | None = None,
        detail: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Record the asset's restore in ``state`` (one row per asset) and the audit event."""
        with self._tx() as cur:
            cur.execute(
                "INSERT INTO asset_restores AS r (asset_id, state, days, restored_from, expires_at,"
                " restored_at, detail)"
                " VALUES (%s, %s, %s, %s, %s, CASE WHEN %s = 'restored' THEN now() END, %s)"
                " ON CONFLICT (asset_id) DO UPDATE SET state = EXCLUDED.state, days = EXCLUDED.days,"
                " restored_from = COALESCE(EXCLUDED.restored_from, r.restored_from),"
                " expires_at = EXCLUDED.expires_at,"
                " restored_at = CASE WHEN EXCLUDED.state = 'restored' THEN now() ELSE r.restored_at END,"
                " requested_at = CASE WHEN EXCLUDED.state = 'requested' THEN now() ELSE r.requested_at END,"
                " detail = EXCLUDED.detail RETURNING *",
                (asset_id, state, days, restored_from, expires_at, state, _json(detail or {})),
            )
            row = dict(cur.fetchone())
            self._event(
                cur, asset_id, "restore",
                detail={"state": state, "days": days, "restored_from": row["restored_from"],
                        "expires_at": expires_at.isoformat() if expires_at else None, **(detail or {})},
            )  # fmt: skip
        return row

    def restores(self, states: Sequence[str]) -> list[dict[str, Any]]:
        with self._tx() as cur:
            cur.execute(
                "SELECT * FROM asset_restores WHERE state = ANY(%s) ORDER BY asset_id", (list(states),)
            )
            return [dict(r) for r in cur.fetchall()]

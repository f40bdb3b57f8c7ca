"""Retention steps: soft delete, undelete, and the purge of assets whose grace period has ended.

``vam delete ASSET`` marks the asset deleted (it leaves search at once); ``vam undelete ASSET``
brings it back within the grace period (setting ``delete_grace_days``, default 7). The purge (the
daily ``vam_purge`` DAG, or ``vam purge``) then, per due asset: reads what storage holds of it, drops
its catalog rows in one transaction that queues those objects for deletion and writes the ``purged``
audit event, and deletes the queued objects. A crash anywhere leaves the queue, which the next purge
drains first. A held asset is refused by the catalog under its row lock, whatever the caller.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from vam import storage
from vam.catalog import Catalog
from vam.errors import CatalogError, LegalHoldError, StorageError
from vam.runtime import Runtime

log = logging.getLogger(__name__)

THREADS = 8  # storage requests in flight (HEAD, DELETE): they wait on the network, not the CPU
BATCH = 500  # queued deletions per catalog transaction


def delete_asset(
    rt: Runtime,
    asset_id: str,
    *,
    grace_days: float | None = None,
    reason: str | None = None,
    actor: str = "vam",
    now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Soft-delete the asset; returns ``{"asset_id", "deleted_at", "purge_after", "already_deleted"}``."""
    days = rt.settings.delete_grace_days if grace_days is None else grace_days
    if days < 0:
        raise CatalogError(f"the grace period must be 0 days or more, got {days}")
    with rt.catalog(actor=actor) as cat:
        return cat.soft_delete(asset_id, grace=dt.timedelta(days=days), reason=reason, now=now)


def undelete_asset(
    rt: Runtime, asset_id: str, *, actor: str = "vam", now: dt.datetime | None = None
) -> dict[str, Any]:
    """Undo a soft delete within the grace period."""
    with rt.catalog(actor=actor) as cat:
        return cat.undelete(asset_id, now=now)


def _present(uri: str, kind: str, recorded_etag: str | None) -> dict[str, Any] | None:
    """What storage holds at ``uri`` now (``{"uri", "size_bytes", "etag"}``), or None: missing, or a
    source key that was overwritten with other bytes since (not this asset's any more)."""
    try:
        info = storage.store_for(uri).head(uri)
    except StorageError:
        return None
    if kind == "source_key" and recorded_etag and info.etag and info.etag != recorded_etag:
        log.info("%s changed since the asset was seen there: left alone", uri)
        return None
    return {"uri": uri, "size_bytes": info.size, "etag": info.etag}


def _delete_if_unchanged(row: dict[str, Any], pointed_at: bool, checked: bool = False) -> str:
    """Storage's half of a queued deletion: ``deleted``, ``missing`` (already gone), ``referenced``
    or ``changed`` (both left in place). ``checked``: the object was read moments ago by this run
    and only vam writes its key, so it is deleted without reading it again."""
    if pointed_at:
        return "referenced"
    uri = row["uri"]
    store = storage.store_for(uri)
    if checked:
        store.delete(uri)
        return "deleted"
    try:
        info = store.head(uri)
    except StorageError:
        return "missing"
    if (row.get("size_bytes") is not None and info.size != row["size_bytes"]) or (
        row.get("etag") and info.etag and info.etag != row["etag"]
    ):
        log.warning("%s changed since it was queued for deletion: left in place", uri)
        return "changed"
    store.delete(uri)
    return "deleted"


def delete_queued(cat: Catalog, row: dict[str, Any]) -> str:
    """Delete one queued object (a ``pending_deletes`` row) if nothing in the catalog points at it
    again and storage still holds what was queued; then forget the row. Returns the outcome:
    ``deleted``, ``missing`` (already gone), ``referenced`` or ``changed`` (both left in place)."""
    outcome = _delete_if_unchanged(row, cat.is_pointed_at(row["uri"]))
    cat.finish_pending([row], [outcome])
    log.info("queued deletion of %s: %s", row["uri"], outcome)
    return outcome


def drain(
    rt: Runtime, *, actor: str = "vam_purge", threads: int = THREADS, checked: frozenset[str] = frozenset()
) -> dict[str, int]:
    """Finish every queued object deletion (left by an interrupted purge or dedup), ``threads``
    objects at a time, a batch of rows per catalog transaction. Objects in ``checked`` (read by
    this run just before it queued them, under an asset's own output prefix) are not read again."""
    counts = {"deleted": 0, "missing": 0, "referenced": 0, "changed": 0}
    with rt.catalog(actor=actor) as cat, ThreadPoolExecutor(threads) as pool:
        while rows := cat.pending_deletes(limit=BATCH):
            pointed = cat.pointed_at([r["uri"] for r in rows])
            outcomes = list(
                pool.map(
                    _delete_if_unchanged,
                    rows,
                    [r["uri"] in pointed for r in rows],
                    [r["uri"] in checked for r in rows],
                )
            )
            cat.finish_pending(rows, outcomes)
            for outcome in outcomes:
                counts[outcome] += 1
    return counts


def _remove_empty_folders(prefix: str) -> None:
    """On file:// the purged asset's output folders stay behind empty: remove them (folders still
    holding a file, e.g. a copy another asset uses after a dedup, stay)."""
    root = storage.store_for(prefix).local_path(prefix)
    if root is None or not root.is_dir():
        return
    for folder in sorted(
        (p for p in root.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True
    ):
        with contextlib.suppress(OSError):
            folder.rmdir()
    with contextlib.suppress(OSError):
        root.rmdir()


def purge(
    rt: Runtime, *, now: dt.datetime | None = None, limit: int = 1000, actor: str = "vam_purge"
) -> dict[str, Any]:
    """Purge every deleted asset whose grace period has ended (at ``now``, default the database's
    clock). Returns ``{"purged": [ids], "refused": [{"asset_id", "reason"}], "bytes", "objects":
    {outcome: n}}``; a held asset is refused, and one with a lifecycle move in flight waits."""
    before = drain(rt, actor=actor)
    purged, refused, nbytes = [], [], 0
    owned: set[str] = set()  # queued outputs of purged assets, read moments ago
    with rt.catalog(actor=actor) as cat, ThreadPoolExecutor(THREADS) as pool:
        for asset_id in cat.due_purges(now=now, limit=limit):
            targets = cat.purge_targets(asset_id)
            # one listing of the asset's own output prefix answers for the objects there (strays
            # no row names included); the others (sources, moved copies) are read one by one
            outputs = rt.output_uri(asset_id) + "/"
            present = [
                {"uri": o.uri, "size_bytes": o.size, "etag": o.etag}
                for o in storage.store_for(outputs).list(outputs)
            ]
            listed = {p["uri"] for p in present}
            outside = [t for t in targets if t["uri"] not in listed]
            heads = pool.map(lambda t: _present(t["uri"], t["kind"], t.get("etag")), outside)
            present += [p for p in heads if p]
            try:
                done = cat.purge_asset(asset_id, present, now=now)
            except (LegalHoldError, CatalogError) as exc:
                log.warning("purge of %s refused: %s", asset_id, exc)
                refused.append({"asset_id": asset_id, "reason": str(exc)})
                cat.add_event(asset_id, "purge_refused", reason=str(exc))
                continue
            purged.append(asset_id)
            owned.update(u for u in done["queued"] if u.startswith(outputs))
            nbytes += done["bytes"]
    after = drain(rt, actor=actor, checked=frozenset(owned))
    for asset_id in purged:
        _remove_empty_folders(rt.output_uri(asset_id) + "/")
    objects = {k: before[k] + after[k] for k in after}
    log.info("purge: %d assets, %d bytes; %d refused; objects %s", len(purged), nbytes, len(refused), objects)
    return {"purged": purged, "refused": refused, "bytes": nbytes, "objects": objects}

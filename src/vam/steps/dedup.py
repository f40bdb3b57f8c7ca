"""Dedup: report identical bytes stored more than once, and (``apply``) keep one copy of each.

The report groups every copy whose SHA-256 another copy shares (stored objects with a recorded
SHA-256 and the other keys a source was seen under that still exist) with the catalog references of
each copy (see :mod:`vam.lifecycle.dedup` for which copy is kept and which may go). Applying it, per
group: the kept copy is hashed and must match; each copy to remove is hashed and must match too (a
copy whose bytes changed is not a duplicate); then one catalog transaction re-points every reference
of the copy to the kept one and queues the copy for deletion, and storage deletes it. The last copy
is never removed: a group whose kept copy does not verify is left whole.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from vam import storage
from vam.errors import CatalogError, StorageError
from vam.lifecycle.dedup import plan_dedup, summarize
from vam.runtime import Runtime
from vam.steps.retention import delete_queued, drain

log = logging.getLogger(__name__)


def _stamp(now: dt.datetime | None = None) -> str:
    return (now or dt.datetime.now(dt.UTC)).strftime("%Y%m%dT%H%M%SZ")


def dedup_plan(rt: Runtime):  # -> pandas.DataFrame
    """The dedup plan: one row per copy (see :func:`vam.lifecycle.dedup.plan_dedup`). Source keys
    whose object no longer exists are left out."""
    with rt.catalog() as cat:
        copies = cat.duplicate_candidates()
        present = []
        for c in copies:
            if c["kind"] == "source_key":
                try:
                    info = storage.store_for(c["uri"]).head(c["uri"])
                except StorageError:
                    continue
                c = {**c, "size_bytes": info.size}
            present.append(c)
        refs = cat.references([c["uri"] for c in present])
    return plan_dedup(present, {uri: len(rows) for uri, rows in refs.items()})


def _verified(uri: str, sha256: str) -> tuple[bool, str | None]:
    try:
        etag = storage.store_for(uri).head(uri).etag
        digest, _ = storage.hash_object(uri)
    except StorageError as exc:
        log.warning("dedup: cannot read %s: %s", uri, exc)
        return False, None
    return digest == sha256, etag


def dedup(
    rt: Runtime, *, apply: bool = False, actor: str = "vam_dedup", write: bool = True
) -> dict[str, Any]:
    """The dedup report (``{"groups", "copies", "redundant_copies", "reclaimable_bytes", "items",
    "csv_uri"}``) and, with ``apply``, what was done: ``removed`` (URIs), ``reclaimed_bytes`` and
    ``skipped`` (``{"uri", "why"}``)."""
    drain(rt, actor=actor)
    plan = dedup_plan(rt)
    report: dict[str, Any] = summarize(plan)
    if write:
        uri = rt.output_uri("_reports", "dedup", _stamp(), "dedup.csv")
        storage.store_for(uri).put_bytes(plan.to_csv(index=False).encode(), uri, content_type="text/csv")
        report["csv_uri"] = uri
    if not apply:
        return report
    removed: list[str] = []
    skipped: list[dict[str, str]] = []
    reclaimed = 0
    with rt.catalog(actor=actor) as cat:
        for sha256, group in plan.groupby("sha256", sort=True):
            keep = group.loc[group["action"] == "keep"].iloc[0]
            victims = group[group["action"] == "remove"]
            if victims.empty:
                continue
            if keep["kind"] == "source_key":
                skipped.append({"uri": keep["uri"], "why": "the copy to keep is not a stored object"})
                continue
            ok, _ = _verified(keep["uri"], sha256)
            if not ok:
                skipped.append({"uri": keep["uri"], "why": "the copy to keep does not match its SHA-256"})
                log.error(
                    "dedup: %s does not match its recorded SHA-256 %s: group left whole", keep["uri"], sha256
                )
                continue
            for victim in victims.itertuples():
                ok, etag = _verified(victim.uri, sha256)
                if not ok:
                    skipped.append({"uri": victim.uri, "why": "its bytes are not the group's any more"})
                    continue
                try:
                    cat.repoint(victim.uri, keep["uri"], sha256=sha256, etag=etag)
                except CatalogError as exc:
                    skipped.append({"uri": victim.uri, "why": str(exc)})
                    continue
                row = {"uri": victim.uri, "asset_id": victim.asset_id, "reason": "dedup",
                       "size_bytes": None, "etag": etag}  # fmt: skip
                outcome = delete_queued(cat, row)
                if outcome in ("deleted", "missing"):
                    removed.append(victim.uri)
                    reclaimed += int(victim.size_bytes or 0)
                else:
                    skipped.append({"uri": victim.uri, "why": outcome})
    log.info(
        "dedup applied: %d copies removed, %d bytes reclaimed, %d skipped",
        len(removed),
        reclaimed,
        len(skipped),
    )
    return {**report, "removed": removed, "reclaimed_bytes": reclaimed, "skipped": skipped}

"""The end of every run: failures recorded against the asset, no asset left non-terminal, nothing
of a failed run left behind, and the asset free for the next run."""

from __future__ import annotations

import logging
from typing import Any

from vam import storage
from vam.catalog import TERMINAL_STATUSES
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def record_failure(rt: Runtime, asset_id: str, step: str, exc: BaseException) -> None:
    """Remember why a step failed (an attempt; it may be retried), for :func:`finalize`."""
    with rt.catalog() as cat:
        cat.add_event(asset_id, "step_failed", step=step, error=f"{type(exc).__name__}: {exc}"[:2000])


def finalize(rt: Runtime, asset_id: str, *, run_id: str | None = None) -> dict[str, Any]:
    """The last step of every run, whatever happened before: an asset still non-terminal is marked
    ``failed`` with the last recorded step failure as its reason; a failed asset's outputs
    (renditions, segments, staged manifests, quality logs, enrichment files) are deleted, so a
    failed run publishes nothing and leaves no orphans; ``run_id`` releases the asset."""
    with rt.catalog() as cat:
        current = cat.get_asset(asset_id)
        holder = current.get("run_id")
        if run_id and holder and holder != run_id:
            # another run took the asset over (force): its outcome is its own to write
            log.warning("asset %s is held by run %s, not %s: leaving it alone", asset_id, holder, run_id)
            return {"asset_id": asset_id, "status": current["status"], "reason": current["reason"]}
        if current["status"] not in TERMINAL_STATUSES:
            last = cat.last_event(asset_id, "step_failed")
            reason = (
                f"{last['detail']['step']} failed: {last['detail']['error']}"
                if last
                else "the run ended before the asset was published (a step was killed or skipped)"
            )
            cat.set_status(asset_id, "failed", reason)
            current = cat.get_asset(asset_id)
    if current["status"] == "failed":
        discard_outputs(rt, asset_id)
    if run_id:
        with rt.catalog() as cat:
            cat.release_run(asset_id, run_id)
    return {"asset_id": asset_id, "status": current["status"], "reason": current["reason"]}


def discard_outputs(rt: Runtime, asset_id: str) -> int:
    """Delete every object under the asset's output prefix and forget them in the catalog (the
    source and its quarantine copy live elsewhere and are never touched)."""
    prefix = rt.output_uri(asset_id) + "/"
    deleted = storage.delete_prefix(prefix)
    with rt.catalog() as cat:
        cat.forget_outputs(asset_id, prefix)
    if deleted:
        log.info("asset %s failed: deleted its %d output objects under %s", asset_id, deleted, prefix)
    return deleted

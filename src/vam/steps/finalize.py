"""The end of every run: failures recorded against the asset, no asset left non-terminal."""

from __future__ import annotations

import logging
from typing import Any

from vam.catalog import TERMINAL_STATUSES
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def record_failure(rt: Runtime, asset_id: str, step: str, exc: BaseException) -> None:
    """Remember why a step failed (an attempt; it may be retried), for :func:`finalize`."""
    with rt.catalog() as cat:
        cat.add_event(asset_id, "step_failed", step=step, error=f"{type(exc).__name__}: {exc}"[:2000])


def finalize(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """The last step of every run, whatever happened before: an asset still non-terminal is marked
    ``failed`` with the last recorded step failure as its reason."""
    with rt.catalog() as cat:
        current = cat.get_asset(asset_id)
        if current["status"] not in TERMINAL_STATUSES:
            last = cat.last_event(asset_id, "step_failed")
            reason = (
                f"{last['detail']['step']} failed: {last['detail']['error']}"
                if last
                else "the run ended before the asset was published (a step was killed or skipped)"
            )
            cat.set_status(asset_id, "failed", reason)
            current = cat.get_asset(asset_id)
    return {"asset_id": asset_id, "status": current["status"], "reason": current["reason"]}

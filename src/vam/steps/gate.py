"""The quality gate of one asset's ladder: a Great Expectations suite over the metrics table."""

from __future__ import annotations

import logging
from typing import Any

from vam.errors import QualityGateFailed
from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)


def quality_gate(rt: Runtime, asset_id: str, results: list[dict[str, Any]]) -> dict[str, Any]:
    """Run the suite over the quality steps' ``results``; a failure fails the asset (permanently:
    :class:`~vam.errors.QualityGateFailed`)."""
    from vam.media.gate import metrics_table, run_gate

    if not results:
        raise QualityGateFailed(f"asset {asset_id}: no renditions were measured")
    first = results[0]
    prof = rt.pinned_profile(first["profile_key"], first["profile_sha256"])
    meta = source_meta(load_asset(rt, asset_id))
    rows = metrics_table(
        [_null_scores_to_zero(r) for r in results],
        source_frame_count=meta.frame_count,
        source_duration=meta.duration,
    )
    report = run_gate(rows, prof)
    with rt.catalog() as cat:
        cat.add_event(asset_id, "quality_gate", success=report.success, failures=report.failures)
        if not report.success:
            reason = f"quality gate failed: {report.message}"
            cat.set_status(asset_id, "failed", reason, expect=("processing",))
            raise QualityGateFailed(reason)
    return {"success": True, "renditions": [r["rendition"] for r in rows]}


def _null_scores_to_zero(result: dict[str, Any]) -> dict[str, Any]:
    """A rendition that does not decode has no scores; it scores 0 so every floor catches it."""
    out = dict(result)
    for metric in ("vmaf", "ssim", "psnr"):
        if out[metric]["mean"] is None:
            out[metric] = {"mean": 0.0, "min": 0.0, "harmonic_mean": 0.0}
    return out

"""One asset through every step in this process, in the order of the ``vam_process`` DAG.

For flows that process many sources inside one task (the archive ingest's batches), where a DAG
run per source would be the wrong unit. Same steps, same catalog, same failure semantics as the
DAG: a permanent failure ends the asset ``rejected`` or ``failed`` with its reason, anything else
is recorded and the asset ``failed`` by :func:`vam.steps.finalize.finalize`, which always runs.
"""

from __future__ import annotations

import logging
from typing import Any

from vam.runtime import Runtime
from vam.steps import enrich, finalize, gate, package, plan, probe, publish, quality, register, transcode

log = logging.getLogger(__name__)


def process_source(
    rt: Runtime,
    source: str,
    *,
    profile: str | None = None,
    tags: dict[str, Any] | None = None,
    force: bool = False,
    run_id: str | None = None,
    landing: str | None = None,
) -> dict[str, Any]:
    """Register and process ``source``; returns ``{"asset_id", "source_uri", "status", "reason",
    "created", "processed"}`` (``processed`` False: the catalog answered, e.g. a duplicate)."""
    run_id = run_id or rt.run_id
    registered = register.register(
        rt, source, tags=tags, profile=profile, force=force, run_id=run_id, landing=landing
    )
    asset_id = registered["asset_id"]
    outcome = {
        "asset_id": asset_id,
        "source_uri": registered["source_uri"],
        "created": registered["created"],
        "processed": registered["process"],
    }
    if not registered["process"]:
        return {**outcome, "status": registered["status"], "reason": registered.get("reason")}
    step = "probe"
    try:
        probe.probe(rt, asset_id, profile)
        step = "tags"
        enrich.tags(rt, asset_id, tags)
        step = "plan"
        planned = plan.plan(rt, asset_id, profile)
        step = "transcode"
        groups = [planned] if plan.encode_grouping(rt, profile) == "ladder" else [[r] for r in planned]
        renditions = [r for group in groups for r in transcode.transcode_group(rt, asset_id, group)]
        step = "quality"
        measured = [quality.record(rt, asset_id, r) for r in quality.score(rt, asset_id, renditions)]
        step = "quality_gate"
        gate.quality_gate(rt, asset_id, measured)
        step = "transcript"
        speech = enrich.transcript(rt, asset_id)
        step = "scenes"
        shots = enrich.scenes(rt, asset_id)
        step = "labels"
        enrich.labels(rt, asset_id, shots)
        step = "moderation"
        enrich.moderation(rt, asset_id, shots)
        step = "package"
        packaged = package.package(rt, asset_id, renditions, speech)
        step = "publish"
        publish.publish(rt, asset_id, packaged, speech, shots)
    except Exception as exc:  # recorded; finalize turns it into the asset's outcome
        log.warning("asset %s: %s failed: %s", asset_id, step, exc)
        finalize.record_failure(rt, asset_id, step, exc)
    done = finalize.finalize(rt, asset_id, run_id=run_id)
    return {**outcome, "status": done["status"], "reason": done["reason"]}

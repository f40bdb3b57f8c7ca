"""Per-title analysis of one asset: pick samples, try each candidate size, choose the ladder.

Three steps, each its own task in ``vam_process`` (:mod:`vam.media.per_title` does the work):

* :func:`candidates` (one task): picks the samples from the source's packets (nothing decoded)
  and returns one item per candidate size, to map over; for a profile without ``per_title`` it
  returns one item saying the ladder is fixed, so the mapping still has something to run (a no-op).
* :func:`trial` (one task per size): encodes the samples at every trial CRF and scores them;
  the points go to the catalog (``ladder_trials``) and back through XCom (a few numbers).
* :func:`choose` (called by :func:`vam.steps.plan.plan` with the trials): the convex hull and the
  rungs, recorded in the catalog (``ladder_analyses``) with a PNG of the hull stored with the asset.
"""

from __future__ import annotations

import logging
import shutil
import time
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)

FIXED = "fixed ladder"
CHART_NAME = "ladder_hull.png"


def candidates(rt: Runtime, asset_id: str, profile: str | None = None) -> list[dict[str, Any]]:
    """One item per candidate size to try (``{"name": "720p", "height", "samples", "profile_key",
    "profile_sha256"}``), or ``[{"name": "fixed ladder", "fixed": True}]`` for a fixed profile."""
    from vam.media.per_title import candidate_heights, choose_samples, packet_scan

    prof = rt.profile(profile)
    if prof.per_title is None:
        log.info("profile %s has a fixed ladder: no per-title analysis", prof.key)
        return [{"name": FIXED, "fixed": True}]
    asset = load_asset(rt, asset_id)
    info = source_meta(asset)
    started = time.monotonic()
    packets = packet_scan(rt.source_file(asset))
    duration = float(info.video_duration or info.duration)
    samples = choose_samples(
        packets, duration, count=prof.per_title.samples, seconds=prof.per_title.sample_seconds
    )
    heights = candidate_heights(info, prof.per_title)
    with rt.catalog() as cat:
        sha256 = cat.pin_profile(prof.key, prof.name, str(prof.version), prof.to_dict())
        cat.clear_ladder_trials(asset_id, prof.key, [f"{h}p" for h in heights])
    log.info(
        "per-title %s: samples %s (scan %.1f s); sizes %s",
        asset_id, samples, time.monotonic() - started, heights,
    )  # fmt: skip
    return [
        {
            "name": f"{h}p",
            "height": h,
            "samples": samples,
            "scan_seconds": round(time.monotonic() - started, 3),
            "profile_key": prof.key,
            "profile_sha256": sha256,
        }
        for h in heights
    ]


def trial(rt: Runtime, asset_id: str, candidate: dict[str, Any]) -> dict[str, Any]:
    """Trial encodes of the samples at one size, scored; recorded and returned (points only)."""
    from vam.media.per_title import run_trial

    if candidate.get("fixed"):
        return {"name": FIXED, "fixed": True, "points": []}
    prof = rt.pinned_profile(candidate["profile_key"], candidate["profile_sha256"])
    asset = load_asset(rt, asset_id)
    started = time.monotonic()
    result = run_trial(
        rt.source_file(asset),
        source_meta(asset),
        prof,
        candidate["samples"],
        int(candidate["height"]),
        threads=rt.settings.ffmpeg_threads,
    )
    seconds = round(time.monotonic() - started, 3)
    with rt.catalog() as cat:
        cat.upsert_ladder_trial(
            asset_id,
            prof.key,
            candidate["name"],
            height=int(candidate["height"]),
            samples=candidate["samples"],
            points=result["points"],
            seconds=seconds,
        )
    return {
        **result,
        "name": candidate["name"],
        "samples": candidate["samples"],
        "scan_seconds": candidate.get("scan_seconds"),
        "seconds": seconds,
        "profile_key": candidate["profile_key"],
        "profile_sha256": candidate["profile_sha256"],
    }


def choose(rt: Runtime, asset_id: str, prof: Any, info: Any, trials: list[dict[str, Any]]) -> dict[str, Any]:
    """The ladder from ``trials`` (see :func:`vam.media.per_title.choose_ladder`), recorded with its
    hull chart; returns the analysis as the catalog holds it."""
    from vam.media.per_title import choose_ladder, hull_chart

    trials = [t for t in trials if t and not t.get("fixed")]
    analysis = choose_ladder(trials, prof, info)
    analysis["samples"] = trials[0].get("samples", []) if trials else []
    analysis["analysis_seconds"] = round(
        sum(float(t.get("seconds") or 0.0) for t in trials) + float(trials[0].get("scan_seconds") or 0.0), 3
    )
    analysis["trial_seconds"] = {t["name"]: t.get("seconds") for t in trials}
    work = rt.fresh_work(asset_id, "ladder")
    chart = hull_chart(analysis, work / CHART_NAME, title=f"{asset_id} {prof.key}")
    uri = rt.output_uri(asset_id, prof.key, CHART_NAME)
    storage.store_for(uri).put(chart, uri, content_type="image/png")
    sha256 = storage.sha256_file(chart)
    with rt.catalog() as cat:
        cat.record_object(
            uri, asset_id=asset_id, kind="ladder_chart", size_bytes=chart.stat().st_size, sha256=sha256
        )
        cat.set_ladder_analysis(asset_id, prof.key, analysis, uri)
    shutil.rmtree(work, ignore_errors=True)
    for rung in analysis["rungs"]:
        log.info("%s: %s", rung["name"], rung["reason"])
    for rung in analysis["dropped"]:
        log.info("%s dropped: %s", rung["name"], rung["reason"])
    return {**analysis, "chart_uri": uri}

"""Plan the ladder of one asset and pin the exact profile version its run uses."""

from __future__ import annotations

import logging
from typing import Any

from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)


def plan(
    rt: Runtime, asset_id: str, profile: str | None = None, analysis: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """The renditions to encode: the profile's ladder fitted to the source (never upscaled).

    The profile (``profile`` or the default) is read once, here: its definition is pinned in the
    catalog and every rendition dict carries ``profile_key`` (name@version) and ``profile_sha256``, with
    which every later step of the run reads that exact definition back.

    A per-title profile (a ``per_title:`` section) gets the ladder its analysis chose: ``analysis``
    is the list of :func:`vam.steps.ladder_analysis.trial` results (the DAG's mapped trial tasks);
    without it (a direct call) the analysis runs here, one size after the other.
    """
    from vam.media.ladder import plan_ladder
    from vam.media.per_title import ladder_plans
    from vam.steps import ladder_analysis

    asset = load_asset(rt, asset_id)
    prof = rt.profile(profile)
    info = source_meta(asset)
    if prof.per_title is not None:
        trials = [t for t in (analysis or []) if t and not t.get("fixed")]
        if not trials:
            items = ladder_analysis.candidates(rt, asset_id, profile)
            trials = [ladder_analysis.trial(rt, asset_id, item) for item in items]
        prof = rt.pinned_profile(trials[0]["profile_key"], trials[0]["profile_sha256"])
        chosen = ladder_analysis.choose(rt, asset_id, prof, info, trials)
        plans = ladder_plans(chosen, prof, info)
    else:
        plans = plan_ladder(info, prof)
    with rt.catalog() as cat:
        sha256 = cat.pin_profile(prof.key, prof.name, str(prof.version), prof.to_dict())
        cat.update_asset(asset_id, profile=prof.key)
        cat.prune_renditions(asset_id, prof.key, [p.name for p in plans])
    log.info("ladder for %s with %s: %s", asset_id, prof.key, ", ".join(p.name for p in plans))
    return [{**p.to_dict(), "profile_key": prof.key, "profile_sha256": sha256} for p in plans]


def encode_grouping(rt: Runtime, profile: str | None = None) -> str:
    """``rendition`` or ``ladder``: the profile's ``encode_grouping``, else the deployment's
    ``VAM_ENCODE_GROUPING``."""
    from vam.errors import VamError
    from vam.media.grouped import GROUPINGS

    grouping = rt.profile(profile).encode_grouping or rt.settings.encode_grouping
    if grouping not in GROUPINGS:
        raise VamError(
            f"encode_grouping {grouping!r} is not one of {', '.join(GROUPINGS)}; fix VAM_ENCODE_GROUPING"
        )
    return grouping


def plan_groups(
    rt: Runtime, asset_id: str, profile: str | None = None, analysis: list[dict[str, Any]] | None = None
) -> list[list[dict[str, Any]]]:
    """:func:`plan`'s renditions grouped for the transcode tasks: one group per rendition
    (``encode_grouping: rendition``) or one group with the whole ladder (``ladder``: one task
    decodes the source once for every rung, :func:`vam.steps.transcode.transcode_group`)."""
    renditions = plan(rt, asset_id, profile, analysis)
    if encode_grouping(rt, profile) == "ladder":
        return [renditions]
    return [[r] for r in renditions]

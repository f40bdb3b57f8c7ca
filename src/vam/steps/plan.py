"""Plan the ladder of one asset and pin the exact profile version its run uses."""

from __future__ import annotations

import logging
from typing import Any

from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)


def plan(rt: Runtime, asset_id: str, profile: str | None = None) -> list[dict[str, Any]]:
    """The renditions to encode: the profile's ladder fitted to the source (never upscaled).

    The profile (``profile`` or the default) is read once, here: its definition is pinned in the
    catalog and every rendition dict carries ``profile_key`` (name@version) and ``profile_sha256``, with
    which every later step of the run reads that exact definition back.
    """
    from vam.media.ladder import plan_ladder

    asset = load_asset(rt, asset_id)
    prof = rt.profile(profile)
    plans = plan_ladder(source_meta(asset), prof)
    with rt.catalog() as cat:
        sha256 = cat.pin_profile(prof.key, prof.name, str(prof.version), prof.to_dict())
        cat.update_asset(asset_id, profile=prof.key)
        cat.prune_renditions(asset_id, prof.key, [p.name for p in plans])
    log.info("ladder for %s with %s: %s", asset_id, prof.key, ", ".join(p.name for p in plans))
    return [{**p.to_dict(), "profile_key": prof.key, "profile_sha256": sha256} for p in plans]

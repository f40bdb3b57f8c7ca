"""Register a source: hash its bytes, create (or find) its asset, and decide whether this run
processes it.

One asset has one run in flight at a time: the run that registers it holds it until its finalize
step (see ``Catalog.claim_run``). A second request for the same bytes waits for the first run and
answers with its outcome. Bytes the catalog already has ready (with the same profile) or rejected
are answered from the catalog too, without re-running anything, unless the caller asks for a
re-run (``force``). Metadata that came with the source (a sidecar file, the run's tags) is
validated here, before any encode: invalid metadata rejects the asset at once.
"""

from __future__ import annotations

import logging
import time
from pathlib import PurePosixPath
from typing import Any

from vam import storage
from vam.errors import PermanentFailure, RejectedInput, VamError
from vam.runtime import Runtime

log = logging.getLogger(__name__)

LEASE_SECONDS = 12 * 3600  # a run that died without finalize frees its asset after this
POLL_SECONDS = 2.0


def register(
    rt: Runtime,
    source: str,
    *,
    title: str | None = None,
    tags: dict[str, Any] | None = None,
    profile: str | None = None,
    force: bool = False,
    run_id: str | None = None,
    landing: str | None = None,
) -> dict[str, Any]:
    """Hash the source and create (or find) its asset. Same bytes, same asset.

    Returns ``{"asset_id", "source_uri", "sha256", "size_bytes", "created", "process", "status",
    "reason"}``: ``process`` False means the run has nothing more to do, its outcome is the asset's in
    the catalog (``status``, ``reason``): answered from the catalog, or rejected here for invalid
    metadata (``rejected_now``).
    """
    uri = storage.to_uri(source)
    info = storage.store_for(uri).head(uri)
    sha256 = storage.sha256_object(uri)
    run_id = run_id or rt.run_id
    with rt.catalog() as cat:
        asset_id, created = cat.register_asset(
            sha256=sha256,
            source_uri=uri,
            size_bytes=info.size,
            title=title or PurePosixPath(uri).name,
            etag=info.etag,
        )
        if created:
            cat.record_object(uri, asset_id=asset_id, kind="source", size_bytes=info.size, sha256=sha256)
            if landing:  # where it came from
                cat.update_asset(asset_id, landing_uri=landing)
    result = {
        "asset_id": asset_id,
        "source_uri": uri,
        "sha256": sha256,
        "size_bytes": info.size,
        "created": created,
    }
    waited = _claim(rt, asset_id, run_id, force=force)
    with rt.catalog() as cat:
        current = cat.get_asset(asset_id)
        answer = not created and not force and (waited or _settled(rt, current, profile))
        if answer:
            cat.release_run(asset_id, run_id)
            log.info(
                "%s is asset %s, already %s: answered from the catalog", uri, asset_id, current["status"]
            )
            return {**result, "process": False, "status": current["status"], "reason": current["reason"]}
        if not created:
            cat.set_status(asset_id, "ingesting", source_uri=uri, rerun=True, forced=force)
    log.info("source %s is asset %s (%s)", uri, asset_id, "new" if created else "processed again")
    rejection = _validate_metadata(rt, {**result, "status": "ingesting"}, tags)
    if rejection is not None:
        with rt.catalog() as cat:
            cat.release_run(asset_id, run_id)
        return {**result, "process": False, "status": "rejected", "reason": rejection, "rejected_now": True}
    return {**result, "process": True, "status": "ingesting", "reason": None}


def _claim(rt: Runtime, asset_id: str, run_id: str, *, force: bool) -> bool:
    """Hold the asset for this run, waiting while another run holds it. True when it waited."""
    deadline = time.monotonic() + rt.settings.run_wait_seconds
    waited = False
    while True:
        with rt.catalog() as cat:
            holder = cat.claim_run(asset_id, run_id, lease_seconds=LEASE_SECONDS, force=force)
            if holder is not None and _same_flow_restarted(holder, run_id):
                holder = cat.claim_run(asset_id, run_id, lease_seconds=LEASE_SECONDS, force=True)
        if holder is None:
            return waited
        if time.monotonic() > deadline:
            raise VamError(
                f"asset {asset_id} is being processed by run {holder}; it did not finish within"
                f" {rt.settings.run_wait_seconds} s (setting run_wait_seconds). Try again later, or"
                " re-run with force to take it over"
            )
        if not waited:
            log.info("asset %s is being processed by run %s: waiting for its outcome", asset_id, holder)
        waited = True
        time.sleep(POLL_SECONDS)


def _same_flow_restarted(holder: str, run_id: str) -> bool:
    """Flows that run one at a time (the archive ingest: ``archive:<run>``) take over what an
    earlier, killed run of theirs still holds: that run is gone."""
    flow, sep, _ = run_id.partition(":")
    return bool(sep) and flow == "archive" and holder.startswith(flow + ":") and holder != run_id


def _settled(rt: Runtime, asset: dict[str, Any], profile: str | None) -> bool:
    """True when the asset's outcome stands: rejected (the same bytes are rejected again), or ready
    with the requested profile version. A failed asset is processed again (a retry)."""
    if asset["status"] == "rejected":
        return True
    if asset["status"] != "ready":
        return False
    return asset["profile"] == rt.profile(profile).key


def _validate_metadata(rt: Runtime, asset: dict[str, Any], tags: dict[str, Any] | None) -> str | None:
    """The sidecar file's tags and the run's tags must fit the taxonomy; if not, the asset is
    rejected now, with the reason naming the sidecar (or the run conf) and the bad key (returned)."""
    from vam.enrich.tags import apply_changes, load_sidecar
    from vam.steps.probe import reject

    try:
        load_sidecar(asset["source_uri"], rt.taxonomy)
        if tags:
            apply_changes(rt.taxonomy, {}, tags, where="run conf tags")
    except PermanentFailure as exc:
        rejection = RejectedInput("invalid_metadata", str(exc))
        reject(rt, asset, rejection)
        return rejection.message
    return None

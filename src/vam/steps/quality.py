"""Measure one rendition (or one derived output) against its source: VMAF, SSIM, PSNR and a full
decode."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.errors import QualityGateFailed
from vam.runtime import Runtime
from vam.steps._common import load_asset, source_meta

log = logging.getLogger(__name__)

_EMPTY = {"mean": None, "min": None, "harmonic_mean": None}


def measure(rt: Runtime, asset_id: str, rendition: dict[str, Any]) -> dict[str, Any]:
    """VMAF, SSIM and PSNR of one output against the source, scored at the reference's size, and a
    full decode check.

    ``rendition`` is what :func:`vam.steps.transcode.transcode` returned (a ladder rendition:
    scores go to the quality table, the gate judges them) or what
    :func:`vam.steps.derive.social_crop` returned (``kind: derived`` with a ``reference``: the
    source is trimmed and cropped the same way before the comparison; scores go to the derived
    output's row, and a score under its ``min_vmaf`` fails the step).
    """
    from vam.media.quality import decode_check, measure_quality

    asset = load_asset(rt, asset_id)
    derived = rendition.get("kind") == "derived"
    if derived:
        model, n_subsample, prefix = "vmaf_v0.6.1", 1, ("derived",)
    else:
        prof = rt.pinned_profile(rendition["profile_key"], rendition["profile_sha256"])
        model, n_subsample, prefix = prof.vmaf_model, prof.vmaf_n_subsample, (prof.key,)
        rendition = {**rendition, "cache_name": f"{prof.key}-{rendition['name']}"}
    name = rendition["name"]
    source = rt.source_file(asset)
    path = rt.local_copy(rendition["uri"], asset_id, rendition.get("cache_name", name), rendition["sha256"])
    threads = rt.settings.ffmpeg_threads
    check = decode_check(path, threads=threads)
    work = rt.fresh_work(asset_id, "quality", name)
    log_path = work / f"{name}.vmaf.json"
    scores: dict[str, Any] = {}
    if check["decodes"]:
        scores = measure_quality(
            source,
            path,
            source_meta(asset),
            model=model,
            n_subsample=n_subsample,
            threads=threads,
            log_path=log_path,
            reference=rendition.get("reference"),
        )
    frames_uri = None
    if log_path.exists():
        frames_uri = rt.output_uri(asset_id, *prefix, "quality", f"{name}.vmaf.json")
        storage.store_for(frames_uri).put(log_path, frames_uri, content_type="application/json")
    shutil.rmtree(work, ignore_errors=True)
    result = {
        "name": name,
        "kind": rendition.get("kind", "rendition"),
        "vmaf": scores.get("vmaf", _EMPTY),
        "ssim": scores.get("ssim", _EMPTY),
        "psnr": scores.get("psnr", _EMPTY),
        "model": scores.get("model", model),
        "n_subsample": scores.get("n_subsample", n_subsample),
        "frames_uri": frames_uri,
        "decodes": check["decodes"],
        "decode_error": check.get("error"),
        "frame_count": check["frame_count"],
        "duration": check["duration"],
        **{k: rendition.get(k, 0.0) for k in ("min_vmaf", "min_ssim", "min_psnr")},
        **{k: rendition[k] for k in ("profile_key", "profile_sha256") if k in rendition},
        **{k: rendition[k] for k in ("expected_frame_count", "expected_duration") if k in rendition},
    }
    with rt.catalog() as cat:
        if derived:
            cat.set_derived_quality(asset_id, name, result)
        else:
            for metric in ("vmaf", "ssim", "psnr"):
                cat.upsert_quality(
                    asset_id,
                    rendition["profile_key"],
                    name,
                    metric,
                    result[metric],
                    model=result["model"],
                    n_subsample=result["n_subsample"],
                    frames_uri=frames_uri,
                )
    log.info(
        "%s %s: vmaf %s ssim %s psnr %s, %s frames, decodes=%s",
        asset_id, name, result["vmaf"]["mean"], result["ssim"]["mean"], result["psnr"]["mean"],
        result["frame_count"], result["decodes"],
    )  # fmt: skip
    if derived:
        vmaf = result["vmaf"]["mean"]
        if not result["decodes"] or vmaf is None or vmaf < float(result["min_vmaf"]):
            raise QualityGateFailed(
                f"derived output {name} of {asset_id}: vmaf {vmaf} below its floor {result['min_vmaf']}"
                if result["decodes"]
                else f"derived output {name} of {asset_id} does not decode: {result['decode_error']}"
            )
    return result

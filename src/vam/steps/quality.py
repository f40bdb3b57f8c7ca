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
    result = _result(rendition, scores, check, model, n_subsample, frames_uri)
    _record(rt, asset_id, result, derived=derived)
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


def _result(
    rendition: dict[str, Any],
    scores: dict[str, Any],
    check: dict[str, Any],
    model: str,
    n_subsample: int,
    frames_uri: str | None,
) -> dict[str, Any]:
    """The quality result of one output, as the gate and the catalog take it."""
    return {
        "name": rendition["name"],
        "kind": rendition.get("kind", "rendition"),
        "vmaf": scores.get("vmaf", _EMPTY),
        "ssim": scores.get("ssim", _EMPTY),
        "psnr": scores.get("psnr", _EMPTY),
        "model": scores.get("model", model),
        "n_subsample": scores.get("n_subsample", n_subsample),
        "frames_uri": frames_uri,
        "decodes": check["decodes"],
        "decode_error": check.get("error", check.get("decode_error")),
        "frame_count": check["frame_count"],
        "duration": check["duration"],
        **{k: rendition.get(k, 0.0) for k in ("min_vmaf", "min_ssim", "min_psnr")},
        **{k: rendition[k] for k in ("profile_key", "profile_sha256") if k in rendition},
        **{k: rendition[k] for k in ("expected_frame_count", "expected_duration") if k in rendition},
    }


def _record(rt: Runtime, asset_id: str, result: dict[str, Any], *, derived: bool = False) -> None:
    with rt.catalog() as cat:
        if derived:
            cat.set_derived_quality(asset_id, result["name"], result)
            return
        for metric in ("vmaf", "ssim", "psnr"):
            cat.upsert_quality(
                asset_id,
                result["profile_key"],
                result["name"],
                metric,
                result[metric],
                model=result["model"],
                n_subsample=result["n_subsample"],
                frames_uri=result["frames_uri"],
            )


def flatten(renditions: list[Any]) -> list[dict[str, Any]]:
    """The renditions of a transcode stage: mapped per rendition (a dict each) or per group (a list
    each, :func:`vam.steps.transcode.transcode_group`), in order."""
    flat: list[dict[str, Any]] = []
    for item in renditions:
        flat.extend(item if isinstance(item, list | tuple) else [item])
    return flat


def score(rt: Runtime, asset_id: str, renditions: list[Any]) -> list[dict[str, Any]]:
    """VMAF, SSIM, PSNR and the decode check of every ladder rendition in one pass over the source
    (:func:`vam.media.scoring.score_renditions`: one decode of the source, frames subsampled before
    scaling, the decode check folded in). Returns one result per rendition (``scored: True``), in
    the shape :func:`measure` returns, for the per-rendition quality tasks to record
    (:func:`record`); the libvmaf logs are stored as :func:`measure` stores them.

    When the shared pass fails (a rendition that does not decode), each rendition is checked and
    measured on its own (:func:`measure`'s way), so the broken one is named and the others scored.
    """
    from vam.errors import ToolError
    from vam.media.scoring import score_renditions

    flat = flatten(renditions)
    if not flat:
        return []
    asset = load_asset(rt, asset_id)
    prof = rt.pinned_profile(flat[0]["profile_key"], flat[0]["profile_sha256"])
    source = rt.source_file(asset)
    paths = [rt.local_copy(r["uri"], asset_id, f"{prof.key}-{r['name']}", r["sha256"]) for r in flat]
    work = rt.fresh_work(asset_id, "score")
    try:
        scored = score_renditions(
            source,
            source_meta(asset),
            paths,
            model=prof.vmaf_model,
            n_subsample=prof.vmaf_n_subsample,
            threads=rt.settings.ffmpeg_threads,
            log_dir=work,
        )
    except ToolError as exc:
        log.warning("the shared scoring pass failed (%s); measuring each rendition on its own", exc)
        shutil.rmtree(work, ignore_errors=True)
        return [{**_measure_only(rt, asset_id, r, prof), "scored": True} for r in flat]
    results = []
    for rendition, scores in zip(flat, scored, strict=True):
        frames_uri = None
        if scores.get("log_path"):
            frames_uri = rt.output_uri(asset_id, prof.key, "quality", f"{rendition['name']}.vmaf.json")
            storage.store_for(frames_uri).put(scores["log_path"], frames_uri, content_type="application/json")
        result = _result(rendition, scores, scores, prof.vmaf_model, prof.vmaf_n_subsample, frames_uri)
        result.update(scored=True, scoring_seconds=scores.get("elapsed_seconds"))
        results.append(result)
    shutil.rmtree(work, ignore_errors=True)
    return results


def _measure_only(rt: Runtime, asset_id: str, rendition: dict[str, Any], prof: Any) -> dict[str, Any]:
    """One rendition measured on its own (decode check, then VMAF if it decodes), not recorded."""
    from vam.media.quality import decode_check, measure_quality

    asset = load_asset(rt, asset_id)
    name = rendition["name"]
    path = rt.local_copy(rendition["uri"], asset_id, f"{prof.key}-{name}", rendition["sha256"])
    check = decode_check(path, threads=rt.settings.ffmpeg_threads)
    scores: dict[str, Any] = {}
    if check["decodes"]:
        scores = measure_quality(
            rt.source_file(asset),
            path,
            source_meta(asset),
            model=prof.vmaf_model,
            n_subsample=prof.vmaf_n_subsample,
            threads=rt.settings.ffmpeg_threads,
        )
    return _result(rendition, scores, check, prof.vmaf_model, prof.vmaf_n_subsample, None)


def record(rt: Runtime, asset_id: str, result: dict[str, Any]) -> dict[str, Any]:
    """Record one rendition's result from the shared scoring pass (:func:`score`) in the catalog:
    the per-rendition quality task, so each rendition's scores show on their own in the UI."""
    result = {k: v for k, v in result.items() if k != "scored"}
    _record(rt, asset_id, result)
    log.info(
        "%s %s: vmaf %s ssim %s psnr %s, %s frames, decodes=%s (shared scoring pass)",
        asset_id, result["name"], result["vmaf"]["mean"], result["ssim"]["mean"], result["psnr"]["mean"],
        result["frame_count"], result["decodes"],
    )  # fmt: skip
    return result

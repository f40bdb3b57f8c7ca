"""The steps of processing one asset, without Airflow.

Each function is one task of the per-asset DAG (``dags/vam_process.py``): it takes and returns
small JSON-able dicts (ids, URIs, numbers), reads and writes media through object storage and
records what it did in the catalog. Every step is idempotent: output keys are deterministic
(``{asset_id}/{profile}@{version}/...``) and catalog writes are UPSERTs, so any step can be re-run.

Status follows the outcome: ``ingesting`` (registered) -> ``processing`` (valid input) ->
``ready`` (published); ``rejected`` when the input is unusable; ``failed`` when a step failed
for good. :func:`finalize` runs last whatever happened, so no asset stays non-terminal.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

from vam import storage
from vam.catalog import TERMINAL_STATUSES, Catalog, open_catalog
from vam.errors import QualityGateFailed, RejectedInput, VamError
from vam.settings import Settings, load_settings

log = logging.getLogger(__name__)

MANIFEST_SUFFIXES = (".m3u8", ".mpd")
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano"}
CONTENT_TYPES = {
    ".m3u8": "application/vnd.apple.mpegurl",
    ".mpd": "application/dash+xml",
    ".m4s": "video/iso.segment",
    ".mp4": "video/mp4",
    ".json": "application/json",
    ".vtt": "text/vtt",
}


@dataclass
class Runtime:
    """Settings plus the catalog they point to; one per task process."""

    settings: Settings

    @classmethod
    def from_env(cls) -> Runtime:
        return cls(load_settings())

    @cached_property
    def dsn(self) -> str:
        from vam.localstack import ensure_catalog

        return ensure_catalog(self.settings)

    def catalog(self, actor: str = "vam") -> Catalog:
        return open_catalog(self.dsn, actor=actor)

    def profile(self, name: str | None):  # -> Profile
        from vam.media.profiles import load_profile

        return load_profile(name or self.settings.profile, self.settings.profiles_dir)

    def work(self, *parts: str) -> Path:
        path = Path(self.settings.work_dir).joinpath(*parts)
        path.mkdir(parents=True, exist_ok=True)
        return path

    def output_uri(self, asset_id: str, profile_key: str, *parts: str) -> str:
        return storage.uri_join(self.settings.processed_uri, asset_id, profile_key, *parts)


def _suffix(uri: str) -> str:
    return PurePosixPath(uri.split("?", 1)[0]).suffix.lower()


def local_copy(rt: Runtime, uri: str, asset_id: str, name: str, sha256: str | None = None) -> Path:
    """A local file holding the object at ``uri``: the object itself for file:// URIs, else a
    download cached in the asset's work dir (verified against ``sha256`` when given)."""
    store = storage.store_for(uri)
    path = store.local_path(uri)
    if path is not None:
        return path
    dest = rt.work(asset_id, "cache") / f"{name}{_suffix(uri)}"
    marker = dest.with_name(dest.name + ".sha256")
    if dest.exists() and marker.exists() and (sha256 is None or marker.read_text() == sha256):
        return dest
    store.get(uri, dest)
    digest = storage.sha256_file(dest)
    if sha256 is not None and digest != sha256:
        dest.unlink(missing_ok=True)
        raise VamError(f"downloaded {uri} but its SHA-256 {digest} is not the registered {sha256}")
    marker.write_text(digest)
    return dest


def source_file(rt: Runtime, asset: dict[str, Any]) -> Path:
    """The asset's source as a local file (see :func:`local_copy`)."""
    return local_copy(rt, asset["source_uri"], asset["asset_id"], "source", asset["sha256"])


# -- register, probe, plan -------------------------------------------------------------------


def register(rt: Runtime, source: str, *, title: str | None = None) -> dict[str, Any]:
    """Hash the source and create (or find) its asset. Same bytes, same asset."""
    uri = storage.to_uri(source)
    info = storage.store_for(uri).head(uri)
    sha256 = storage.sha256_object(uri)
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
        else:
            cat.set_status(asset_id, "ingesting", source_uri=uri, rerun=True)
    log.info("source %s is asset %s (%s)", uri, asset_id, "new" if created else "known")
    return {
        "asset_id": asset_id,
        "source_uri": uri,
        "sha256": sha256,
        "size_bytes": info.size,
        "created": created,
    }


def probe_source(rt: Runtime, asset: dict[str, Any]) -> dict[str, Any]:
    """Probe and validate the source. Unusable input: quarantine copy, status ``rejected``, raise."""
    from vam.media.probe import probe

    asset_id = asset["asset_id"]
    path = source_file(rt, asset)
    try:
        info = probe(path)
    except RejectedInput as exc:
        reject(rt, asset, exc)
        raise
    meta = info.to_dict()
    with rt.catalog() as cat:
        cat.update_asset(asset_id, source_meta=meta)
        cat.set_status(asset_id, "processing")
    return meta


def reject(rt: Runtime, asset: dict[str, Any], exc: RejectedInput) -> None:
    """Keep a verified copy of the source under the quarantine prefix and mark the asset rejected.
    The source itself is never deleted."""
    src = asset["source_uri"]
    dst = storage.uri_join(rt.settings.quarantine_uri, asset["asset_id"], PurePosixPath(src).name or "source")
    with rt.catalog() as cat:
        try:
            copied = storage.copy_verified(src, dst)
            cat.record_object(
                dst,
                asset_id=asset["asset_id"],
                kind="quarantine",
                size_bytes=copied.size,
                sha256=asset["sha256"],
            )
        except VamError as copy_exc:  # the rejection still stands; say why there is no copy
            log.warning("could not quarantine %s: %s", src, copy_exc)
            dst = None
        cat.set_status(asset["asset_id"], "rejected", exc.message, code=exc.code, quarantine_uri=dst)


def plan(rt: Runtime, asset: dict[str, Any], source_meta: dict[str, Any], profile: str | None) -> list[dict]:
    """The renditions to encode: the profile's ladder fitted to the source (never upscaled)."""
    from vam.media.ladder import plan_ladder
    from vam.media.types import MediaInfo

    prof = rt.profile(profile)
    plans = plan_ladder(MediaInfo.from_dict(source_meta), prof)
    with rt.catalog() as cat:
        cat.update_asset(asset["asset_id"], profile=prof.key)
        cat.prune_renditions(asset["asset_id"], prof.key, [p.name for p in plans])
    log.info("ladder for %s with %s: %s", asset["asset_id"], prof.key, ", ".join(p.name for p in plans))
    return [p.to_dict() for p in plans]


# -- per rendition ---------------------------------------------------------------------------


def transcode(
    rt: Runtime,
    asset: dict[str, Any],
    source_meta: dict[str, Any],
    rendition: dict[str, Any],
    profile: str | None,
) -> dict[str, Any]:
    """Encode one rendition and store it at its deterministic key."""
    from vam.media.encode import encode_rendition
    from vam.media.types import MediaInfo, RenditionPlan

    prof = rt.profile(profile)
    plan_ = RenditionPlan.from_dict(rendition)
    asset_id = asset["asset_id"]
    source = source_file(rt, asset)
    out = rt.work(asset_id, prof.key, "renditions") / f"{plan_.name}.mp4"
    result = encode_rendition(
        source, plan_, prof, out, MediaInfo.from_dict(source_meta), threads=rt.settings.ffmpeg_threads
    )
    uri = rt.output_uri(asset_id, prof.key, "renditions", f"{plan_.name}.mp4")
    sha256 = storage.sha256_file(out)
    storage.store_for(uri).put(out, uri, content_type="video/mp4")
    row = {**result, "name": plan_.name, "uri": uri, "sha256": sha256, "size_bytes": out.stat().st_size}
    with rt.catalog() as cat:
        cat.upsert_rendition(asset_id, prof.key, row)
        cat.record_object(
            uri, asset_id=asset_id, kind="rendition", size_bytes=row["size_bytes"], sha256=sha256
        )
    if storage.store_for(uri).local_path(uri) is None:  # keep it for the next tasks on this worker
        shutil.move(out, local_rendition_path(rt, asset_id, prof.key, plan_.name, sha256))
    else:
        out.unlink()
    return {**row, "min_vmaf": plan_.min_vmaf, "min_ssim": plan_.min_ssim, "min_psnr": plan_.min_psnr}


def local_rendition_path(rt: Runtime, asset_id: str, profile_key: str, name: str, sha256: str) -> Path:
    """Where a stored rendition is kept in the local cache (so later tasks skip the download)."""
    path = rt.work(asset_id, "cache") / f"{profile_key}-{name}.mp4"
    path.with_name(path.name + ".sha256").write_text(sha256)
    return path


def _rendition_file(rt: Runtime, asset_id: str, profile_key: str, rendition: dict[str, Any]) -> Path:
    return local_copy(
        rt, rendition["uri"], asset_id, f"{profile_key}-{rendition['name']}", rendition["sha256"]
    )


def measure(
    rt: Runtime,
    asset: dict[str, Any],
    source_meta: dict[str, Any],
    rendition: dict[str, Any],
    profile: str | None,
) -> dict[str, Any]:
    """VMAF, SSIM and PSNR of one rendition against the source, and a full decode check."""
    from vam.media.quality import decode_check, measure_quality
    from vam.media.types import MediaInfo

    prof = rt.profile(profile)
    asset_id, name = asset["asset_id"], rendition["name"]
    source = source_file(rt, asset)
    path = _rendition_file(rt, asset_id, prof.key, rendition)
    threads = rt.settings.ffmpeg_threads
    check = decode_check(path, threads=threads)
    log_path = rt.work(asset_id, prof.key, "quality") / f"{name}.vmaf.json"
    scores: dict[str, Any] = {}
    if check["decodes"]:
        scores = measure_quality(
            source,
            path,
            MediaInfo.from_dict(source_meta),
            model=prof.vmaf_model,
            n_subsample=prof.vmaf_n_subsample,
            threads=threads,
            log_path=log_path,
        )
    frames_uri = None
    if log_path.exists():
        frames_uri = rt.output_uri(asset_id, prof.key, "quality", f"{name}.vmaf.json")
        storage.store_for(frames_uri).put(log_path, frames_uri, content_type="application/json")
    empty = {"mean": None, "min": None, "harmonic_mean": None}
    result = {
        "name": name,
        "vmaf": scores.get("vmaf", empty),
        "ssim": scores.get("ssim", empty),
        "psnr": scores.get("psnr", empty),
        "model": scores.get("model", prof.vmaf_model),
        "n_subsample": scores.get("n_subsample", prof.vmaf_n_subsample),
        "frames_uri": frames_uri,
        "decodes": check["decodes"],
        "decode_error": check.get("error"),
        "frame_count": check["frame_count"],
        "duration": check["duration"],
        **{k: rendition[k] for k in ("min_vmaf", "min_ssim", "min_psnr")},
    }
    with rt.catalog() as cat:
        for metric in ("vmaf", "ssim", "psnr"):
            cat.upsert_quality(
                asset_id,
                prof.key,
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
    return result


# -- gate, package, publish, finalize --------------------------------------------------------


def quality_gate(
    rt: Runtime, asset: dict[str, Any], source_meta: dict[str, Any], results: list[dict], profile: str | None
) -> dict[str, Any]:
    """Run the Great Expectations suite over the metrics table; a failure fails the asset."""
    from vam.media.gate import metrics_table, run_gate

    prof = rt.profile(profile)
    rows = metrics_table(
        [_null_scores_to_zero(r) for r in results],
        source_frame_count=source_meta["frame_count"],
        source_duration=source_meta["duration"],
    )
    report = run_gate(rows, prof)
    with rt.catalog() as cat:
        cat.add_event(asset["asset_id"], "quality_gate", success=report.success, failures=report.failures)
        if not report.success:
            reason = f"quality gate failed: {report.message}"
            cat.set_status(asset["asset_id"], "failed", reason)
            raise QualityGateFailed(reason)
    return {"success": True, "renditions": [r["rendition"] for r in rows]}


def _null_scores_to_zero(result: dict[str, Any]) -> dict[str, Any]:
    """A rendition that does not decode has no scores; it scores 0 so every floor catches it."""
    out = dict(result)
    for metric in ("vmaf", "ssim", "psnr"):
        if out[metric]["mean"] is None:
            out[metric] = {"mean": 0.0, "min": 0.0, "harmonic_mean": 0.0}
    return out


def package(
    rt: Runtime,
    asset: dict[str, Any],
    renditions: list[dict],
    profile: str | None,
    transcript: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HLS and DASH from the stored renditions, without re-encoding. Segments are uploaded to their
    final keys; manifests only to a staging prefix, which :func:`publish` promotes last."""
    from vam.media.package import package as package_media

    prof = rt.profile(profile)
    asset_id = asset["asset_id"]
    inputs = [(_rendition_file(rt, asset_id, prof.key, r), r) for r in renditions]
    out_dir = rt.work(asset_id, prof.key, "package")
    shutil.rmtree(out_dir)
    out_dir.mkdir()
    captions = []
    if transcript and transcript.get("captions_uri"):
        lang = transcript["language"]
        vtt = local_copy(rt, transcript["captions_uri"], asset_id, f"captions-{lang}")
        captions.append({"language": lang, "name": LANGUAGE_NAMES.get(lang, lang), "path": vtt})
    made = package_media(inputs, out_dir, segment_seconds=prof.segment_seconds, captions=captions)
    with rt.catalog() as cat:
        for rel in made["segments"]:
            uri = rt.output_uri(asset_id, prof.key, rel)
            path = out_dir / rel
            storage.store_for(uri).put(path, uri, content_type=CONTENT_TYPES.get(path.suffix))
            cat.record_object(uri, asset_id=asset_id, kind="segment", size_bytes=path.stat().st_size)
    staged = []
    for rel in made["manifests"]:
        uri = rt.output_uri(asset_id, prof.key, "_staging", rel)
        path = out_dir / rel
        storage.store_for(uri).put(path, uri, content_type=CONTENT_TYPES.get(path.suffix))
        staged.append({"staged": uri, "final": rt.output_uri(asset_id, prof.key, rel)})
    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "staged": staged,
        "hls_uri": rt.output_uri(asset_id, prof.key, made["hls_master"]),
        "dash_uri": rt.output_uri(asset_id, prof.key, made["dash_manifest"]),
    }


def publish(
    rt: Runtime,
    asset: dict[str, Any],
    packaged: dict[str, Any],
    transcript: dict[str, Any] | None = None,
    scenes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Promote the staged manifests (variant playlists first, master and MPD last), record the
    caption and chapter tracks, index the asset for search, then ``ready``."""
    from vam.enrich.steps import publish_tracks

    entry_points = {packaged["hls_uri"], packaged["dash_uri"]}
    ordered = sorted(packaged["staged"], key=lambda m: m["final"] in entry_points)
    with rt.catalog() as cat:
        for m in ordered:
            store = storage.store_for(m["final"])
            data = storage.store_for(m["staged"]).read_bytes(m["staged"])
            store.put_bytes(data, m["final"], content_type=CONTENT_TYPES.get(_suffix(m["final"])))
            cat.record_object(m["final"], asset_id=asset["asset_id"], kind="manifest", size_bytes=len(data))
        for m in ordered:
            storage.store_for(m["staged"]).delete(m["staged"])
        cat.update_asset(asset["asset_id"], hls_uri=packaged["hls_uri"], dash_uri=packaged["dash_uri"])
        publish_tracks(rt, asset["asset_id"], transcript or {}, scenes or {})
        cat.set_status(asset["asset_id"], "ready", hls_uri=packaged["hls_uri"], dash_uri=packaged["dash_uri"])
    return {"asset_id": asset["asset_id"], "hls_uri": packaged["hls_uri"], "dash_uri": packaged["dash_uri"]}


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


def summary(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """Everything a caller needs about one asset: status, reason, source metadata, renditions
    with their quality, manifest URIs."""
    with rt.catalog() as cat:
        a = cat.get_asset(asset_id)
        rends = cat.renditions(asset_id, a["profile"]) if a["profile"] else []
        quality: dict[str, dict[str, Any]] = {}
        for q in cat.quality(asset_id, a["profile"]) if a["profile"] else []:
            quality.setdefault(q["rendition"], {})[q["metric"]] = q["mean"]
        from vam.catalog.enrichment import get_enrichment

        enrichment = get_enrichment(cat, asset_id)
    meta = a["source_meta"] or {}
    keys = ("container", "video_codec", "audio_codec", "width", "height", "display_width", "display_height")
    keys += ("fps", "duration", "rotation", "frame_count", "size_bytes")
    return {
        "asset_id": a["asset_id"],
        "status": a["status"],
        "reason": a["reason"],
        "source_uri": a["source_uri"],
        "sha256": a["content_sha256"],
        "profile": a["profile"],
        "source": {k: meta.get(k) for k in keys} if meta else None,
        "renditions": [
            {
                "name": r["name"],
                "codec": r["codec"],
                "width": r["width"],
                "height": r["height"],
                "bitrate_kbps": r["bitrate_kbps"],
                "vmaf": quality.get(r["name"], {}).get("vmaf"),
                "ssim": quality.get(r["name"], {}).get("ssim"),
                "psnr": quality.get(r["name"], {}).get("psnr"),
                "uri": r["uri"],
            }
            for r in rends
        ],
        "hls": a["hls_uri"] if a["status"] == "ready" else None,
        "dash": a["dash_uri"] if a["status"] == "ready" else None,
        **enrichment,
    }


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False, default=str)

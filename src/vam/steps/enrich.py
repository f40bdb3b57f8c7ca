"""The enrichment steps of one asset, beside the renditions.

transcript (speech to text, captions, embeddings) and scenes (shots, chapters, keyframes) read the
source; labels and moderation read the scenes' keyframes; tags apply the human metadata that came
with the source (sidecar file, run conf) or from a person. The enrichers in :mod:`vam.enrich`
return data; these steps store their outputs under ``{processed}/{asset_id}/enrich/...`` and write
their catalog rows.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import WRITE_TIER, load_asset, sha256_bytes, source_meta

log = logging.getLogger(__name__)


def _enrich_uri(rt: Runtime, asset_id: str, *parts: str) -> str:
    return rt.output_uri(asset_id, "enrich", *parts)


def update_tags(
    rt: Runtime, asset_id: str, changes: dict[str, Any], *, actor: str, source: str
) -> dict[str, Any]:
    """Validate ``changes`` against the taxonomy and apply them to the asset's tags (one audit event
    with the before/after of each key). Returns the asset's tags after the change."""
    from vam.enrich.tags import apply_changes, check_source

    check_source(source)
    taxonomy = rt.taxonomy
    with rt.catalog(actor=actor) as cat:
        _, after = cat.update_tags(
            asset_id,
            lambda current: apply_changes(taxonomy, current, changes, where=source),
            actor=actor,
            source=source,
        )
    return after


def tags(rt: Runtime, asset_id: str, conf_tags: dict[str, Any] | None = None) -> dict[str, Any]:
    """Apply the sidecar file's tags (NAME.json/.yaml next to the source), then the run conf's."""
    from vam.enrich.tags import load_sidecar

    asset = load_asset(rt, asset_id)
    applied: dict[str, Any] = dict(asset.get("tags") or {})
    sidecar = load_sidecar(asset["source_uri"], rt.taxonomy)
    for source, changes in (("sidecar", sidecar), ("run_conf", conf_tags)):
        if changes:
            applied = update_tags(rt, asset_id, changes, actor="vam", source=source)
    return {"tags": applied}


def _off(rt: Runtime, step: str, asset_id: str) -> bool:
    if rt.settings.enrichment:
        return False
    log.info("enrichment is off (setting enrichment): no %s for %s", step, asset_id)
    return True


def transcript(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """Speech to text with word timestamps; a WebVTT caption track when there is speech."""
    from vam.enrich import transcript as stt

    if _off(rt, "transcript", asset_id):
        return {"language": None, "segments": 0, "captions_uri": None, "enrichment": False}

    s = rt.settings
    whisper = stt.WhisperConfig(
        backend=s.whisper_backend,
        model=s.whisper_model,
        compute_type=s.whisper_compute_type,
        language=s.whisper_language,
        threads=s.whisper_threads,
        models_dir=str(s.home_path / "models" / "openai-whisper"),
    )
    asset = load_asset(rt, asset_id)
    result = stt.transcribe(
        rt.source_file(asset), whisper=whisper, ffmpeg_threads=s.ffmpeg_threads, work_dir=rt.work(asset_id)
    )
    segments = result["segments"]
    embeddings = None
    captions_uri = None
    if segments:
        from vam.enrich.embeddings import embed

        embeddings = embed([seg["text"] for seg in segments])
        captions_uri = _enrich_uri(rt, asset_id, "captions", f"{result['language']}.vtt")
        captions = stt.to_webvtt(segments).encode()
        storage.store_for(captions_uri).put_bytes(captions, captions_uri, content_type="text/vtt")
    with rt.catalog() as cat:
        cat.save_transcript(asset_id, result, embeddings)
        if captions_uri:
            cat.record_object(
                captions_uri,
                asset_id=asset_id,
                kind="captions",
                size_bytes=len(captions),
                sha256=sha256_bytes(captions),
                tier=WRITE_TIER,
            )
    log.info("transcript of %s: %d segments, %d words", asset_id, len(segments), len(result["text"].split()))
    return {
        "language": result["language"],
        "segments": len(segments),
        "captions_uri": captions_uri,
        "elapsed_seconds": result.get("elapsed_seconds"),
    }


def scenes(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """Shot boundaries (TransNetV2), chapters (WebVTT) and one keyframe per scene."""
    from vam.enrich import scenes as shots

    if _off(rt, "scenes", asset_id):
        return {"scenes": 0, "chapters_uri": None, "keyframes": [], "enrichment": False}
    asset = load_asset(rt, asset_id)
    source = rt.source_file(asset)
    threads = rt.settings.ffmpeg_threads
    found = shots.detect_scenes(source, media_info=source_meta(asset), threads=threads)
    scene_list = found["scenes"]
    chapters = shots.chapters_from_scenes(scene_list)
    work = rt.fresh_work(asset_id, "keyframes")
    keyframe_uris = []
    keyframe_sums: dict[str, tuple[int, str]] = {}
    for path in shots.extract_keyframes(source, scene_list, work, threads=threads):
        uri = _enrich_uri(rt, asset_id, "keyframes", path.name)
        storage.store_for(uri).put(path, uri, content_type="image/jpeg")
        keyframe_uris.append(uri)
        keyframe_sums[uri] = (path.stat().st_size, storage.sha256_file(path))
    chapters_uri = _enrich_uri(rt, asset_id, "chapters.vtt")
    chapters_vtt = shots.chapters_to_webvtt(chapters).encode()
    storage.store_for(chapters_uri).put_bytes(chapters_vtt, chapters_uri, content_type="text/vtt")
    with rt.catalog() as cat:
        cat.save_scenes(asset_id, scene_list, chapters, keyframe_uris)
        for uri in keyframe_uris:
            size, digest = keyframe_sums[uri]
            cat.record_object(
                uri, asset_id=asset_id, kind="keyframe", size_bytes=size, sha256=digest, tier=WRITE_TIER
            )
        cat.record_object(
            chapters_uri,
            asset_id=asset_id,
            kind="chapters",
            size_bytes=len(chapters_vtt),
            sha256=sha256_bytes(chapters_vtt),
            tier=WRITE_TIER,
        )
    shutil.rmtree(work, ignore_errors=True)
    log.info("scenes of %s: %d scenes, %d chapters", asset_id, len(scene_list), len(chapters))
    return {
        "scenes": len(scene_list),
        "chapters_uri": chapters_uri,
        "keyframes": keyframe_uris,
        "elapsed_seconds": found.get("elapsed_seconds"),
    }


def _keyframes(rt: Runtime, asset_id: str, scenes_result: dict[str, Any]):
    return [
        rt.local_copy(uri, asset_id, f"keyframe-{i:04d}") for i, uri in enumerate(scenes_result["keyframes"])
    ]


def labels(rt: Runtime, asset_id: str, scenes_result: dict[str, Any]) -> dict[str, Any]:
    """ImageNet labels per scene keyframe, aggregated for the asset."""
    from vam.enrich import labels as classifier

    if not scenes_result.get("keyframes"):
        return {"labels": []}
    per_scene = classifier.classify(_keyframes(rt, asset_id, scenes_result), top_k=rt.settings.labels_top_k)
    aggregated = classifier.aggregate(per_scene)
    with rt.catalog() as cat:
        cat.save_labels(asset_id, per_scene, aggregated)
    return {"labels": [a["label"] for a in aggregated[:5]]}


def moderation(rt: Runtime, asset_id: str, scenes_result: dict[str, Any]) -> dict[str, Any]:
    """NudeNet scores per keyframe; the asset is flagged for review at the configured threshold."""
    from vam.enrich import moderation as nsfw

    if not scenes_result.get("keyframes"):
        return {"flagged": False, "max_score": None, "threshold": rt.settings.moderation_threshold}
    per_scene = nsfw.moderate(_keyframes(rt, asset_id, scenes_result))
    flag = nsfw.flag(per_scene, rt.settings.moderation_threshold)
    with rt.catalog() as cat:
        cat.save_moderation(asset_id, per_scene, flag)
    return flag

"""The enrichment steps of one asset, without Airflow: each runs beside the renditions.

transcript (speech to text, captions, embeddings) and scenes (shots, chapters, keyframes) read
the source; labels and moderation read the scenes' keyframes; tags apply the human metadata
that came with the source (sidecar file, run conf). Each writes its own catalog rows and
returns a small dict; outputs go to ``{processed}/{asset_id}/enrich/...``.
"""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.pipeline import Runtime, local_copy, source_file

log = logging.getLogger(__name__)


def _enrich_uri(rt: Runtime, asset_id: str, *parts: str) -> str:
    return storage.uri_join(rt.settings.processed_uri, asset_id, "enrich", *parts)


def tags(rt: Runtime, asset: dict[str, Any], conf_tags: dict[str, Any] | None) -> dict[str, Any]:
    """Apply the sidecar file's tags (NAME.json/.yaml next to the source), then the run conf's."""
    from vam.enrich.tags import apply_tags, load_sidecar

    applied: dict[str, Any] = {}
    sidecar = load_sidecar(asset["source_uri"])
    with rt.catalog(actor="vam") as cat:
        for source, changes in (("sidecar", sidecar), ("run_conf", conf_tags)):
            if changes:
                applied = apply_tags(cat, asset["asset_id"], changes, actor="vam", source=source)
    return {"tags": applied}


def transcript(rt: Runtime, asset: dict[str, Any], source_meta: dict[str, Any]) -> dict[str, Any]:
    """Speech to text with word timestamps; a WebVTT caption track when there is speech."""
    from vam.catalog.enrichment import save_transcript
    from vam.enrich import transcript as stt

    asset_id = asset["asset_id"]
    result = stt.transcribe(source_file(rt, asset), settings=rt.settings)
    segments = result["segments"]
    embeddings = None
    if segments:
        from vam.enrich.embeddings import embed

        embeddings = embed([s["text"] for s in segments])
    captions_uri = None
    if segments:
        captions_uri = _enrich_uri(rt, asset_id, "captions", f"{result['language']}.vtt")
        storage.store_for(captions_uri).put_bytes(
            stt.to_webvtt(segments).encode(), captions_uri, content_type="text/vtt"
        )
    with rt.catalog() as cat:
        save_transcript(cat, asset_id, result, embeddings)
        if captions_uri:
            cat.record_object(captions_uri, asset_id=asset_id, kind="captions")
    log.info("transcript of %s: %d segments, %d words", asset_id, len(segments), len(result["text"].split()))
    return {
        "language": result["language"],
        "segments": len(segments),
        "captions_uri": captions_uri,
        "elapsed_seconds": result.get("elapsed_seconds"),
    }


def scenes(rt: Runtime, asset: dict[str, Any], source_meta: dict[str, Any]) -> dict[str, Any]:
    """Shot boundaries (TransNetV2), chapters (WebVTT) and one keyframe per scene."""
    from vam.catalog.enrichment import save_scenes
    from vam.enrich import scenes as shots

    asset_id = asset["asset_id"]
    source = source_file(rt, asset)
    found = shots.detect_scenes(source)
    scene_list = found["scenes"]
    chapters = shots.chapters_from_scenes(scene_list)
    work = rt.work(asset_id, "keyframes")
    shutil.rmtree(work)
    work.mkdir()
    keyframe_uris = []
    for path in shots.extract_keyframes(source, scene_list, work):
        uri = _enrich_uri(rt, asset_id, "keyframes", path.name)
        storage.store_for(uri).put(path, uri, content_type="image/jpeg")
        keyframe_uris.append(uri)
    chapters_uri = _enrich_uri(rt, asset_id, "chapters.vtt")
    storage.store_for(chapters_uri).put_bytes(
        shots.chapters_to_webvtt(chapters).encode(), chapters_uri, content_type="text/vtt"
    )
    with rt.catalog() as cat:
        save_scenes(cat, asset_id, scene_list, chapters, keyframe_uris)
        for uri in keyframe_uris:
            cat.record_object(uri, asset_id=asset_id, kind="keyframe")
        cat.record_object(chapters_uri, asset_id=asset_id, kind="chapters")
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
        local_copy(rt, uri, asset_id, f"keyframe-{i:04d}") for i, uri in enumerate(scenes_result["keyframes"])
    ]


def labels(rt: Runtime, asset: dict[str, Any], scenes_result: dict[str, Any]) -> dict[str, Any]:
    """ImageNet labels per scene keyframe, aggregated for the asset."""
    from vam.catalog.enrichment import save_labels
    from vam.enrich import labels as classifier

    asset_id = asset["asset_id"]
    per_scene = classifier.classify(_keyframes(rt, asset_id, scenes_result), top_k=rt.settings.labels_top_k)
    aggregated = classifier.aggregate(per_scene)
    with rt.catalog() as cat:
        save_labels(cat, asset_id, per_scene, aggregated)
    return {"labels": [a["label"] for a in aggregated[:5]]}


def moderation(rt: Runtime, asset: dict[str, Any], scenes_result: dict[str, Any]) -> dict[str, Any]:
    """NudeNet scores per keyframe; the asset is flagged for review at the configured threshold."""
    from vam.catalog.enrichment import save_moderation
    from vam.enrich import moderation as nsfw

    asset_id = asset["asset_id"]
    per_scene = nsfw.moderate(_keyframes(rt, asset_id, scenes_result))
    flag = nsfw.flag(per_scene, rt.settings.moderation_threshold)
    with rt.catalog() as cat:
        save_moderation(cat, asset_id, per_scene, flag)
    return flag


def publish_tracks(rt: Runtime, asset_id: str, transcript_result: dict, scenes_result: dict) -> None:
    """Record the caption and chapter tracks on the asset and refresh its search document."""
    from vam.catalog.enrichment import refresh_search_document, set_published_tracks

    with rt.catalog() as cat:
        set_published_tracks(
            cat, asset_id, transcript_result.get("captions_uri"), scenes_result.get("chapters_uri")
        )
        refresh_search_document(cat, asset_id)

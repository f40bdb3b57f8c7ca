"""Package HLS and DASH from the stored renditions (stream copy), manifests staged for publish."""

from __future__ import annotations

import logging
import shutil
from typing import Any

from vam import storage
from vam.runtime import Runtime
from vam.steps._common import WRITE_TIER, content_type
from vam.steps.quality import flatten

log = logging.getLogger(__name__)

LANGUAGE_NAMES = {"en": "English", "de": "Deutsch", "fr": "Français", "es": "Español", "it": "Italiano"}


def package(
    rt: Runtime,
    asset_id: str,
    renditions: list[dict[str, Any]],
    transcript: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """HLS and DASH from the stored renditions, without re-encoding, with the transcript's WebVTT
    captions when there are some. Segments are uploaded to their final keys; manifests only to a
    staging prefix, which :func:`vam.steps.publish.publish` promotes last."""
    from vam.media.package import package as package_media

    renditions = flatten(renditions)  # transcode tasks mapped per rendition or per group
    prof = rt.pinned_profile(renditions[0]["profile_key"], renditions[0]["profile_sha256"])
    inputs = [
        (rt.local_copy(r["uri"], asset_id, f"{prof.key}-{r['name']}", r["sha256"]), r) for r in renditions
    ]
    out_dir = rt.fresh_work(asset_id, "package")
    captions = []
    if transcript and transcript.get("captions_uri"):
        lang = transcript["language"]
        vtt = rt.local_copy(transcript["captions_uri"], asset_id, f"captions-{lang}")
        captions.append({"language": lang, "name": LANGUAGE_NAMES.get(lang, lang), "path": vtt})
    made = package_media(inputs, out_dir, segment_seconds=prof.segment_seconds, captions=captions)
    with rt.catalog() as cat:
        for rel in made["segments"]:
            uri = rt.output_uri(asset_id, prof.key, rel)
            path = out_dir / rel
            storage.store_for(uri).put(path, uri, content_type=content_type(uri))
            cat.record_object(
                uri,
                asset_id=asset_id,
                kind="segment",
                size_bytes=path.stat().st_size,
                sha256=storage.sha256_file(path),
                tier=WRITE_TIER,
            )
    staged = []
    for rel in made["manifests"]:
        uri = rt.output_uri(asset_id, prof.key, "_staging", rel)
        path = out_dir / rel
        storage.store_for(uri).put(path, uri, content_type=content_type(uri))
        staged.append({"staged": uri, "final": rt.output_uri(asset_id, prof.key, rel)})
    shutil.rmtree(out_dir, ignore_errors=True)
    return {
        "staged": staged,
        "hls_uri": rt.output_uri(asset_id, prof.key, made["hls_master"]),
        "dash_uri": rt.output_uri(asset_id, prof.key, made["dash_manifest"]),
    }

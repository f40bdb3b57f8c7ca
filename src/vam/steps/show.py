"""Read an asset back: the summary ``vam process --json`` and ``vam show`` print."""

from __future__ import annotations

from typing import Any

from vam.runtime import Runtime

SOURCE_KEYS = (
    "container", "video_codec", "audio_codec", "width", "height", "display_width", "display_height",
    "fps", "duration", "rotation", "frame_count", "size_bytes",
)  # fmt: skip
OBJECT_KEYS = ("kind", "uri", "tier", "storage_class", "size_bytes", "sha256")
DERIVED_KEYS = (
    "name", "kind", "uri", "width", "height", "duration", "frame_count", "size_bytes", "sha256",
    "vmaf", "ssim", "psnr", "spec",
)  # fmt: skip


def summary(rt: Runtime, asset_id: str) -> dict[str, Any]:
    """Everything a caller needs about one asset: status, reason, source metadata, renditions
    with their quality, manifest URIs, enrichment and derived outputs."""
    with rt.catalog() as cat:
        a = cat.get_asset(asset_id)
        rends = cat.renditions(asset_id, a["profile"]) if a["profile"] else []
        quality: dict[str, dict[str, Any]] = {}
        for q in cat.quality(asset_id, a["profile"]) if a["profile"] else []:
            quality.setdefault(q["rendition"], {})[q["metric"]] = q["mean"]
        enrichment = cat.get_enrichment(asset_id)
        derived = cat.derived(asset_id)
        ladder = cat.ladder_analysis(asset_id, a["profile"])
    meta = a["source_meta"] or {}
    return {
        "asset_id": a["asset_id"],
        "status": a["status"],
        "reason": a["reason"],
        "source_uri": a["source_uri"],
        "landing": a.get("landing_uri"),
        "sha256": a["content_sha256"],
        "profile": a["profile"],
        "source": {k: meta.get(k) for k in SOURCE_KEYS} if meta else None,
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
        "derived": [{k: d[k] for k in DERIVED_KEYS} for d in derived],
        # per-title profiles: the chosen rungs and why, the dropped ones, the hull, the chart's URI
        "ladder_analysis": ladder,
        "deleted": (
            {"at": a["deleted_at"], "purge_after": a["purge_after"], "reason": a.get("delete_reason")}
            if a.get("deleted_at")
            else None
        ),
    }


def show(rt: Runtime, asset_id: str, *, events: bool = False) -> dict[str, Any]:
    """:func:`summary` plus the asset's stored objects (kind, uri, tier, storage_class, bytes --
    also as size_bytes --, sha256, written_at), its legal hold and restore, and with ``events``,
    its audit events. A read: it records the access (lifecycle rules tier on it), at most once per
    asset every few minutes."""
    result = summary(rt, asset_id)
    with rt.catalog() as cat:
        result["objects"] = [
            {**{k: o[k] for k in OBJECT_KEYS}, "bytes": o["size_bytes"], "written_at": o.get("written_at")}
            for o in cat.objects(asset_id)
        ]
        a = cat.get_asset(asset_id)
        result["legal_hold"] = (
            {"reason": a.get("hold_reason"), "since": a.get("held_at")} if a.get("legal_hold") else None
        )
        result["restore"] = cat.restore_state(asset_id)
        cat.touch_access(asset_id)
        if events:
            result["events"] = cat.events(asset_id)
    return result

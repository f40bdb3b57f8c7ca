"""Catalog rows of the enrichment steps: transcripts, scenes and chapters, labels, moderation, tags.

Each ``save_*`` method rewrites the rows of one step for one asset in one transaction (delete,
then insert), so a re-run replaces what the previous run wrote and never duplicates it. Steps whose
output is searchable (transcript, labels, tags) rebuild the asset's search document in the same
transaction. :meth:`EnrichmentRows.get_enrichment` reads everything back in the shape
``vam process --json`` prints.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from psycopg2.extras import Json, RealDictCursor, execute_values

from vam.errors import CatalogError

log = logging.getLogger(__name__)

EMBEDDING_DIM = 384


def _plain(value: Any) -> Any:
    """numpy scalars and arrays as plain Python values (for JSON)."""
    if isinstance(value, np.generic | np.ndarray):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _json(value: Any) -> Json:
    return Json(value, dumps=lambda v: json.dumps(v, default=_plain))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _round(value: Any, digits: int = 6) -> float | None:
    """``real`` columns come back as e.g. 0.8999999761581543: round them for output."""
    return None if value is None else round(float(value), digits)


def _require_asset(cur: RealDictCursor, asset_id: str) -> None:
    cur.execute("SELECT 1 FROM assets WHERE asset_id = %s", (asset_id,))
    if cur.fetchone() is None:
        raise CatalogError(f"no asset {asset_id} in the catalog")


def _refresh(cur: RealDictCursor, asset_ids: Sequence[str]) -> None:
    cur.execute("SELECT refresh_search_documents(%s::text[])", (list(asset_ids),))


# -- transcripts --------------------------------------------------------------------------------


def _embedding_rows(embeddings: Any, n_segments: int) -> list[list[float] | None]:
    if embeddings is None:
        return [None] * n_segments
    matrix = np.asarray(embeddings, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape != (n_segments, EMBEDDING_DIM):
        raise CatalogError(
            f"embeddings must have shape ({n_segments}, {EMBEDDING_DIM}), one row per transcript segment; "
            f"got {matrix.shape}"
        )
    if not np.isfinite(matrix).all():
        raise CatalogError("embeddings contain NaN or infinite values")
    return matrix.tolist()


class EnrichmentRows:
    """The enrichment steps' catalog rows, as methods of :class:`vam.catalog.Catalog` (mixed in).

    Uses the host class's transaction (``_tx``) and its one audit-event writer (``_event``).
    """

    actor: str

    def save_transcript(self, asset_id: str, transcript: dict[str, Any], embeddings: Any = None) -> None:
        """Replace the asset's transcript and its segments.

        ``transcript`` is ``{"language", "model", "text", "segments": [{"start", "end", "text", "words"}]}``
        (no speech: no segments and empty text). ``embeddings`` is None or an array of shape
        (number of segments, 384), one sentence embedding per segment for semantic search.
        """
        segments = list(transcript.get("segments") or [])
        vectors = _embedding_rows(embeddings, len(segments))
        text = transcript.get("text")
        if text is None:
            text = " ".join(str(s.get("text", "")).strip() for s in segments).strip()
        rows = []
        for seq, (seg, vector) in enumerate(zip(segments, vectors, strict=True)):
            start, end = _float(seg.get("start")), _float(seg.get("end"))
            if start is None or end is None or end < start:
                raise CatalogError(
                    f"transcript segment {seq} of asset {asset_id} has bad times {start}..{end}"
                )
            words = seg.get("words")
            rows.append(
                (
                    asset_id,
                    seq,
                    start,
                    end,
                    str(seg.get("text", "")).strip(),
                    None if words is None else _json(words),
                    vector,
                )
            )
        with self._tx() as cur:
            _require_asset(cur, asset_id)
            cur.execute("DELETE FROM transcript_segments WHERE asset_id = %s", (asset_id,))
            cur.execute(
                "INSERT INTO transcripts (asset_id, language, model, text, updated_at)"
                " VALUES (%s, %s, %s, %s, now())"
                " ON CONFLICT (asset_id) DO UPDATE SET language = EXCLUDED.language, model = EXCLUDED.model,"
                " text = EXCLUDED.text, updated_at = now()",
                (asset_id, transcript.get("language"), transcript.get("model"), text.strip()),
            )
            if rows:
                execute_values(
                    cur,
                    "INSERT INTO transcript_segments (asset_id, seq, start_s, end_s, text, words, embedding)"
                    " VALUES %s",
                    rows,
                    template="(%s, %s, %s, %s, %s, %s::jsonb, %s::real[])",
                    page_size=200,
                )
            _refresh(cur, [asset_id])
            self._event(
                cur,
                asset_id,
                "transcript",
                detail={
                    "segments": len(rows),
                    "language": transcript.get("language"),
                    "model": transcript.get("model"),
                    "embeddings": embeddings is not None,
                },
            )
        log.info("asset %s: saved a transcript of %d segments", asset_id, len(rows))

    # -- scenes and chapters -------------------------------------------------------------------------

    def save_scenes(
        self,
        asset_id: str,
        scenes: list[dict[str, Any]],
        chapters: list[dict[str, Any]],
        keyframe_uris: list[str] | None = None,
    ) -> None:
        """Replace the asset's scenes (``{"start", "end", "confidence"}``, seconds) and chapters
        (``{"start", "end", "title"}``). ``keyframe_uris``, when given, has one URI per scene."""
        if keyframe_uris is not None and len(keyframe_uris) != len(scenes):
            raise CatalogError(
                f"{len(keyframe_uris)} keyframe URIs for {len(scenes)} scenes; give one per scene"
            )
        uris = keyframe_uris or [None] * len(scenes)
        scene_rows = [
            (asset_id, seq, _float(s["start"]), _float(s["end"]), _float(s.get("confidence")), uri)
            for seq, (s, uri) in enumerate(zip(scenes, uris, strict=True))
        ]
        chapter_rows = [
            (asset_id, seq, _float(c["start"]), _float(c["end"]), str(c.get("title") or f"Chapter {seq + 1}"))
            for seq, c in enumerate(chapters)
        ]
        with self._tx() as cur:
            _require_asset(cur, asset_id)
            cur.execute("DELETE FROM scenes WHERE asset_id = %s", (asset_id,))
            cur.execute("DELETE FROM chapters WHERE asset_id = %s", (asset_id,))
            if scene_rows:
                execute_values(
                    cur,
                    "INSERT INTO scenes (asset_id, seq, start_s, end_s, confidence, keyframe_uri) VALUES %s",
                    scene_rows,
                )
            if chapter_rows:
                execute_values(
                    cur, "INSERT INTO chapters (asset_id, seq, start_s, end_s, title) VALUES %s", chapter_rows
                )
            self._event(
                cur, asset_id, "scenes", detail={"scenes": len(scene_rows), "chapters": len(chapter_rows)}
            )

    # -- labels --------------------------------------------------------------------------------------

    def save_labels(
        self, asset_id: str, per_scene: list[list[dict[str, Any]]], aggregated: list[dict[str, Any]]
    ) -> None:
        """Replace the asset's labels: ``per_scene[i]`` is the top-k ``{"label", "score"}`` of scene i's
        keyframe; ``aggregated`` is the asset level ``{"label", "score", "scenes": [scene seqs]}``."""
        scene_rows: dict[tuple[int, str], float] = {}
        for seq, labels in enumerate(per_scene):
            for item in labels:
                key = (seq, str(item["label"]))
                scene_rows[key] = max(float(item["score"]), scene_rows.get(key, float("-inf")))
        asset_rows: dict[str, tuple[float, list[int]]] = {}
        for item in aggregated:
            label = str(item["label"])
            scenes = sorted({int(s) for s in item.get("scenes") or []})
            if label in asset_rows:
                raise CatalogError(
                    f"label {label!r} appears twice in the aggregated labels of asset {asset_id}"
                )
            asset_rows[label] = (float(item["score"]), scenes)
        with self._tx() as cur:
            _require_asset(cur, asset_id)
            cur.execute("DELETE FROM scene_labels WHERE asset_id = %s", (asset_id,))
            cur.execute("DELETE FROM asset_labels WHERE asset_id = %s", (asset_id,))
            if scene_rows:
                execute_values(
                    cur,
                    "INSERT INTO scene_labels (asset_id, scene_seq, label, score) VALUES %s",
                    [(asset_id, seq, label, score) for (seq, label), score in scene_rows.items()],
                )
            if asset_rows:
                execute_values(
                    cur,
                    "INSERT INTO asset_labels (asset_id, label, score, scenes) VALUES %s",
                    [(asset_id, label, score, scenes) for label, (score, scenes) in asset_rows.items()],
                    template="(%s, %s, %s, %s::integer[])",
                )
            _refresh(cur, [asset_id])
            self._event(cur, asset_id, "labels", detail={"labels": sorted(asset_rows)})

    # -- moderation ----------------------------------------------------------------------------------

    def save_moderation(self, asset_id: str, per_scene: list[dict[str, Any]], flag: dict[str, Any]) -> None:
        """Replace the per-keyframe moderation scores (``{"score", "detections"}``, one per scene) and
        set the asset's flag from ``flag`` (``{"flagged", "max_score", "threshold"}``). A "moderation"
        audit event is written when the asset is flagged, or when an earlier flag is cleared."""
        rows = [
            (asset_id, seq, float(item["score"]), _json(item.get("detections") or []))
            for seq, item in enumerate(per_scene)
        ]
        flagged = bool(flag.get("flagged"))
        max_score, threshold = _float(flag.get("max_score")), _float(flag.get("threshold"))
        with self._tx() as cur:
            cur.execute(
                "SELECT moderation_flagged FROM assets WHERE asset_id = %s FOR NO KEY UPDATE", (asset_id,)
            )
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            was_flagged = bool(row["moderation_flagged"])
            cur.execute("DELETE FROM moderation WHERE asset_id = %s", (asset_id,))
            if rows:
                execute_values(
                    cur,
                    "INSERT INTO moderation (asset_id, scene_seq, score, detections) VALUES %s",
                    rows,
                    template="(%s, %s, %s, %s::jsonb)",
                )
            cur.execute(
                "UPDATE assets SET moderation_flagged = %s, moderation_score = %s, moderation_threshold = %s,"
                " updated_at = now() WHERE asset_id = %s",
                (flagged, max_score, threshold, asset_id),
            )
            if flagged or was_flagged:
                scenes = [
                    seq
                    for seq, item in enumerate(per_scene)
                    if threshold is not None and item["score"] >= threshold
                ]
                self._event(
                    cur,
                    asset_id,
                    "moderation",
                    detail={
                        "flagged": flagged,
                        "max_score": max_score,
                        "threshold": threshold,
                        "scenes": scenes,
                    },
                )
        if flagged:
            log.warning(
                "asset %s flagged for review: moderation score %s >= %s", asset_id, max_score, threshold
            )

    # -- tags ----------------------------------------------------------------------------------------

    def update_tags(
        self,
        asset_id: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        actor: str,
        source: str,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Replace the asset's tags with ``change(current_tags)`` under a row lock, write a "tags" audit
        event with the per-key before/after diff and rebuild the search document. No event when
        nothing changed. Returns (before, after). Validation is the caller's (vam.enrich.tags)."""
        with self._tx() as cur:
            cur.execute("SELECT tags FROM assets WHERE asset_id = %s FOR NO KEY UPDATE", (asset_id,))
            row = cur.fetchone()
            if row is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            before = dict(row["tags"] or {})
            after = change(dict(before))
            if after == before:
                return before, after
            diff = {
                key: {"before": before.get(key), "after": after.get(key)}
                for key in sorted(before.keys() | after.keys())
                if before.get(key) != after.get(key)
            }
            cur.execute(
                "UPDATE assets SET tags = %s, updated_at = now() WHERE asset_id = %s",
                (_json(after), asset_id),
            )
            _refresh(cur, [asset_id])
            self._event(cur, asset_id, "tags", actor=actor, detail={"source": source, "diff": diff})
        log.info("asset %s: tags %s changed by %s (%s)", asset_id, ", ".join(diff), actor, source)
        return before, after

    # -- published tracks, search document -----------------------------------------------------------

    def set_published_tracks(
        self, asset_id: str, captions_uri: str | None = None, chapters_uri: str | None = None
    ) -> None:
        """Record the published WebVTT tracks. None leaves that track's URI as it is (the captions and
        the chapters are published by different steps)."""
        with self._tx() as cur:
            cur.execute(
                "UPDATE assets SET captions_uri = coalesce(%s, captions_uri),"
                " chapters_uri = coalesce(%s, chapters_uri), updated_at = now() WHERE asset_id = %s",
                (captions_uri, chapters_uri, asset_id),
            )
            if cur.rowcount == 0:
                raise CatalogError(f"no asset {asset_id} in the catalog")

    def refresh_search_document(self, asset_id: str) -> None:
        """Rebuild the asset's search document (title A, tags and labels B, transcript C)."""
        with self._tx() as cur:
            _refresh(cur, [asset_id])

    # -- read back -----------------------------------------------------------------------------------

    def get_enrichment(self, asset_id: str) -> dict[str, Any]:
        """Everything the enrichment steps stored for the asset.

        ``{"transcript": {"language", "model", "text", "segments": [{"start", "end", "text"}]} | None,
        "scenes": [{"start", "end", "confidence"}], "keyframes": [uri | None per scene],
        "chapters": [{"start", "end", "title"}], "labels": [{"label", "score", "scenes"}],
        "moderation": {"flagged", "max_score", "threshold", "per_scene": [{"score", "detections"}]} | None,
        "tags": {...}, "captions_uri", "chapters_uri"}``. A transcript of an asset without speech has
        empty text and no segments; None means not transcribed.
        """
        with self._tx() as cur:
            cur.execute(
                "SELECT tags, moderation_flagged, moderation_score, moderation_threshold, captions_uri,"
                " chapters_uri FROM assets WHERE asset_id = %s",
                (asset_id,),
            )
            asset = cur.fetchone()
            if asset is None:
                raise CatalogError(f"no asset {asset_id} in the catalog")
            cur.execute("SELECT language, model, text FROM transcripts WHERE asset_id = %s", (asset_id,))
            transcript_row = cur.fetchone()
            cur.execute(
                "SELECT start_s, end_s, text FROM transcript_segments WHERE asset_id = %s ORDER BY seq",
                (asset_id,),
            )
            segments = cur.fetchall()
            cur.execute(
                "SELECT start_s, end_s, confidence, keyframe_uri FROM scenes"
                " WHERE asset_id = %s ORDER BY seq",
                (asset_id,),
            )
            scenes = cur.fetchall()
            cur.execute(
                "SELECT start_s, end_s, title FROM chapters WHERE asset_id = %s ORDER BY seq", (asset_id,)
            )
            chapters = cur.fetchall()
            cur.execute(
                "SELECT label, score, scenes FROM asset_labels"
                " WHERE asset_id = %s ORDER BY score DESC, label",
                (asset_id,),
            )
            labels = cur.fetchall()
            cur.execute(
                "SELECT score, detections FROM moderation WHERE asset_id = %s ORDER BY scene_seq", (asset_id,)
            )
            moderation = cur.fetchall()
        transcript = None
        if transcript_row is not None:
            transcript = {
                "language": transcript_row["language"],
                "model": transcript_row["model"],
                "text": transcript_row["text"],
                "segments": [{"start": s["start_s"], "end": s["end_s"], "text": s["text"]} for s in segments],
            }
        flagged = asset["moderation_flagged"]
        return {
            "transcript": transcript,
            "scenes": [
                {"start": s["start_s"], "end": s["end_s"], "confidence": _round(s["confidence"])}
                for s in scenes
            ],
            "keyframes": [s["keyframe_uri"] for s in scenes],
            "chapters": [{"start": c["start_s"], "end": c["end_s"], "title": c["title"]} for c in chapters],
            "labels": [
                {"label": r["label"], "score": _round(r["score"]), "scenes": list(r["scenes"])}
                for r in labels
            ],
            "moderation": None
            if flagged is None
            else {
                "flagged": flagged,
                "max_score": _round(asset["moderation_score"]),
                "threshold": _round(asset["moderation_threshold"]),
                "per_scene": [
                    {"score": _round(m["score"]), "detections": m["detections"]} for m in moderation
                ],
            },
            "tags": dict(asset["tags"] or {}),
            "captions_uri": asset["captions_uri"],
            "chapters_uri": asset["chapters_uri"],
        }

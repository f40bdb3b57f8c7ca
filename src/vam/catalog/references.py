"""Where the catalog points at objects: every (table, column) holding an object's URI beside
``stored_objects.uri``. A lifecycle move and a dedup re-point all of them in the transaction that
records the change, so a new column that stores an object's URI belongs here (each table has an
``asset_id`` column)."""

from __future__ import annotations

OBJECT_URI_COLUMNS: tuple[tuple[str, str], ...] = (
    ("assets", "source_uri"),
    ("assets", "hls_uri"),
    ("assets", "dash_uri"),
    ("assets", "captions_uri"),
    ("assets", "chapters_uri"),
    ("renditions", "uri"),
    ("derived_outputs", "uri"),
    ("scenes", "keyframe_uri"),
    ("quality_metrics", "frames_uri"),
    ("ladder_analyses", "chart_uri"),
    ("transformations", "uri"),
)

"""Enrichment rows in the real catalog: save/read round trip, re-runs replace rows, moderation flag."""

from __future__ import annotations

import hashlib
import re
import threading
import uuid

import numpy as np
import pytest
from psycopg2.extras import RealDictCursor

from vam.catalog import open_catalog
from vam.errors import CatalogError

pytestmark = pytest.mark.integration

TRANSCRIPT = {
    "language": "en",
    "model": "tiny.en",
    "text": "Hello there. The red car drives away.",
    "segments": [
        {
            "start": 0.5,
            "end": 1.7,
            "text": " Hello there.",
            "words": [
                {"word": "Hello", "start": 0.5, "end": 0.9, "probability": np.float32(0.98)},
                {"word": "there.", "start": 1.0, "end": 1.7, "probability": 0.97},
            ],
        },
        {"start": 2.0, "end": 4.25, "text": "The red car drives away.", "words": []},
    ],
}


@pytest.fixture
def cat(catalog_dsn):
    with open_catalog(catalog_dsn, actor="test") as catalog:
        yield catalog


def new_asset(cat, title: str = "clip.mp4", **meta) -> str:
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    asset_id, _ = cat.register_asset(
        sha256=sha, source_uri=f"file:///in/{sha}.mp4", size_bytes=1, title=title
    )
    cat.update_asset(asset_id, source_meta={"duration": 10.0, "height": 720, "video_codec": "h264", **meta})
    return asset_id


def sql(cat, query: str, *params) -> list[dict]:
    """Raw SQL on the catalog's connection, in a transaction of its own (committed on exit)."""
    with cat.conn, cat.conn.cursor(cursor_factory=RealDictCursor) as cur:
        cur.execute(query, params)
        return [dict(r) for r in cur.fetchall()] if cur.description else []


def rows(cat, table: str, asset_id: str) -> list[dict]:
    return sql(cat, f"SELECT * FROM {table} WHERE asset_id = %s", asset_id)  # table names are literals here


def search_document(cat, asset_id: str) -> str:
    found = sql(cat, "SELECT document::text AS d FROM search_documents WHERE asset_id = %s", asset_id)
    return found[0]["d"]


def test_nothing_saved_yet(cat):
    asset_id = new_asset(cat)
    out = cat.get_enrichment(asset_id)
    assert out["transcript"] is None
    assert out["moderation"] is None
    assert (out["scenes"], out["chapters"], out["labels"], out["tags"]) == ([], [], [], {})


def test_round_trip(cat):
    asset_id = new_asset(cat)
    vectors = np.random.default_rng(1).standard_normal((2, 384)).astype(np.float32)
    cat.save_transcript(asset_id, TRANSCRIPT, embeddings=vectors)
    cat.save_scenes(
        asset_id,
        [{"start": 0.0, "end": 2.0, "confidence": 1.0}, {"start": 2.0, "end": 4.25, "confidence": 0.97}],
        [{"start": 0.0, "end": 4.25, "title": "Chapter 1"}],
        ["file:///k/0.jpg", "file:///k/1.jpg"],
    )
    cat.save_labels(
        asset_id,
        [
            [{"label": "sports car", "score": 0.8}, {"label": "road", "score": 0.1}],
            [{"label": "road", "score": 0.6}],
        ],
        [
            {"label": "sports car", "score": 0.8, "scenes": [0]},
            {"label": "road", "score": 0.6, "scenes": [0, 1]},
        ],
    )
    cat.save_moderation(
        asset_id,
        [
            {"score": 0.01, "detections": []},
            {"score": 0.02, "detections": [{"class": "FACE_F", "score": 0.3}]},
        ],
        {"flagged": False, "max_score": 0.02, "threshold": 0.6},
    )
    cat.set_published_tracks(asset_id, "file:///o/captions.vtt", None)
    cat.set_published_tracks(asset_id, None, "file:///o/chapters.vtt")

    out = cat.get_enrichment(asset_id)
    assert out["transcript"] == {
        "language": "en",
        "model": "tiny.en",
        "text": "Hello there. The red car drives away.",
        "segments": [
            {"start": 0.5, "end": 1.7, "text": "Hello there."},
            {"start": 2.0, "end": 4.25, "text": "The red car drives away."},
        ],
    }
    assert out["scenes"] == [
        {"start": 0.0, "end": 2.0, "confidence": 1.0},
        {"start": 2.0, "end": 4.25, "confidence": 0.97},
    ]
    assert out["keyframes"] == ["file:///k/0.jpg", "file:///k/1.jpg"]
    assert out["chapters"] == [{"start": 0.0, "end": 4.25, "title": "Chapter 1"}]
    assert out["labels"] == [
        {"label": "sports car", "score": 0.8, "scenes": [0]},
        {"label": "road", "score": 0.6, "scenes": [0, 1]},
    ]
    assert out["moderation"] == {
        "flagged": False,
        "max_score": 0.02,
        "threshold": 0.6,
        "per_scene": [
            {"score": 0.01, "detections": []},
            {"score": 0.02, "detections": [{"class": "FACE_F", "score": 0.3}]},
        ],
    }
    assert (out["captions_uri"], out["chapters_uri"]) == ("file:///o/captions.vtt", "file:///o/chapters.vtt")

    segs = sorted(rows(cat, "transcript_segments", asset_id), key=lambda r: r["seq"])
    assert segs[0]["words"][0] == {
        "word": "Hello",
        "start": 0.5,
        "end": 0.9,
        "probability": pytest.approx(0.98),
    }
    assert np.allclose(np.asarray(segs[1]["embedding"], dtype=np.float32), vectors[1])
    assert {r["label"] for r in rows(cat, "scene_labels", asset_id)} == {"sports car", "road"}
    transcript_event = cat.last_event(asset_id, "transcript")
    assert transcript_event["detail"]["segments"] == 2
    assert transcript_event["actor"] == "test"
    assert cat.last_event(asset_id, "moderation") is None  # not flagged: no moderation event

    document = search_document(cat, asset_id)
    assert "'clip':1A" in document  # title
    assert re.search(r"'sport':\d+B", document)  # labels
    assert re.search(r"'hello':\d+C", document)  # transcript


def test_resave_replaces_rows(cat):
    asset_id = new_asset(cat)
    cat.save_transcript(asset_id, TRANSCRIPT, embeddings=np.ones((2, 384)))
    cat.save_transcript(
        asset_id,
        {"language": "en", "model": "small", "segments": [{"start": 1.0, "end": 2.0, "text": "Only this."}]},
    )
    out = cat.get_enrichment(asset_id)
    assert out["transcript"]["model"] == "small"
    assert out["transcript"]["text"] == "Only this."  # joined from the segments when not given
    assert out["transcript"]["segments"] == [{"start": 1.0, "end": 2.0, "text": "Only this."}]
    assert [r["embedding"] for r in rows(cat, "transcript_segments", asset_id)] == [None]

    cat.save_scenes(asset_id, [{"start": 0, "end": 1, "confidence": 0.9}] * 3, [])
    cat.save_scenes(
        asset_id, [{"start": 0, "end": 5, "confidence": 0.5}], [{"start": 0, "end": 5, "title": "All"}]
    )
    out = cat.get_enrichment(asset_id)
    assert out["scenes"] == [{"start": 0.0, "end": 5.0, "confidence": 0.5}]
    assert out["keyframes"] == [None]
    assert out["chapters"] == [{"start": 0.0, "end": 5.0, "title": "All"}]

    cat.save_labels(
        asset_id, [[{"label": "cat", "score": 0.9}]], [{"label": "cat", "score": 0.9, "scenes": [0]}]
    )
    cat.save_labels(
        asset_id, [[{"label": "dog", "score": 0.7}]], [{"label": "dog", "score": 0.7, "scenes": [0]}]
    )
    assert [label["label"] for label in cat.get_enrichment(asset_id)["labels"]] == ["dog"]
    assert [r["label"] for r in rows(cat, "scene_labels", asset_id)] == ["dog"]

    # no speech: an empty transcript, not None
    cat.save_transcript(asset_id, {"language": "en", "model": "tiny.en", "text": "", "segments": []})
    assert cat.get_enrichment(asset_id)["transcript"]["segments"] == []
    assert cat.get_enrichment(asset_id)["transcript"]["text"] == ""
    assert cat.last_event(asset_id, "transcript")["detail"]["segments"] == 0


def test_moderation_flag_and_event(cat):
    asset_id = new_asset(cat)
    per_scene = [
        {"score": 0.1, "detections": []},
        {"score": 0.85, "detections": [{"class": "X", "score": 0.85}]},
    ]
    cat.save_moderation(asset_id, per_scene, {"flagged": True, "max_score": 0.85, "threshold": 0.6})
    asset = cat.get_asset(asset_id)
    assert asset["moderation_flagged"] is True
    assert asset["moderation_score"] == pytest.approx(0.85)
    event = cat.last_event(asset_id, "moderation")
    assert event["detail"] == {"flagged": True, "max_score": 0.85, "threshold": 0.6, "scenes": [1]}
    out = cat.get_enrichment(asset_id)["moderation"]
    assert out["flagged"] is True
    assert [s["score"] for s in out["per_scene"]] == [0.1, 0.85]

    # a re-run below the threshold clears the flag, replaces the rows and records that
    cat.save_moderation(asset_id, per_scene[:1], {"flagged": False, "max_score": 0.1, "threshold": 0.6})
    assert cat.get_asset(asset_id)["moderation_flagged"] is False
    assert len(rows(cat, "moderation", asset_id)) == 1
    assert cat.last_event(asset_id, "moderation")["detail"]["flagged"] is False
    assert len([e for e in cat.events(asset_id) if e["kind"] == "moderation"]) == 2


def test_bad_input_is_refused_and_nothing_is_half_written(cat):
    asset_id = new_asset(cat)
    cat.save_transcript(asset_id, TRANSCRIPT)
    with pytest.raises(CatalogError, match=r"embeddings must have shape \(2, 384\)"):
        cat.save_transcript(asset_id, TRANSCRIPT, embeddings=np.zeros((2, 10)))
    with pytest.raises(CatalogError, match="bad times"):
        cat.save_transcript(asset_id, {"segments": [{"start": 3, "end": 1, "text": "x"}]})
    with pytest.raises(CatalogError, match="2 keyframe URIs for 1 scenes"):
        cat.save_scenes(asset_id, [{"start": 0, "end": 1, "confidence": 1}], [], ["a", "b"])
    assert len(cat.get_enrichment(asset_id)["transcript"]["segments"]) == 2
    with pytest.raises(CatalogError, match="no asset nope"):
        cat.save_transcript("nope", TRANSCRIPT)
    with pytest.raises(CatalogError, match="no asset nope"):
        cat.get_enrichment("nope")
    with pytest.raises(CatalogError, match="no asset nope"):
        cat.set_published_tracks("nope", "x", None)


def test_rows_go_with_the_asset(cat):
    asset_id = new_asset(cat)
    cat.save_transcript(asset_id, TRANSCRIPT)
    cat.refresh_search_document(asset_id)
    sql(cat, "DELETE FROM assets WHERE asset_id = %s", asset_id)
    for table in ("transcripts", "transcript_segments", "search_documents"):
        assert rows(cat, table, asset_id) == []


def test_concurrent_steps_do_not_lose_each_others_search_words(cat, catalog_dsn):
    """Labels saved while a transcript transaction is open still end up in one document with it."""
    asset_id = new_asset(cat)
    with open_catalog(catalog_dsn) as other:
        conn = other.conn
        with conn.cursor() as cur:  # a transcript step, half way: its rows written, not committed
            cur.execute(
                "INSERT INTO transcripts (asset_id, text) VALUES (%s, 'the zqvordlak speaks')", (asset_id,)
            )
            cur.execute("SELECT refresh_search_documents(ARRAY[%s])", (asset_id,))
        labelled = threading.Thread(
            target=cat.save_labels, args=(asset_id, [], [{"label": "zqlabelmark", "score": 0.9}])
        )
        labelled.start()
        labelled.join(0.5)
        assert labelled.is_alive()  # waits for the transcript step's lock on the asset
        conn.commit()
        labelled.join(10)
        assert not labelled.is_alive()
    document = search_document(cat, asset_id)
    assert "zqvordlak" in document
    assert "zqlabelmark" in document

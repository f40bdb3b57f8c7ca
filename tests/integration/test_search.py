"""Catalog search on the real PostgreSQL: full-text ranking and time offsets, filters, semantic mode.

The session catalog is shared with other tests, so each test searches for words it made up
(and scopes with a tag of its own where it lists assets).
"""

from __future__ import annotations

import functools
import hashlib
import random
import string
import uuid

import numpy as np
import pytest

from vam.catalog import open_catalog
from vam.catalog.search import SEMANTIC_MIN_SCORE, SearchError, SearchFilters, search
from vam.enrich.tags import apply_changes, check_source, load_taxonomy
from vam.settings import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def cat(catalog_dsn):
    with open_catalog(catalog_dsn, actor="test") as catalog:
        yield catalog


@functools.cache
def taxonomy():
    return load_taxonomy(REPO_ROOT / "include" / "taxonomy.yaml")


def apply_tags(cat, asset_id: str, changes: dict, *, actor: str, source: str) -> dict:
    """What the tags step does: check the source, merge the changes under the catalog's row lock."""
    check_source(source)
    tax = taxonomy()
    _, after = cat.update_tags(
        asset_id, lambda current: apply_changes(tax, current, changes), actor=actor, source=source
    )
    return after


def made_up_word() -> str:
    """A word no other test uses (letters only, so the English stemmer keeps it whole)."""
    return "zq" + "".join(random.choices("bcdfghjklmnpqrstvwxz", k=8))


def new_asset(cat, title: str = "clip.mp4", *, status: str | None = None, **meta) -> str:
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    asset_id, _ = cat.register_asset(
        sha256=sha, source_uri=f"file:///in/{sha}.mp4", size_bytes=1, title=title
    )
    cat.update_asset(asset_id, source_meta={"duration": 60.0, "height": 720, "video_codec": "h264", **meta})
    if status:
        cat.set_status(asset_id, status)
    return asset_id


def transcript(*segments: tuple[float, float, str]) -> dict:
    return {
        "language": "en",
        "model": "test",
        "text": " ".join(s[2] for s in segments),
        "segments": [{"start": a, "end": b, "text": t, "words": []} for a, b, t in segments],
    }


def ids(hits: list[dict]) -> list[str]:
    return [h["asset_id"] for h in hits]


def test_spoken_word_found_with_time_offsets(cat):
    word = made_up_word()
    asset_id = new_asset(cat, "interview.mp4")
    cat.save_transcript(
        asset_id,
        transcript(
            (0.0, 3.5, "Welcome to the show."),
            (3.5, 7.25, f"Today we talk about the {word} project."),
            (7.25, 12.0, "It started in a garage."),
            (12.0, 15.5, f"The {word} team grew fast."),
        ),
    )
    hits = search(cat, word)
    assert ids(hits) == [asset_id]
    hit = hits[0]
    assert hit["title"] == "interview.mp4"
    assert hit["status"] == "ingesting"
    assert 0 < hit["score"] < 1
    assert [(m["start"], m["end"]) for m in hit["matches"]] == [(3.5, 7.25), (12.0, 15.5)]
    assert hit["matches"][0]["text"] == f"Today we talk about the {word} project."
    assert f"<b>{word}</b>" in hit["matches"][0]["highlight"]

    # the same through stemming, a phrase, and an exclusion
    assert ids(search(cat, f"{word} teams")) == [asset_id]
    phrase = search(cat, f'"{word} team"')
    assert [m["start"] for m in phrase[0]["matches"]] == [12.0]
    assert search(cat, f"{word} -garage") == []
    assert search(cat, word, min_score=0.99) == []
    assert ids(search(cat, word, min_score=hit["score"] - 1e-5)) == [asset_id]


def test_words_spread_over_segments_give_the_segments_with_any_of_them(cat):
    first, second = made_up_word(), made_up_word()
    asset_id = new_asset(cat)
    cat.save_transcript(
        asset_id, transcript((0, 2, f"A {first} here."), (2, 4, "Nothing."), (4, 6, f"A {second}."))
    )
    hits = search(cat, f"{first} {second}")
    assert ids(hits) == [asset_id]
    assert [m["start"] for m in hits[0]["matches"]] == [0, 4]


def test_matches_are_capped_per_asset(cat):
    word = made_up_word()
    asset_id = new_asset(cat)
    cat.save_transcript(asset_id, transcript(*[(i, i + 1, f"{word} number {i}") for i in range(9)]))
    matches = search(cat, word)[0]["matches"]
    assert [m["start"] for m in matches] == [0, 1, 2, 3, 4]


def test_title_hit_ranks_above_transcript_hit(cat):
    word = made_up_word()
    spoken = new_asset(cat, "meeting.mp4")
    cat.save_transcript(
        spoken, transcript((0, 5, f"Someone mentions {word} once."), (5, 9, "Then other things."))
    )
    titled = new_asset(cat, f"{word}_launch_final.mp4")
    hits = search(cat, word)
    assert ids(hits) == [titled, spoken]
    assert hits[0]["score"] > hits[1]["score"]
    assert hits[0]["matches"] == []  # a title hit has no time offsets
    assert hits[1]["matches"][0]["start"] == 0


def test_tags_and_labels_are_searchable(cat):
    word, label = made_up_word(), made_up_word()
    tagged = new_asset(cat)
    apply_tags(cat, tagged, {"campaign": f"{word} spring"}, actor="test", source="cli")
    labelled = new_asset(cat)
    cat.save_labels(
        labelled, [[{"label": label, "score": 0.9}]], [{"label": label, "score": 0.9, "scenes": [0]}]
    )
    assert ids(search(cat, word)) == [tagged]
    assert ids(search(cat, label)) == [labelled]


def test_filters(cat):
    word, campaign = made_up_word(), made_up_word()
    specs = {
        "short_sd": dict(duration=20.0, height=480, video_codec="h264"),
        "long_hd": dict(duration=600.0, height=1080, video_codec="hevc"),
        "mid_4k": dict(duration=120.0, height=2160, display_height=2160, video_codec="av1"),
    }
    assets = {}
    for name, meta in specs.items():
        asset_id = new_asset(cat, f"{name}.mp4", **meta)
        cat.save_transcript(asset_id, transcript((1.0, 2.0, f"the {word} again")))
        apply_tags(cat, asset_id, {"campaign": campaign}, actor="test", source="cli")
        assets[name] = asset_id
    cat.set_status(assets["long_hd"], "ready")
    cat.set_status(assets["mid_4k"], "failed", reason="test")
    cat.save_moderation(
        assets["mid_4k"], [{"score": 0.9, "detections": []}], {"flagged": True, "max_score": 0.9}
    )
    cat.save_moderation(
        assets["short_sd"], [{"score": 0.1, "detections": []}], {"flagged": False, "max_score": 0.1}
    )
    cat.save_labels(assets["long_hd"], [], [{"label": "sky", "score": 0.9}, {"label": "tree", "score": 0.5}])
    cat.save_labels(assets["mid_4k"], [], [{"label": "sky", "score": 0.9}])

    def found(**filters) -> set[str]:
        hits = search(cat, word, filters=SearchFilters(**filters))
        return {name for name, asset_id in assets.items() if asset_id in ids(hits)}

    assert found() == set(specs)
    assert found(min_duration=100) == {"long_hd", "mid_4k"}
    assert found(max_duration=120) == {"short_sd", "mid_4k"}
    assert found(min_duration=100, max_duration=200) == {"mid_4k"}
    assert found(min_height=1080) == {"long_hd", "mid_4k"}
    assert found(max_height=720) == {"short_sd"}
    assert found(codec="HEVC") == {"long_hd"}
    assert found(status="ready") == {"long_hd"}
    assert found(status=["ready", "failed"]) == {"long_hd", "mid_4k"}
    assert found(flagged=True) == {"mid_4k"}
    assert found(flagged=False) == {"short_sd", "long_hd"}  # includes the not-yet-moderated one
    assert found(labels=["sky"]) == {"long_hd", "mid_4k"}
    assert found(labels=["sky", "tree"]) == {"long_hd"}
    assert found(labels=["sky"], min_height=1081) == {"mid_4k"}
    assert found(tags={"campaign": campaign}) == set(specs)
    assert found(tags={"campaign": "someone else's"}) == set()

    # an empty query lists what the filters select, newest first
    browse = search(cat, "", filters=SearchFilters(tags={"campaign": campaign}))
    assert ids(browse) == [assets["mid_4k"], assets["long_hd"], assets["short_sd"]]
    assert all(h["score"] == 0.0 and h["matches"] == [] for h in browse)


def test_list_tags_filter_by_containment(cat):
    word = made_up_word()
    both = new_asset(cat)
    one = new_asset(cat)
    apply_tags(
        cat,
        both,
        {"product_ids": ["SKU-1", "SKU-2"], "allowed_countries": ["FR", "DE"]},
        actor="t",
        source="cli",
    )
    apply_tags(cat, one, {"product_ids": ["SKU-2"], "tags": [word]}, actor="t", source="cli")
    scope = [both, one]

    def found(tags) -> list[str]:
        return [a for a in ids(search(cat, "", filters=SearchFilters(tags=tags), limit=1000)) if a in scope]

    assert found({"product_ids": "SKU-2"}) == [one, both]
    assert found({"product_ids": "SKU-1"}) == [both]
    assert found({"product_ids": ["SKU-1", "SKU-2"]}) == [both]
    assert found({"allowed_countries": "DE"}) == [both]
    assert found({"tags": word}) == [one]
    assert ids(search(cat, word, filters=SearchFilters(tags={"product_ids": "SKU-1"}))) == []


CONCEPTS = {"car": 7, "cars": 7, "automobile": 7, "vehicle": 7, "dog": 11, "puppy": 11}


def fake_embed(texts: list[str]) -> np.ndarray:
    """Deterministic stand-in for the sentence-embedding model: one dimension per concept."""
    out = np.zeros((len(texts), 384), dtype=np.float32)
    for i, text in enumerate(texts):
        for token in text.lower().translate(str.maketrans("", "", string.punctuation)).split():
            dim = CONCEPTS.get(token, 100 + int(hashlib.md5(token.encode()).hexdigest(), 16) % 284)
            out[i, dim] += 1.0
        norm = np.linalg.norm(out[i])
        if norm:
            out[i] /= norm
    return out


def test_semantic_mode_finds_synonyms(cat):
    scope = made_up_word()
    docs = {
        "cars": [
            (0.0, 4.0, "We washed the car"),
            (4.0, 9.5, "then had lunch"),
            (9.5, 12.0, "my car car car"),
        ],
        "dogs": [(0.0, 3.0, "The puppy sleeps"), (3.0, 6.0, "all afternoon")],
        "none": [(0.0, 2.0, "quiet music plays")],
    }
    assets = {}
    for name, segments in docs.items():
        asset_id = new_asset(cat, f"{name}.mp4")
        apply_tags(cat, asset_id, {"campaign": scope}, actor="test", source="cli")
        data = transcript(*segments)
        cat.save_transcript(asset_id, data, embeddings=fake_embed([s[2] for s in segments]))
        assets[name] = asset_id
    unembedded = new_asset(cat, "old.mp4")  # transcribed before embeddings existed: not a candidate
    cat.save_transcript(unembedded, transcript((0, 1, "automobile automobile")))
    apply_tags(cat, unembedded, {"campaign": scope}, actor="test", source="cli")

    only_ours = SearchFilters(tags={"campaign": scope})
    hits = search(cat, "automobile", mode="semantic", embed=fake_embed, filters=only_ours)
    assert ids(hits) == [assets["cars"]]
    matches = hits[0]["matches"]
    assert [m["start"] for m in matches] == [9.5, 0.0]  # best first; "then had lunch" is below the floor
    assert matches[0]["score"] > matches[1]["score"] >= SEMANTIC_MIN_SCORE
    assert hits[0]["score"] == matches[0]["score"]
    assert ids(search(cat, "a puppy", mode="semantic", embed=fake_embed, filters=only_ours)) == [
        assets["dogs"]
    ]
    hd_only = SearchFilters(tags={"campaign": scope}, min_height=1080)
    assert search(cat, "automobile", mode="semantic", embed=fake_embed, filters=hd_only) == []
    # plain text search does not know that an automobile is a car
    assert ids(search(cat, "automobile", filters=only_ours)) == [unembedded]
    # without the scope the synonym hit still comes first among everything in the catalog
    assert ids(search(cat, "automobile", mode="semantic", embed=fake_embed, limit=1)) == [assets["cars"]]


def test_bad_requests(cat):
    with pytest.raises(SearchError, match="unknown search mode 'fuzzy'; one of text, semantic"):
        search(cat, "x", mode="fuzzy")
    with pytest.raises(SearchError, match="unknown status done"):
        search(cat, "x", filters=SearchFilters(status="done"))
    with pytest.raises(SearchError, match="min_height must be a number"):
        search(cat, "x", filters=SearchFilters(min_height="1080"))
    with pytest.raises(SearchError, match="semantic search needs a query"):
        search(cat, " ", mode="semantic", embed=fake_embed)
    with pytest.raises(SearchError, match="semantic search needs the embedding function"):
        search(cat, "automobile", mode="semantic")
    with pytest.raises(SearchError, match=r"returned shape \(10,\), expected \(384,\)"):
        search(cat, "automobile", mode="semantic", embed=lambda texts: np.ones((1, 10)))
    with pytest.raises(SearchError, match="limit must be an integer from 1 to 1000"):
        search(cat, "x", limit=0)
    assert search(cat, "the and of") == []  # stop words only: no lexemes, no hits
    assert search(cat, "'\"&|!:*()<->") == []  # query syntax characters are not an error

"""Manual tags in the real catalog (merge, audit, search document) and sidecar files beside a video."""

from __future__ import annotations

import hashlib
import json
import uuid

import pytest

from vam.catalog import open_catalog
from vam.catalog.search import SearchFilters, search
from vam.enrich.tags import InvalidTags, apply_changes, check_source, load_sidecar, load_taxonomy
from vam.errors import VamError
from vam.settings import REPO_ROOT

pytestmark = pytest.mark.integration


@pytest.fixture
def cat(catalog_dsn):
    with open_catalog(catalog_dsn, actor="test") as catalog:
        yield catalog


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(REPO_ROOT / "include" / "taxonomy.yaml")


def new_asset(cat) -> str:
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    asset_id, _ = cat.register_asset(
        sha256=sha, source_uri=f"file:///in/{sha}.mp4", size_bytes=1, title="t.mp4"
    )
    cat.update_asset(asset_id, source_meta={"duration": 5.0, "height": 360, "video_codec": "h264"})
    return asset_id


def apply_tags(cat, asset_id: str, changes: dict, *, actor: str, source: str, taxonomy) -> dict:
    """What the tags step does: check the source, merge the changes under the catalog's row lock."""
    check_source(source)
    _, after = cat.update_tags(
        asset_id,
        lambda current: apply_changes(taxonomy, current, changes, where=f"asset {asset_id}"),
        actor=actor,
        source=source,
    )
    return after


def tag_events(cat, asset_id: str) -> list[dict]:
    return [e for e in cat.events(asset_id) if e["kind"] == "tags"]


def test_apply_tags_merges_and_audits(cat, taxonomy):
    asset_id = new_asset(cat)
    campaign = "zqcampaign" + uuid.uuid4().hex[:6].translate(str.maketrans("0123456789", "ghijklmnop"))
    after = apply_tags(
        cat,
        asset_id,
        {
            "campaign": campaign,
            "tags": ["Cats"],
            "allowed_countries": ["fr", "de"],
            "license_expiry": "2027-03-01",
        },
        actor="ingest",
        source="sidecar",
        taxonomy=taxonomy,
    )
    assert after == {
        "campaign": campaign,
        "tags": ["cats"],
        "allowed_countries": ["DE", "FR"],
        "license_expiry": "2027-03-01",
    }
    after = apply_tags(
        cat,
        asset_id,
        {"tags+": ["dogs"], "allowed_countries-": ["FR"], "license_expiry": None, "licensor": "Getty"},
        actor="alice",
        source="cli",
        taxonomy=taxonomy,
    )
    assert after == {
        "campaign": campaign,
        "tags": ["cats", "dogs"],
        "allowed_countries": ["DE"],
        "licensor": "Getty",
    }
    assert cat.get_asset(asset_id)["tags"] == after

    events = tag_events(cat, asset_id)
    assert len(events) == 2
    assert events[0]["actor"] == "ingest"
    assert events[0]["detail"]["source"] == "sidecar"
    assert events[0]["detail"]["diff"]["campaign"] == {"before": None, "after": campaign}
    last = events[1]
    assert last["actor"] == "alice"
    assert last["detail"]["source"] == "cli"
    assert last["detail"]["diff"] == {
        "allowed_countries": {"before": ["DE", "FR"], "after": ["DE"]},
        "license_expiry": {"before": "2027-03-01", "after": None},
        "licensor": {"before": None, "after": "Getty"},
        "tags": {"before": ["cats"], "after": ["cats", "dogs"]},
    }

    # the search document follows the tags
    assert [h["asset_id"] for h in search(cat, campaign)] == [asset_id]
    assert [h["asset_id"] for h in search(cat, "", filters=SearchFilters(tags={"campaign": campaign}))] == [
        asset_id
    ]

    # the same change again changes nothing and writes no event
    apply_tags(cat, asset_id, {"tags+": ["dogs"]}, actor="alice", source="cli", taxonomy=taxonomy)
    assert len(tag_events(cat, asset_id)) == 2


def test_invalid_changes_leave_the_tags_alone(cat, taxonomy):
    asset_id = new_asset(cat)
    apply_tags(cat, asset_id, {"allowed_countries": ["FR"]}, actor="a", source="run_conf", taxonomy=taxonomy)
    with pytest.raises(InvalidTags, match="unknown tag key 'colour'"):
        apply_tags(
            cat, asset_id, {"colour": "red", "campaign": "x"}, actor="a", source="cli", taxonomy=taxonomy
        )
    with pytest.raises(
        InvalidTags, match="allowed_countries and blocked_countries may not share values, both have FR"
    ):
        apply_tags(cat, asset_id, {"blocked_countries+": ["fr"]}, actor="a", source="cli", taxonomy=taxonomy)
    with pytest.raises(VamError, match="unknown tag source 'email'"):
        apply_tags(cat, asset_id, {"campaign": "x"}, actor="a", source="email", taxonomy=taxonomy)
    assert cat.get_asset(asset_id)["tags"] == {"allowed_countries": ["FR"]}
    assert len(tag_events(cat, asset_id)) == 1


def test_apply_tags_with_a_non_strict_taxonomy(cat, tmp_path):
    path = tmp_path / "taxonomy.yaml"
    path.write_text("strict: false\nkeys:\n  campaign: {type: string}\n")
    asset_id = new_asset(cat)
    loose = load_taxonomy(path)
    tags = apply_tags(cat, asset_id, {"shoot": "Lisbon"}, actor="a", source="cli", taxonomy=loose)
    assert tags == {"shoot": "Lisbon"}


def video(tmp_path, name: str = "My Clip.mp4"):
    path = tmp_path / name
    path.write_bytes(b"not really a video")
    return path


def test_sidecar_json_yaml_and_none(tmp_path, taxonomy):
    clip = video(tmp_path)
    assert load_sidecar(clip) is None
    (tmp_path / "My Clip.json").write_text(json.dumps({"campaign": "spring", "tags": ["a"]}))
    assert load_sidecar(clip.as_uri()) == {"campaign": "spring", "tags": ["a"]}
    (tmp_path / "My Clip.json").unlink()
    (tmp_path / "My Clip.yml").write_text(
        "campaign: spring\nlicense_expiry: 2027-01-31\nblocked_countries: ['NO']\n"
    )
    data = load_sidecar(str(clip), taxonomy=taxonomy)
    assert data["campaign"] == "spring"
    assert taxonomy.validate(data)["license_expiry"] == "2027-01-31"
    assert taxonomy.validate(data)["blocked_countries"] == ["NO"]
    (tmp_path / "My Clip.yml").write_text("")
    assert load_sidecar(clip) == {}
    (tmp_path / "other.yaml").write_text("campaign: not mine\n")
    assert load_sidecar(clip) == {}


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("clip.json", "{'campaign': 1", "not valid JSON"),
        ("clip.yaml", "campaign: [unclosed", "not valid YAML"),
        ("clip.yaml", "- a\n- b\n", "expected a mapping of tag key to value, got list"),
        ("clip.yml", "blocked_countries: [NO, FR]\n", "YAML reads an unquoted NO (Norway) as false"),
        (
            "clip.json",
            '{"license_expiry": "tomorrow"}',
            "license_expiry: 'tomorrow' is not a date written YYYY-MM-DD",
        ),
        ("clip.json", '{"colour": "red"}', "unknown tag key 'colour'"),
    ],
)
def test_invalid_sidecar_names_the_file(tmp_path, taxonomy, filename, content, message):
    clip = video(tmp_path, "clip.mov")
    (tmp_path / filename).write_text(content)
    with pytest.raises(InvalidTags) as info:
        load_sidecar(clip, taxonomy=taxonomy)
    assert str(info.value).startswith(f"sidecar {(tmp_path / filename).as_uri()}: ")
    assert message in str(info.value)


def test_two_sidecars_are_ambiguous(tmp_path):
    clip = video(tmp_path, "clip.mp4")
    (tmp_path / "clip.json").write_text("{}")
    (tmp_path / "clip.yaml").write_text("{}")
    with pytest.raises(
        InvalidTags, match="several sidecars for one video: .*clip.json, .*clip.yaml; keep one"
    ):
        load_sidecar(clip)


def test_sidecar_to_catalog(cat, tmp_path, taxonomy):
    clip = video(tmp_path, "promo.mp4")
    (tmp_path / "promo.yaml").write_text("product_ids: [sku-9, SKU-10]\nusage: Commercial\n")
    asset_id = new_asset(cat)
    tags = apply_tags(cat, asset_id, load_sidecar(clip), actor="vam", source="sidecar", taxonomy=taxonomy)
    assert tags == {"product_ids": ["SKU-9", "SKU-10"], "usage": "commercial"}
    assert tag_events(cat, asset_id)[0]["detail"]["source"] == "sidecar"

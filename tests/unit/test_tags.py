"""Manual tags: the taxonomy in include/taxonomy.yaml, value validation and the CLI assignment syntax."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from vam.enrich.countries import ISO_3166_ALPHA2
from vam.enrich.tags import (
    InvalidTags,
    Taxonomy,
    TaxonomyError,
    apply_changes,
    check_source,
    load_taxonomy,
    parse_assignments,
    sidecar_uris,
    taxonomy_from_dict,
)
from vam.errors import VamError
from vam.settings import REPO_ROOT, load_settings


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return load_taxonomy(REPO_ROOT / "include" / "taxonomy.yaml")


def test_default_taxonomy_is_the_settings_file(taxonomy, monkeypatch):
    monkeypatch.delenv("VAM_TAXONOMY_FILE", raising=False)
    monkeypatch.delenv("VAM_CONFIG", raising=False)
    default = load_taxonomy(load_settings().taxonomy_file)
    assert default.keys.keys() == taxonomy.keys.keys()
    assert taxonomy.strict
    for key in (
        "product_ids",
        "campaign",
        "licensor",
        "license_expiry",
        "allowed_countries",
        "blocked_countries",
    ):
        assert key in taxonomy.keys
    assert "tags" in taxonomy.keys


def test_invalid_tags_is_a_vam_error():
    assert issubclass(InvalidTags, VamError)


def test_validate_normalises_values(taxonomy):
    out = taxonomy.validate(
        {
            "product_ids": ["sku-1", "SKU-2", "sku-1"],
            "campaign": "  Spring 2026 ",
            "licensor": "Getty",
            "license_expiry": "2027-01-31",
            "allowed_countries": "fr, de us",
            "blocked_countries": ["ru"],
            "usage": "Editorial",
            "tags": "Cats,  Outdoor ,cats",
        }
    )
    assert out == {
        "product_ids": ["SKU-1", "SKU-2"],
        "campaign": "Spring 2026",
        "licensor": "Getty",
        "license_expiry": "2027-01-31",
        "allowed_countries": ["DE", "FR", "US"],
        "blocked_countries": ["RU"],
        "usage": "editorial",
        "tags": ["cats", "outdoor"],
    }


def test_unknown_key_in_strict_taxonomy_names_it_and_lists_known_keys(taxonomy):
    with pytest.raises(InvalidTags) as info:
        taxonomy.validate({"campagin": "x"})
    message = str(info.value)
    assert "unknown tag key 'campagin'" in message
    assert "strict" in message
    assert (
        "known keys: allowed_countries, blocked_countries, campaign, license_expiry, licensor" in message
    )  # the known keys, sorted


def test_non_strict_taxonomy_keeps_unknown_keys():
    loose = taxonomy_from_dict({"strict": False, "keys": {"campaign": {"type": "string"}}})
    assert loose.validate({"shoot_location": "Lisbon", "crew": ["ana", "bo"]}) == {
        "shoot_location": "Lisbon",
        "crew": ["ana", "bo"],
    }
    with pytest.raises(InvalidTags, match="lower case letters"):
        loose.validate({"Bad Key": "x"})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-12-31", "2026-12-31"),
        (dt.date(2026, 12, 31), "2026-12-31"),  # YAML reads an unquoted date as a date
    ],
)
def test_dates(taxonomy, value, expected):
    assert taxonomy.validate({"license_expiry": value}) == {"license_expiry": expected}


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("31/12/2026", "license_expiry: '31/12/2026' is not a date written YYYY-MM-DD"),
        ("2026-02-30", "license_expiry: '2026-02-30' is not a valid date (day is out of range for month)"),
        ("2026-13-01", "license_expiry: '2026-13-01' is not a valid date"),
        (dt.datetime(2026, 1, 1, 12, 0), "has a time of day"),
        (20261231, "is not a date written YYYY-MM-DD"),
    ],
)
def test_bad_dates(taxonomy, value, message):
    with pytest.raises(InvalidTags) as info:
        taxonomy.validate({"license_expiry": value})
    assert message in str(info.value)


def test_country_code_list_is_iso_3166_1():
    assert len(ISO_3166_ALPHA2) == 249
    assert {"US", "GB", "FR", "DE", "JP", "BR", "NO", "XK"} - ISO_3166_ALPHA2 == {"XK"}
    assert not {"UK", "EU", "XX", "ZZ"} & ISO_3166_ALPHA2


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (["USA"], "allowed_countries: 'USA' is not an ISO 3166-1 alpha-2 country code (two letters"),
        (["F1"], "'F1' is not an ISO 3166-1 alpha-2 country code"),
        (["XX"], "allowed_countries: 'XX' is not an assigned ISO 3166-1 alpha-2 country code"),
        (["UK"], "'UK' is not an assigned ISO 3166-1 alpha-2 country code; did you mean GB?"),
        ([False], "YAML reads an unquoted NO (Norway) as false"),
        ([], "allowed_countries: empty list"),
        (7, "expected a list of values"),
    ],
)
def test_bad_country_codes(taxonomy, value, message):
    with pytest.raises(InvalidTags) as info:
        taxonomy.validate({"allowed_countries": value})
    assert message in str(info.value)


def test_every_problem_is_reported_at_once(taxonomy):
    with pytest.raises(InvalidTags) as info:
        taxonomy.validate({"allowed_countries": ["XX", "USA", "fr"], "usage": "promo", "nope": 1})
    problems = info.value.problems
    assert len(problems) == 4
    assert any("'XX'" in p for p in problems)
    assert any("'USA'" in p for p in problems)
    assert any("usage: 'promo' is not one of editorial, commercial, internal" in p for p in problems)
    assert any("unknown tag key 'nope'" in p for p in problems)


def test_product_id_pattern_and_limits(taxonomy):
    with pytest.raises(
        InvalidTags, match=r"product_ids: 'SKU 1' does not match the pattern .*e\.g\. SKU-10442"
    ):
        taxonomy.validate({"product_ids": ["SKU 1"]})
    assert taxonomy.validate({"product_ids": [12345]}) == {"product_ids": ["12345"]}
    with pytest.raises(InvalidTags, match="tags: 101 values, at most 100"):
        taxonomy.validate({"tags": [f"t{i}" for i in range(101)]})
    with pytest.raises(InvalidTags, match="at most 64"):
        taxonomy.validate({"tags": ["x" * 65]})


def test_strings_and_deletes(taxonomy):
    assert taxonomy.validate({"campaign": None}) == {"campaign": None}
    assert taxonomy.validate({"campaign": 2026}) == {"campaign": "2026"}
    with pytest.raises(InvalidTags, match="campaign: empty value; to remove the key give null"):
        taxonomy.validate({"campaign": "  "})
    with pytest.raises(InvalidTags, match="campaign: expected text, got list"):
        taxonomy.validate({"campaign": ["a"]})
    with pytest.raises(InvalidTags, match="expected text, got bool"):
        taxonomy.validate({"licensor": True})


def test_add_and_remove_only_on_list_keys(taxonomy):
    assert taxonomy.validate({"tags+": ["A", "b"], "allowed_countries-": "fr"}) == {
        "tags+": ["a", "b"],
        "allowed_countries-": ["FR"],
    }
    with pytest.raises(InvalidTags, match="campaign is a string, not a list: set it with campaign=VALUE"):
        taxonomy.validate({"campaign-": ["x"]})


def test_merge_and_disjoint_countries(taxonomy):
    current = {"tags": ["cats"], "allowed_countries": ["FR"], "campaign": "old"}
    changes = taxonomy.validate(
        {"tags+": ["dogs", "cats"], "allowed_countries+": ["de"], "campaign": None, "licensor": "Getty"}
    )
    merged = taxonomy.check(taxonomy.merge(current, changes))
    assert merged == {"tags": ["cats", "dogs"], "allowed_countries": ["DE", "FR"], "licensor": "Getty"}
    emptied = taxonomy.merge(merged, taxonomy.validate({"tags-": ["cats", "dogs"]}))
    assert "tags" not in emptied
    clash = taxonomy.merge(merged, taxonomy.validate({"blocked_countries": ["FR", "RU"]}))
    with pytest.raises(
        InvalidTags, match="allowed_countries and blocked_countries may not share values, both have FR"
    ):
        taxonomy.check(clash)


def test_apply_changes_is_validate_merge_check(taxonomy):
    current = {"tags": ["cats"], "allowed_countries": ["FR"], "campaign": "old"}
    before = json.loads(json.dumps(current))
    changes = {"tags+": ["Dogs", "cats"], "allowed_countries+": "de", "campaign": None, "licensor": "Getty"}
    merged = apply_changes(taxonomy, current, changes, where="asset a1")
    assert merged == {"tags": ["cats", "dogs"], "allowed_countries": ["DE", "FR"], "licensor": "Getty"}
    assert current == before  # pure: the current tags are not modified
    assert apply_changes(taxonomy, merged, {"tags+": ["dogs"]}) == merged
    assert apply_changes(taxonomy, {}, {}) == {}


def test_apply_changes_names_the_bad_key_and_where(taxonomy):
    current = {"allowed_countries": ["FR"]}
    with pytest.raises(InvalidTags) as info:
        apply_changes(taxonomy, current, {"colour": "red", "license_expiry": "soon"}, where="asset a1")
    assert str(info.value).startswith("asset a1: unknown tag key 'colour'")
    assert "license_expiry: 'soon' is not a date" in str(info.value)
    assert info.value.where == "asset a1"
    assert len(info.value.problems) == 2
    with pytest.raises(
        InvalidTags, match="^allowed_countries and blocked_countries may not share values, both have FR$"
    ):
        apply_changes(taxonomy, current, {"blocked_countries+": ["fr"]})
    with pytest.raises(InvalidTags, match="tags must be a mapping"):
        apply_changes(taxonomy, current, ["campaign"])  # type: ignore[arg-type]
    assert current == {"allowed_countries": ["FR"]}


def test_check_source():
    for source in ("sidecar", "run_conf", "cli", "api"):
        assert check_source(source) == source
    with pytest.raises(VamError, match="unknown tag source 'email'; one of sidecar, run_conf, cli, api"):
        check_source("email")


def test_parse_assignments():
    assert parse_assignments(
        [
            "campaign=Spring sale, 2026",
            "tags+=a,b",
            "tags+=c",
            "product_ids-=SKU-1",
            "licensor=",
            "usage = internal",
        ]
    ) == {
        "campaign": "Spring sale, 2026",
        "tags+": ["a", "b", "c"],
        "product_ids-": ["SKU-1"],
        "licensor": None,
        "usage": "internal",
    }


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["campaign"], "cannot read 'campaign': write key=value"),
        (["=x"], "cannot read '=x'"),
        (["tags+="], r"no values after \+="),
        (["campaign=a", "campaign=b"], "campaign is given more than once"),
        (["tags=a", "tags+=b"], "tags is set and changed in one command"),
    ],
)
def test_parse_assignments_errors(args, message):
    with pytest.raises(InvalidTags, match=message):
        parse_assignments(args)


def test_cli_values_validate_like_sidecar_values(taxonomy):
    changes = parse_assignments(["allowed_countries=us,ca", "tags=Launch,Hero", "license_expiry=2026-06-30"])
    assert taxonomy.validate(changes) == {
        "allowed_countries": ["CA", "US"],
        "tags": ["launch", "hero"],
        "license_expiry": "2026-06-30",
    }


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"keys": {}}, "non-empty 'keys' mapping"),
        ({"keys": {"a": {"type": "colour"}}}, "type 'colour' is not one of string, list, date, countries"),
        ({"keys": {"a": {"type": "enum"}}}, "an enum needs a non-empty 'values' list"),
        ({"keys": {"a": {"type": "string", "pattern": "("}}}, "is not a valid regex"),
        ({"keys": {"A-b": {"type": "string"}}}, "key names are lower case"),
        ({"keys": {"a": {"type": "string", "colour": 1}}}, "unknown options ['colour']"),
        ({"keys": {"a": {"type": "string"}}, "disjoint": [["a", "b"]]}, "disjoint key 'a' is not a list key"),
        ({"keys": {"a": {"type": "string"}}, "strict": "yes"}, "strict must be true or false"),
    ],
)
def test_malformed_taxonomy(data, message):
    with pytest.raises(TaxonomyError) as info:
        taxonomy_from_dict(data, source="t.yaml")
    assert message in str(info.value)
    assert str(info.value).startswith("t.yaml")


def test_missing_taxonomy_file(tmp_path):
    with pytest.raises(TaxonomyError, match="no taxonomy file at"):
        load_taxonomy(tmp_path / "none.yaml")


def test_taxonomy_file_round_trip(tmp_path):
    path = tmp_path / "tax.yaml"
    path.write_text(
        yaml.safe_dump({"strict": True, "keys": {"genre": {"type": "enum", "values": ["a", "b"]}}})
    )
    tax = load_taxonomy(path)
    assert tax.validate({"genre": "B"}) == {"genre": "b"}
    assert json.dumps(tax.validate({"genre": "a"}))  # normalised values are JSON


def test_sidecar_names():
    assert sidecar_uris("s3://bucket/drop/My Clip.v2.mp4") == [
        "s3://bucket/drop/My Clip.v2.json",
        "s3://bucket/drop/My Clip.v2.yaml",
        "s3://bucket/drop/My Clip.v2.yml",
    ]
    assert sidecar_uris("/data/in/a%b.mov")[0] == "file:///data/in/a%25b.json"


def test_filter_values_use_the_stored_form(taxonomy):
    assert taxonomy.filter_values({"allowed_countries": "fr", "tags": "A,b", "campaign": " x "}) == {
        "allowed_countries": ["FR"],
        "tags": ["a", "b"],
        "campaign": "x",
    }
    with pytest.raises(InvalidTags, match="search by tag: give key=value"):
        taxonomy.filter_values(parse_assignments(["tags+=a"]))
    with pytest.raises(InvalidTags, match="unknown tag key 'colour'"):
        taxonomy.filter_values({"colour": "red"})

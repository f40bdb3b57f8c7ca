"""Prices, policies and the planner, without servers: money in the plan, precedence (legal hold >
minimum retention > delete > cheapest class), minimum storage durations, packages as a unit, and
batches that keep 100,000 objects under max_map_length."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from vam.errors import PolicyError
from vam.lifecycle.planner import OBJECT_COLUMNS, batches, plan, summarize
from vam.lifecycle.policy import load_policy, policy_from_dict
from vam.lifecycle.prices import load_prices, prices_from_dict

NOW = dt.datetime(2027, 6, 1, tzinfo=dt.UTC)
GB = 10**9


def test_prices_are_the_public_list_prices_with_minimum_durations():
    p = load_prices()
    assert p.monthly_cost("s3", None, GB) == pytest.approx(0.023)
    assert p.monthly_cost("s3", "STANDARD_IA", GB) == pytest.approx(0.0125)
    assert p.monthly_cost("s3", "GLACIER_IR", GB) == pytest.approx(0.004)
    assert p.monthly_cost("s3", "DEEP_ARCHIVE", GB) == pytest.approx(0.00099)
    assert [
        p.monthly_cost("gs", c, GB) for c in ("STANDARD", "NEARLINE", "COLDLINE", "ARCHIVE")
    ] == pytest.approx([0.020, 0.010, 0.004, 0.0012])
    assert [p.min_days("s3", c) for c in ("STANDARD", "STANDARD_IA", "GLACIER_IR", "DEEP_ARCHIVE")] == [
        0,
        30,
        90,
        180,
    ]
    assert [p.min_days("gs", c) for c in ("NEARLINE", "COLDLINE", "ARCHIVE")] == [30, 90, 365]
    # 10 days into Standard-IA's 30: 20 days of 0.0125/GB-month are still owed
    assert p.early_deletion_charge("s3", "STANDARD_IA", GB, 10) == pytest.approx(0.0125 * 20 / 30)
    assert p.early_deletion_charge("s3", "STANDARD_IA", GB, 45) == 0.0
    assert p.transition_cost("s3", "GLACIER_IR", 1000) == pytest.approx(0.02)
    assert p.monthly_cost("file", "STANDARD_IA", GB) == 0.0  # a label on local disks


def test_price_table_errors_name_the_key():
    with pytest.raises(PolicyError, match=r"providers\.s3\.classes\.X: unknown key"):
        prices_from_dict({"providers": {"s3": {"default": "X", "classes": {"X": {"cost": 1}}}}})
    with pytest.raises(PolicyError, match="no price for storage class 'NOPE'"):
        load_prices().monthly_cost("s3", "NOPE", 1)


TIERS = {
    "hot": {"uri": "s3://hot", "class": "STANDARD"},
    "warm": {"uri": "s3://warm", "class": "STANDARD_IA"},
    "cold": {"uri": "gs://cold", "class": "ARCHIVE"},
    "deep": {"uri": "s3://deep", "class": "DEEP_ARCHIVE"},
}


def _policy(rules, retention=(), **extra):
    return policy_from_dict({"name": "t", "version": 3, "tiers": TIERS, "rules": list(rules),
                             "retention": list(retention), **extra})  # fmt: skip


def _objects(*rows):
    base = {
        "asset_id": "a1", "kind": "rendition", "size_bytes": GB, "sha256": "0" * 64, "storage_class": None,
        "written_at": NOW - dt.timedelta(days=200), "created_at": NOW - dt.timedelta(days=200),
        "ready_at": NOW - dt.timedelta(days=200), "last_accessed_at": None, "status": "ready", "tags": {},
        "legal_hold": False, "restore_state": None, "restore_expires_at": None, "restored_from": None,
    }  # fmt: skip
    return pd.DataFrame([{**base, **r} for r in rows], columns=list(OBJECT_COLUMNS))


def test_policy_errors_name_the_key():
    with pytest.raises(PolicyError, match=r"rules\[0\] \(r\)\.action\.move: unknown tier 'tepid'"):
        _policy([{"name": "r", "when": {}, "action": {"move": "tepid"}}])
    with pytest.raises(PolicyError, match=r"rules\[0\] \(r\)\.when: unknown condition\(s\) \['idle'\]"):
        _policy([{"name": "r", "when": {"idle": 3}, "action": {"delete": True}}])
    with pytest.raises(PolicyError, match="kind: unknown value"):
        _policy([{"name": "r", "when": {"kind": "movie"}, "action": {"delete": True}}])
    with pytest.raises(PolicyError, match="unknown policy 'nope'; available: default"):
        load_policy("nope")


def test_the_shipped_default_policy_loads_on_the_embedded_defaults(tmp_path):
    p = load_policy("default", {"processed_uri": (tmp_path / "p").as_uri(), "home": str(tmp_path)})
    assert p.key == "default@1"
    assert set(p.tiers) == {"hot", "warm", "cold"}
    assert p.tiers["warm"].uri == (tmp_path / "objects" / "warm").as_uri() + "/"


def test_money_and_the_matched_rule_are_in_every_plan_row():
    pol = _policy([{"name": "to-warm", "when": {"tier": "hot", "idle_days": 30}, "action": {"move": "warm"}}])
    df = plan(_objects({"uri": "s3://hot/a1/r.mp4"}), pol, load_prices(), NOW)
    row = df.iloc[0].to_dict()
    assert row["action"] == "move"
    assert row["dst_uri"] == "s3://warm/a1/r.mp4"
    assert row["rule"] == "to-warm"
    assert row["monthly_cost_before"] == pytest.approx(0.023)
    assert row["monthly_cost_after"] == pytest.approx(0.0125)
    assert row["transition_cost"] == pytest.approx(0.00001)
    assert summarize(df)["monthly_savings"] == pytest.approx(0.0105)


def test_precedence_hold_then_min_retention_then_delete_then_cheapest():
    rules = [
        {"name": "warm", "when": {"tier": "hot"}, "action": {"move": "warm"}},
        {"name": "cold", "when": {"tier": "hot"}, "action": {"move": "cold"}},
        {"name": "deep", "when": {"tier": "hot"}, "action": {"move": "deep"}},
        {"name": "expired", "when": {"tag_date_passed": "license_expiry"}, "action": {"delete": True}},
    ]
    pol = _policy(rules, [{"tag": "legal_keep", "min_days": 3650}])
    objs = _objects(
        {"uri": "s3://hot/a1/x.mp4"},
        {"uri": "s3://hot/a2/x.mp4", "asset_id": "a2", "tags": {"license_expiry": "2027-01-01"}},
        {
            "uri": "s3://hot/a3/x.mp4",
            "asset_id": "a3",
            "tags": {"license_expiry": "2027-01-01", "legal_keep": "y"},
        },
        {
            "uri": "s3://hot/a4/x.mp4",
            "asset_id": "a4",
            "tags": {"license_expiry": "2027-01-01"},
            "legal_hold": True,
        },
    )
    df = plan(objs, pol, load_prices(), NOW).set_index("asset_id")
    assert df.loc["a1", "action"] == "move"
    assert df.loc["a1", "dst_tier"] == "deep"  # cheapest of three
    assert df.loc["a2", "action"] == "delete"
    assert df.loc["a2", "monthly_cost_after"] == 0
    assert df.loc["a3", "action"] == "defer"
    assert "minimum retention" in df.loc["a3", "note"]
    assert df.loc["a4", "action"] == "hold"


def test_early_moves_wait_and_say_the_charge_unless_allowed():
    rules = [{"name": "cold", "when": {"tier": "warm"}, "action": {"move": "cold"}}]
    objs = _objects(
        {
            "uri": "s3://warm/a1/x.mp4",
            "storage_class": "STANDARD_IA",
            "written_at": NOW - dt.timedelta(days=10),
        }
    )
    row = plan(objs, _policy(rules), load_prices(), NOW).iloc[0]
    assert row["action"] == "defer"
    assert "30-day minimum of STANDARD_IA" in row["note"]
    assert "0.008333" in row["note"]  # 20 days of 0.0125 per GB-month
    allowed = [{**rules[0], "allow_early_deletion": True}]
    row = plan(objs, _policy(allowed), load_prices(), NOW).iloc[0]
    assert row["action"] == "move"
    assert row["early_deletion_charge"] == pytest.approx(0.0125 * 20 / 30)


def test_a_package_moves_as_a_unit_and_sources_are_never_deleted_by_rules():
    rules = [
        {"name": "big-only", "when": {"tier": "hot", "min_bytes": 1000}, "action": {"move": "warm"}},
        {"name": "drop", "when": {"kind": "source"}, "action": {"delete": True}},
    ]
    objs = _objects(
        {"uri": "s3://hot/a1/p/master.m3u8", "kind": "manifest", "size_bytes": 5000},
        {"uri": "s3://hot/a1/p/seg1.m4s", "kind": "segment", "size_bytes": 10},
        {"uri": "s3://hot/a1/p/seg2.m4s", "kind": "segment", "size_bytes": 99999},
        {"uri": "s3://hot/a1/source.mp4", "kind": "source", "size_bytes": 10},
    )
    df = plan(objs, _policy(rules), load_prices(), NOW).set_index("uri")
    assert set(df.loc[df["kind"] != "source", "action"]) == {"move"}  # the small segment goes too
    assert df.loc["s3://hot/a1/source.mp4", "action"] == "defer"


def test_keep_source_only_drops_what_can_be_regenerated():
    pol = _policy([{"name": "k", "when": {"tags": {"campaign": "old"}}, "action": {"keep_source": True}}])
    kinds = ("source", "rendition", "segment", "manifest", "captions")
    objs = _objects(*({"uri": f"s3://hot/a1/{k}", "kind": k, "tags": {"campaign": "old"}} for k in kinds))
    df = plan(objs, pol, load_prices(), NOW)
    assert sorted(df["kind"]) == ["manifest", "rendition", "segment"]
    assert set(df["action"]) == {"delete"}


def test_restores_in_force_keep_an_asset_hot_and_expired_ones_go_back():
    pol = _policy([{"name": "warm", "when": {"tier": "hot"}, "action": {"move": "warm"}}])
    live = {
        "restore_state": "restored",
        "restored_from": "cold",
        "restore_expires_at": NOW + dt.timedelta(days=1),
    }
    gone = {**live, "restore_expires_at": NOW - dt.timedelta(days=1)}
    df = plan(_objects({"uri": "s3://hot/a1/x", **live}, {"uri": "s3://hot/a2/x", "asset_id": "a2", **gone}),
              pol, load_prices(), NOW).set_index("asset_id")  # fmt: skip
    assert df.loc["a1", "action"] == "defer"
    assert df.loc["a2", "action"] == "move"
    assert df.loc["a2", "dst_tier"] == "cold"
    assert df.loc["a2", "rule"] == "restore-expired"


def test_batches_keep_100k_objects_under_max_map_length_and_assets_whole():
    n = 100_000
    df = pd.DataFrame({"asset_id": [f"a{i // 7:06d}" for i in range(n)], "action": ["move"] * n,
                       "uri": [f"s3://hot/{i}" for i in range(n)]})  # fmt: skip
    out = batches(df, 256)
    assert len(out) <= 256
    assert sum(len(b) for b in out) == n
    seen: dict[str, int] = {}
    for i, b in enumerate(out):
        for r in b:
            assert seen.setdefault(r["asset_id"], i) == i  # an asset never split across batches


def test_fault_points_are_no_ops_until_a_harness_installs_a_hook():
    from vam.lifecycle import mover

    mover.fault("copied", uri="s3://x/y")  # nothing installed: nothing happens
    seen = []
    mover.set_fault_hook(lambda point, **info: seen.append((point, info)))
    try:
        mover.fault("copied", uri="s3://x/y")
    finally:
        mover.set_fault_hook(None)
    assert seen == [("copied", {"uri": "s3://x/y"})]
    assert issubclass(mover.InjectedCrash, BaseException)
    assert not issubclass(mover.InjectedCrash, Exception)  # nothing on the way catches it


def test_an_object_outside_every_tier_is_priced_in_its_own_providers_default_class():
    # the default tier counts it, but its class is its store's default, not the tier's (an az://
    # object under a policy whose hot tier is s3 STANDARD is HOT, which S3's table does not know)
    pol = _policy(
        [{"name": "to-warm", "when": {"tier": "hot", "idle_days": 30}, "action": {"move": "warm"}}],
        default_tier="hot",
    )
    objects = _objects(
        {"uri": "az://acct/box/a1/r.mp4"},  # no class recorded, beside one that has a class
        {"uri": "s3://hot/a2/r.mp4", "asset_id": "a2", "storage_class": "STANDARD"},
    )
    df = plan(objects, pol, load_prices(), NOW).set_index("asset_id")
    assert list(df["tier"]) == ["hot", "hot"]
    assert df.loc["a1", "monthly_cost_before"] == pytest.approx(0.018)  # Azure Hot
    assert df.loc["a2", "monthly_cost_before"] == pytest.approx(0.023)  # S3 Standard
    assert df.loc["a1", "dst_uri"].startswith("s3://warm/")

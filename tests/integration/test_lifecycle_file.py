"""Storage lifecycle on file:// tiers with the real catalog: `vam lifecycle plan|run`, `vam show`,
legal holds the mover itself refuses, copies that arrive truncated or corrupt, and restores."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from lifecycle_fixtures import check_invariants, make_asset

from vam import cli, storage
from vam.errors import ChecksumMismatch, LegalHoldError
from vam.lifecycle import mover as mover_mod
from vam.lifecycle.mover import Mover
from vam.lifecycle.planner import retier
from vam.lifecycle.prices import load_prices
from vam.runtime import Runtime
from vam.steps import lifecycle

pytestmark = pytest.mark.integration

POLICY = """
name: tiers
version: 2
hot_tier: hot
tiers:
  hot:  {uri: "${processed_uri}", class: STANDARD}
  warm: {uri: "${home}/objects/warm", class: STANDARD_IA}
  cold: {uri: "${home}/objects/cold", class: GLACIER_IR}
rules:
  - {name: warm-after-30-days-idle, when: {tier: hot, idle_days: 30}, action: {move: warm}}
  - {name: cold-after-90-days-idle, when: {tier: [hot, warm], idle_days: 90}, action: {move: cold}}
"""
LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=45)).isoformat()
MUCH_LATER = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()


@pytest.fixture
def env(vam_home, tmp_path):
    policy = tmp_path / "tiers.yaml"
    policy.write_text(POLICY)
    rt = Runtime.from_env()
    pol = lifecycle.policy_for(rt, str(policy))
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri) for _ in range(2)]
    yield rt, pol, policy, assets, [t.uri for t in pol.tiers.values()]
    mover_mod.set_fault_hook(None)


def _cli(capsys, *argv: str) -> tuple[int, dict]:
    code = cli.main(list(argv))
    out = capsys.readouterr().out
    return code, json.loads(out)


def test_plan_dry_run_then_run_moves_and_show_lists_every_object(env, capsys):
    rt, pol, policy, assets, prefixes = env
    a = assets[0]["asset_id"]
    code, planned = _cli(capsys, "lifecycle", "plan", "--policy", str(policy), "--now", LATER, "--json")
    assert code == 0
    ours = [r for r in planned["plan"] if r["asset_id"] in {x["asset_id"] for x in assets}]
    assert len(ours) == 16
    assert {r["action"] for r in ours} == {"move"}
    assert {r["dst_tier"] for r in ours} == {"warm"}
    assert {r["rule"] for r in ours} == {"warm-after-30-days-idle"}
    for uri in (planned["plan_csv"], planned["plan_html"]):
        assert storage.store_for(uri).exists(uri)
    assert (
        "monthly_cost_before"
        in storage.store_for(planned["plan_csv"]).read_bytes(planned["plan_csv"]).decode()
    )

    code, dry = _cli(
        capsys, "lifecycle", "run", "--policy", str(policy), "--now", LATER, "--dry-run", "--json"
    )
    assert code == 0
    assert "executed" not in dry
    check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["hot"].uri) for u in assets[0]["objects"])

    code, ran = _cli(capsys, "lifecycle", "run", "--policy", str(policy), "--now", LATER, "--json")
    assert code == 0
    assert ran["executed"]["moved"] >= 16
    assert ran["executed"]["errors"] == {}
    code, shown = _cli(capsys, "show", a, "--json")
    objects = shown["objects"]
    assert len(objects) == 8
    assert {o["tier"] for o in objects} == {"warm"}
    assert {o["storage_class"] for o in objects} == {"STANDARD_IA"}
    assert all(o["uri"].startswith(pol.tiers["warm"].uri) for o in objects)
    assert all(o["bytes"] == o["size_bytes"] and len(o["sha256"]) == 64 for o in objects)  # noqa: PT018
    assert shown["hls"].startswith(pol.tiers["warm"].uri)
    assert shown["hls"] in {o["uri"] for o in objects}
    with rt.catalog() as cat:
        assert cat.get_asset(a)["last_accessed_at"] is not None  # vam show is a read
        events = [e for e in cat.events(a) if e["kind"] == "lifecycle"]
    assert events[-1]["detail"]["moved"] == 8
    check_invariants(rt, assets, prefixes)


def test_the_default_policy_shows_moves_a_year_ahead(env, capsys):
    _, _, _, assets, _ = env
    code, planned = _cli(capsys, "lifecycle", "plan", "--now", MUCH_LATER, "--json")
    assert code == 0, planned
    assert planned["policy"] == "default@1"
    mine = [r for r in planned["plan"] if r["asset_id"] == assets[0]["asset_id"]]
    assert {r["action"] for r in mine} == {"move"}
    assert {r["dst_tier"] for r in mine} == {"cold"}


def test_a_held_asset_is_never_moved_the_mover_refuses_it_too(env, capsys):
    rt, pol, policy, assets, prefixes = env
    held, free = assets[0]["asset_id"], assets[1]["asset_id"]
    assert cli.main(["hold", held, "--reason", "litigation 42"]) == 0
    capsys.readouterr()
    code, planned = _cli(capsys, "lifecycle", "plan", "--policy", str(policy), "--now", LATER, "--json")
    assert {r["action"] for r in planned["plan"] if r["asset_id"] == held} == {"hold"}
    # the mover refuses it whatever a plan says
    rows = lifecycle._records(retier(lifecycle.objects_frame(rt, held), pol, load_prices(), "cold", "forced"))
    with rt.catalog() as cat, Mover(lifecycle.CatalogLedger(cat)) as mover, pytest.raises(LegalHoldError):
        mover.run_group(held, rows)
    assert not storage.store_for(rows[0]["dst_uri"]).exists(rows[0]["dst_uri"])
    # a hold placed after the copies were made stops the catalog commit; the copies go
    other = lifecycle._records(
        retier(lifecycle.objects_frame(rt, free), pol, load_prices(), "cold", "forced")
    )

    def hold_now(point, **info):
        if point == "verified":
            lifecycle.hold(rt, free, "placed mid-move")

    mover_mod.set_fault_hook(hold_now)
    with rt.catalog() as cat, Mover(lifecycle.CatalogLedger(cat)) as mover, pytest.raises(LegalHoldError):
        mover.run_group(free, other)
    mover_mod.set_fault_hook(None)
    lifecycle.recover(rt)
    check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["hot"].uri) for u in assets[1]["objects"])
    # released, it moves
    assert cli.main(["release", held]) == 0
    assert cli.main(["release", free]) == 0
    capsys.readouterr()
    code, ran = _cli(capsys, "lifecycle", "run", "--policy", str(policy), "--now", LATER, "--json")
    assert ran["executed"]["errors"] == {}
    check_invariants(rt, assets, prefixes)
    with rt.catalog() as cat:
        kinds = [e["kind"] for e in cat.events(held)]
        assert cat.objects(held)[0]["tier"] == "warm"
    assert "hold" in kinds
    assert "release" in kinds


@pytest.mark.parametrize("damage", ["truncate", "corrupt"])
def test_a_truncated_or_corrupt_copy_never_replaces_the_original(env, damage):
    rt, pol, policy, assets, prefixes = env
    a = assets[0]["asset_id"]
    victim = next(u for u in assets[0]["objects"] if "/renditions/" in u)

    def damage_copy(point, uri=None, **info):
        if point == "copied" and uri and uri.endswith("/renditions/360p.mp4") and f"/{a}/" in uri:
            path = Path(storage.store_for(uri).local_path(uri))
            data = path.read_bytes()
            path.write_bytes(
                data[: len(data) // 2] if damage == "truncate" else bytes([data[0] ^ 1]) + data[1:]
            )

    mover_mod.set_fault_hook(damage_copy)
    result = lifecycle.run(rt, str(policy), LATER)
    mover_mod.set_fault_hook(None)
    assert a in result["executed"]["errors"]
    assert "SHA-256" in result["executed"]["errors"][a]
    check_invariants(rt, assets, prefixes)  # the original stands, no bad copy anywhere
    assert storage.store_for(victim).exists(victim)
    with rt.catalog() as cat:
        assert {o["tier"] for o in cat.objects(a)} == {"hot"}
        assert {o["tier"] for o in cat.objects(assets[1]["asset_id"])} == {"warm"}  # the other asset moved
    with pytest.raises(ChecksumMismatch):
        raise ChecksumMismatch(result["executed"]["errors"][a])
    lifecycle.run(rt, str(policy), LATER)  # the next run moves it
    check_invariants(rt, assets, prefixes)


def test_restore_brings_a_cold_asset_back_until_it_expires(env, capsys):
    rt, pol, policy, assets, prefixes = env
    a = assets[0]["asset_id"]
    lifecycle.run(rt, str(policy), MUCH_LATER)
    with rt.catalog() as cat:
        assert {o["tier"] for o in cat.objects(a)} == {"cold"}
    code, restored = _cli(capsys, "restore", a, "--days", "2", "--policy", str(policy), "--json")
    assert code == 0
    assert restored["state"] == "restored"
    assert restored["restored_from"] == "cold"
    with rt.catalog() as cat:
        assert {o["tier"] for o in cat.objects(a)} == {"hot"}
        assert cat.get_asset(a)["hls_uri"].startswith(pol.tiers["hot"].uri)
    check_invariants(rt, assets, prefixes)
    # within its days the restored copy stays hot, even for an idle asset
    lifecycle.run(rt, str(policy), dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    with rt.catalog() as cat:
        assert {o["tier"] for o in cat.objects(a)} == {"hot"}
    # after them, it goes back where it came from
    lifecycle.run(rt, str(policy), dt.datetime.now(dt.UTC) + dt.timedelta(days=3))
    with rt.catalog() as cat:
        assert {o["tier"] for o in cat.objects(a)} == {"cold"}
        assert cat.restore_state(a)["state"] == "expired"
    check_invariants(rt, assets, prefixes)


def test_keep_source_only_deletes_what_can_be_regenerated(env, tmp_path):
    rt, pol, _, assets, prefixes = env
    policy = tmp_path / "keep.yaml"
    policy.write_text(
        POLICY.replace("name: tiers", "name: keep")
        + "  - {name: licence-over, when: {tag_date_passed: license_expiry}, action: {keep_source: true}}\n"
    )
    a = assets[0]["asset_id"]
    with rt.catalog() as cat:
        cat.update_tags(a, lambda tags: {**tags, "license_expiry": "2020-01-01"}, actor="test", source="test")
    done = lifecycle.run(rt, str(policy), dt.datetime.now(dt.UTC))["executed"]
    assert done["errors"] == {}
    assert done["deleted"] == 6  # rendition, two manifests, three segments
    with rt.catalog() as cat:
        left = cat.objects(a)
        asset = cat.get_asset(a)
        assert cat.events(a)[-1]["detail"]["deleted"] == 6
    assert sorted(o["kind"] for o in left) == ["keyframe", "source"]
    assert asset["hls_uri"] is None
    assert asset["dash_uri"] is None
    assert asset["source_uri"] == next(o["uri"] for o in left if o["kind"] == "source")
    for uri, digest in assets[0]["objects"].items():
        kept = uri in {o["uri"] for o in left}
        assert storage.store_for(uri).exists(uri) == kept
        if kept:
            assert storage.sha256_object(uri) == digest

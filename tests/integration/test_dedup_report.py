"""Dedup (vam storage dedup [--apply]) and the storage cost report (vam storage report) over real
file:// and SeaweedFS objects and the catalog."""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import json
import os
import uuid

import pytest

from vam import storage
from vam.cli import main
from vam.lifecycle.prices import load_prices
from vam.steps.dedup import dedup
from vam.steps.retention import delete_asset, purge
from vam.steps.storage_report import storage_report

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("logging_restored")]


def put(uri: str, data: bytes) -> str:
    storage.store_for(uri).put_bytes(data, uri)
    return hashlib.sha256(data).hexdigest()


def asset(cat, uri: str, data: bytes, *, title: str, tags: dict | None = None) -> str:
    sha = put(uri, data)
    asset_id, _ = cat.register_asset(sha256=sha, source_uri=uri, size_bytes=len(data), title=title)
    cat.record_object(uri, asset_id=asset_id, kind="source", size_bytes=len(data), sha256=sha)
    cat.set_status(asset_id, "ready")
    if tags:
        cat.update_tags(asset_id, lambda t: {**t, **tags}, actor="test", source="test")
    return asset_id


def crop(cat, rt, asset_id: str, data: bytes) -> str:
    uri = rt.output_uri(asset_id, "social", "crop.mp4")
    sha = put(uri, data)
    cat.upsert_derived(
        asset_id, "crop", "social_crop", {}, {"uri": uri, "size_bytes": len(data), "sha256": sha}
    )
    cat.record_object(uri, asset_id=asset_id, kind="derived", size_bytes=len(data), sha256=sha)
    return uri


def read(uri: str) -> str:
    return storage.store_for(uri).read_bytes(uri).decode()


def exists(uri: str) -> bool:
    return storage.store_for(uri).exists(uri)


def test_dedup_reports_then_keeps_one_verified_copy_and_repoints_references(rt, vam_home, s3, capsys):
    land = (vam_home / "landing").as_uri()
    bucket = s3.buckets["landing"]
    source = os.urandom(4000)
    same_crop = os.urandom(2500)
    with rt.catalog() as cat:
        one = asset(cat, f"{land}/a.mp4", source, title="one")
        # the same source dropped again under another key (S3 this time): one asset, two stored copies
        again = f"s3://{bucket}/drop/a-again.mp4"
        put(again, source)
        etag = storage.store_for(again).head(again).etag
        cat.register_asset(
            sha256=hashlib.sha256(source).hexdigest(), source_uri=again, size_bytes=4000, etag=etag
        )
        two = asset(cat, f"{land}/b.mp4", os.urandom(3000), title="two")
        crop_one, crop_two = crop(cat, rt, one, same_crop), crop(cat, rt, two, same_crop)
        # identical segments in two packages stay: manifests name them by relative path
        for a in (one, two):
            seg = rt.output_uri(a, "pkg", "init.mp4")
            cat.record_object(seg, asset_id=a, kind="segment", size_bytes=9, sha256=put(seg, b"init-box!"))

    assert main(["storage", "dedup", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["groups"] == 3
    assert report["reclaimable_bytes"] == 4000 + 2500
    by_sha = {i["sha256"]: i for i in report["items"]}
    src_item = by_sha[hashlib.sha256(source).hexdigest()]
    assert src_item["keep"] == f"{land}/a.mp4"
    assert src_item["remove"] == [again]
    assert src_item["copy_references"][f"{land}/a.mp4"] == 3  # assets.source_uri, stored object, source key
    seg_item = by_sha[hashlib.sha256(b"init-box!").hexdigest()]
    assert len(seg_item["stay"]) == 1
    assert seg_item["remove"] == []
    rows = list(csv.DictReader(io.StringIO(read(report["csv_uri"]))))
    assert len(rows) == 6
    assert all(exists(u) for u in (again, crop_one, crop_two))  # a report changes nothing

    done = dedup(rt, apply=True)
    kept_crop = min(crop_one, crop_two)
    removed_crop = max(crop_one, crop_two)
    assert sorted(done["removed"]) == sorted([again, removed_crop])
    assert done["reclaimed_bytes"] == 6500
    assert not exists(again)
    assert not exists(removed_crop)
    assert storage.sha256_object(kept_crop) == hashlib.sha256(same_crop).hexdigest()
    with rt.catalog() as cat:
        for a in (one, two):  # every reference now names the kept copy
            assert cat.derived(a)[0]["uri"] == kept_crop
        assert cat.references([removed_crop]) == {}
        assert cat.last_event(one, "deduplicated")["detail"]["removed"] in (again, removed_crop)
        assert cat.get_asset(one)["source_uri"] == f"{land}/a.mp4"
    again_report = dedup(rt, apply=True)
    assert again_report["removed"] == []
    assert again_report["groups"] == 1  # only the segments, which stay

    # purging the asset that owns the kept crop keeps the crop for the other asset
    owner = one if kept_crop == crop_one else two
    other = two if owner == one else one
    with rt.catalog() as cat:
        delete_asset(rt, owner, grace_days=0)
        with cat.conn, cat.conn.cursor() as cur:
            cur.execute("SELECT now() + interval '1 second'")
            now = cur.fetchone()[0]
        assert purge(rt, now=now)["purged"] == [owner]
        assert exists(kept_crop)
        assert [o["uri"] for o in cat.objects(other, kind="derived")] == [kept_crop]


def test_dedup_never_removes_a_copy_when_the_kept_one_does_not_verify(rt, vam_home):
    data = os.urandom(2000)
    with rt.catalog() as cat:
        a = asset(cat, f"{(vam_home / 'l').as_uri()}/x.mp4", os.urandom(100), title="x")
        b = asset(cat, f"{(vam_home / 'l').as_uri()}/y.mp4", os.urandom(100), title="y")
        ca, cb = crop(cat, rt, a, data), crop(cat, rt, b, data)
    keep = min(ca, cb)
    storage.store_for(keep).put_bytes(b"bit rot" + data[7:], keep)  # the copy to keep went bad
    done = dedup(rt, apply=True)
    assert done["removed"] == []
    assert done["skipped"][0]["uri"] == keep
    assert storage.sha256_object(max(ca, cb)) == hashlib.sha256(data).hexdigest()  # the good copy stays


def test_storage_report_costs_per_tier_asset_and_campaign(rt, vam_home, s3, capsys):
    """The session catalog is shared: figures are checked as differences from a report made first."""
    bucket = s3.buckets["processed"]
    prices = load_prices()
    spring, fall = f"spring-{uuid.uuid4().hex[:6]}", f"fall-{uuid.uuid4().hex[:6]}"
    before = storage_report(rt)
    with rt.catalog() as cat:
        a = asset(
            cat, f"s3://{bucket}/src/a.mp4", os.urandom(6000), title="spring ad", tags={"campaign": spring}
        )
        b = asset(cat, f"s3://{bucket}/src/b.mp4", os.urandom(2000), title="fall ad", tags={"campaign": fall})
        warm = f"s3://{bucket}/warm/a-rendition.mp4"
        path = vam_home / "r.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(10000))
        storage.store_for(warm).put(path, warm, storage_class="STANDARD_IA")
        assert storage.store_for(warm).head(warm).storage_class == "STANDARD_IA"
        cat.record_object(
            warm, asset_id=a, kind="rendition", size_bytes=10000, storage_class="STANDARD_IA", tier="warm"
        )
        asset(cat, f"{(vam_home / 'l').as_uri()}/c.mp4", os.urandom(500), title="local")
    done = storage_report(rt)
    t, t0 = done["totals"], before["totals"]
    assert t["objects"] - t0["objects"] == 4
    assert t["bytes"] - t0["bytes"] == 18500
    expected = prices.monthly_cost("s3", None, 8000) + prices.monthly_cost("s3", "STANDARD_IA", 10000)
    assert t["monthly_cost"] - t0["monthly_cost"] == pytest.approx(expected, abs=1e-6)
    tiers = {(r["tier"], r["storage_class"]): r for r in done["by_tier"]}
    old = {(r["tier"], r["storage_class"]): r for r in before["by_tier"]}
    warm_cost = tiers[("warm", "STANDARD_IA")]["monthly_cost"] - old.get(("warm", "STANDARD_IA"), {}).get(
        "monthly_cost", 0.0
    )
    assert warm_cost == pytest.approx(0.0125 * 10000 / 1e9)
    campaigns = {r["campaign"]: r for r in done["by_campaign"]}
    assert campaigns[spring]["bytes"] == 16000
    assert campaigns[spring]["monthly_cost"] == pytest.approx(
        expected - prices.monthly_cost("s3", None, 2000)
    )
    assert campaigns[fall]["bytes"] == 2000
    assert campaigns[fall]["assets"] == 1
    by_asset = {r["asset_id"]: r for r in csv.DictReader(io.StringIO(read(done["csv_uris"]["by_asset"])))}
    assert int(by_asset[a]["bytes"]) == 16000
    assert int(by_asset[b]["objects"]) == 1
    assert "monthly_cost" in read(done["csv_uris"]["summary"])
    tier_rows = list(csv.DictReader(io.StringIO(read(done["csv_uris"]["by_tier"]))))
    assert {"warm", "(untiered)"} <= {r["tier"] for r in tier_rows}
    assert storage.store_for(done["chart_uri"]).read_bytes(done["chart_uri"])[:8] == b"\x89PNG\r\n\x1a\n"

    # the policy's projected savings: hot S3 objects idle for 40 days move to STANDARD_IA
    policy = vam_home / "s3-policy.yaml"
    policy.write_text(
        "name: s3-test\nversion: 1\nhot_tier: hot\ntiers:\n"
        f"  hot: {{uri: 's3://{bucket}/src/', class: STANDARD}}\n"
        f"  warm: {{uri: 's3://{bucket}/warm/', class: STANDARD_IA}}\n"
        "rules:\n  - name: warm-after-30-days-idle\n    when: {tier: hot, idle_days: 30}\n"
        "    action: {move: warm}\n"
    )
    later = storage_report(rt, policy=str(policy), now=dt.datetime.now(dt.UTC) + dt.timedelta(days=40))
    s = later["savings"]
    assert s["objects"] == 2  # a's and b's sources; the rendition is in warm already
    assert s["monthly_savings"] == pytest.approx((0.023 - 0.0125) * 8000 / 1e9, rel=1e-6)
    assert s["after_by_tier"]["hot"] == pytest.approx(0.0, abs=1e-15)
    assert s["after_by_tier"]["warm"] == pytest.approx(0.0125 * 18000 / 1e9, rel=1e-6)
    assert later["totals"]["policy_monthly_savings"] == s["monthly_savings"]
    assert "hot" in {r["tier"] for r in later["by_tier"]}  # untiered objects under the hot prefix
    assert main(["storage", "report", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["totals"]["bytes"] == t["bytes"]
    assert main(["storage", "report"]) == 0
    assert f"campaign {spring}" in capsys.readouterr().out


def test_dedup_interrupted_after_the_catalog_is_finished_by_the_next_run(rt, vam_home):
    data = os.urandom(1800)
    land = (vam_home / "l2").as_uri()
    with rt.catalog() as cat:
        a = asset(cat, f"{land}/p.mp4", os.urandom(100), title="p")
        b = asset(cat, f"{land}/q.mp4", os.urandom(100), title="q")
        ca, cb = crop(cat, rt, a, data), crop(cat, rt, b, data)
        # the run re-pointed the catalog, then died before storage deleted the redundant copy
        cat.repoint(cb, ca, sha256=hashlib.sha256(data).hexdigest())
        assert cat.derived(b)[0]["uri"] == ca
        assert exists(cb)
    dedup(rt)  # a report run: it first finishes what the catalog queued
    assert not exists(cb)
    assert storage.sha256_object(ca) == hashlib.sha256(data).hexdigest()
    with rt.catalog() as cat:
        assert cat.pending_deletes() == []

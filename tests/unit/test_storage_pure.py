"""Dedup planning and the storage cost report's computations (pure: no servers)."""

from __future__ import annotations

import pandas as pd
import pytest

from vam.lifecycle import report as rep
from vam.lifecycle.dedup import plan_dedup, summarize

A, B, C = "a" * 64, "b" * 64, "c" * 64


def _copy(uri, sha, kind="derived", asset="x", size=100, deleted=False):
    return {
        "uri": uri,
        "sha256": sha,
        "kind": kind,
        "asset_id": asset,
        "size_bytes": size,
        "deleted": deleted,
    }


def test_dedup_keeps_one_copy_per_content_and_never_removes_the_last():
    copies = [
        _copy("file:///p/1/crop.mp4", A, asset="one"),
        _copy("file:///p/2/crop.mp4", A, asset="two"),
        _copy("file:///p/3/crop.mp4", A, asset="three", deleted=True),
        _copy("s3://land/a.mp4", B, kind="source", asset="one", size=500),
        _copy("s3://land/copy/a.mp4", B, kind="source_key", asset="one", size=500),
        _copy("file:///only.mp4", C),  # alone: not a duplicate
    ]
    refs = {
        "file:///p/2/crop.mp4": 3,
        "file:///p/1/crop.mp4": 2,
        "s3://land/a.mp4": 3,
        "s3://land/copy/a.mp4": 1,
    }
    plan = plan_dedup(copies, refs)
    assert set(plan["sha256"]) == {A, B}
    for _, group in plan.groupby("sha256"):
        assert (group["action"] == "keep").sum() == 1
    kept = plan.set_index("uri")["action"]
    assert kept["file:///p/2/crop.mp4"] == "keep"  # most references
    assert kept["s3://land/a.mp4"] == "keep"  # the stored source, not the bare key
    assert kept["s3://land/copy/a.mp4"] == "remove"
    s = summarize(plan)
    assert (s["groups"], s["copies"], s["redundant_copies"]) == (2, 5, 3)
    assert s["reclaimable_bytes"] == 100 + 100 + 500
    item = next(i for i in s["items"] if i["sha256"] == A)
    assert item["references"] == 5
    assert item["copy_references"]["file:///p/3/crop.mp4"] == 0


def test_dedup_leaves_copies_that_manifests_reference_by_relative_path():
    copies = [
        _copy("file:///p/1/pkg/seg-1.m4s", A, kind="segment", asset="one"),
        _copy("file:///p/2/pkg/seg-1.m4s", A, kind="segment", asset="two"),
        _copy("file:///p/2/r.mp4", A, kind="rendition", asset="two"),
    ]
    plan = plan_dedup(copies, {"file:///p/2/r.mp4": 5})
    actions = plan.set_index("uri")["action"].to_dict()
    # a segment must stay anyway, so a segment is the kept copy; the other segment stays too
    assert actions == {
        "file:///p/1/pkg/seg-1.m4s": "keep",
        "file:///p/2/pkg/seg-1.m4s": "stay",
        "file:///p/2/r.mp4": "remove",
    }
    assert summarize(plan)["reclaimable_bytes"] == 100


def test_no_duplicates_is_an_empty_plan():
    assert plan_dedup([], {}).empty
    assert summarize(plan_dedup([_copy("file:///x", A)], {}))["groups"] == 0


def _prices(provider, storage_class, nbytes):
    per_gb = {("s3", None): 0.023, ("s3", "STANDARD_IA"): 0.0125, ("file", None): 0.0}[
        (provider, storage_class)
    ]
    return per_gb * nbytes / 1e9


def test_report_sums_per_tier_asset_and_campaign():
    objects = [
        {"uri": "s3://hot/a/1", "asset_id": "a", "title": "A", "kind": "rendition", "size_bytes": 2 * 10**9,
         "tier": "hot", "storage_class": None, "campaign": "spring", "deleted": False},
        {"uri": "s3://warm/a/2", "asset_id": "a", "title": "A", "kind": "segment", "size_bytes": 10**9,
         "tier": "warm", "storage_class": "STANDARD_IA", "campaign": "spring", "deleted": False},
        {"uri": "s3://hot/b/1", "asset_id": "b", "title": "B", "kind": "source", "size_bytes": 4 * 10**9,
         "tier": "hot", "storage_class": None, "campaign": None, "deleted": True},
        {"uri": "file:///x/c", "asset_id": "c", "title": "C", "kind": "source", "size_bytes": 10,
         "tier": None, "storage_class": None, "campaign": "fall", "deleted": False},
    ]  # fmt: skip
    df = rep.priced(objects, _prices)
    tables = rep.breakdowns(df)
    tiers = tables["by_tier"].set_index("tier")
    assert tiers.loc["hot", "bytes"] == 6 * 10**9
    assert tiers.loc["hot", "monthly_cost"] == pytest.approx(6 * 0.023)
    assert tiers.loc["warm", "monthly_cost"] == pytest.approx(0.0125)
    assert tiers.loc[rep.UNTIERED, "monthly_cost"] == 0.0
    camp = tables["by_campaign"].set_index("campaign")
    assert camp.loc["spring", "monthly_cost"] == pytest.approx(2 * 0.023 + 0.0125)
    assert camp.loc["spring", "assets"] == 1
    assert camp.loc[rep.NO_CAMPAIGN, "bytes"] == 4 * 10**9
    assets = tables["by_asset"]
    assert list(assets["asset_id"]) == ["b", "a", "c"]  # costliest first
    totals = rep.totals(df, None)
    assert totals["bytes"] == 7 * 10**9 + 10
    assert totals["deleted_pending_purge_bytes"] == 4 * 10**9
    csv = rep.to_csv(tables, totals)
    assert set(csv) == {"by_tier", "by_asset", "by_campaign", "summary"}
    assert "monthly_cost" in csv["by_tier"].splitlines()[0]


def test_policy_savings_moves_cost_between_tiers():
    plan = pd.DataFrame(
        [
            {"tier": "hot", "action": "move", "dst_tier": "warm", "monthly_cost_before": 0.046,
             "monthly_cost_after": 0.025, "transition_cost": 0.00001, "early_deletion_charge": 0.0},
            {"tier": "hot", "action": "delete", "dst_tier": None, "monthly_cost_before": 0.023,
             "monthly_cost_after": 0.0, "transition_cost": 0.0, "early_deletion_charge": 0.001},
            {"tier": "warm", "action": "defer", "dst_tier": "cold", "monthly_cost_before": 1.0,
             "monthly_cost_after": 0.1, "transition_cost": 0.0, "early_deletion_charge": 0.0},
        ]
    )  # fmt: skip
    s = rep.policy_savings(plan, {"hot": 0.1, "warm": 0.0125})
    assert s["objects"] == 2
    assert s["monthly_savings"] == pytest.approx(0.046 + 0.023 - 0.025)
    assert s["one_off_cost"] == pytest.approx(0.00101)
    assert s["after_by_tier"]["hot"] == pytest.approx(0.1 - 0.069)
    assert s["after_by_tier"]["warm"] == pytest.approx(0.0375)


def test_chart_is_a_png(tmp_path):
    df = rep.priced(
        [{"uri": "s3://h/1", "asset_id": "a", "title": "A", "kind": "source", "size_bytes": 10**9,
          "tier": "hot", "storage_class": None, "campaign": "x", "deleted": False}],
        _prices,
    )  # fmt: skip
    tables = rep.breakdowns(df)
    path = rep.chart(
        tables, {"monthly_savings": 0.01, "after_by_tier": {"hot": 0.0, "warm": 0.012}}, tmp_path / "c.png"
    )
    import matplotlib.image

    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    height, width = matplotlib.image.imread(path).shape[:2]
    assert width > height > 100

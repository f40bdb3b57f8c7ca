"""vam_purge and vam_storage_report run end to end with dag.test() (in this process)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os

import pytest

from vam import storage
from vam.orchestration import runner
from vam.runtime import Runtime

pytestmark = [pytest.mark.integration]


@pytest.fixture(scope="module")
def module_catalog(catalog_dsn):
    from own_catalog import own_catalog

    with own_catalog() as dsn:
        yield dsn


@pytest.fixture
def rt(vam_home, airflow_db, module_catalog, monkeypatch):
    monkeypatch.setenv("VAM_CATALOG_DSN", module_catalog)
    return Runtime.from_env()


def make_asset(cat, uri: str, data: bytes) -> str:
    storage.store_for(uri).put_bytes(data, uri)
    sha = hashlib.sha256(data).hexdigest()
    asset_id, _ = cat.register_asset(sha256=sha, source_uri=uri, size_bytes=len(data), title=uri)
    cat.record_object(uri, asset_id=asset_id, kind="source", size_bytes=len(data), sha256=sha)
    cat.set_status(asset_id, "ready")
    return asset_id


def test_purge_dag_purges_due_assets_and_refuses_held_ones(rt, vam_home):
    from vam.steps.retention import delete_asset

    land = (vam_home / "landing").as_uri()
    with rt.catalog() as cat:
        gone = make_asset(cat, f"{land}/gone.mp4", os.urandom(800))
        held = make_asset(cat, f"{land}/held.mp4", os.urandom(900))
        for a in (gone, held):
            delete_asset(rt, a, grace_days=1)
        cat.set_hold(held, "subpoena")
    when = (dt.datetime.now(dt.UTC) + dt.timedelta(days=2)).isoformat()
    run = runner.run_dag("vam_purge", {"now": when})
    assert str(run.state) == "success"
    result = runner.task_result(run, "purge")
    assert result["purged"] == [gone]
    assert [r["asset_id"] for r in result["refused"]] == [held]
    assert not storage.store_for(f"{land}/gone.mp4").exists(f"{land}/gone.mp4")
    assert storage.store_for(f"{land}/held.mp4").exists(f"{land}/held.mp4")
    with rt.catalog() as cat:
        assert cat.last_event(gone, "purged") is not None


def test_storage_report_dag_dedups_and_writes_the_cost_report(rt, vam_home):
    land = (vam_home / "landing").as_uri()
    data = os.urandom(1500)
    with rt.catalog() as cat:
        a = make_asset(cat, f"{land}/one.mp4", data)
        storage.store_for(f"{land}/copy/one.mp4").put_bytes(data, f"{land}/copy/one.mp4")
        cat.register_asset(
            sha256=hashlib.sha256(data).hexdigest(), source_uri=f"{land}/copy/one.mp4", size_bytes=1500
        )
    run = runner.run_dag("vam_storage_report", {"apply_dedup": True})
    assert str(run.state) == "success"
    dedup = runner.task_result(run, "dedup_report")
    assert dedup["removed"] == [f"{land}/copy/one.mp4"]
    assert dedup["reclaimed_bytes"] == 1500
    report = runner.task_result(run, "cost_report")
    assert report["totals"]["objects"] >= 1
    chart = report["chart_uri"]
    assert storage.store_for(chart).read_bytes(chart)[:4] == b"\x89PNG"
    assert set(report["csv_uris"]) == {"by_tier", "by_asset", "by_campaign", "summary"}
    with rt.catalog() as cat:
        assert cat.get_asset(a)["source_uri"] == f"{land}/one.mp4"

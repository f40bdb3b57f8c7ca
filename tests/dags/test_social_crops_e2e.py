"""The example DAG of "Adding a DAG", end to end: two assets become ready, Airflow merges their two
`vam_asset_ready` events into one `vam_social_crops` run, and every asset gets a square and a
vertical crop, quality-checked against the source cropped the same way and cataloged as derived
outputs (``vam show``)."""

from __future__ import annotations

import pytest

import vam
from vam import storage
from vam.media.probe import describe
from vam.orchestration.runner import load_dag, task_result
from vam.storage.file import file_uri_to_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _ready_events(asset_ids: set[str]):
    """The vam_asset_ready AssetEvents the publish tasks of these assets emitted."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.scalars(
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.name == "vam_asset_ready")
            .order_by(AssetEvent.id)
        ).all()
        return [e.id for e in rows if (e.extra or {}).get("asset_id") in asset_ids]


def test_two_ready_events_in_one_run_crop_both_assets(vam_home, airflow_db, clips, monkeypatch):
    first = vam.process(str(clips.make(width=320, height=240, seconds=2)))
    second = vam.process(str(clips.make(width=320, height=240, seconds=3, pattern="smptebars")))
    assert first["status"] == second["status"] == "ready", (first["reason"], second["reason"])
    ids = [first["asset_id"], second["asset_id"]]
    events = _ready_events(set(ids))
    assert len(events) == 2  # one event per published asset, each naming its asset

    # Both events arrived before the run started: the scheduler hands them to one run as its
    # consumed events. dag.test() creates its run with get_or_create_dagrun; attach them there.
    import airflow.models.dagrun as dagrun_module
    from airflow.models.asset import AssetEvent

    create = dagrun_module.get_or_create_dagrun

    def with_events(**kwargs):
        run = create(**kwargs)
        session = kwargs["session"]
        run.consumed_asset_events.extend(session.get(AssetEvent, e) for e in events)
        session.commit()
        return run

    monkeypatch.setattr(dagrun_module, "get_or_create_dagrun", with_events)
    dag = load_dag("vam_social_crops")
    run = dag.test(run_conf={"asset_ids": [], "gravity": "center", "max_seconds": 1.5})
    assert run.state == "success"
    assert task_result(run, "ready_assets") == ids

    for asset_id in ids:
        shown = vam.show(asset_id)
        derived = {d["name"]: d for d in shown["derived"]}
        assert set(derived) == {"social-1x1", "social-9x16"}
        assert (derived["social-1x1"]["width"], derived["social-1x1"]["height"]) == (240, 240)
        assert (derived["social-9x16"]["width"], derived["social-9x16"]["height"]) == (136, 240)
        for d in derived.values():
            assert d["duration"] == pytest.approx(1.5, abs=0.1)
            assert d["vmaf"] > 80  # measured against the source cropped and trimmed the same way
            assert d["spec"]["gravity"] == "center"
            info = describe(file_uri_to_path(d["uri"]))
            assert (info.video["width"], info.video["height"]) == (d["width"], d["height"])
            assert storage.sha256_object(d["uri"]) == d["sha256"]
        kinds = {(o["kind"], o["uri"]) for o in shown["objects"]}
        assert {("derived", d["uri"]) for d in derived.values()} <= kinds

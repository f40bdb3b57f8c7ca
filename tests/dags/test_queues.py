"""Celery queues by task role: vam's operators put ffmpeg work on ``media``, model work on ``enrich``
and the rest on ``default``, mapped tasks too; a setting renames a role's queue; an explicit queue (on
the task or in the DAG's default_args) wins."""

from __future__ import annotations

import importlib.util

import pendulum
import pytest

from vam.orchestration import topology

MEDIA = {"probe", "ladder_candidates", "ladder_trial", "transcode", "score", "quality", "package"}
ENRICH = {"transcript", "scenes", "labels", "moderation"}


@pytest.fixture
def fresh_queues():
    topology.role_queues.cache_clear()
    yield
    topology.role_queues.cache_clear()


def test_vam_process_tasks_go_to_their_role_queue(airflow_db, fresh_queues):
    from vam.orchestration.env import DAGS_FOLDER

    spec = importlib.util.spec_from_file_location("vam_process_queues", DAGS_FOLDER / "vam_process.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    dag = module.dag
    queues = {t.task_id: t.queue for t in dag.tasks}
    for task_id, queue in queues.items():
        expected = "media" if task_id in MEDIA else "enrich" if task_id in ENRICH else "default"
        assert queue == expected, task_id
    assert set(queues) >= MEDIA | ENRICH


def test_a_setting_renames_a_queue_and_an_explicit_queue_wins(airflow_db, fresh_queues, monkeypatch):
    from airflow.sdk import DAG

    from operators.enrich import VamScenesOperator
    from operators.media import VamProbeOperator, VamTranscodeOperator

    monkeypatch.setenv("VAM_MEDIA_QUEUE", "ffmpeg-big")
    monkeypatch.setenv("VAM_ENRICH_QUEUE", "gpu")
    start = pendulum.datetime(2026, 1, 1, tz="UTC")
    with DAG("queues_a", schedule=None, start_date=start):
        probe = VamProbeOperator(task_id="probe", asset_id="a")
        mapped = VamTranscodeOperator.partial(task_id="t", asset_id="a").expand(rendition=[{}])
        scenes = VamScenesOperator(task_id="scenes", asset_id="a")
        pinned = VamProbeOperator(task_id="pinned", asset_id="a", queue="special")
        pinned_mapped = VamTranscodeOperator.partial(task_id="tp", asset_id="a", queue="special").expand(
            rendition=[{}]
        )
    assert (probe.queue, mapped.queue, scenes.queue) == ("ffmpeg-big", "ffmpeg-big", "gpu")
    assert pinned.queue == pinned_mapped.queue == "special"
    with DAG("queues_b", schedule=None, start_date=start, default_args={"queue": "dag-wide"}):
        probe = VamProbeOperator(task_id="probe", asset_id="a")
        mapped = VamTranscodeOperator.partial(task_id="t", asset_id="a").expand(rendition=[{}])
    assert probe.queue == mapped.queue == "dag-wide"


def test_unknown_role_names_the_roles(fresh_queues):
    from vam.errors import VamError

    with pytest.raises(VamError, match="media, enrich, default"):
        topology.queue_for("gpu")

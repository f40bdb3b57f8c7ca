"""Every DAG file imports cleanly in Airflow 3's DagBag and follows the house rules."""

from __future__ import annotations

import os

import pytest

from vam.orchestration.env import DAGS_FOLDER


@pytest.fixture(scope="module")
def dagbag(airflow_db):
    from airflow.dag_processing.dagbag import BundleDagBag

    saved = os.environ.pop("VAM_TASK_RETRIES", None)  # parse the DAGs as deployed, not as tests run them
    try:
        return BundleDagBag(dag_folder=str(DAGS_FOLDER), bundle_path=DAGS_FOLDER, bundle_name="dags-folder")
    finally:
        if saved is not None:
            os.environ["VAM_TASK_RETRIES"] = saved


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"vam_ingest", "vam_process"} <= set(dagbag.dag_ids)


def test_every_dag_has_tags_retries_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.catchup is False, f"{dag_id} catches up"
        for task in dag.tasks:
            if task.task_id == "finalize":
                continue
            assert task.retries >= 2, f"{dag_id}.{task.task_id} has {task.retries} retries"


def test_processing_dag_reads_like_the_pipeline(dagbag):
    dag = dagbag.dags["vam_process"]
    assert dag.get_task("register").upstream_task_ids == set()
    upstream = {t: dag.get_task(t).upstream_task_ids for t in dag.task_ids}
    assert upstream["probe"] == {"register"}
    # per-title analysis: samples, then one trial task per candidate size, then the plan
    assert upstream["ladder_candidates"] == {"probe", "register"}
    assert upstream["ladder_trial"] == {"ladder_candidates", "register"}
    assert upstream["plan"] == {"probe", "register", "ladder_trial"}
    assert "plan" in upstream["transcode"]
    # one scoring pass over every rendition, then one quality task per rendition
    assert "transcode" in upstream["score"]
    assert "score" in upstream["quality"]
    # enrichment fans out beside the renditions, straight after probe
    assert upstream["transcript"] == {"probe", "register"}
    assert upstream["scenes"] == {"probe", "register"}
    assert "scenes" in upstream["labels"]
    assert "scenes" in upstream["moderation"]
    assert {"quality_gate", "transcode", "transcript"} <= upstream["package"]
    assert {"package", "tags", "labels", "moderation", "scenes", "transcript"} <= upstream["publish"]
    assert dag.get_task("transcode").pool == "transcode"
    assert dag.get_task("finalize").trigger_rule == "all_done"
    # finalize waits for every other task, whatever their outcome
    assert upstream["finalize"] == set(dag.task_ids) - {"finalize"}

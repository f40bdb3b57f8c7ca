"""Running vam's DAGs in this process: what ``vam process`` and :func:`vam.process` do.

The per-asset DAG runs with Airflow's ``dag.test()`` (tasks in this process, a local metadata DB
under VAM_HOME unless Airflow is configured otherwise), then the asset's summary is read back from
the catalog.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
from typing import Any

from vam.errors import VamError
from vam.orchestration import env
from vam.runtime import Runtime

log = logging.getLogger(__name__)


def load_dag(dag_id: str):
    """Import a DAG object from vam's dags/ folder (the file is named after the DAG id)."""
    path = env.DAGS_FOLDER / f"{dag_id}.py"
    spec = importlib.util.spec_from_file_location(f"vam_dags_{dag_id}", path)
    if spec is None or spec.loader is None or not path.is_file():
        raise VamError(f"no DAG file {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return getattr(module, f"{dag_id}_dag")


def task_result(dag_run, task_id: str, map_index: int = -1, key: str = "return_value"):
    """What ``task_id`` returned in ``dag_run`` (its ``return_value`` XCom, or ``key``), or None."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        query = XComModel.get_many(
            run_id=dag_run.run_id,
            dag_ids=dag_run.dag_id,
            task_ids=task_id,
            key=key,
            map_indexes=map_index,
        )
        row = session.scalars(query).first()
        return XComModel.deserialize_value(row) if row is not None else None


def failed_tasks(dag_run) -> list[str]:
    """The task ids of ``dag_run`` that ended failed or upstream_failed, in task order."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.query(TaskInstance.task_id, TaskInstance.state).filter(
            TaskInstance.dag_id == dag_run.dag_id, TaskInstance.run_id == dag_run.run_id
        )
        return list(dict.fromkeys(t for t, state in rows if str(state) in ("failed", "upstream_failed")))


def run_dag(dag_id: str, conf: dict[str, Any], *, retries: int | None = 0):
    """Run DAG ``dag_id`` once in this process with ``conf``; returns the finished DagRun. Task
    logs go to stderr, so that stdout stays clean for the caller's output."""
    from vam.settings import load_settings

    env.configure(load_settings(), retries=retries)
    with contextlib.redirect_stdout(sys.stderr):
        env.ensure_metadata_db()
        dag = load_dag(dag_id)
        return dag.test(run_conf=conf)


def process(
    rt: Runtime,
    source_uri: str,
    *,
    profile: str | None = None,
    title: str | None = None,
    tags: dict[str, Any] | None = None,
    force: bool = False,
    retries: int | None = 0,
) -> dict[str, Any]:
    """Run ``vam_process`` for one source in this process and return the asset's summary (plus
    ``airflow_run``); ``status`` is ``error`` when the run ended before the source was registered."""
    from vam.steps.show import summary

    conf = {
        "source_uri": source_uri,
        "profile": profile or "",
        "title": title or "",
        "tags": tags or {},
        "force": force,
    }
    run = run_dag("vam_process", conf, retries=retries)
    registered = task_result(run, "register")
    if not registered:  # the run failed before the source was hashed and registered
        result: dict[str, Any] = {
            "asset_id": None,
            "status": "error",
            "reason": f"run {run.run_id} ended {run.state} before the source was registered",
        }
    else:
        result = summary(rt, registered["asset_id"])
    result["airflow_run"] = {"dag_id": run.dag_id, "run_id": run.run_id, "state": str(run.state)}
    return result

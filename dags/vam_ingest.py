"""
### vam_ingest: wait for new objects in the landing prefix, start one `vam_process` run per new asset

**wait_for_sources** (deferrable: the wait runs in the triggerer and holds no worker slot) lists
the landing prefix (`VAM_LANDING_URI`, an `s3://bucket/prefix` or `file://` URI) every
`VAM_INGEST_INTERVAL_SECONDS` (default 60) until an object vam has not seen appears (an hour
without one ends the run as skipped; the next run waits again). **discover** then hashes the new
objects (SHA-256): bytes the catalog already has are recorded as a duplicate of that asset, new
bytes start a `vam_process` run (**start_processing**) whose run id is derived from the asset id,
so a source is never processed twice by overlapping runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG

from operators.ingest import VamDiscoverOperator, VamLandingSensor
from vam.settings import dag_settings

settings = dag_settings()


def trigger_args(found: dict) -> dict:
    """One vam_process run per new asset, its run id derived from the asset id."""
    return {"trigger_run_id": f"asset__{found['asset_id']}", "conf": {"source_uri": found["source_uri"]}}


with DAG(
    dag_id="vam_ingest",
    schedule=timedelta(seconds=settings.ingest_interval_seconds),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["vam", "ingest"],
    doc_md=__doc__,
    default_args={"retries": settings.retries, "retry_delay": timedelta(seconds=30)},
) as dag:
    wait = VamLandingSensor(
        task_id="wait_for_sources",
        aws_conn_id=settings.aws_conn_id,
        deferrable=True,
        poke_interval=settings.ingest_interval_seconds,
        timeout=3600,
        soft_fail=True,
    )
    discover = VamDiscoverOperator(task_id="discover", aws_conn_id=settings.aws_conn_id)
    wait >> discover
    TriggerDagRunOperator.partial(
        task_id="start_processing",
        trigger_dag_id="vam_process",
        skip_when_already_exists=True,
        wait_for_completion=False,
    ).expand_kwargs(discover.output.map(trigger_args))

vam_ingest_dag = dag

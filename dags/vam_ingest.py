"""
### vam_ingest: watch every landing place, start one `vam_process` run per new asset

**wait_for_sources** (deferrable: the wait runs in the triggerer and holds no worker slot) lists
every landing place (setting `landings`, else `VAM_LANDING_URI`: `s3://`, `gs://`, `az://`,
`ftp://`, `ftps://` or `file://`) every `VAM_INGEST_INTERVAL_SECONDS` (default 60) until an object
vam has not seen appears (an hour without one ends the run as skipped; the next run waits again).
**landings** lists the landing places and **discover** runs once per place (mapped: one task per
place in the grid): objects still being written wait for a later poll (a marker file, or size and
modification time stable across the place's window), complete ones are hashed (SHA-256): bytes the
catalog already has are recorded as a duplicate of that asset, new bytes start a `vam_process` run
(**start_processing**) with the place's profile and tags, whose run id is derived from the asset
id, so a source is never processed twice by overlapping runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import DAG

from operators.ingest import (
    VamDiscoverOperator,
    VamLandingSensor,
    VamLandingsOperator,
    VamProcessingRunsOperator,
)
from vam.settings import dag_settings

settings = dag_settings()

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
    places = VamLandingsOperator(task_id="landings", aws_conn_id=settings.aws_conn_id)
    found = VamDiscoverOperator.partial(
        task_id="discover", aws_conn_id=settings.aws_conn_id, map_index_template="{{ task.landing['uri'] }}"
    ).expand(landing=places.output)
    runs = VamProcessingRunsOperator(task_id="processing_runs", found=found.output)
    TriggerDagRunOperator.partial(
        task_id="start_processing",
        trigger_dag_id="vam_process",
        skip_when_already_exists=True,
        wait_for_completion=False,
    ).expand_kwargs(runs.output)
    wait >> places

vam_ingest_dag = dag

"""
### vam_purge: purge deleted assets once their grace period has ended

`vam delete ASSET` is a soft delete: the asset leaves search at once and `vam undelete ASSET`
brings it back during the grace period (`VAM_DELETE_GRACE_DAYS`, default 7). Every day **purge**
removes the assets whose grace period has ended: their objects in storage (renditions, packages,
the source and every key it was seen under) and their catalog rows, with a `purged` audit event
that outlives them. An asset under legal hold is never purged: the purge refuses it (the task
result lists it under `refused`). A purge interrupted anywhere is finished by the next run.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.storage import VamPurgeOperator
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_purge",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["vam", "storage", "retention"],
    doc_md=__doc__,
    params={"now": Param("", type="string", description="purge as of this ISO 8601 time (empty: now)")},
    default_args={"retries": settings.retries, "retry_delay": timedelta(minutes=5)},
) as dag:
    VamPurgeOperator(task_id="purge", now="{{ params.now }}", aws_conn_id=settings.aws_conn_id)

vam_purge_dag = dag

"""
### vam_storage_report: weekly storage cost report and dedup report

**dedup_report** lists identical bytes stored more than once (the same source dropped under two
keys, identical derived files) with their catalog reference counts, as CSV (run with conf
`{"apply_dedup": true}`, or `vam storage dedup --apply`, to keep one verified copy of each).
**cost_report** sums bytes and monthly cost per tier, per asset and per campaign tag with the prices
in `include/policies/prices.yaml`, adds the lifecycle policy's projected savings, and writes CSV
files and a PNG chart under `<processed>/_reports/storage/<time>/`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.storage import VamDedupOperator, VamStorageReportOperator
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_storage_report",
    schedule="@weekly",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["vam", "storage", "report"],
    doc_md=__doc__,
    params={
        "policy": Param("", type="string", description="lifecycle policy (name or file; empty: default)"),
        "apply_dedup": Param(False, type="boolean", description="remove redundant copies"),
    },
    default_args={"retries": settings.retries, "retry_delay": timedelta(minutes=5)},
) as dag:
    dedup = VamDedupOperator(
        task_id="dedup_report", apply="{{ params.apply_dedup }}", aws_conn_id=settings.aws_conn_id
    )
    report = VamStorageReportOperator(
        task_id="cost_report", policy="{{ params.policy }}", aws_conn_id=settings.aws_conn_id
    )
    dedup >> report

vam_storage_report_dag = dag

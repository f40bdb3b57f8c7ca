"""
### vam_ingest: poll the landing prefix and start one `vam_process` run per new asset

Every `VAM_INGEST_INTERVAL_SECONDS` (default 60) the landing prefix (`VAM_LANDING_URI`, an
`s3://bucket/prefix` or `file://` URI) is listed. Objects already seen (same key, ETag and size)
are skipped; the others are hashed (SHA-256): bytes the catalog already has are recorded as a
duplicate of that asset, new bytes start a `vam_process` run whose run id is derived from the
asset id, so a source is never processed twice by overlapping polls.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator
from airflow.sdk import dag, task

from operators.steps import run_step


@dag(
    dag_id="vam_ingest",
    schedule=timedelta(seconds=int(os.environ.get("VAM_INGEST_INTERVAL_SECONDS", "60"))),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["vam", "ingest"],
    doc_md=__doc__,
    default_args={
        "retries": int(os.environ.get("VAM_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=30),
    },
)
def vam_ingest():
    @task
    def discover() -> list[dict]:
        """New sources in the landing prefix, as trigger arguments for vam_process."""
        from vam.ingest.discover import poll

        def _poll(rt):
            with rt.catalog(actor="vam_ingest") as cat:
                return poll(cat, rt.settings.landing_uri)

        found = run_step("discover", None, _poll)
        return [
            {"trigger_run_id": f"asset__{f['asset_id']}", "conf": {"source_uri": f["source_uri"]}}
            for f in found
        ]

    TriggerDagRunOperator.partial(
        task_id="start_processing",
        trigger_dag_id="vam_process",
        skip_when_already_exists=True,
        wait_for_completion=False,
    ).expand_kwargs(discover())


vam_ingest_dag = vam_ingest()

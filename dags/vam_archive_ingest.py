"""
### vam_archive_ingest: a bulk archive into the catalog, resumable, with a report

Trigger it from the UI with the form (or `vam archive ingest URI` from the shell): **source** (an
`s3://`, `gs://`, `az://`, `ftp://` or `file://` prefix), optional **glob** (e.g. `*.mxf`,
matched against the key below the prefix), **modified_since** / **modified_until** (ISO dates),
**profile**, **tags** (applied to every asset), **dry_run**.

**plan** lists the prefix page by page and writes the keys not finished yet as batches (at most
1,000, so mapped tasks stay under `max_map_length`); **ingest** processes one batch per mapped task
in the `archive` pool (size it so bulk work never starves live ingest), each source through the
same steps as `vam_process`: registered by content hash (a duplicate is recorded as one, of which
asset), validated, encoded, checked, packaged, published. Killed half-way and triggered again, it
re-lists, skips what is finished and takes over what was in flight: no asset is processed twice
and nothing is skipped. **report** (always runs) reads every selected key's outcome back from the
catalog and writes `report.csv` and `report.html` under `{processed}/_archive/<run id>/`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.ingest import VamArchiveBatchOperator, VamArchivePlanOperator, VamArchiveReportOperator
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_archive_ingest",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # a new run takes over what a killed one left in flight
    tags=["vam", "ingest", "archive"],
    doc_md=__doc__,
    default_args={
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=30),
        "aws_conn_id": settings.aws_conn_id,
    },
    params={
        "source": Param("", type="string", description="the archive's URI prefix, e.g. s3://archive/2019/"),
        "glob": Param("", type="string", description="keys to take, e.g. *.mxf (empty: every video)"),
        "modified_since": Param("", type="string", description="ISO date: only objects modified since"),
        "modified_until": Param("", type="string", description="ISO date: only objects modified until"),
        "profile": Param("", type="string", description="encoding profile (empty: the default)"),
        "tags": Param({}, type="object", description="tags for every asset, validated against the taxonomy"),
        "dry_run": Param(False, type="boolean", description="list and report only, process nothing"),
        "batch_size": Param(25, type="integer", minimum=1, description="sources per mapped task"),
    },
    render_template_as_native_obj=True,
) as dag:
    planned = VamArchivePlanOperator(
        task_id="plan",
        prefix="{{ params.source }}",
        glob="{{ params.glob }}",
        modified_since="{{ params.modified_since }}",
        modified_until="{{ params.modified_until }}",
        batch_size="{{ params.batch_size }}",
    )
    batches = VamArchiveBatchOperator.partial(
        task_id="ingest",
        pool="archive",
        profile="{{ params.profile }}",
        tags="{{ params.tags }}",
        dry_run="{{ params.dry_run }}",
        execution_timeout=timedelta(hours=12),
    ).expand(batch=planned.output)
    batches >> VamArchiveReportOperator(task_id="report")

vam_archive_ingest_dag = dag

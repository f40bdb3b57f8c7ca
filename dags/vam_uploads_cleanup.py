"""
### vam_uploads_cleanup: expire unfinished resumable uploads

`vam serve` keeps unfinished tus uploads under `VAM_UPLOAD_URI` (a part file per upload on
file://, an S3 multipart upload on s3://, each with its `.info` state beside it). An upload that
has not received a byte for `VAM_UPLOAD_EXPIRATION_SECONDS` (default a day) expires: the service
answers 410 for it, and **expire_uploads**, every hour, deletes its data (multipart parts
included) and its state.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from operators.uploads import VamExpireUploadsOperator
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_uploads_cleanup",
    schedule=timedelta(hours=1),
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["vam", "uploads"],
    doc_md=__doc__,
    default_args={"retries": settings.retries, "retry_delay": timedelta(minutes=5)},
) as dag:
    VamExpireUploadsOperator(task_id="expire_uploads", aws_conn_id=settings.aws_conn_id)

vam_uploads_cleanup_dag = dag

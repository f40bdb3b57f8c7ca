"""
### vam_transform: build one transformation URL of an asset

Triggered by `vam serve` for transformation URLs too large to build inline (more than
`transform_inline_max_mpx_frames` megapixel-frames, or a `q_auto` bitrate search), with conf
`{"asset_id", "transformation", "ext", "owner"}`; or by hand (the form asks for the asset and
the transformation, e.g. `ar_9:16,c_fill,g_auto/du_15`). The build is claimed in the catalog (at
most `transform_max_builds` at once across the service and the workers), published whole under
the asset's `transforms/` prefix and cataloged as a derived output; the next request for the URL
answers 200 with it.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.transform import VamTransformOperator
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_transform",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["vam", "derived", "delivery"],
    doc_md=__doc__,
    default_args={"retries": settings.retries, "retry_delay": timedelta(seconds=30)},
    max_active_runs=8,
    params={
        "asset_id": Param("", type="string", description="the asset"),
        "transformation": Param("", type="string", description="e.g. c_fill,w_720,h_720/so_2,du_10"),
        "ext": Param("mp4", type="string", description="mp4, webm, gif or jpg"),
        "owner": Param("", type="string", description="the service's claim (set by vam serve)"),
    },
) as dag:
    VamTransformOperator(
        task_id="build",
        asset_id="{{ params.asset_id }}",
        transformation="{{ params.transformation }}",
        ext="{{ params.ext }}",
        claim_owner="{{ params.owner }}",
        aws_conn_id=settings.aws_conn_id,
        pool="transcode",
    )

vam_transform_dag = dag

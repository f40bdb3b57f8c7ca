"""
### vam_social_crops: square and vertical versions of every ready asset

The example DAG of the README's "Adding a DAG", built only from vam's operator library.

Runs when assets become ready (an event on the `vam_asset_ready` Asset, emitted by
`vam_process`'s publish task; events that arrive close together are merged into one run, and
every one of them is handled), or by hand with conf `{"asset_ids": ["<asset id>", ...]}`.

For each asset: a **1:1** and a **9:16** crop of the source at the chosen `gravity`, trimmed to
at most `max_seconds` (**crop**, one mapped task per asset and aspect), each checked with VMAF
against the source cropped and trimmed the same way (**quality**, the same operator as the
ladder's) and recorded in the catalog as a derived output of the asset (`vam show ASSET_ID`).
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.media import ASSET_READY, VamQualityOperator, VamReadyAssetsOperator, VamSocialCropOperator
from vam.settings import dag_settings

ASPECTS = ["1:1", "9:16"]
settings = dag_settings()


def quality_args(crop: dict) -> dict:
    return {"asset_id": crop["asset_id"], "rendition": crop}


with DAG(
    dag_id="vam_social_crops",
    schedule=[ASSET_READY],
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    tags=["vam", "derived", "example"],
    doc_md=__doc__,
    default_args={"retries": settings.retries, "retry_delay": timedelta(seconds=30)},
    params={
        "asset_ids": Param([], type="array", description="assets to crop (besides the triggering events')"),
        "gravity": Param(
            "center", type="string", description="center, north, south, east, west, north_east..."
        ),
        "max_seconds": Param(15, type="number", description="the crops last at most this long"),
    },
    render_template_as_native_obj=True,
) as dag:
    assets = VamReadyAssetsOperator(task_id="ready_assets", asset_ids="{{ params.asset_ids }}")
    crops = VamSocialCropOperator.partial(
        task_id="crop",
        gravity="{{ params.gravity }}",
        max_seconds="{{ params.max_seconds }}",
        aws_conn_id=settings.aws_conn_id,
        pool="transcode",
        map_index_template="{{ task.asset_id }} {{ task.aspect }}",
    ).expand(asset_id=assets.output, aspect=ASPECTS)
    VamQualityOperator.partial(
        task_id="quality",
        aws_conn_id=settings.aws_conn_id,
        pool="transcode",
        map_index_template="{{ task.asset_id }} {{ task.rendition['name'] }}",
    ).expand_kwargs(crops.output.map(quality_args))

vam_social_crops_dag = dag

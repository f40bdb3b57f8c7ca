"""
### vam_process: one asset through the pipeline

Triggered once per new source by `vam_ingest` (or by `vam process SOURCE`, or by hand with
conf `{"source_uri": "s3://bucket/key"}`).

register (content hash, catalog row) -> **tags** (sidecar file / run conf metadata, validated
against the taxonomy) and **probe** (ffprobe validation; bad input is *rejected* and quarantined)
-> plan (the profile's ladder fitted to the source) -> one **transcode** task per rendition
(pool `transcode`) -> one **quality** task per rendition (VMAF/SSIM/PSNR + full decode check)
-> **quality_gate** (Great Expectations) -> **package** (HLS + DASH with captions, manifests
staged) -> **publish** (manifests promoted last, search index, status *ready*) -> **finalize**
(always runs: an asset that is not ready, rejected or failed by then is marked failed with the
reason).

Beside the renditions, right after probe: **transcript** (Whisper: segments, word timestamps,
WebVTT captions, embeddings for semantic search) and **scenes** (TransNetV2 shots, chapters,
keyframes), then **labels** (ImageNet classifier) and **moderation** (NudeNet) per keyframe.

Every task is idempotent: outputs go to `{asset_id}/{profile}@{version}/...` and the catalog
is written with UPSERTs, so *Clear* on any task re-runs it safely.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, TriggerRule, dag, get_current_context, task

from operators.steps import run_step

DAG_ID = "vam_process"
TRANSCODE_POOL = "transcode"


def _params() -> dict:
    return get_current_context()["params"]


def _profile() -> str | None:
    return _params().get("profile") or None


@dag(
    dag_id=DAG_ID,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=int(os.environ.get("VAM_MAX_ACTIVE_ASSETS", "4")),
    tags=["vam", "media"],
    doc_md=__doc__,
    default_args={
        "retries": int(os.environ.get("VAM_TASK_RETRIES", "2")),
        "retry_delay": timedelta(seconds=30),
        "retry_exponential_backoff": True,
    },
    params={
        "source_uri": Param("", type="string", description="s3://, file:// URI or local path of the source"),
        "profile": Param("", type="string", description="encoding profile name (empty: the default)"),
        "title": Param("", type="string", description="optional title for the catalog"),
        "tags": Param({}, type="object", description="manual tags, validated against the taxonomy"),
    },
    render_template_as_native_obj=True,
)
def vam_process():
    @task
    def register() -> dict:
        from vam import pipeline

        params = _params()
        if not params.get("source_uri"):
            from airflow.sdk.exceptions import AirflowFailException

            raise AirflowFailException("the run conf needs source_uri: an s3://, file:// URI or a local path")
        return run_step(
            "register", None, pipeline.register, params["source_uri"], title=params.get("title") or None
        )

    @task
    def tags(asset: dict) -> dict:
        from vam.enrich import steps

        return run_step("tags", asset["asset_id"], steps.tags, asset, _params().get("tags") or None)

    @task
    def probe(asset: dict) -> dict:
        from vam import pipeline

        return run_step("probe", asset["asset_id"], pipeline.probe_source, asset)

    @task
    def plan(asset: dict, source_meta: dict) -> list[dict]:
        from vam import pipeline

        return run_step("plan", asset["asset_id"], pipeline.plan, asset, source_meta, _profile())

    @task(
        pool=TRANSCODE_POOL, map_index_template="{{ rendition_name }}", execution_timeout=timedelta(hours=6)
    )
    def transcode(asset: dict, source_meta: dict, rendition: dict) -> dict:
        from vam import pipeline

        get_current_context()["rendition_name"] = rendition["name"]  # type: ignore[typeddict-unknown-key]
        return run_step(
            "transcode", asset["asset_id"], pipeline.transcode, asset, source_meta, rendition, _profile()
        )

    @task(
        pool=TRANSCODE_POOL, map_index_template="{{ rendition_name }}", execution_timeout=timedelta(hours=6)
    )
    def quality(asset: dict, source_meta: dict, rendition: dict) -> dict:
        from vam import pipeline

        get_current_context()["rendition_name"] = rendition["name"]  # type: ignore[typeddict-unknown-key]
        return run_step(
            "quality", asset["asset_id"], pipeline.measure, asset, source_meta, rendition, _profile()
        )

    @task
    def quality_gate(asset: dict, source_meta: dict, results: list[dict]) -> dict:
        from vam import pipeline

        return run_step(
            "quality_gate",
            asset["asset_id"],
            pipeline.quality_gate,
            asset,
            source_meta,
            list(results),
            _profile(),
        )

    @task(pool=TRANSCODE_POOL)
    def transcript(asset: dict, source_meta: dict) -> dict:
        from vam.enrich import steps

        return run_step("transcript", asset["asset_id"], steps.transcript, asset, source_meta)

    @task(pool=TRANSCODE_POOL)
    def scenes(asset: dict, source_meta: dict) -> dict:
        from vam.enrich import steps

        return run_step("scenes", asset["asset_id"], steps.scenes, asset, source_meta)

    @task
    def labels(asset: dict, scenes_result: dict) -> dict:
        from vam.enrich import steps

        return run_step("labels", asset["asset_id"], steps.labels, asset, scenes_result)

    @task
    def moderation(asset: dict, scenes_result: dict) -> dict:
        from vam.enrich import steps

        return run_step("moderation", asset["asset_id"], steps.moderation, asset, scenes_result)

    @task
    def package(asset: dict, renditions: list[dict], transcript_result: dict) -> dict:
        from vam import pipeline

        return run_step(
            "package",
            asset["asset_id"],
            pipeline.package,
            asset,
            list(renditions),
            _profile(),
            transcript_result,
        )

    @task
    def publish(asset: dict, packaged: dict, transcript_result: dict, scenes_result: dict) -> dict:
        from vam import pipeline

        return run_step(
            "publish", asset["asset_id"], pipeline.publish, asset, packaged, transcript_result, scenes_result
        )

    @task(trigger_rule=TriggerRule.ALL_DONE)
    def finalize() -> dict:
        """Always runs last. Fails the run unless the asset is ready, so the grid shows the outcome."""
        from airflow.sdk.exceptions import AirflowFailException

        from vam import pipeline

        asset = get_current_context()["ti"].xcom_pull(task_ids="register")
        if not asset:
            raise AirflowFailException("the source was never registered: see the register task's log")
        outcome = run_step("finalize", None, pipeline.finalize, asset["asset_id"])
        if outcome["status"] != "ready":
            raise AirflowFailException(
                f"asset {asset['asset_id']} is {outcome['status']}: {outcome['reason']}"
            )
        return outcome

    asset = register()
    meta = probe(asset)
    plans = plan(asset, meta)
    renditions = transcode.partial(asset=asset, source_meta=meta).expand(rendition=plans)
    metrics = quality.partial(asset=asset, source_meta=meta).expand(rendition=renditions)
    gate = quality_gate(asset, meta, metrics)
    speech = transcript(asset, meta)
    shots = scenes(asset, meta)
    packaged = package(asset, renditions, speech)
    gate >> packaged
    published = publish(asset, packaged, speech, shots)
    [tags(asset), labels(asset, shots), moderation(asset, shots)] >> published
    published >> finalize()


vam_process_dag = vam_process()

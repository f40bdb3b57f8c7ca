"""
### vam_process: one asset through the pipeline

Triggered once per new source by `vam_ingest` (or by `vam process SOURCE`, or by hand with conf
`{"source_uri": "s3://bucket/key"}`).

register (content hash, catalog row, the asset held for this run, sidecar and run-conf tags
validated; bytes already ready or rejected are answered from the catalog and the rest is skipped,
unless conf `force` is true) -> **tags** (sidecar file / run conf metadata, validated
against the taxonomy) and **probe** (ffprobe validation; bad input is *rejected* and quarantined)
-> **plan** (the profile's ladder fitted to the source; the profile version is pinned for the run)
-> one **transcode** task per rendition (pool `transcode`) -> one **quality** task per rendition
(VMAF/SSIM/PSNR + full decode check) -> **quality_gate** (Great Expectations) -> **package** (HLS +
DASH with captions, manifests staged) -> **publish** (manifests promoted last, search index, status
*ready*, an event on the `vam_asset_ready` Asset) -> **finalize** (always runs last: an asset that
is not ready, rejected or failed by then is marked failed with the reason).

Beside the renditions, right after probe: **transcript** (Whisper: segments, word timestamps,
WebVTT captions, embeddings) and **scenes** (TransNetV2 shots, chapters, keyframes), then **labels**
(ImageNet classifier) and **moderation** (NudeNet) per keyframe.

Every task is idempotent: outputs go to `{asset_id}/{profile}@{version}/...` and the catalog is
written with UPSERTs, so *Clear* on any task re-runs it safely.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.enrich import (
    VamLabelsOperator,
    VamModerationOperator,
    VamScenesOperator,
    VamTagsOperator,
    VamTranscriptOperator,
)
from operators.ingest import VamRegisterOperator
from operators.media import (
    VamFinalizeOperator,
    VamLadderCandidatesOperator,
    VamLadderTrialOperator,
    VamPackageOperator,
    VamPlanOperator,
    VamProbeOperator,
    VamPublishOperator,
    VamQualityGateOperator,
    VamQualityOperator,
    VamScoreOperator,
    VamTranscodeOperator,
)
from vam.settings import dag_settings

TRANSCODE_POOL = "transcode"
settings = dag_settings()
media = {"pool": TRANSCODE_POOL, "aws_conn_id": settings.aws_conn_id}
per_rendition = {
    **media,
    "map_index_template": "{{ task.rendition['name'] }}",
    "execution_timeout": timedelta(hours=6),
}
# a transcode task encodes a group: one rendition, or the whole ladder (encode_grouping: ladder)
per_group = {
    **per_rendition,
    "map_index_template": "{{ task.rendition | map(attribute='name') | join('+') }}",
}

with DAG(
    dag_id="vam_process",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=settings.max_active_assets,
    tags=["vam", "media"],
    doc_md=__doc__,
    default_args={
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
        "retry_exponential_backoff": True,
        "aws_conn_id": settings.aws_conn_id,
    },
    params={
        "source_uri": Param("", type="string", description="s3://, file:// URI or local path of the source"),
        "profile": Param("", type="string", description="encoding profile name (empty: the default)"),
        "title": Param("", type="string", description="optional title for the catalog"),
        "tags": Param({}, type="object", description="manual tags, validated against the taxonomy"),
        "force": Param(False, type="boolean", description="process again even if the catalog has the answer"),
        "landing": Param("", type="string", description="the landing place the source came from"),
    },
    render_template_as_native_obj=True,
) as dag:
    register = VamRegisterOperator(
        task_id="register",
        source_uri="{{ params.source_uri }}",
        title="{{ params.title }}",
        tags="{{ params.tags }}",
        profile="{{ params.profile }}",
        force="{{ params.force }}",
        landing="{{ params.landing }}",
    )
    asset_id = register.output["asset_id"]
    tags = VamTagsOperator(task_id="tags", asset_id=asset_id, tags="{{ params.tags }}")
    probe = VamProbeOperator(task_id="probe", asset_id=asset_id, profile="{{ params.profile }}")
    # per-title profiles: samples -> one trial task per candidate size -> the plan picks the rungs
    # (a fixed-ladder profile: one no-op trial)
    candidates = VamLadderCandidatesOperator(
        task_id="ladder_candidates", asset_id=asset_id, profile="{{ params.profile }}", **media
    )
    trials = VamLadderTrialOperator.partial(
        task_id="ladder_trial",
        asset_id=asset_id,
        map_index_template="{{ task.candidate['name'] }}",
        execution_timeout=timedelta(hours=2),
        **media,
    ).expand(candidate=candidates.output)
    plan = VamPlanOperator(
        task_id="plan", asset_id=asset_id, profile="{{ params.profile }}", analysis=trials.output, groups=True
    )
    transcode = VamTranscodeOperator.partial(task_id="transcode", asset_id=asset_id, **per_group).expand(
        rendition=plan.output
    )
    # one decode of the source scores every rendition; each quality task records one rendition's result
    score = VamScoreOperator(
        task_id="score",
        asset_id=asset_id,
        renditions=transcode.output,
        execution_timeout=timedelta(hours=6),
        **media,
    )
    quality = VamQualityOperator.partial(task_id="quality", asset_id=asset_id, **per_rendition).expand(
        rendition=score.output
    )
    gate = VamQualityGateOperator(task_id="quality_gate", asset_id=asset_id, results=quality.output)
    transcript = VamTranscriptOperator(task_id="transcript", asset_id=asset_id, **media)
    scenes = VamScenesOperator(task_id="scenes", asset_id=asset_id, **media)
    labels = VamLabelsOperator(task_id="labels", asset_id=asset_id, scenes=scenes.output)
    moderation = VamModerationOperator(task_id="moderation", asset_id=asset_id, scenes=scenes.output)
    package = VamPackageOperator(
        task_id="package", asset_id=asset_id, renditions=transcode.output, transcript=transcript.output
    )
    publish = VamPublishOperator(
        task_id="publish",
        asset_id=asset_id,
        packaged=package.output,
        transcript=transcript.output,
        scenes=scenes.output,
    )
    finalize = VamFinalizeOperator(task_id="finalize", register_task_id="register")

    probe >> [candidates, plan, transcript, scenes]
    gate >> package
    [tags, labels, moderation] >> publish
    # finalize waits for every task (trigger rule all_done), so it sees the run's whole outcome
    [t for t in dag.tasks if t is not finalize] >> finalize

vam_process_dag = dag

"""Media operators: probe, plan, transcode, quality, gate, package, publish, finalize, and derived
outputs (social-media crops).

Example (the core of ``dags/vam_process.py``)::

    from operators.media import (VamPlanOperator, VamProbeOperator, VamQualityOperator,
        VamTranscodeOperator)

    asset_id = register.output["asset_id"]
    probe = VamProbeOperator(task_id="probe", asset_id=asset_id)
    plan = VamPlanOperator(task_id="plan", asset_id=asset_id, profile="{{ params.profile }}")
    renditions = VamTranscodeOperator.partial(task_id="transcode", asset_id=asset_id,
                                              pool="transcode").expand(rendition=plan.output)
    metrics = VamQualityOperator.partial(task_id="quality", asset_id=asset_id,
                                         pool="transcode").expand(rendition=renditions.output)
    probe >> plan
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, TriggerRule

from operators._base import VamOperator, require

if TYPE_CHECKING:
    from airflow.sdk import Context

# An event on this Asset is emitted each time an asset is published (``extra``: its asset_id).
ASSET_READY = Asset(name="vam_asset_ready", uri="vam://assets/ready")


class VamProbeOperator(VamOperator):
    """ffprobe + a full decode of the asset's source, within the bounds of ``profile`` (duration,
    size, frame rate). Returns the source metadata. An unusable source is quarantined, the asset
    ``rejected`` with the reason, and the task fails (no retry)."""

    queue_role = "media"
    template_fields = ("asset_id", "profile")

    def __init__(self, *, asset_id: str, profile: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.profile = profile

    def execute(self, context: Context) -> dict:
        from vam.steps.probe import probe

        asset_id = require(self.asset_id, "asset_id")
        return self.call(context, self.asset_id, probe, asset_id, self.profile or None)


class VamPlanOperator(VamOperator):
    """The ladder for the asset: the profile's rungs fitted to the source, never upscaled (a
    per-title profile: the rungs its ``analysis`` chose, i.e. :class:`VamLadderTrialOperator`'s
    results). Returns one dict per rendition (map over it), or with ``groups=True`` one list per
    transcode task (one rendition each, or the whole ladder when ``encode_grouping`` is ``ladder``);
    the profile version is pinned for the rest of the run."""

    template_fields = ("asset_id", "profile", "analysis")

    def __init__(
        self,
        *,
        asset_id: str,
        profile: str | None = None,
        analysis: list[dict] | None = None,
        groups: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.profile = profile
        self.analysis = analysis
        self.groups = groups

    def execute(self, context: Context) -> list:
        from vam.steps.plan import plan, plan_groups

        analysis = [t for t in (self.analysis or []) if t]
        return self.call(
            context,
            self.asset_id,
            plan_groups if self.groups else plan,
            require(self.asset_id, "asset_id"),
            self.profile or None,
            analysis or None,
        )


class VamLadderCandidatesOperator(VamOperator):
    """Per-title analysis, first step: picks the source's sample segments (from its packets'
    sizes: nothing is decoded) and returns one item per candidate size (map
    :class:`VamLadderTrialOperator` over it); a fixed-ladder profile gives one no-op item."""

    queue_role = "media"
    template_fields = ("asset_id", "profile")

    def __init__(self, *, asset_id: str, profile: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.profile = profile

    def execute(self, context: Context) -> list[dict]:
        from vam.steps.ladder_analysis import candidates

        return self.call(
            context, self.asset_id, candidates, require(self.asset_id, "asset_id"), self.profile or None
        )


class VamLadderTrialOperator(VamOperator):
    """Per-title analysis at one candidate size: trial encodes of the samples at every trial CRF,
    scored with VMAF; the points go to the catalog and to :class:`VamPlanOperator`'s ``analysis``.
    Use ``.partial(asset_id=...).expand(candidate=candidates.output)``."""

    queue_role = "media"
    template_fields = ("asset_id", "candidate")

    def __init__(self, *, asset_id: str, candidate: dict, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.candidate = candidate

    def execute(self, context: Context) -> dict:
        from vam.steps.ladder_analysis import trial

        return self.call(context, self.asset_id, trial, require(self.asset_id, "asset_id"), self.candidate)


class VamScoreOperator(VamOperator):
    """VMAF, SSIM, PSNR and the decode check of every rendition in one pass over the source (one
    decode of it); returns one result per rendition for :class:`VamQualityOperator` mapped over it,
    which records each on its own. ``renditions``: the transcode tasks' results (dicts or groups)."""

    queue_role = "media"
    template_fields = ("asset_id", "renditions")

    def __init__(self, *, asset_id: str, renditions: list, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.renditions = renditions

    def execute(self, context: Context) -> list[dict]:
        from vam.steps.quality import score

        return self.call(
            context, self.asset_id, score, require(self.asset_id, "asset_id"), list(self.renditions)
        )


class _RenditionOperator(VamOperator):
    """A step over one rendition of one asset (mapped: ``.expand(rendition=...)``)."""

    queue_role = "media"
    template_fields = ("asset_id", "rendition")

    def __init__(self, *, asset_id: str, rendition: dict | list[dict], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.rendition = rendition

    def run(self, context: Context, fn: Any) -> Any:
        return self.call(context, self.asset_id, fn, require(self.asset_id, "asset_id"), self.rendition)


class VamTranscodeOperator(_RenditionOperator):
    """Encode one rendition (an item of the plan) to its deterministic key. Use with
    ``.partial(asset_id=...).expand(rendition=plan.output)`` and ``pool="transcode"``."""

    def execute(self, context: Context) -> dict | list[dict]:
        from vam.steps.transcode import transcode, transcode_group

        # a group (VamPlanOperator(groups=True)): its renditions from one decode of the source
        return self.run(context, transcode_group if isinstance(self.rendition, list) else transcode)


class VamQualityOperator(_RenditionOperator):
    """VMAF, SSIM and PSNR of one output against the source, and a full decode check. Takes a
    transcoded rendition or a derived output (e.g. :class:`VamSocialCropOperator`'s result, measured
    against the source cropped and trimmed the same way)."""

    def execute(self, context: Context) -> dict:
        from vam.steps.quality import measure, record

        # a result of VamScoreOperator's shared pass is recorded; anything else is measured here
        return self.run(context, record if self.rendition.get("scored") else measure)


class VamQualityGateOperator(VamOperator):
    """The Great Expectations quality gate over the quality results of the ladder; a failure fails
    the asset (no retry)."""

    template_fields = ("asset_id", "results")

    def __init__(self, *, asset_id: str, results: list[dict], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.results = results

    def execute(self, context: Context) -> dict:
        from vam.steps.gate import quality_gate

        return self.call(context, self.asset_id, quality_gate, self.asset_id, list(self.results))


class VamPackageOperator(VamOperator):
    """HLS and DASH from the renditions (stream copy), with the transcript's captions; manifests
    are staged until publish."""

    queue_role = "media"
    template_fields = ("asset_id", "renditions", "transcript")

    def __init__(
        self, *, asset_id: str, renditions: list[dict], transcript: dict | None = None, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.renditions = renditions
        self.transcript = transcript

    def execute(self, context: Context) -> dict:
        from vam.steps.package import package

        return self.call(
            context, self.asset_id, package, self.asset_id, list(self.renditions), self.transcript
        )


class VamPublishOperator(VamOperator):
    """Promote the manifests (master and MPD last), record the tracks, index for search, mark the
    asset ``ready`` and emit an :data:`ASSET_READY` event whose ``extra`` holds the asset id."""

    template_fields = ("asset_id", "packaged", "transcript", "scenes")

    def __init__(
        self,
        *,
        asset_id: str,
        packaged: dict,
        transcript: dict | None = None,
        scenes: dict | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("outlets", [ASSET_READY])
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.packaged = packaged
        self.transcript = transcript
        self.scenes = scenes

    def execute(self, context: Context) -> dict:
        from vam.steps.publish import publish

        result = self.call(
            context, self.asset_id, publish, self.asset_id, self.packaged, self.transcript, self.scenes
        )
        if ASSET_READY in self.outlets:
            context["outlet_events"][ASSET_READY].extra = {"asset_id": self.asset_id}
        return result


class VamFinalizeOperator(VamOperator):
    """The last task of a run (trigger rule ``all_done``): an asset not ready, rejected or failed by
    then becomes ``failed`` with the last recorded step failure as its reason. Fails the task unless
    the asset is ready, so the run's state shows the outcome. ``asset_id`` defaults to the one the
    ``register_task_id`` task returned."""

    template_fields = ("asset_id",)

    def __init__(
        self, *, asset_id: str | None = None, register_task_id: str = "register", **kwargs: Any
    ) -> None:
        kwargs.setdefault("trigger_rule", TriggerRule.ALL_DONE)
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.register_task_id = register_task_id

    def execute(self, context: Context) -> dict:
        from airflow.sdk.exceptions import AirflowFailException

        from vam.steps.finalize import finalize

        asset_id = self.asset_id
        if not asset_id:
            registered = context["ti"].xcom_pull(task_ids=self.register_task_id)
            asset_id = (registered or {}).get("asset_id")
        if not asset_id:
            raise AirflowFailException(
                f"the source was never registered: see the {self.register_task_id} task's log"
            )
        outcome = self.call(context, None, finalize, asset_id, run_id=context["run_id"])
        if outcome["status"] != "ready":
            raise AirflowFailException(f"asset {asset_id} is {outcome['status']}: {outcome['reason']}")
        return outcome


class VamReadyAssetsOperator(VamOperator):
    """The asset ids a run should work on: ``asset_ids`` (e.g. from the run conf) plus the asset of
    every :data:`ASSET_READY` event that triggered the run. Airflow merges events that arrive close
    together into one run, so every event counts, not just the last. Returns the ids, each once,
    in the order the assets became ready (map over them)."""

    template_fields = ("asset_ids",)

    def __init__(self, *, asset_ids: list[str] | str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_ids = asset_ids

    def execute(self, context: Context) -> list[str]:
        ids = [self.asset_ids] if isinstance(self.asset_ids, str) else list(self.asset_ids or [])
        events = context.get("triggering_asset_events") or {}
        for event in sorted(events.get(ASSET_READY, []), key=lambda e: e.timestamp):
            asset_id = (event.extra or {}).get("asset_id")
            if asset_id:
                ids.append(asset_id)
            else:
                self.log.warning("an %s event without an asset_id in its extra: %s", ASSET_READY.name, event)
        ids = list(dict.fromkeys(i for i in ids if i))
        self.log.info("%d asset(s): %s", len(ids), ", ".join(ids))
        return ids


class VamSocialCropOperator(VamOperator):
    """A social-media version of a ready asset: the source cropped to ``aspect`` ("1:1", "9:16")
    at ``gravity`` (center, north, south, east, west, north_east, ...), trimmed to at most
    ``max_seconds``, stored and cataloged as a derived output (``vam show`` lists it). Returns what
    :class:`VamQualityOperator` needs to check it against the source cropped the same way."""

    queue_role = "media"
    template_fields = ("asset_id", "aspect", "gravity", "max_seconds")

    def __init__(
        self,
        *,
        asset_id: str,
        aspect: str,
        gravity: str = "center",
        max_seconds: float | None = 15.0,
        max_height: int | None = 1080,
        min_vmaf: float = 80.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.aspect = aspect
        self.gravity = gravity
        self.max_seconds = max_seconds
        self.max_height = max_height
        self.min_vmaf = min_vmaf

    def execute(self, context: Context) -> dict:
        from vam.steps.derive import social_crop

        return self.call(
            context,
            self.asset_id,
            social_crop,
            require(self.asset_id, "asset_id"),
            self.aspect,
            gravity=self.gravity,
            max_seconds=self.max_seconds,
            max_height=self.max_height,
            min_vmaf=self.min_vmaf,
        )

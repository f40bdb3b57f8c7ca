"""Enrichment operators: tags, transcript, scenes, labels, moderation.

Example::

    from operators.enrich import VamLabelsOperator, VamScenesOperator, VamTranscriptOperator

    speech = VamTranscriptOperator(task_id="transcript", asset_id=asset_id, pool="transcode")
    shots = VamScenesOperator(task_id="scenes", asset_id=asset_id, pool="transcode")
    labels = VamLabelsOperator(task_id="labels", asset_id=asset_id, scenes=shots.output)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from operators._base import VamOperator, require

if TYPE_CHECKING:
    from airflow.sdk import Context


class _AssetOperator(VamOperator):
    template_fields: tuple[str, ...] = ("asset_id",)

    def __init__(self, *, asset_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id


class VamTagsOperator(_AssetOperator):
    """Apply the sidecar file's tags (NAME.json/.yaml beside the source), then ``tags`` (e.g. the
    run conf's), validated against the taxonomy; invalid tags fail the task (no retry) naming the
    key. Returns ``{"tags": {...}}``."""

    template_fields = ("asset_id", "tags")

    def __init__(self, *, asset_id: str, tags: dict | None = None, **kwargs: Any) -> None:
        super().__init__(asset_id=asset_id, **kwargs)
        self.tags = tags

    def execute(self, context: Context) -> dict:
        from vam.steps.enrich import tags

        return self.call(context, self.asset_id, tags, require(self.asset_id, "asset_id"), self.tags or None)


class VamTranscriptOperator(_AssetOperator):
    """Whisper speech to text with word timestamps, a WebVTT caption track and embeddings for
    semantic search. Returns ``{"language", "segments", "captions_uri"}``."""

    queue_role = "enrich"

    def execute(self, context: Context) -> dict:
        from vam.steps.enrich import transcript

        return self.call(context, self.asset_id, transcript, require(self.asset_id, "asset_id"))


class VamScenesOperator(_AssetOperator):
    """TransNetV2 shots, chapters (WebVTT) and one keyframe per scene. Returns ``{"scenes",
    "chapters_uri", "keyframes": [uri]}``."""

    queue_role = "enrich"

    def execute(self, context: Context) -> dict:
        from vam.steps.enrich import scenes

        return self.call(context, self.asset_id, scenes, require(self.asset_id, "asset_id"))


class _KeyframesOperator(_AssetOperator):
    queue_role = "enrich"
    template_fields = ("asset_id", "scenes")

    def __init__(self, *, asset_id: str, scenes: dict, **kwargs: Any) -> None:
        super().__init__(asset_id=asset_id, **kwargs)
        self.scenes = scenes


class VamLabelsOperator(_KeyframesOperator):
    """ImageNet labels of each scene keyframe (``scenes``: the scenes task's result)."""

    def execute(self, context: Context) -> dict:
        from vam.steps.enrich import labels

        return self.call(context, self.asset_id, labels, require(self.asset_id, "asset_id"), self.scenes)


class VamModerationOperator(_KeyframesOperator):
    """NudeNet scores of each scene keyframe; the asset is flagged for review at the threshold."""

    def execute(self, context: Context) -> dict:
        from vam.steps.enrich import moderation

        return self.call(context, self.asset_id, moderation, require(self.asset_id, "asset_id"), self.scenes)

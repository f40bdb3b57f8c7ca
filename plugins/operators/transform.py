"""Transformation URLs in the operator library: build one transformation of a ready asset.

Example (the ``vam_transform`` DAG the service triggers for large builds)::

    from operators.transform import VamTransformOperator

    VamTransformOperator(
        task_id="build",
        asset_id="{{ params.asset_id }}",
        transformation="{{ params.transformation }}",  # e.g. ar_9:16,c_fill,g_auto/du_15
        ext="{{ params.ext }}",
        claim_owner="{{ params.owner }}",  # the claim the service made (status queued), or empty
        pool="transcode",
    )
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from operators._base import VamOperator, require

if TYPE_CHECKING:
    from airflow.sdk import Context


class VamTransformOperator(VamOperator):
    """Build (or find cached) the transformation ``transformation`` (Cloudinary-style, see
    :mod:`vam.media.transform`) of a ready asset as ``ext`` (mp4, webm, gif, jpg); publish it under
    the asset's ``transforms/`` prefix and catalog it. ``claim_owner`` takes over a build the HTTP service
    queued for this run. Returns ``{"asset_id", "transformation", "uri", "width", "height",
    "duration", "size_bytes", "cached"}``. A failure is recorded on the transformation, not the asset."""

    queue_role = "media"
    template_fields = ("asset_id", "transformation", "ext", "claim_owner")

    def __init__(
        self,
        *,
        asset_id: str,
        transformation: str,
        ext: str | None = None,
        claim_owner: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.asset_id = asset_id
        self.transformation = transformation
        self.ext = ext
        self.claim_owner = claim_owner

    def execute(self, context: Context) -> dict:
        from vam.steps.transform import transform

        result = self.call(
            context,
            None,  # a failed transformation is the transformation's, not the asset's
            transform,
            require(self.asset_id, "asset_id"),
            require(self.transformation, "transformation"),
            self.ext or None,
            owner=self.claim_owner or None,
        )
        keys = ("asset_id", "transformation", "digest", "format", "uri", "width", "height", "duration")
        return {
            **{k: result.get(k) for k in keys},
            "size_bytes": result.get("size_bytes"),
            "cached": result["cached"],
        }

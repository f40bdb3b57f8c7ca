"""Storage operators: purge deleted assets after their grace period, dedup, and the cost report.

Example (the cores of ``dags/vam_purge.py`` and ``dags/vam_storage_report.py``)::

    from operators.storage import VamDedupOperator, VamPurgeOperator, VamStorageReportOperator

    VamPurgeOperator(task_id="purge")
    dedup = VamDedupOperator(task_id="dedup_report")  # apply=True removes the redundant copies
    report = VamStorageReportOperator(task_id="cost_report", policy="{{ params.policy }}")
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from operators._base import VamOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _now(value: str | None):  # -> datetime | None
    import datetime as dt

    if not value:
        return None
    when = dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


class VamPurgeOperator(VamOperator):
    """Purge every asset deleted with ``vam delete`` whose grace period has ended (at ``now``, an
    ISO 8601 time; default: now): its objects and rows go, with a ``purged`` audit event that
    outlives it. A held asset is refused and reported. Returns ``{"purged", "refused", "bytes",
    "objects"}``."""

    template_fields = ("now",)

    def __init__(self, *, now: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.now = now

    def execute(self, context: Context) -> dict:
        from vam.steps.retention import purge

        return self.call(context, None, purge, now=_now(self.now))


class VamDedupOperator(VamOperator):
    """The dedup report (identical bytes stored more than once, with reference counts) written as
    CSV; with ``apply`` it keeps one verified copy of each and re-points the catalog. Returns the
    totals and the report's URI (not the per-group items)."""

    template_fields = ("apply",)

    def __init__(self, *, apply: bool | str = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.apply = apply

    def execute(self, context: Context) -> dict:
        from vam.steps.dedup import dedup

        apply = str(self.apply).lower() in ("true", "1", "yes")
        done = self.call(context, None, dedup, apply=apply)
        return {k: v for k, v in done.items() if k != "items"}


class VamStorageReportOperator(VamOperator):
    """Bytes and monthly cost per tier, per asset and per campaign tag, and the lifecycle
    ``policy``'s projected savings, written as CSV files and a PNG chart. Returns the totals, the
    per-tier rows and the files' URIs."""

    template_fields = ("policy", "now")

    def __init__(self, *, policy: str | None = None, now: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.now = now

    def execute(self, context: Context) -> dict:
        from vam.steps.storage_report import storage_report

        done = self.call(context, None, storage_report, policy=self.policy or None, now=_now(self.now))
        return {k: done[k] for k in ("totals", "by_tier", "savings", "csv_uris", "chart_uri")}

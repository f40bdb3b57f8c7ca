"""Lifecycle operators: plan a storage policy, then move its batches (copy, verify, catalog, delete).

Each phase is idempotent and its batch travels as a JSON file next to the plan (XComs carry URIs).
Example::

    from operators.lifecycle import (
        VamLifecycleCommitOperator, VamLifecycleDeleteOperator, VamLifecycleMoveOperator,
        VamLifecyclePlanOperator, VamLifecycleReportOperator, VamLifecycleVerifyOperator,
    )

    plan = VamLifecyclePlanOperator(task_id="plan", policy="default")
    moved = VamLifecycleMoveOperator.partial(task_id="move", pool="lifecycle").expand(batch=plan.output)
    verified = VamLifecycleVerifyOperator.partial(task_id="verify").expand(batch=moved.output)
    committed = VamLifecycleCommitOperator.partial(task_id="catalog").expand(batch=verified.output)
    deleted = VamLifecycleDeleteOperator.partial(task_id="delete").expand(batch=committed.output)
    deleted >> VamLifecycleReportOperator(task_id="report")
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from operators._base import VamOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


def _key(context: Context) -> str:
    return re.sub(r"[^\w-]", "_", str(context["run_id"]))


class VamLifecyclePlanOperator(VamOperator):
    """Recover interrupted moves, finish restores that became readable, plan ``policy`` at ``now``
    (empty: the run's logical time is not used, the current time is), keep the plan as CSV and HTML
    next to the outputs (their URIs in the log and in the XCom ``plan``), and return the batch URIs
    (none with ``dry_run``)."""

    template_fields = ("policy", "now", "dry_run", "max_batches")

    def __init__(
        self,
        *,
        policy: str | None = None,
        now: str | None = None,
        dry_run: bool | str = False,
        max_batches: int | str = 256,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.policy = policy
        self.now = now
        self.dry_run = dry_run
        self.max_batches = max_batches

    def execute(self, context: Context) -> list[str]:
        from vam.steps.lifecycle import plan_batches

        planned = self.call(
            context,
            None,
            plan_batches,
            self.policy or None,
            self.now or None,
            key=_key(context),
            dry_run=str(self.dry_run).lower() in ("true", "1", "yes"),
            max_batches=int(self.max_batches or 256),
        )
        self.log.info("lifecycle plan: %s and %s", planned["plan_csv"], planned["plan_html"])
        self.log.info("lifecycle plan summary: %s", planned["summary"])
        context["ti"].xcom_push(key="plan", value={k: v for k, v in planned.items() if k != "batches"})
        return planned["batches"]


class _BatchOperator(VamOperator):
    template_fields = ("batch",)
    phase = ""

    def __init__(self, *, batch: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.batch = batch

    def execute(self, context: Context) -> Any:
        from vam.steps import lifecycle

        return self.call(context, None, getattr(lifecycle, self.phase), self.batch)


class VamLifecycleMoveOperator(_BatchOperator):
    """Journal and copy one batch to its destination tiers (a held asset is refused). Use a pool."""

    phase = "move_batch"


class VamLifecycleVerifyOperator(_BatchOperator):
    """Check every copy's SHA-256 against the one recorded at write time; a bad copy is deleted and
    its asset's move undone (the original is untouched)."""

    phase = "verify_batch_uri"


class VamLifecycleCommitOperator(_BatchOperator):
    """Point the catalog at the verified copies: one transaction per asset (its HLS/DASH URIs with
    it); a hold placed since the plan refuses the commit."""

    phase = "commit_batch_uri"


class VamLifecycleDeleteOperator(_BatchOperator):
    """Delete the old copies of committed moves (never an object the catalog points at)."""

    phase = "delete_batch_uri"


class VamLifecycleReportOperator(VamOperator):
    """Totals of the run (moved, deleted, bytes) and the assets not moved, with why."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)

    def execute(self, context: Context) -> dict:
        from vam.steps.lifecycle import report

        return self.call(context, None, report, _key(context))

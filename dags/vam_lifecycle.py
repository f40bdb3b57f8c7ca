"""
### vam_lifecycle: storage tiers by policy, moves that never lose an object

Daily. **plan** first finishes or undoes any move a crashed run left (the mover's journal), finishes
restores whose archived objects became readable, then plans the policy (`include/policies/`,
param **policy**): a table of every object it would touch with its asset, kind, tier and class,
action, bytes, monthly cost before and after and the rule that matched, kept as `plan.csv` and
`plan.html` under `{processed}/_lifecycle/plans/<run id>/` (the URIs are in the plan task's log and
its `plan` XCom). With **dry_run** the run stops there.

Then, per batch (at most 256, an asset's objects always in one batch, so 100,000 objects stay far
under `max_map_length`): **move** copies to the destination tier (pool `lifecycle`), **verify**
compares every copy's SHA-256 with the one recorded when the object was written, **catalog**
re-points the asset's rows and its HLS/DASH URIs in one transaction, **delete** removes the old
copies. A legal hold stops an asset at move and again at catalog. **report** totals the run.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, Param

from operators.lifecycle import (
    VamLifecycleCommitOperator,
    VamLifecycleDeleteOperator,
    VamLifecycleMoveOperator,
    VamLifecyclePlanOperator,
    VamLifecycleReportOperator,
    VamLifecycleVerifyOperator,
)
from vam.settings import dag_settings

settings = dag_settings()

with DAG(
    dag_id="vam_lifecycle",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,  # one mover at a time: a run's recovery must not undo another's moves
    tags=["vam", "lifecycle", "storage"],
    doc_md=__doc__,
    default_args={
        "retries": settings.retries,
        "retry_delay": timedelta(seconds=30),
        "aws_conn_id": settings.aws_conn_id,
    },
    params={
        "policy": Param("default", type="string", description="policy name in include/policies, or a file"),
        "now": Param("", type="string", description="plan as of this ISO time (empty: now)"),
        "dry_run": Param(False, type="boolean", description="plan only: write the plan, move nothing"),
    },
    render_template_as_native_obj=True,
) as dag:
    planned = VamLifecyclePlanOperator(
        task_id="plan", policy="{{ params.policy }}", now="{{ params.now }}", dry_run="{{ params.dry_run }}"
    )
    moved = VamLifecycleMoveOperator.partial(task_id="move", pool="lifecycle").expand(batch=planned.output)
    verified = VamLifecycleVerifyOperator.partial(task_id="verify").expand(batch=moved.output)
    committed = VamLifecycleCommitOperator.partial(task_id="catalog").expand(batch=verified.output)
    deleted = VamLifecycleDeleteOperator.partial(task_id="delete").expand(batch=committed.output)
    deleted >> VamLifecycleReportOperator(task_id="report")

vam_lifecycle_dag = dag

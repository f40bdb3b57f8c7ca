"""vam_lifecycle end to end with dag.test(): plan -> mapped move -> verify -> catalog -> delete ->
report on file:// tiers; a dry run only plans; the plan's CSV and HTML are linked from the run."""

from __future__ import annotations

import datetime as dt

import pytest
from lifecycle_fixtures import check_invariants, make_asset

from vam import storage
from vam.orchestration import runner
from vam.runtime import Runtime
from vam.steps import lifecycle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = """
name: dagtiers
version: 1
hot_tier: hot
tiers:
  hot:  {uri: "${processed_uri}", class: STANDARD}
  warm: {uri: "${home}/objects/warm", class: STANDARD_IA}
rules:
  - {name: warm-after-30-days-idle, when: {tier: hot, idle_days: 30}, action: {move: warm}}
"""


def test_the_dag_plans_moves_verifies_commits_and_deletes(vam_home, airflow_db, tmp_path):
    policy = tmp_path / "dagtiers.yaml"
    policy.write_text(POLICY)
    rt = Runtime.from_env()
    pol = lifecycle.policy_for(rt, str(policy))
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=2) for _ in range(3)]
    prefixes = [t.uri for t in pol.tiers.values()]
    later = (dt.datetime.now(dt.UTC) + dt.timedelta(days=45)).isoformat()

    dry = runner.run_dag("vam_lifecycle", {"policy": str(policy), "now": later, "dry_run": True})
    assert str(dry.state) == "success"
    planned = runner.task_result(dry, "plan", key="plan")
    assert planned["summary"]["actions"]["move"]["objects"] == 21
    assert storage.store_for(planned["plan_html"]).exists(planned["plan_html"])
    assert runner.task_result(dry, "plan") == []
    check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["hot"].uri) for a in assets for u in a["objects"])

    run = runner.run_dag("vam_lifecycle", {"policy": str(policy), "now": later, "dry_run": False})
    assert str(run.state) == "success", runner.failed_tasks(run)
    report = runner.task_result(run, "report")
    assert report["moved"] == 21
    assert report["errors"] == {}
    catalog = check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["warm"].uri) for u in catalog)

"""The mover is correct by construction: crashes at every step boundary and real SIGKILLs of
``vam lifecycle run`` lose nothing.

Fault points inside the mover (vam.lifecycle.mover.fault, a no-op unless a harness installs a hook)
stop a move at a random boundary at least 1,000 times (LIFECYCLE_CRASHES); the next "run"
(Mover.recover, itself crashed sometimes) finishes or undoes what was left. Then about 30 real
SIGKILLs (LIFECYCLE_KILLS) of a ``vam lifecycle run`` subprocess moving objects around a cycle of
tiers. After them: zero objects lost, zero wrong checksums, exactly one live copy of each object (no
orphan in any tier), the catalog pointing at what storage holds. ``make soak`` runs more of both.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lifecycle_fixtures import check_invariants, make_asset

from vam.lifecycle import mover as mover_mod
from vam.lifecycle.mover import InjectedCrash, Mover
from vam.lifecycle.planner import retier
from vam.lifecycle.prices import load_prices
from vam.runtime import Runtime
from vam.steps import lifecycle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

# (not VAM_*: conftest clears those) `make soak` raises both
CRASHES = int(os.environ.get("LIFECYCLE_CRASHES", "1000"))
KILLS = int(os.environ.get("LIFECYCLE_KILLS", "30"))
CYCLE = {"hot": "warm", "warm": "cold", "cold": "hot"}
CYCLE_POLICY = """
name: cycle
version: 1
hot_tier: hot
tiers:
  hot:  {uri: "${processed_uri}", class: STANDARD}
  warm: {uri: "${home}/objects/warm", class: STANDARD_IA}
  cold: {uri: "${home}/objects/cold", class: GLACIER_IR}
rules:
  - {name: hot-to-warm, when: {tier: hot}, action: {move: warm}}
  - {name: warm-to-cold, when: {tier: warm}, action: {move: cold}}
  - {name: cold-to-hot, when: {tier: cold}, action: {move: hot}}
"""


class CrashAt:
    """A fault hook that crashes at the ``n``-th fault point it sees."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.seen = 0
        self.crashed_at: str | None = None

    def __call__(self, point: str, **info: object) -> None:
        self.seen += 1
        if self.seen == self.n:
            self.crashed_at = point
            raise InjectedCrash(point)


@pytest.fixture(scope="module", autouse=True)
def _fast_commits(catalog_dsn):
    """The session catalog acknowledges commits before its WAL reaches the disk (the server does not
    crash here, the client does: a committed transaction stays committed) to keep the harness fast."""
    from vam.catalog.db import connect

    conn = connect(catalog_dsn)
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT current_database()")
        name = cur.fetchone()[0]
        cur.execute(f'ALTER DATABASE "{name}" SET synchronous_commit = off')
    conn.close()


@pytest.fixture
def cycle(vam_home, tmp_path):
    policy = tmp_path / "cycle.yaml"
    policy.write_text(CYCLE_POLICY)
    rt = Runtime.from_env()
    pol = lifecycle.policy_for(rt, str(policy))
    yield rt, pol, policy
    mover_mod.set_fault_hook(None)


def _objects(cat, asset_id):
    import pandas as pd

    from vam.lifecycle.planner import OBJECT_COLUMNS

    return pd.DataFrame(cat.lifecycle_objects(asset_id), columns=list(OBJECT_COLUMNS))


def test_a_thousand_crashes_at_the_fault_points_lose_nothing(cycle):
    rt, pol, _ = cycle
    rng = random.Random(10)
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=1, size=1024) for _ in range(8)]
    prefixes = [t.uri for t in pol.tiers.values()]
    prices = load_prices()
    points: dict[str, int] = {}
    crashes = recovery_crashes = completed = 0
    started = time.monotonic()
    with rt.catalog(actor="lifecycle") as cat, Mover(lifecycle.CatalogLedger(cat), threads=1) as mover:
        while crashes < CRASHES:
            a = rng.choice(assets)
            objects = _objects(cat, a["asset_id"])
            target = CYCLE[pol.tier_of(objects["uri"].iloc[0]).name]
            rows = lifecycle._records(retier(objects, pol, prices, target, "t"))
            hook = CrashAt(rng.randint(1, 2 * len(rows) + 8))  # every boundary reachable, some runs finish
            mover_mod.set_fault_hook(hook)
            try:
                mover.run_group(a["asset_id"], rows)
                completed += 1
            except InjectedCrash:
                crashes += 1
                points[hook.crashed_at] = points.get(hook.crashed_at, 0) + 1
            # the next run: recovery, itself crashed now and then
            if rng.random() < 0.15:
                mover_mod.set_fault_hook(CrashAt(1))
                try:
                    mover.recover()
                except InjectedCrash:
                    recovery_crashes += 1
            mover_mod.set_fault_hook(None)
            mover.recover()
            if crashes % 200 == 0:
                check_invariants(rt, assets, prefixes)
    check_invariants(rt, assets, prefixes)
    print(
        f"{crashes} crashes (+{recovery_crashes} in recovery), {completed} moves completed, "
        f"in {time.monotonic() - started:.1f}s; by point: {points}"
    )
    assert set(points) >= {"start", "journaled", "copied", "verified", "committed", "deleted_one", "deleted"}
    assert completed > 0


def test_crashes_inside_full_runs_recover_on_the_next_run(cycle):
    rt, pol, policy = cycle
    rng = random.Random(11)
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=2, size=512) for _ in range(4)]
    now = dt.datetime.now(dt.UTC)
    for _ in range(15):
        mover_mod.set_fault_hook(CrashAt(rng.randint(1, 60)))
        with contextlib.suppress(InjectedCrash):
            lifecycle.run(rt, str(policy), now, threads=2)
        mover_mod.set_fault_hook(None)
    lifecycle.run(rt, str(policy), now)  # recovers, then moves once more
    check_invariants(rt, assets, [t.uri for t in pol.tiers.values()])


def _vam_run(policy: Path, log: Path) -> subprocess.Popen:
    with log.open("a") as err:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "vam"), "lifecycle", "run", "--policy", str(policy), "--json"],
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )


def _journal_rows(rt) -> int:
    with rt.catalog() as cat:
        return len(cat.journal_pending())


def test_sigkills_of_vam_lifecycle_run_lose_nothing(cycle, tmp_path):
    rt, pol, policy = cycle
    rng = random.Random(12)
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=6, size=128 * 1024) for _ in range(12)]
    prefixes = [t.uri for t in pol.tiers.values()]
    log = tmp_path / "runs.log"
    killed = mid_move = 0
    for i in range(KILLS):
        proc = _vam_run(policy, log)
        deadline = time.monotonic() + 30
        while proc.poll() is None and _journal_rows(rt) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)  # wait until it is moving something
        time.sleep(rng.uniform(0, 0.25))
        if proc.poll() is None:
            mid_move += _journal_rows(rt) > 0
            os.killpg(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(timeout=30)
        if i % 10 == 9:
            lifecycle.recover(rt)
            check_invariants(rt, assets, prefixes)
    final = _vam_run(policy, log)
    assert final.wait(timeout=120) == 0, log.read_text()[-3000:]
    check_invariants(rt, assets, prefixes)
    print(f"{killed} SIGKILLs, {mid_move} with a move in flight")
    assert killed >= KILLS * 0.8
    assert mid_move >= KILLS * 0.5

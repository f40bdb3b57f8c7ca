"""Lifecycle on real backends: SeaweedFS tiers with storage classes, a cross-provider cold tier on
fake-gcs-server, crashes at the fault points over both, and the asynchronous restore of an archived
class through a wrapper that answers like S3 does for a Glacier object."""

from __future__ import annotations

import contextlib
import datetime as dt
import random
import time
import uuid

import pytest
from glacier_store import GlacierLikeStore
from lifecycle_fixtures import check_invariants, make_asset

from vam import storage
from vam.devstack.gcs import start_fake_gcs
from vam.errors import StorageError
from vam.lifecycle import mover as mover_mod
from vam.lifecycle.mover import InjectedCrash
from vam.runtime import Runtime
from vam.steps import lifecycle
from vam.storage.gs import GCSStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=45)
MUCH_LATER = dt.datetime.now(dt.UTC) + dt.timedelta(days=400)


@pytest.fixture(scope="module")
def fake_gcs(tmp_path_factory):
    server = start_fake_gcs(log_path=tmp_path_factory.mktemp("fake-gcs") / "fake-gcs.log")
    yield server
    server.stop()


@pytest.fixture
def tiers(s3, seaweed, fake_gcs, vam_home, tmp_path):
    suffix = uuid.uuid4().hex[:8]
    buckets = {k: f"vam-{k}-{suffix}" for k in ("hot", "warm", "deep")}
    seaweed.ensure_buckets(list(buckets.values()))
    archive = f"vam-archive-{suffix}"
    fake_gcs.ensure_buckets([archive])
    storage.configure_store("gs", GCSStore(fake_gcs.client()))
    policy = tmp_path / "clouds.yaml"
    policy.write_text(
        f"""
name: clouds
version: 1
hot_tier: hot
tiers:
  hot:  {{uri: "s3://{buckets["hot"]}", class: STANDARD}}
  warm: {{uri: "s3://{buckets["warm"]}", class: STANDARD_IA}}
  cold: {{uri: "gs://{archive}", class: ARCHIVE}}
  deep: {{uri: "s3://{buckets["deep"]}", class: GLACIER}}
rules:
  - {{name: warm-after-30-days-idle, when: {{tier: hot, idle_days: 30}}, action: {{move: warm}}}}
  - {{name: cold-after-90-days-idle, when: {{tier: [hot, warm], idle_days: 90}}, action: {{move: cold}}}}
  - {{name: deep-if-tagged, when: {{tags: {{vault: "yes"}}, tier: [hot, warm]}}, action: {{move: deep}}}}
"""
    )
    rt = Runtime.from_env()
    pol = lifecycle.policy_for(rt, str(policy))
    yield rt, pol, policy, [t.uri for t in pol.tiers.values()]
    mover_mod.set_fault_hook(None)
    storage.configure_store("gs", None)


def test_hot_to_warm_in_seaweedfs_then_cold_on_gcs(tiers, s3):
    rt, pol, policy, prefixes = tiers
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=2) for _ in range(3)]
    done = lifecycle.run(rt, str(policy), LATER)["executed"]
    assert done["errors"] == {}
    assert done["moved"] == 21
    catalog = check_invariants(rt, assets, prefixes)
    for uri in catalog:
        assert uri.startswith(pol.tiers["warm"].uri)
        assert storage.store_for(uri).head(uri).storage_class == "STANDARD_IA"  # the class SeaweedFS keeps
    done = lifecycle.run(rt, str(policy), MUCH_LATER)["executed"]  # warm -> cold across providers
    assert done["errors"] == {}
    catalog = check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["cold"].uri) for u in catalog)
    with rt.catalog() as cat:
        a = cat.get_asset(assets[0]["asset_id"])
    assert a["hls_uri"].startswith("gs://")
    assert storage.store_for(a["hls_uri"]).read_bytes(a["hls_uri"]).startswith(b"#EXTM3U")


def test_crashes_over_seaweedfs_and_gcs_lose_nothing(tiers):
    rt, pol, policy, prefixes = tiers
    rng = random.Random(7)
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=1) for _ in range(3)]
    crashes = 0
    for when in [LATER] * 12 + [MUCH_LATER] * 12:
        mover_mod.set_fault_hook(_crash_at(rng.randint(1, 30)))
        try:
            lifecycle.run(rt, str(policy), when, threads=4)
        except InjectedCrash:
            crashes += 1
        mover_mod.set_fault_hook(None)
    lifecycle.run(rt, str(policy), MUCH_LATER)
    catalog = check_invariants(rt, assets, prefixes)
    assert crashes >= 5  # until everything reached the cold tier
    assert all(u.startswith(pol.tiers["cold"].uri) for u in catalog)


def _crash_at(n: int):
    seen = [0]

    def hook(point, **info):
        seen[0] += 1
        if seen[0] == n:
            raise InjectedCrash(point)

    return hook


def test_restoring_an_archived_asset_waits_for_the_restore(tiers, s3):
    rt, pol, policy, prefixes = tiers
    assets = [make_asset(rt, hot=pol.tiers["hot"].uri, segments=1, tags={"vault": "yes"})]
    a = assets[0]["asset_id"]
    assert lifecycle.run(rt, str(policy), dt.datetime.now(dt.UTC))["executed"]["errors"] == {}
    catalog = check_invariants(rt, assets, prefixes)
    assert all(u.startswith(pol.tiers["deep"].uri) for u in catalog)
    real = storage.store_for(pol.tiers["deep"].uri)
    glacier = GlacierLikeStore(real, delay=1.0)
    storage.configure_store("s3", glacier)
    try:
        some = next(iter(catalog))
        with pytest.raises(StorageError, match="InvalidObjectState"):
            storage.store_for(some).read_bytes(some)
        started = lifecycle.restore(rt, a, days=3, policy=str(policy))
        assert started["state"] == "restoring"
        assert started["archived"] == len(catalog)
        assert lifecycle.poll_restores(rt, str(policy)) == []  # not served yet
        with rt.catalog() as cat:
            assert cat.restore_state(a)["state"] == "restoring"
        time.sleep(1.1)
        finished = lifecycle.poll_restores(rt, str(policy))
        assert [f["asset_id"] for f in finished] == [a]
        with rt.catalog() as cat:
            state = cat.restore_state(a)
            assert state["state"] == "restored"
            assert state["restored_from"] == "deep"
        catalog = check_invariants(rt, assets, prefixes)
        assert all(u.startswith(pol.tiers["hot"].uri) for u in catalog)
    finally:
        with contextlib.suppress(Exception):
            storage.configure(s3_client=s3)

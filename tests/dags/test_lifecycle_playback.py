"""Playback keeps working: a processed asset (vam.process) moved to another tier by `vam lifecycle
run` still plays from the catalog's HLS/DASH URIs (the package moved as a unit; ffmpeg decodes it
from the new place), and every object it wrote was recorded with its SHA-256 and tier."""

from __future__ import annotations

import datetime as dt
import subprocess

import pytest

import vam
from vam import storage
from vam.media import tools
from vam.runtime import Runtime
from vam.steps import lifecycle

pytestmark = [pytest.mark.integration, pytest.mark.slow]

POLICY = """
name: playback
version: 1
hot_tier: hot
tiers:
  hot:  {uri: "${processed_uri}", class: STANDARD}
  warm: {uri: "${home}/objects/warm", class: STANDARD_IA}
rules:
  - {name: warm-after-30-days-idle, when: {tier: hot, idle_days: 30}, action: {move: warm}}
"""


def test_a_moved_package_still_plays(vam_home, airflow_db, clips, tmp_path, monkeypatch):
    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    clip = clips.make(width=320, height=180, seconds=2)
    result = vam.process(str(clip))
    assert result["status"] == "ready", result.get("reason")
    asset_id = result["asset_id"]
    rt = Runtime.from_env()
    with rt.catalog() as cat:
        written = cat.objects(asset_id)
    assert written
    assert all(o["sha256"] and len(o["sha256"]) == 64 for o in written), [  # noqa: PT018
        o["uri"] for o in written if not o["sha256"]
    ]
    assert {o["tier"] for o in written if o["kind"] != "source"} == {"hot"}

    # The origin has this asset's map cached from before the move: it must find the new copies.
    from fastapi.testclient import TestClient

    from vam.api.app import create_app
    from vam.steps.delivery import relative_path

    origin = TestClient(create_app(rt.settings))
    hls_path = relative_path(result["hls"], asset_id)
    segment = next(o for o in written if o["kind"] == "segment")
    segment_path = relative_path(segment["uri"], asset_id)
    for path in (hls_path, segment_path):
        assert origin.get(f"/o/{asset_id}/{path}").status_code == 200

    policy = tmp_path / "playback.yaml"
    policy.write_text(POLICY)
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=45)
    done = lifecycle.run(rt, str(policy), later)["executed"]
    assert done["errors"] == {}
    shown = vam.show(asset_id)
    warm = lifecycle.policy_for(rt, str(policy)).tiers["warm"].uri
    moved = [o for o in shown["objects"] if o["kind"] != "source"]
    assert moved
    assert all(o["uri"].startswith(warm) and o["tier"] == "warm" for o in moved)  # noqa: PT018
    for o in shown["objects"]:
        assert storage.sha256_object(o["uri"]) == o["sha256"]
    for manifest in (shown["hls"], shown["dash"]):
        assert manifest.startswith(warm)
        path = storage.store_for(manifest).local_path(manifest)
        decoded = subprocess.run(
            [tools.ffmpeg_path(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert decoded.returncode == 0, decoded.stderr[-2000:]
    for path in (hls_path, segment_path):
        answer = origin.get(f"/o/{asset_id}/{path}")
        assert answer.status_code == 200, answer.text
        now_at = next(o for o in shown["objects"] if relative_path(o["uri"], asset_id) == path)
        assert answer.content == storage.store_for(now_at["uri"]).read_bytes(now_at["uri"])
    old = [o["uri"] for o in written if o["kind"] != "source"]
    assert not any(storage.store_for(u).exists(u) for u in old)  # one live copy

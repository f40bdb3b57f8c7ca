"""Robust runs: concurrency, state and names (the issue "Robust inputs", its run-level defects).

The tests run `vam process` (the command, or the same call from Python) with enrichment off: it is
not what they are about.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import vam as vam_api
from vam import storage
from vam.catalog import asset_id_for, open_catalog
from vam.settings import REPO_ROOT

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def quick(vam_home, monkeypatch):
    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    return vam_home


def vam(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "vam"), *args],
        capture_output=True,
        text=True,
        env=env,  # None: this process's environment
        timeout=600,
    )


def process(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    proc = vam("process", "--json", *args, env=env)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")


def status_changes(asset_id: str) -> list[str]:
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat:
        return [e["to_status"] for e in cat.events(asset_id) if e["to_status"]]


def test_two_runs_at_once_on_a_fresh_data_directory(quick, clips, tmp_path):
    """Both runs succeed with one answer: the metadata DB is created once, the second run of the same
    bytes waits for the first and reports its outcome (no second pipeline, no contradicting status)."""
    clip = clips.make(width=320, height=240, seconds=2, pattern="mandelbrot")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env["VAM_HOME"] = str(tmp_path / "fresh")  # Airflow's home and SQLite DB are created under it
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: process(str(clip), env=env), range(2)))
    for code, out, err in results:
        assert "Traceback" not in err, err[-3000:]
        assert code == 0, out
        assert out["status"] == "ready"
    (_, first, _), (_, second, _) = results
    first.pop("airflow_run"), second.pop("airflow_run")
    assert first == second
    assert status_changes(first["asset_id"]) == ["ingesting", "processing", "ready"]
    assert any("waiting for its outcome" in err for _, _, err in results)


def test_identical_bytes_are_answered_from_the_catalog_unless_forced(quick, airflow_db, clips):
    clip = clips.make(width=320, height=240, seconds=2, pattern="rgbtestsrc")
    first = vam_api.process(str(clip))
    assert first["status"] == "ready", first["reason"]
    asset_id = first["asset_id"]
    assert status_changes(asset_id) == ["ingesting", "processing", "ready"]
    processed = quick / "objects" / "processed" / asset_id
    assert list(processed.rglob("_staging")) == []  # publish leaves no staging folders behind

    again = vam_api.process(str(clip))
    assert status_changes(asset_id) == ["ingesting", "processing", "ready"]  # never back to ingesting
    first.pop("airflow_run"), again.pop("airflow_run")
    assert again == first

    forced = vam_api.process(str(clip), force=True)
    assert forced["status"] == "ready", forced["reason"]
    assert status_changes(asset_id) == ["ingesting", "processing", "ready"] * 2


def test_a_failed_run_publishes_nothing_and_leaves_no_orphans(
    quick, airflow_db, clips, tmp_path, monkeypatch
):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    text = (REPO_ROOT / "include" / "encoding_profiles" / "default.yaml").read_text()
    profiles.joinpath("default.yaml").write_text(re.sub(r"min_vmaf: \d+", "min_vmaf: 100", text))
    monkeypatch.setenv("VAM_PROFILES_DIR", str(profiles))
    clip = clips.make(width=320, height=240, seconds=2, pattern="smptehdbars")
    out = vam_api.process(str(clip))
    assert out["status"] == "failed"
    assert out["reason"].startswith("quality gate failed"), out["reason"]
    assert out["renditions"] == []
    assert out["hls"] is None
    processed = quick / "objects" / "processed" / out["asset_id"]
    assert not processed.exists() or list(processed.rglob("*")) == []
    assert {o["kind"] for o in vam_api.show(out["asset_id"])["objects"]} == {"source"}
    assert status_changes(out["asset_id"]) == ["ingesting", "processing", "failed"]


def test_invalid_sidecar_rejects_before_any_transcode(quick, clips, tmp_path):
    clip = tmp_path / "promo.mp4"
    clip.write_bytes(clips.make(width=320, height=240, seconds=2, pattern="pal75bars").read_bytes())
    (tmp_path / "promo.json").write_text(json.dumps({"campaign": "spring", "colour": "red"}))
    code, out, err = process(str(clip))
    assert code == 2, out
    assert out["status"] == "rejected"
    assert "promo.json" in out["reason"], out["reason"]
    assert "colour" in out["reason"], out["reason"]
    assert "promo.json" in err
    assert out["source"] is None  # not even probed
    assert out["renditions"] == []
    assert status_changes(out["asset_id"]) == ["ingesting", "rejected"]


NAMES = ["-leading dash.mp4", "spaces and ünïcødé ✓.mp4", "..dots...mp4", "x" * 240 + ".mp4"]


def test_odd_names_are_processed_like_any_other(quick, airflow_db, clips, tmp_path):
    for n, name in enumerate(NAMES):
        clip = tmp_path / name
        clip.write_bytes(
            clips.make(width=320, height=240, seconds=1, pattern="testsrc", fps=20 + n).read_bytes()
        )
        out = vam_api.process(str(clip))
        assert out["status"] == "ready", (name, out["reason"])
        assert out["asset_id"] == asset_id_for(storage.sha256_file(clip))
    work = Path(os.environ.get("VAM_WORK_DIR", quick / "work"))
    for name in NAMES:
        leaked = [p for p in [*work.rglob("*"), *(quick / "objects").rglob("*")] if name[:20] in p.name]
        assert leaked == []  # scratch and output names come from the asset id


def test_rejected_source_is_quarantined_under_its_asset_id(quick, airflow_db, tmp_path):
    bad = tmp_path / "-.._not a video ü.mp4"
    bad.write_bytes(b"\x00" * 4096)
    out = vam_api.process(str(bad))
    assert out["status"] == "rejected"
    quarantined = [o for o in vam_api.show(out["asset_id"])["objects"] if o["kind"] == "quarantine"]
    assert [o["uri"].rsplit("/", 2)[-2:] for o in quarantined] == [[out["asset_id"], "source.mp4"]]
    assert quarantined[0]["sha256"] == storage.sha256_file(bad)


def test_long_keys_on_an_object_store(quick, airflow_db, s3, monkeypatch, clips):
    """S3 keys up to 1,024 bytes (segments up to 255) go through like any other."""
    b = s3.buckets
    monkeypatch.setenv("VAM_PROCESSED_URI", f"s3://{b['processed']}")
    monkeypatch.setenv("VAM_QUARANTINE_URI", f"s3://{b['quarantine']}")
    key = "/".join(["d" * 250] * 3 + ["é" * 120 + " clip.mp4"])
    assert 1000 < len(key.encode()) <= 1024
    uri = f"s3://{b['landing']}/{key}"
    clip = clips.make(width=320, height=240, seconds=1, pattern="testsrc2")
    storage.store_for(uri).put(clip, uri)
    out = vam_api.process(uri)
    assert out["status"] == "ready", out["reason"]
    assert out["source_uri"] == uri
    assert out["renditions"][0]["uri"].startswith(f"s3://{b['processed']}/{out['asset_id']}/")

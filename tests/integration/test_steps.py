"""The step layer without Airflow: one asset through vam.steps, and a profile pinned for its run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from vam.runtime import Runtime
from vam.settings import REPO_ROOT, load_settings
from vam.steps import gate, package, plan, probe, publish, quality, register, show, transcode
from vam.storage.file import file_uri_to_path

pytestmark = pytest.mark.integration


@pytest.fixture
def rt(vam_home, tmp_path, monkeypatch):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    shutil.copy(REPO_ROOT / "include" / "encoding_profiles" / "default.yaml", profiles / "default.yaml")
    monkeypatch.setenv("VAM_PROFILES_DIR", str(profiles))
    return Runtime(load_settings())


def test_a_profile_edited_mid_run_does_not_change_the_run(rt, clips):
    """plan pins the profile's definition; later steps of the run use the pinned one even when the
    file changes (here: segment length 4 s -> 1 s)."""
    clip = clips.make(width=320, height=240, seconds=3)
    asset = register.register(rt, str(clip))
    asset_id = asset["asset_id"]
    probe.probe(rt, asset_id)
    planned = plan.plan(rt, asset_id)
    assert [p["name"] for p in planned] == ["source"]
    assert planned[0]["profile_key"] == "default@1"

    path = Path(rt.settings.profiles_dir) / "default.yaml"
    text = path.read_text()
    edited = text.replace("segment_seconds: 4", "segment_seconds: 1")
    assert edited != text
    path.write_text(edited)
    assert rt.profile("default").segment_seconds == 1  # the file really says something else now

    encoded = [transcode.transcode(rt, asset_id, p) for p in planned]
    measured = [quality.measure(rt, asset_id, r) for r in encoded]
    assert gate.quality_gate(rt, asset_id, measured)["success"]
    packaged = package.package(rt, asset_id, encoded)
    published = publish.publish(rt, asset_id, packaged)
    variant = next(file_uri_to_path(published["hls_uri"]).parent.glob("*/playlist.m3u8"))
    assert len(re.findall(r"^[^#\s]\S*\.m4s$", variant.read_text(), re.M)) == 1
    target = int(re.search(r"#EXT-X-TARGETDURATION:(\d+)", variant.read_text()).group(1))
    assert target >= 3  # 4 s segments of a 3 s clip: one segment, not three of 1 s
    summary = show.summary(rt, asset_id)
    assert summary["status"] == "ready"
    assert summary["profile"] == "default@1"


def test_pinned_profiles_are_kept_by_content(rt, catalog_dsn):
    prof = rt.profile("default")
    with rt.catalog() as cat:
        first = cat.pin_profile(prof.key, prof.name, str(prof.version), prof.to_dict())
        assert cat.pin_profile(prof.key, prof.name, str(prof.version), prof.to_dict()) == first
        changed = {**prof.to_dict(), "segment_seconds": 2}
        second = cat.pin_profile(prof.key, prof.name, str(prof.version), changed)
        assert second != first
        assert cat.pinned_profile(prof.key, first)["segment_seconds"] == prof.segment_seconds
        assert cat.pinned_profile(prof.key, second)["segment_seconds"] == 2

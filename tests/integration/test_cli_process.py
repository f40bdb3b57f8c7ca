"""`vam process` end to end on the embedded defaults (file:// objects, local catalog)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vam.catalog import open_catalog
from vam.settings import REPO_ROOT
from vam.storage.file import file_uri_to_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def vam(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "vam"), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


def run_json(*args: str, env: dict[str, str] | None = None) -> tuple[int, dict]:
    proc = vam("process", "--json", *args, env=env)
    try:
        return proc.returncode, json.loads(proc.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"no JSON on stdout (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr[-4000:]}")


def test_process_local_file_never_upscales(vam_home, clips):
    clip = clips.make(width=640, height=360, seconds=2)
    code, out = run_json(str(clip))
    assert code == 0, out
    assert out["status"] == "ready"
    assert out["reason"] is None
    src = out["source"]
    assert (src["width"], src["height"], src["rotation"]) == (640, 360, 0)
    assert src["fps"] == pytest.approx(25)
    assert src["duration"] == pytest.approx(2, abs=0.1)
    assert src["video_codec"] == "h264"
    assert [(r["name"], r["width"], r["height"]) for r in out["renditions"]] == [("360p", 640, 360)]
    r = out["renditions"][0]
    assert r["codec"] == "h264"
    assert r["bitrate_kbps"] > 0
    assert 0 < r["vmaf"] <= 100
    assert 0 < r["ssim"] <= 1
    assert r["psnr"] > 20
    hls = file_uri_to_path(out["hls"])
    dash = file_uri_to_path(out["dash"])
    assert hls.read_text().startswith("#EXTM3U")
    assert "<MPD" in dash.read_text()
    assert out["hls"].startswith((vam_home / "objects" / "processed").as_uri())

    # Running it again reprocesses in place: same asset, same keys, still one rendition row.
    code, again = run_json(str(clip))
    assert code == 0
    assert again["asset_id"] == out["asset_id"]
    assert (
        again["renditions"] == [dict(r, vmaf=again["renditions"][0]["vmaf"])] or len(again["renditions"]) == 1
    )


def test_rotated_portrait_source_comes_out_upright(vam_home, clips):
    clip = clips.make(width=480, height=270, seconds=2, rotate=90)
    code, out = run_json(str(clip))
    assert code == 0, out
    assert out["source"]["rotation"] in (90, 270)
    # upright portrait 270x480, below the lowest rung: one rendition at its own size
    assert [(r["width"], r["height"]) for r in out["renditions"]] == [(270, 480)]


@pytest.mark.parametrize(
    ("name", "content", "code_word"),
    [
        ("empty.mp4", b"", "empty"),
        ("notes.mp4", b"these are meeting notes, not a video\n" * 20, "not_a_video"),
    ],
)
def test_rejected_inputs_exit_2_and_keep_the_source(vam_home, tmp_path, name, content, code_word):
    src = tmp_path / name
    src.write_bytes(content)
    proc = vam("process", "--json", str(src))
    assert proc.returncode == 2, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "rejected"
    assert code_word.split("_")[0] in out["reason"].lower() or code_word in proc.stderr
    assert "rejected" in proc.stderr
    assert src.read_bytes() == content  # never deleted or changed
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat:
        asset = cat.get_asset(out["asset_id"])
        assert asset["status"] == "rejected"
        quarantined = cat.objects(out["asset_id"], kind="quarantine")
    assert len(quarantined) == 1
    assert file_uri_to_path(quarantined[0]["uri"]).read_bytes() == content


def test_truncated_mp4_is_rejected(vam_home, clips, tmp_path):
    whole = clips.make(width=320, height=240, seconds=2).read_bytes()
    src = tmp_path / "cut.mp4"
    src.write_bytes(whole[: len(whole) // 2])
    code, out = run_json(str(src))
    assert code == 2
    assert out["status"] == "rejected"
    assert any(word in out["reason"].lower() for word in ("truncat", "undecodable", "incomplete", "cut"))
    assert src.exists()


def test_quality_gate_failure_names_rendition_and_metric(vam_home, clips, tmp_path):
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    data = yaml.safe_load((REPO_ROOT / "include" / "encoding_profiles" / "default.yaml").read_text())
    for rung in data["rungs"]:
        rung["min_vmaf"] = 99.9  # not reachable by a lossy encode of a test pattern
    (profiles / "default.yaml").write_text(yaml.safe_dump(data))
    clip = clips.make(width=640, height=360, seconds=2, pattern="mandelbrot")
    code, out = run_json(str(clip), env={"VAM_PROFILES_DIR": str(profiles)})
    assert code == 1
    assert out["status"] == "failed"
    assert "quality gate failed" in out["reason"]
    assert "360p" in out["reason"]
    assert "vmaf" in out["reason"]
    assert out["hls"] is None  # nothing published


def test_unknown_profile_lists_available(vam_home, clips):
    proc = vam("process", str(clips.make()), "--profile", "nope")
    assert proc.returncode == 1
    assert "default" in proc.stderr
    assert "nope" in proc.stderr


def test_missing_source_is_a_clear_error(vam_home, tmp_path):
    proc = vam("process", str(tmp_path / "absent.mp4"))
    assert proc.returncode == 1
    assert "absent.mp4" in proc.stderr


def test_failed_encode_ends_failed_with_the_step_and_error(vam_home, clips, tmp_path):
    from vam.media import tools

    # An ffmpeg that crashes when asked to encode video (and works for probing and decoding).
    wrapper = tmp_path / "ffmpeg"
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -c:v "*) echo "simulated encoder crash" >&2; exit 139;; esac\n'
        f'exec {tools.ffmpeg_path()} "$@"\n'
    )
    wrapper.chmod(0o755)
    code, out = run_json(str(clips.make(width=640, height=360, seconds=1)), env={"VAM_FFMPEG": str(wrapper)})
    assert code == 1
    assert out["status"] == "failed"  # finalize: never left in "processing"
    assert out["reason"].startswith("transcode failed: ToolError")
    assert "simulated encoder crash" in out["reason"]
    assert out["hls"] is None
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat:
        events = cat.events(out["asset_id"])
    assert events[-1]["to_status"] == "failed"
    assert any(e["kind"] == "step_failed" and e["detail"]["step"] == "transcode" for e in events)

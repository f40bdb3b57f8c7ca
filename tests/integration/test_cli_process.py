"""`vam process` end to end on the embedded defaults (file:// objects, local catalog)."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from vam.catalog import open_catalog
from vam.errors import RejectedInput
from vam.media.probe import probe
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


def show_json(asset_id: str) -> dict:
    proc = vam("show", asset_id, "--events", "--json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


# One line of `vam show --events` in text mode: "    <date> <time> <kind>[ <from> -> <to>] <detail JSON>"
EVENT_LINE = re.compile(
    r"^ {4}\d{4}-\d\d-\d\d \d\d:\d\d:\d\d (?P<kind>\w+)(?: (?P<from>\w*) -> (?P<to>\w+))? (?P<detail>\{.*\})$"
)


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

    first = show_json(out["asset_id"])
    kinds = {o["kind"] for o in first["objects"]}
    assert {"source", "rendition", "segment", "manifest", "keyframe", "chapters"} <= kinds

    def status_changes(events: list[dict]) -> list[tuple]:
        return [(e["from_status"], e["to_status"]) for e in events if e["kind"] == "status"]

    run = [("ingesting", "processing"), ("processing", "ready")]
    assert status_changes(first["events"]) == run

    # The same bytes again: the catalog answers (no second run), the request is recorded.
    code, again = run_json(str(clip))
    assert code == 0, again
    assert again["asset_id"] == out["asset_id"]
    assert again["status"] == "ready"
    assert again["renditions"] == out["renditions"]
    assert (again["hls"], again["dash"]) == (out["hls"], out["dash"])
    answered = show_json(out["asset_id"])
    assert answered["events"][: len(first["events"])] == first["events"]
    assert [e["kind"] for e in answered["events"][len(first["events"]) :]] == ["duplicate"]
    assert answered["events"][-1]["detail"]["source_uri"] == out["source_uri"]
    assert answered["objects"] == first["objects"]

    # --force reprocesses in place: same asset, same keys, nothing duplicated.
    code, forced = run_json(str(clip), "--force")
    assert code == 0, forced
    assert forced["asset_id"] == out["asset_id"]
    assert forced["status"] == "ready"
    same = ("name", "codec", "width", "height", "bitrate_kbps", "uri")
    assert [{k: r[k] for k in same} for r in forced["renditions"]] == [
        {k: r[k] for k in same} for r in out["renditions"]
    ]
    assert (forced["hls"], forced["dash"]) == (out["hls"], out["dash"])
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat:
        with cat.conn, cat.conn.cursor() as cur:
            cur.execute(
                "SELECT count(*) FROM assets WHERE content_sha256 = %s OR source_uri = %s",
                (out["sha256"], out["source_uri"]),
            )
            assert cur.fetchone()[0] == 1
        assert [r["name"] for r in cat.renditions(out["asset_id"])] == ["360p"]  # one row per rendition
        objects = cat.objects(out["asset_id"])
    uris = [o["uri"] for o in objects]
    assert len(uris) == len(set(uris))
    assert sorted(uris) == sorted(o["uri"] for o in first["objects"])  # the same keys, no new copies
    sources = [(o["uri"], o["sha256"]) for o in objects if o["kind"] == "source"]
    assert sources == [(out["source_uri"], out["sha256"])]

    # The audit log in text mode: one line per event, both runs' status changes in order.
    shown = vam("show", out["asset_id"], "--events")
    assert shown.returncode == 0, shown.stderr[-3000:]
    lines = shown.stdout.splitlines()
    assert lines[0] == f"asset {out['asset_id']}: ready"
    events = [m for m in map(EVENT_LINE.match, lines[lines.index("  events:") + 1 :]) if m]
    assert len(events) == len(lines) - lines.index("  events:") - 1  # every line is an event
    logged = show_json(out["asset_id"])["events"]
    assert [e.group("kind") for e in events] == [e["kind"] for e in logged]
    assert [json.loads(e.group("detail")) for e in events] == [e["detail"] for e in logged]
    assert events[0].group("kind") == "registered"
    assert json.loads(events[0].group("detail"))["sha256"] == out["sha256"]
    changes = [(e.group("from"), e.group("to")) for e in events if e.group("kind") == "status"]
    assert changes == status_changes(logged) == [*run, ("ready", "ingesting"), *run]
    rerun = next(e for e in logged if e["kind"] == "status" and e["from_status"] == "ready")
    assert rerun["detail"]["rerun"] is True
    assert rerun["detail"]["forced"] is True


def test_rotated_portrait_source_comes_out_upright(vam_home, clips):
    clip = clips.make(width=480, height=270, seconds=2, rotate=90)
    code, out = run_json(str(clip))
    assert code == 0, out
    assert out["source"]["rotation"] in (90, 270)
    # upright portrait 270x480, below the lowest rung: one rendition at its own size
    assert [(r["width"], r["height"]) for r in out["renditions"]] == [(270, 480)]


@pytest.mark.parametrize(
    ("name", "content", "code", "message"),
    [
        (
            "empty.mp4",
            b"",
            "empty_file",
            "empty.mp4 is 0 bytes: the upload or copy produced an empty file; send it again",
        ),
        (
            "notes.mp4",
            b"these are meeting notes, not a video\n" * 20,
            "not_a_video",
            "notes.mp4 is not a video file ffmpeg can read (",
        ),
    ],
)
def test_rejected_inputs_exit_2_and_keep_the_source(vam_home, tmp_path, name, content, code, message):
    src = tmp_path / name
    src.write_bytes(content)
    with pytest.raises(RejectedInput) as probed:  # what the probe says about this input
        probe(src)
    assert probed.value.code == code
    assert probed.value.message.startswith(message)
    proc = vam("process", "--json", str(src))
    assert proc.returncode == 2, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "rejected"
    assert out["reason"] == probed.value.message
    assert f"vam: asset {out['asset_id']} rejected: {probed.value.message}" in proc.stderr.splitlines()
    assert out["hls"] is None
    assert out["renditions"] == []
    assert src.read_bytes() == content  # never deleted or changed
    sha256 = hashlib.sha256(content).hexdigest()
    assert out["sha256"] == sha256
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat:
        asset = cat.get_asset(out["asset_id"])
        rejected = cat.last_event(out["asset_id"], "status")
        quarantined = cat.objects(out["asset_id"], kind="quarantine")
    assert (asset["status"], asset["reason"]) == ("rejected", probed.value.message)
    assert rejected["to_status"] == "rejected"
    assert rejected["detail"]["code"] == code
    assert rejected["detail"]["reason"] == probed.value.message
    quarantine_dir = (vam_home / "objects" / "quarantine").as_uri()
    assert [q["uri"] for q in quarantined if q["uri"].startswith(quarantine_dir)] == [
        rejected["detail"]["quarantine_uri"]
    ]
    copy = next(q for q in quarantined if q["uri"] == rejected["detail"]["quarantine_uri"])
    assert copy["sha256"] == sha256
    assert copy["size_bytes"] == len(content)
    assert file_uri_to_path(copy["uri"]).read_bytes() == content


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
    assert proc.stdout == ""


def test_missing_source_with_json_prints_an_error_summary(vam_home, tmp_path):
    missing = tmp_path / "missing.mp4"
    proc = vam("process", str(missing), "--json")
    assert proc.returncode == 1, proc.stderr[-3000:]
    out = json.loads(proc.stdout)
    assert out == {"asset_id": None, "status": "error", "reason": f"no object at {missing.as_uri()}"}
    assert f"vam: no object at {missing.as_uri()}" in proc.stderr


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
    assert [e["to_status"] for e in events if e["kind"] == "status"][-1] == "failed"
    assert any(e["kind"] == "step_failed" and e["detail"]["step"] == "transcode" for e in events)
    assert events[-1]["kind"] == "outputs_discarded"  # a failed run leaves nothing behind

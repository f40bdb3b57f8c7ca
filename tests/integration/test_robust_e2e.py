"""Inputs media teams receive every day, through the whole pipeline (``vam.process``, what `vam
process` runs): probe, plan, encode, the gate's expected frame counts, packaging and the catalog
must agree."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

import vam
from vam.media import tools
from vam.media.probe import describe
from vam.storage.file import file_uri_to_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def quick(vam_home, airflow_db, monkeypatch):
    monkeypatch.setenv("VAM_ENRICHMENT", "false")


def process(path: Path) -> tuple[int, dict]:
    """``vam.process`` (what `vam process --json` prints) and the exit code the command gives."""
    out = vam.process(str(path))
    return {"ready": 0, "rejected": 2}.get(out["status"], 1), out


def hls_seconds(out: dict) -> float:
    master = file_uri_to_path(out["hls"])
    variant = next(master.parent.glob("*/playlist.m3u8"))
    return sum(float(x) for x in re.findall(r"#EXTINF:([\d.]+)", variant.read_text()))


def test_variable_frame_rate_source_is_ready_at_a_constant_rate(clips):
    code, out = process(clips.make_vfr())  # 1 s at 10, 30 and 60 fps, joined
    assert code == 0, out["reason"]
    rendition = describe(file_uri_to_path(out["renditions"][0]["uri"]))
    assert rendition.video["avg_frame_rate"] == rendition.video["r_frame_rate"] == "60/1"
    assert rendition.video_frame_count() == pytest.approx(180, abs=2)  # no frames dropped
    assert hls_seconds(out) == pytest.approx(3.0, abs=0.1)


def test_audio_longer_than_video_keeps_manifests_catalog_and_media_consistent(clips):
    code, out = process(clips.make_audio_longer(video_seconds=2, audio_seconds=5))
    assert code == 0, out["reason"]
    assert out["source"]["duration"] == pytest.approx(5, abs=0.1)
    rendition = describe(file_uri_to_path(out["renditions"][0]["uri"]))
    assert float(rendition.video["duration"]) == pytest.approx(5, abs=0.1)  # video padded
    assert float(rendition.audio["duration"]) == pytest.approx(5, abs=0.1)
    assert hls_seconds(out) == pytest.approx(5, abs=0.15)
    mpd = file_uri_to_path(out["dash"]).read_text()
    seconds = float(re.search(r'mediaPresentationDuration="PT(?:0H)?(?:0M)?([\d.]+)S"', mpd).group(1))
    assert seconds == pytest.approx(5, abs=0.15)


def test_long_gop_mpegts_is_ready(tmp_path):
    ts = tmp_path / "broadcast.ts"
    subprocess.run(
        [tools.ffmpeg_path(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25:duration=3",
         "-f", "lavfi", "-i", "sine=duration=3", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac",
         "-shortest", "-f", "mpegts", str(ts)],
        check=True,
    )  # fmt: skip
    code, out = process(ts)
    assert code == 0, out["reason"]
    assert out["source"]["container"] == "mpegts"
    assert out["status"] == "ready"


def test_corrupt_middle_is_rejected_not_failed(clips, tmp_path):
    clip = clips.make(width=320, height=240, seconds=3, pattern="testsrc2")
    data = bytearray(clip.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = os.urandom(4096)
    bad = tmp_path / "damaged.mp4"
    bad.write_bytes(bytes(data))
    code, out = process(bad)
    assert code == 2, out
    assert out["status"] == "rejected"
    assert "corrupt in the middle" in out["reason"]
    assert out["renditions"] == []

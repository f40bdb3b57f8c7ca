"""Issue 3's "done when": `vam process` on a clip with speech and cuts returns its transcript,
scenes, chapters, labels and moderation; its manifests reference the captions; and `vam search`
finds it by a spoken word at the right time."""

from __future__ import annotations

import getpass
import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from vam import show
from vam.enrich.transcript import word_error_rate
from vam.media import tools
from vam.storage.file import file_uri_to_path

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SPEECH = (
    "The quick brown fox jumps over the lazy dog near the river bank. "
    "Our servers encode every video into several sizes before breakfast."
)
SHOT_SECONDS = 3.0
LEAD_IN = 1.0


def vam(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(Path(sys.executable).parent / "vam"), *args], capture_output=True, text=True, timeout=900
    )


@pytest.fixture(scope="module")
def speech_clip(tmp_path_factory) -> Path:
    """Three hard-cut shots (pattern, fractal, colour bars) with spoken English from 1 s on."""
    work = tmp_path_factory.mktemp("speech")
    wav = work / "speech.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wav), SPEECH], check=True)
    out = work / "talk.mp4"
    size, rate, d = "640x360", 25, SHOT_SECONDS
    graph = (
        f"[0:v]trim=duration={d},setpts=PTS-STARTPTS[a];[1:v]trim=duration={d},setpts=PTS-STARTPTS[b];"
        f"[2:v]trim=duration={d},setpts=PTS-STARTPTS[c];[a][b][c]concat=n=3:v=1:a=0[v];"
        f"[3:a]adelay={int(LEAD_IN * 1000)}:all=1,apad[s]"
    )
    tools.run(
        [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}",
         "-f", "lavfi", "-i", f"mandelbrot=size={size}:rate={rate}",
         "-f", "lavfi", "-i", f"smptebars=size={size}:rate={rate}",
         "-i", str(wav), "-filter_complex", graph, "-map", "[v]", "-map", "[s]", "-t", str(3 * d),
         "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(out)],
        log_progress=False,
    )  # fmt: skip
    return out


def test_process_enriches_publishes_captions_and_is_searchable(vam_home, speech_clip):
    proc = vam("process", "--json", str(speech_clip))
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout)
    assert out["status"] == "ready"

    transcript = out["transcript"]
    assert word_error_rate(SPEECH, transcript["text"]) < 0.35, transcript["text"]
    segments = transcript["segments"]
    assert segments
    assert segments[0]["start"] >= LEAD_IN - 0.6
    assert all(s["start"] < s["end"] for s in segments)

    scenes = out["scenes"]
    assert [round(s["start"], 2) for s in scenes] == [0.0, SHOT_SECONDS, 2 * SHOT_SECONDS]
    assert all(s["confidence"] > 0.5 for s in scenes[1:])
    assert out["chapters"]
    assert out["chapters"][0]["start"] == 0.0
    assert len(out["keyframes"]) == len(scenes)
    assert out["labels"]
    assert all({"label", "score", "scenes"} <= set(label) for label in out["labels"])
    assert out["moderation"]["flagged"] is False
    assert out["moderation"]["threshold"] == pytest.approx(0.6)

    # The captions are published with the asset and referenced from both manifests.
    vtt = file_uri_to_path(out["captions_uri"]).read_text()
    assert vtt.startswith("WEBVTT")
    assert "river" in vtt.lower()
    master = file_uri_to_path(out["hls"]).read_text()
    assert re.search(r'#EXT-X-MEDIA:TYPE=SUBTITLES,.*LANGUAGE="en".*URI="subs/en.m3u8"', master)
    assert (file_uri_to_path(out["hls"]).parent / "subs" / "en.vtt").read_text() == vtt
    mpd = ET.parse(file_uri_to_path(out["dash"])).getroot()
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    text_sets = mpd.findall(".//d:AdaptationSet[@contentType='text']", ns)
    assert [t.get("lang") for t in text_sets] == ["en"]
    assert file_uri_to_path(out["chapters_uri"]).read_text().startswith("WEBVTT")

    # A spoken word finds the asset, with the time of the segment it was said in.
    found = vam("search", "several sizes", "--json")
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    hit = next(h for h in hits if h["asset_id"] == out["asset_id"])
    assert hit["score"] > 0
    match = hit["matches"][0]
    spoken = next(s for s in segments if "sizes" in s["text"].lower())
    assert match["start"] == pytest.approx(spoken["start"], abs=0.01)
    assert match["end"] == pytest.approx(spoken["end"], abs=0.01)
    assert match["start"] > SHOT_SECONDS  # said in the second sentence, well after the first

    # Semantic mode: different words, same meaning.
    sem = vam("search", "fox jumping over a dog by the riverside", "--mode", "semantic", "--json")
    assert sem.returncode == 0, sem.stderr
    assert out["asset_id"] in [h["asset_id"] for h in json.loads(sem.stdout)]

    # Manual tags: validated, searchable, audited.
    assert vam("tag", out["asset_id"], "campaign=spring-launch", "tags+=demo").returncode == 0
    bad = vam("tag", out["asset_id"], "colour=blue")
    assert bad.returncode == 1
    assert "colour" in bad.stderr
    tagged = json.loads(vam("search", "--tag", "campaign=spring-launch", "--json").stdout)
    assert [h["asset_id"] for h in tagged] == [out["asset_id"]]

    # The audit log: each enrichment step's event with what it stored, the status changes of the
    # run in order, and the one accepted tag change (the refused one left no event).
    events = show(out["asset_id"], events=True)["events"]
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "registered"
    assert events[0]["to_status"] == "ingesting"
    assert "step_failed" not in kinds
    assert "moderation" not in kinds  # not flagged, never was: no moderation event
    statuses = [(e["from_status"], e["to_status"]) for e in events if e["kind"] == "status"]
    assert statuses == [("ingesting", "processing"), ("processing", "ready")]

    def only(kind: str) -> dict:
        found = [e for e in events if e["kind"] == kind]
        assert len(found) == 1, (kind, found)
        return found[0]

    processing = kinds.index("status")
    ready = len(kinds) - 1 - kinds[::-1].index("status")
    for kind in ("transcript", "scenes", "labels", "quality_gate"):
        assert processing < kinds.index(kind) < ready, (kind, kinds)
    assert only("transcript")["detail"] == {
        "segments": len(segments),
        "language": "en",
        "model": transcript["model"],
        "embeddings": True,
    }
    assert only("scenes")["detail"] == {"scenes": 3, "chapters": len(out["chapters"])}
    assert only("labels")["detail"] == {"labels": sorted(label["label"] for label in out["labels"])}
    assert only("quality_gate")["detail"]["success"] is True
    tag_event = only("tags")
    assert kinds.index("tags") > ready  # tagged after the run
    assert tag_event["actor"] == f"cli:{getpass.getuser()}"
    assert tag_event["detail"] == {
        "source": "cli",
        "diff": {
            "campaign": {"before": None, "after": "spring-launch"},
            "tags": {"before": None, "after": ["demo"]},
        },
    }

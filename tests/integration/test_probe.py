"""probe() against real files made with ffmpeg's lavfi sources, and the rejections it must raise."""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import pytest

from vam.errors import RejectedInput, ToolError
from vam.media import tools
from vam.media.ladder import plan_ladder
from vam.media.probe import ValidationLimits, probe
from vam.media.profiles import load_profile
from vam.settings import REPO_ROOT

pytestmark = pytest.mark.integration


def ffmpeg(*args: str) -> None:
    tools.run([tools.ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args])


def make_clip(
    path: Path,
    *,
    size: str = "320x240",
    seconds: float = 2,
    rate: int = 25,
    audio: bool = True,
    video: bool = True,
    extra: tuple[str, ...] = (),
) -> Path:
    inputs: list[str] = []
    if video:
        inputs += ["-f", "lavfi", "-i", f"testsrc2=size=320x240:rate={rate}:duration={seconds}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    codecs: list[str] = []
    if video:
        w, h = size.split("x")
        codecs += ["-vf", f"scale={w}:{h},setsar=1", "-c:v", "libx264", "-preset", "ultrafast"]
        codecs += ["-pix_fmt", "yuv420p" if int(w) % 2 == 0 and int(h) % 2 == 0 else "yuv444p"]
    if audio:
        codecs += ["-c:a", "aac", "-ac", "2"]
    ffmpeg(*inputs, *codecs, *extra, str(path))
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("probe") / "clip.mp4", extra=("-movflags", "+faststart"))


def rejected(path: Path) -> str:
    with pytest.raises(RejectedInput) as excinfo:
        probe(path)
    assert excinfo.value.message  # a human explanation, not just a code
    return excinfo.value.code


def test_valid_clip(clip):
    info = probe(clip)
    assert info.container.startswith("mov,mp4")
    assert info.video_codec == "h264"
    assert (info.width, info.height) == (320, 240)
    assert (info.display_width, info.display_height) == (320, 240)
    assert info.rotation == 0
    assert info.sample_aspect_ratio == "1:1"
    assert info.fps == 25.0
    assert info.fps_fraction == "25/1"
    assert info.duration == pytest.approx(2.0, abs=0.05)
    assert info.frame_count == 50
    assert info.size_bytes == clip.stat().st_size
    assert info.bit_rate
    assert info.bit_rate > 0
    assert info.pix_fmt == "yuv420p"
    assert (info.audio_codec, info.audio_channels, info.audio_sample_rate) == ("aac", 2, 48000)
    assert type(info).from_dict(info.to_dict()) == info


def test_matroska_without_nb_frames_counts_packets(tmp_path):
    info = probe(make_clip(tmp_path / "clip.mkv", audio=False))
    assert info.frame_count == 50
    assert info.audio_codec is None


def test_empty_file(tmp_path):
    (tmp_path / "empty.mp4").touch()
    assert rejected(tmp_path / "empty.mp4") == "empty_file"


def test_text_file_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("these are my meeting notes, not a video\n" * 20)
    assert rejected(path) == "not_a_video"


def test_still_image(tmp_path):
    path = tmp_path / "still.png"
    ffmpeg("-f", "lavfi", "-i", "testsrc2=size=320x240", "-frames:v", "1", str(path))
    assert rejected(path) == "not_a_video"


def test_audio_only(tmp_path):
    assert rejected(make_clip(tmp_path / "sound.m4a", video=False)) == "no_video_stream"


def test_truncated_faststart_mp4(clip, tmp_path):
    data = clip.read_bytes()
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path) == "truncated"


def test_truncated_mp4_without_index(tmp_path):
    data = make_clip(tmp_path / "plain.mp4").read_bytes()  # moov at the end
    path = tmp_path / "half.mp4"
    path.write_bytes(data[: len(data) // 2])
    assert rejected(path) == "truncated"


def test_rotated_clip(clip, tmp_path):
    path = tmp_path / "rotated.mp4"
    # -display_rotation is counter-clockwise: -90 is what a phone held upright writes (90 clockwise)
    ffmpeg("-display_rotation", "-90", "-i", str(clip), "-c", "copy", str(path))
    info = probe(path)
    assert info.rotation == 90
    assert (info.width, info.height) == (320, 240)
    assert (info.display_width, info.display_height) == (240, 320)


def test_odd_size_source(tmp_path):
    info = probe(make_clip(tmp_path / "odd.mp4", size="321x241", audio=False))
    assert (info.width, info.height) == (321, 241)
    assert (info.display_width, info.display_height) == (321, 241)
    (plan,) = plan_ladder(info, load_profile("default", REPO_ROOT / "include" / "encoding_profiles"))
    assert (plan.name, plan.width, plan.height) == ("source", 320, 240)


def test_absurd_dimensions(tmp_path):
    assert rejected(make_clip(tmp_path / "thin.mp4", size="320x8", audio=False)) == "absurd_dimensions"


def test_absurd_duration(clip):
    with pytest.raises(RejectedInput) as excinfo:
        probe(clip, limits=ValidationLimits(max_duration=1.0))
    assert excinfo.value.code == "absurd_duration"


def test_undecodable(clip, tmp_path):
    data = bytearray(clip.read_bytes())
    mdat = data.find(b"mdat") + 4
    data[mdat : mdat + 4000] = b"\xff" * 4000  # the first frames' data
    path = tmp_path / "garbled.mp4"
    path.write_bytes(bytes(data))
    assert rejected(path) == "undecodable"


def test_run_raises_with_stderr_tail(tmp_path):
    with pytest.raises(ToolError) as excinfo:
        tools.run([tools.ffmpeg_path(), "-hide_banner", "-i", str(tmp_path / "missing.mp4")])
    assert excinfo.value.returncode != 0
    assert "missing.mp4" in excinfo.value.stderr_tail


def test_run_timeout_kills_the_process_group():
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        tools.run(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.5)
    assert time.monotonic() - start < 10
    assert not tools._running


def test_kill_running_stops_ffmpeg():
    argv = [tools.ffmpeg_path(), "-hide_banner", "-re", "-f", "lavfi", "-i", "testsrc2=duration=60",
            "-f", "null", "-"]  # fmt: skip
    errors: list[BaseException] = []

    def target() -> None:
        try:
            tools.run(argv)
        except ToolError as exc:
            errors.append(exc)

    thread = threading.Thread(target=target)
    thread.start()
    deadline = time.monotonic() + 10
    while not tools._running and time.monotonic() < deadline:
        time.sleep(0.05)
    assert tools.kill_running() == 1
    thread.join(timeout=10)
    assert not thread.is_alive()
    assert len(errors) == 1
    assert errors[0].returncode != 0

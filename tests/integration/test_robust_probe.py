"""probe() on inputs that are fine but unusual (long-GOP MPEG-TS, no duration in the container) and on
inputs that must be rejected with the right reason (corrupt in the middle, cover art only, containers
outside the allowlist, outside a profile's limits). Every input is made here with ffmpeg."""

from __future__ import annotations

import random
import struct
import textwrap
from pathlib import Path

import pytest

from vam.errors import RejectedInput
from vam.media import probe as probe_module
from vam.media import tools
from vam.media.probe import ValidationLimits, describe, probe
from vam.media.profiles import load_profile

pytestmark = pytest.mark.integration

FPS = 25
FRAME = 1 / FPS


def ffmpeg(*args: str) -> None:
    tools.run(
        [tools.ffmpeg_path(), "-hide_banner", "-nostdin", "-v", "error", "-y", *args], log_progress=False
    )


def lavfi(seconds: float = 3, *, size: str = "320x240", audio: bool = True) -> list[str]:
    args = ["-f", "lavfi", "-i", f"testsrc2=size={size}:rate={FPS}:duration={seconds}"]
    if audio:
        args += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}"]
    return args


X264 = ("-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p")


def rejection(path: Path, **kwargs) -> RejectedInput:
    with pytest.raises(RejectedInput) as excinfo:
        probe(path, **kwargs)
    return excinfo.value


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("robust")


# -- 1. a clean MPEG-TS with a long GOP --------------------------------------------------------------


@pytest.fixture(scope="module")
def long_gop_ts(media) -> Path:
    """One keyframe in 3 s (x264's default GOP is 250 frames): no keyframe in the last second."""
    path = media / "long-gop.ts"
    ffmpeg(
        *lavfi(3),
        "-c:v",
        "libx264",
        "-pix_fmt",
        "yuv420p",
        "-c:a",
        "aac",
        "-shortest",
        "-f",
        "mpegts",
        str(path),
    )
    return path


@pytest.mark.parametrize("checks", [{}, {"full_decode": False}], ids=["full-decode", "head-and-tail"])
def test_long_gop_mpegts_is_accepted(long_gop_ts, checks):
    info = probe(long_gop_ts, limits=ValidationLimits(**checks))
    assert info.container == "mpegts"
    assert info.frame_count == 3 * FPS
    assert info.duration == pytest.approx(3.0, abs=2 * FRAME)


def test_mpegts_with_keyframes_every_second_is_accepted_from_its_tail(media):
    path = media / "gop25.ts"
    ffmpeg(
        *lavfi(4, audio=False),
        "-c:v",
        "libx264",
        "-g",
        "25",
        "-pix_fmt",
        "yuv420p",
        "-f",
        "mpegts",
        str(path),
    )
    info = probe(path, limits=ValidationLimits(full_decode=False, tail_seconds=1.5))
    assert info.frame_count == 4 * FPS


def test_tail_seek_aims_at_the_keyframe_before_the_tail(media):
    """With B-frames ffmpeg moves an input -ss back 3/23 s (not in MP4): aimed at the keyframe's
    time, MKV would start a whole GOP early; an MPEG-TS must land just before its decode time."""
    mp4 = media / "bframes.mp4"
    ffmpeg(*lavfi(4, audio=False, size="160x120"), "-c:v", "libx264", "-preset", "veryfast", "-g", "50",
           "-pix_fmt", "yuv420p", str(mp4))  # fmt: skip
    for suffix in (".mkv", ".ts"):
        ffmpeg("-i", str(mp4), "-c", "copy", str(mp4.with_suffix(suffix)))
    seeks = {}
    for suffix in (".mp4", ".mkv", ".ts"):
        path = mp4.with_suffix(suffix)
        described = describe(path)
        seek = probe_module._tail_seek(path, described.format, described.video, 3.0, ValidationLimits())
        run = probe_module._decode(path, 0, input_args=["-noaccurate_seek", "-ss", f"{seek:.6f}"], timeout=60)
        assert run.frames == 2 * FPS, suffix  # from the keyframe at 2 s, not from 0
        # -ss counts from the file's start; the video may start later (MPEG-TS)
        seeks[suffix] = seek + float(described.format["start_time"]) - float(described.video["start_time"])
    assert seeks[".mp4"] == pytest.approx(2.0, abs=0.001)
    assert seeks[".mkv"] == pytest.approx(2.0 + 3 / 23, abs=0.01)
    assert 1.8 < seeks[".ts"] < 2.0  # the keyframe's decode time


# -- 2. no duration in the container -----------------------------------------------------------------


def _no_duration_anywhere(path: Path) -> None:
    described = describe(path)
    assert "duration" not in described.format
    for stream in described.streams:
        assert "duration" not in stream
        assert "DURATION" not in (stream.get("tags") or {})


@pytest.mark.parametrize(
    ("name", "encode"),
    [
        # what a browser's MediaRecorder writes: VP8 + Opus, WebM without a duration element
        ("live.webm", ("-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8", "-b:v", "300k",
                       "-c:a", "libopus", "-f", "webm", "-live", "1")),
        ("live.mkv", (*X264, "-c:a", "aac", "-f", "matroska", "-live", "1")),
    ],
)  # fmt: skip
def test_matroska_without_duration_is_measured(media, name, encode):
    path = media / name
    ffmpeg(*lavfi(3), *encode, str(path))
    _no_duration_anywhere(path)
    info = probe(path)
    assert info.duration == pytest.approx(3.0, abs=FRAME)
    assert info.frame_count == 3 * FPS
    assert info.fps == pytest.approx(FPS)


def _zero_mp4_durations(data: bytearray) -> int:
    """Zero the duration of mvhd, every tkhd and every mdhd (sample tables untouched); returns how
    many boxes were patched."""
    # (box, offset of the duration after the version/flags word, for version 0 / version 1)
    layout = {b"mvhd": (12, 20), b"tkhd": (16, 24), b"mdhd": (12, 20)}
    containers = {b"moov", b"trak", b"mdia"}
    patched = 0

    def walk(start: int, end: int) -> None:
        nonlocal patched
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack(">I4s", data[pos : pos + 8])
            header = 8
            if size == 1:
                size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
            elif size == 0:
                size = end - pos
            if kind in containers:
                walk(pos + header, pos + size)
            elif kind in layout:
                version = data[pos + header]
                offset = pos + header + 4 + layout[kind][version]
                width = 4 if version == 0 else 8
                data[offset : offset + width] = bytes(width)
                patched += 1
            pos += size

    walk(0, len(data))
    return patched


def test_mp4_with_zeroed_durations_is_measured(media):
    whole = media / "whole.mp4"
    ffmpeg(*lavfi(3), *X264, "-c:a", "aac", "-movflags", "+faststart", str(whole))
    data = bytearray(whole.read_bytes())
    assert _zero_mp4_durations(data) == 5  # mvhd, 2 tkhd, 2 mdhd
    path = media / "zeroed.mp4"
    path.write_bytes(bytes(data))
    assert float(describe(path).format["duration"]) == 0.0
    info = probe(path)
    assert info.duration == pytest.approx(3.0, abs=FRAME)
    assert info.frame_count == 3 * FPS


# -- 3. corrupt in the middle --------------------------------------------------------------------------


def test_mp4_corrupt_in_the_middle_is_rejected(media):
    """Keyframes every second: the first frames and the last second decode, the middle does not."""
    whole = media / "gop25.mp4"
    ffmpeg(*lavfi(3), *X264, "-g", "25", "-crf", "20", "-c:a", "aac", "-movflags", "+faststart", str(whole))
    data = bytearray(whole.read_bytes())
    mdat = data.find(b"mdat") - 4
    (size,) = struct.unpack(">I", data[mdat : mdat + 4])
    middle = mdat + size // 2
    data[middle : middle + 4096] = random.Random(7).randbytes(4096)
    path = media / "corrupt-middle.mp4"
    path.write_bytes(bytes(data))

    exc = rejection(path)
    assert exc.code == "corrupt"
    assert "corrupt in the middle" in exc.message
    assert "at the end" not in exc.message
    assert exc.message.startswith("corrupt-middle.mp4 ")
    assert " of 3.00 s" in exc.message  # where it stops
    # the head and tail checks alone do not see it (what let it through to the gate before)
    probe(path, limits=ValidationLimits(full_decode=False))


def test_cut_mpegts_is_truncated_not_corrupt(long_gop_ts, tmp_path):
    data = long_gop_ts.read_bytes()
    path = tmp_path / "cut.ts"
    path.write_bytes(data[: (len(data) // 2) // 188 * 188 + 77])  # mid-packet, as a stopped download
    for threads in (0, 2):  # frame threads must not let the damaged last frame through
        exc = rejection(path, threads=threads)
        assert exc.code == "truncated", exc.message
        assert "cut short" in exc.message


# -- 4. cover art is not video -------------------------------------------------------------------------


def test_mp3_with_cover_art_has_no_video(media):
    path = media / "song.mp3"
    ffmpeg(
        "-f", "lavfi", "-i", "sine=duration=1", "-f", "lavfi", "-i", "color=red:size=64x64",
        "-map", "0", "-map", "1", "-frames:v", "1", "-c:a", "libmp3lame", "-c:v", "mjpeg",
        "-disposition:v", "attached_pic", str(path),
    )  # fmt: skip
    exc = rejection(path)
    assert exc.code == "no_video_stream"
    assert "only audio (mp3) and a still image (cover art / attached picture, mjpeg)" in exc.message
    assert "video (mjpeg)" not in exc.message


# -- 5. containers and profile limits ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "encode", "detected"),
    [
        ("clip.flv", (*X264, "-f", "flv"), "FLV (Flash Video) (ffprobe format flv)"),
        ("clip.gif", ("-f", "gif"), "(GIF) (ffprobe format gif)"),
        (
            "clip.mpg",
            ("-c:v", "mpeg2video", "-f", "vob"),
            "MPEG-PS (MPEG-2 Program Stream) (ffprobe format mpeg)",
        ),
        ("clip.h264", (*X264, "-f", "h264"), "raw H.264 video (ffprobe format h264)"),
    ],
)
def test_containers_outside_the_allowlist_are_rejected(media, name, encode, detected):
    path = media / name
    ffmpeg(*lavfi(1, audio=False, size="160x120"), *encode, str(path))
    exc = rejection(path)
    assert exc.code == "unsupported_container"
    assert detected in exc.message
    assert "accepted: MP4/MOV, MKV, WebM, MXF, MPEG-TS, AVI" in exc.message


@pytest.mark.parametrize(
    ("name", "encode", "container"),
    [
        ("clip.mxf", ("-c:v", "mpeg2video", "-c:a", "pcm_s16le", "-f", "mxf"), "mxf"),
        ("clip.avi", (*X264, "-c:a", "pcm_s16le", "-f", "avi"), "avi"),
    ],
)
def test_allowlisted_containers_are_accepted(media, name, encode, container):
    path = media / name
    ffmpeg(*lavfi(1), *encode, str(path))
    info = probe(path)
    assert info.container == container
    assert info.frame_count == FPS


@pytest.fixture(scope="module")
def clip(media) -> Path:
    path = media / "clip.mp4"
    ffmpeg(*lavfi(3, audio=False), *X264, str(path))
    return path


def _profile(directory: Path, limits: str):
    directory.mkdir(exist_ok=True)
    text = f"""\
        name: bounded
        version: 2
        segment_seconds: 4
        limits: {{{limits}}}
        rungs:
          - {{name: 360p, height: 360, codec: h264, video_bitrate_kbps: 800}}
        """
    (directory / "bounded.yaml").write_text(textwrap.dedent(text))
    return load_profile("bounded", directory)


@pytest.mark.parametrize(
    ("limits", "code", "reason"),
    [
        (
            "max_duration_s: 2",
            "absurd_duration",
            "lasts 3.0 s, longer than max_duration_s 2 of profile bounded@2",
        ),
        (
            "max_width: 256, max_height: 256",
            "absurd_dimensions",
            "has a coded size of 320x240, larger than max_width 256 x max_height 256 of profile bounded@2",
        ),
        (
            "min_fps: 29.97",
            "absurd_frame_rate",
            "has 25 frames per second, fewer than min_fps 29.97 of profile",
        ),
        (
            "max_fps: 24",
            "absurd_frame_rate",
            "has 25 frames per second, more than max_fps 24 of profile bounded@2",
        ),
    ],
)
def test_profile_limits_reject_with_the_limit_named(clip, tmp_path, limits, code, reason):
    profile = _profile(tmp_path / "profiles", limits)
    exc = rejection(clip, limits=ValidationLimits.from_profile(profile))
    assert exc.code == code
    assert exc.message == f"clip.mp4 {reason}" or exc.message.startswith(f"clip.mp4 {reason}")


def test_profile_limits_accept_within_them(clip, tmp_path):
    profile = _profile(
        tmp_path / "profiles", "max_duration_s: 3.5, max_width: 240, max_height: 320, max_fps: 25"
    )
    info = probe(clip, limits=ValidationLimits.from_profile(profile), threads=1)  # 320x240 is 240x320 turned
    assert info.frame_count == 3 * FPS

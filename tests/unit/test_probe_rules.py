"""The probe's rules that need no media file: limits from a profile, the messages that name them, the
container allowlist, cover art, and reading ffmpeg's stats line."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from vam.errors import ProfileError, RejectedInput
from vam.media import probe as probe_module
from vam.media.probe import Description, ValidationLimits
from vam.media.profiles import (
    DEFAULT_LIMITS,
    ProfileLimits,
    load_profile,
    profile_from_dict,
    profile_limits,
)
from vam.media.types import Profile
from vam.settings import REPO_ROOT

SHIPPED = REPO_ROOT / "include" / "encoding_profiles"
PATH = Path("/uploads/clip.mp4")

PROFILE = """\
name: bounded
version: 4
segment_seconds: 4
{limits}
rungs:
  - {{name: 360p, height: 360, codec: h264, video_bitrate_kbps: 800}}
"""


def write_profile(directory: Path, limits: str) -> Path:
    (directory / "bounded.yaml").write_text(textwrap.dedent(PROFILE.format(limits=limits)))
    return directory


def raised(function, *args) -> RejectedInput:
    with pytest.raises(RejectedInput) as excinfo:
        function(*args)
    return excinfo.value


# -- limits in a profile ---------------------------------------------------------------------------


def test_defaults_agree():
    limits = ValidationLimits()
    assert (limits.max_duration, limits.max_width, limits.max_height) == (6 * 3600, 8192, 8192)
    assert (limits.min_fps, limits.max_fps) == (1, 240)
    assert profile_limits(Profile(name="x", version=1, segment_seconds=4, rungs=())) == DEFAULT_LIMITS


def test_shipped_profiles_have_the_default_limits():
    for name in ("default", "multicodec"):
        profile = load_profile(name, SHIPPED)
        assert profile.limits == DEFAULT_LIMITS
        assert profile.to_dict()["limits"] == DEFAULT_LIMITS.to_dict()  # pinned with the profile
        limits = ValidationLimits.from_profile(profile)
        assert limits.origin == f"profile {profile.key}"
        assert limits.max_duration == DEFAULT_LIMITS.max_duration_s


def test_limits_section_is_read_and_pinned(tmp_path):
    write_profile(tmp_path, "limits: {max_duration_s: 7200, max_width: 3840, max_height: 2160, max_fps: 60}")
    profile = load_profile("bounded", tmp_path)
    assert profile.limits == ProfileLimits(max_duration_s=7200, max_width=3840, max_height=2160, max_fps=60)
    data = json.loads(json.dumps(profile.to_dict()))
    assert data["limits"]["max_duration_s"] == 7200
    assert profile_from_dict(data) == profile  # a pinned version keeps its limits

    limits = ValidationLimits.from_profile(profile, full_decode=False)
    assert (limits.max_duration, limits.max_width, limits.max_height) == (7200, 3840, 2160)
    assert (limits.min_fps, limits.max_fps) == (1, 60)
    assert limits.full_decode is False
    assert limits.origin == "profile bounded@4"


@pytest.mark.parametrize(
    ("limits", "error"),
    [
        ("limits: {max_duration: 10}", r"limits\.max_duration: unknown key"),
        ("limits: {max_width: 10}", r"limits\.max_width: must be at least 16"),
        ("limits: {max_fps: fast}", r"limits\.max_fps: must be a number"),
        ("limits: {min_fps: 50, max_fps: 30}", r"limits\.min_fps: 50 is above max_fps 30"),
        ("limits: [1]", "limits: must be a mapping"),
    ],
)
def test_bad_limits_name_the_key(tmp_path, limits, error):
    write_profile(tmp_path, limits)
    with pytest.raises(ProfileError, match=error):
        load_profile("bounded", tmp_path)


# -- the rules -------------------------------------------------------------------------------------


def test_duration_limit_is_named():
    limits = ValidationLimits(max_duration=7200, origin="profile default@1")
    exc = raised(probe_module._check_duration, PATH, 7201.0, limits)
    assert exc.code == "absurd_duration"
    assert exc.message == "clip.mp4 lasts 7201.0 s, longer than max_duration_s 7200 of profile default@1"
    probe_module._check_duration(PATH, 7200.0, limits)
    short = raised(probe_module._check_duration, PATH, 0.04, limits)
    assert short.message == "clip.mp4 lasts 0.040 s; a source must last more than 0.1 s"


def test_size_limit_compares_the_picture_turned_to_landscape():
    limits = ValidationLimits(max_width=1920, max_height=1080)
    probe_module._check_dimensions(PATH, 1920, 1080, 1920, 1080, limits)
    probe_module._check_dimensions(PATH, 1080, 1920, 1080, 1920, limits)  # portrait 1080x1920
    exc = raised(probe_module._check_dimensions, PATH, 2560, 1440, 2560, 1440, limits)
    assert exc.code == "absurd_dimensions"
    assert "2560x1440, larger than max_width 1920 x max_height 1080 (the default limits)" in exc.message
    # coded within, displayed (anamorphic) beyond
    exc = raised(probe_module._check_dimensions, PATH, 1440, 1080, 2000, 1080, limits)
    assert "display size of 2000x1080" in exc.message
    assert raised(probe_module._check_dimensions, PATH, 320, 8, 320, 8, limits).code == "absurd_dimensions"


def test_frame_rate_limits():
    limits = ValidationLimits(min_fps=10, max_fps=60)
    for fps in (10, 29.97, 60, 60000 / 1001):
        probe_module._check_frame_rate(PATH, fps, limits)
    low = raised(probe_module._check_frame_rate, PATH, 5.0, limits)
    assert (low.code, low.message) == (
        "absurd_frame_rate",
        "clip.mp4 has 5 frames per second, fewer than min_fps 10 (the default limits)",
    )
    high = raised(probe_module._check_frame_rate, PATH, 120.0, limits)
    assert "more than max_fps 60" in high.message


def describe_as(format_name: str, long_name: str, streams: list[dict]) -> Description:
    return Description(
        path=PATH, format={"format_name": format_name, "format_long_name": long_name}, streams=streams
    )


@pytest.mark.parametrize(
    "format_name",
    ["mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm", "mxf", "mpegts", "avi"],
)
def test_allowlisted_containers(format_name):
    probe_module._check_container(PATH, describe_as(format_name, "", []), ValidationLimits())


def test_other_containers_are_named():
    exc = raised(
        probe_module._check_container, PATH, describe_as("flv", "FLV (Flash Video)", []), ValidationLimits()
    )
    assert exc.code == "unsupported_container"
    assert (
        "FLV (Flash Video) (ffprobe format flv); accepted: MP4/MOV, MKV, WebM, MXF, MPEG-TS, AVI"
        in exc.message
    )
    narrow = ValidationLimits(containers=frozenset({"matroska", "webm"}))
    exc = raised(probe_module._check_container, PATH, describe_as("avi", "AVI", []), narrow)
    assert "accepted: MKV, WebM:" in exc.message


def test_cover_art_is_not_video():
    audio = {"index": 0, "codec_type": "audio", "codec_name": "mp3"}
    cover = {"index": 1, "codec_type": "video", "codec_name": "mjpeg", "disposition": {"attached_pic": 1}}
    described = describe_as("mp3", "MP2/3 (MPEG audio layer 2/3)", [audio, cover])
    assert described.video is None
    exc = probe_module._no_video(PATH, described)
    assert exc.code == "no_video_stream"
    assert exc.message == (
        "clip.mp4 has no video stream, only audio (mp3) and a still image (cover art / attached picture, "
        "mjpeg); upload a file that contains video"
    )
    assert probe_module._no_video(PATH, describe_as("mp3", "", [audio])).message.startswith(
        "clip.mp4 has no video stream, only audio (mp3); "
    )
    assert probe_module._no_video(PATH, describe_as("ogg", "", [])).code == "not_a_video"


def test_stats_line_is_read():
    stderr = (
        "[h264 @ 0x55] error while decoding MB 16 11, bytestream -30\n"
        "frame=   37 fps=0.0 q=-0.0 Lsize=N/A time=00:00:01.48 bitrate=N/A speed= 140x elapsed=0:00:00.01"
    )
    assert probe_module._last_stats(stderr) == (37, pytest.approx(1.48))
    assert probe_module._last_stats("frame=    5 fps=0.0 time=N/A") == (5, None)
    assert probe_module._last_stats("") == (0, None)
    assert probe_module._summary(stderr, PATH) == "error while decoding MB 16 11, bytestream -30"

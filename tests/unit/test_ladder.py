"""plan_ladder: which renditions a source gets under a profile, and at which sizes."""

from __future__ import annotations

import pytest

from vam.media.ladder import SOURCE_RENDITION, plan_ladder
from vam.media.probe import _display_size, display_rotation
from vam.media.types import MediaInfo, Profile, Rung


def make_profile(*rungs: Rung, segment_seconds: float = 4) -> Profile:
    if not rungs:
        rungs = tuple(
            Rung(name=f"{h}p", height=h, codec="h264", video_bitrate_kbps=kb, crf=23, min_vmaf=v)
            for h, kb, v in ((1080, 5000, 50), (720, 3000, 40), (480, 1400, 30), (360, 800, 25))
        )
    return Profile(name="test", version=1, segment_seconds=segment_seconds, rungs=tuple(rungs))


def make_info(
    width: int, height: int, *, rotation: int = 0, sar: str = "1:1", fps: float = 25.0
) -> MediaInfo:
    num, den = (int(x) for x in sar.split(":"))
    display_width, display_height = _display_size(width, height, num, den, rotation)
    return MediaInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration=10.0,
        size_bytes=1_000_000,
        bit_rate=800_000,
        video_codec="h264",
        width=width,
        height=height,
        sample_aspect_ratio=sar,
        rotation=rotation,
        display_width=display_width,
        display_height=display_height,
        fps=fps,
        fps_fraction=f"{fps:g}/1",
        frame_count=round(10 * fps),
        pix_fmt="yuv420p",
    )


def sizes(plans):
    return [(p.name, p.width, p.height) for p in plans]


def test_landscape_1080p_gets_every_rung_highest_first():
    plans = plan_ladder(make_info(1920, 1080), make_profile())
    assert sizes(plans) == [
        ("1080p", 1920, 1080),
        ("720p", 1280, 720),
        ("480p", 854, 480),
        ("360p", 640, 360),
    ]
    assert all(p.gop_frames == 100 for p in plans)  # 4 s * 25 fps
    assert plans[0].min_vmaf == 50
    assert plans[-1].video_bitrate_kbps == 800


def test_never_upscales():
    assert sizes(plan_ladder(make_info(640, 360), make_profile())) == [("360p", 640, 360)]
    assert [p.name for p in plan_ladder(make_info(1280, 720), make_profile())] == ["720p", "480p", "360p"]


def test_tiny_source_gets_one_rendition_at_its_own_size():
    profile = make_profile()
    (plan,) = plan_ladder(make_info(320, 180), profile)
    assert (plan.name, plan.width, plan.height) == (SOURCE_RENDITION, 320, 180)
    assert plan.extra == {"rung": "360p"}
    assert plan.video_bitrate_kbps == profile.rungs[-1].video_bitrate_kbps
    assert plan.min_vmaf == profile.rungs[-1].min_vmaf


def test_portrait_rung_height_is_the_width():
    plans = plan_ladder(make_info(1080, 1920), make_profile())
    assert sizes(plans) == [
        ("1080p", 1080, 1920),
        ("720p", 720, 1280),
        ("480p", 480, 854),
        ("360p", 360, 640),
    ]


def test_rotated_landscape_stream_is_planned_portrait():
    info = make_info(1920, 1080, rotation=90)
    assert (info.display_width, info.display_height) == (1080, 1920)
    assert sizes(plan_ladder(info, make_profile()))[1] == ("720p", 720, 1280)
    info = make_info(1920, 1080, rotation=180)
    assert sizes(plan_ladder(info, make_profile()))[1] == ("720p", 1280, 720)


def test_odd_source_sizes_give_even_dimensions():
    plans = plan_ladder(make_info(1279, 719), make_profile())
    assert sizes(plans) == [("480p", 854, 480), ("360p", 640, 360)]
    (plan,) = plan_ladder(make_info(321, 241), make_profile())
    assert (plan.width, plan.height) == (320, 240)
    # a long side that rounds up past an odd source must not upscale it
    (plan,) = plan_ladder(make_info(641, 360), make_profile())
    assert (plan.width, plan.height) == (640, 360)
    for p in plan_ladder(make_info(1917, 1077), make_profile()):
        assert p.width % 2 == 0
        assert p.height % 2 == 0


def test_non_square_pixels_use_the_display_aspect():
    info = make_info(720, 576, sar="16:15")  # PAL 4:3
    assert (info.display_width, info.display_height) == (768, 576)
    assert sizes(plan_ladder(info, make_profile())) == [("480p", 640, 480), ("360p", 480, 360)]
    info = make_info(1440, 1080, sar="4:3")  # HDV anamorphic 16:9
    assert sizes(plan_ladder(info, make_profile()))[0] == ("1080p", 1920, 1080)


def test_same_size_in_one_codec_is_planned_once_in_two_codecs_twice():
    profile = make_profile(
        Rung(name="a", height=361, codec="h264", video_bitrate_kbps=900),
        Rung(name="b", height=360, codec="h264", video_bitrate_kbps=800),
        Rung(name="c", height=360, codec="hevc", video_bitrate_kbps=600),
    )
    assert sizes(plan_ladder(make_info(1280, 720), profile)) == [
        ("a", 640, 360),
        ("c", 640, 360),
    ]


@pytest.mark.parametrize(
    ("fps", "segment", "gop"), [(25, 4, 100), (29.97, 4, 120), (0.2, 4, 1), (60, 2, 120)]
)
def test_gop_is_aligned_with_segments(fps, segment, gop):
    plans = plan_ladder(make_info(640, 360, fps=fps), make_profile(segment_seconds=segment))
    assert plans[0].gop_frames == gop
    assert plans[0].fps == fps


@pytest.mark.parametrize(
    ("stream", "rotation"),
    [
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -90}]}, 90),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 90}]}, 270),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": 180}]}, 180),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -180}]}, 180),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -270}]}, 270),
        ({"side_data_list": [{"side_data_type": "Display Matrix", "rotation": -89.9}]}, 90),
        # The legacy tag: ffmpeg 6+ neither writes nor applies it on decode, so it is not a rotation.
        ({"tags": {"rotate": "90"}}, 0),
        ({}, 0),
    ],
)
def test_rotation_is_read_clockwise(stream, rotation):
    assert display_rotation(stream) == rotation

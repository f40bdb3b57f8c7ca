"""plan_ladder: which renditions a source gets under a profile, and at which sizes."""

from __future__ import annotations

import pytest

from vam.media.ladder import MAX_VARIABLE_FPS, SOURCE_RENDITION, output_fps, plan_ladder
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
    width: int,
    height: int,
    *,
    rotation: int = 0,
    sar: str = "1:1",
    fps: float = 25.0,
    max_fps: float | None = None,
    variable_fps: bool = False,
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
        max_fps=max_fps,
        variable_fps=variable_fps,
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
    # 719 lies between the 720p and 480p rungs: an own-size top (even), then the rungs below
    assert sizes(plans) == [(SOURCE_RENDITION, 1278, 718), ("480p", 854, 480), ("360p", 640, 360)]
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
    assert sizes(plan_ladder(info, make_profile())) == [
        (SOURCE_RENDITION, 768, 576),  # between 720p and 480p: its own (display) size on top
        ("480p", 640, 480),
        ("360p", 480, 360),
    ]
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


# -- a source between two rungs keeps its own quality on top --------------------------------------


def test_source_between_rungs_gets_a_top_rendition_at_its_own_size():
    profile = make_profile()
    plans = plan_ladder(make_info(1918, 1078), profile)
    assert sizes(plans) == [
        (SOURCE_RENDITION, 1918, 1078),
        ("720p", 1282, 720),  # the rungs below keep the source's aspect ratio (1918:1078)
        ("480p", 854, 480),
        ("360p", 640, 360),
    ]
    top = plans[0]
    assert top.extra == {"rung": "1080p"}  # the settings and floors of the rung above
    assert (top.codec, top.crf, top.profile, top.min_vmaf) == ("h264", 23, None, 50)
    assert top.video_bitrate_kbps == round(5000 * (1078 / 1080) ** 2)  # scaled to its pixels
    # a 900p source: bitrate scaled down with the pixels, never below the rung under it
    (top, *_) = plan_ladder(make_info(1600, 900), profile)
    assert (top.name, top.width, top.height) == (SOURCE_RENDITION, 1600, 900)
    assert top.video_bitrate_kbps == round(5000 * (900 / 1080) ** 2)
    (top, *_) = plan_ladder(make_info(1360, 766), profile)
    assert top.video_bitrate_kbps == 3000  # 5000 * (766/1080)^2 = 2515 is below 720p's 3000


def test_odd_and_portrait_sources_between_rungs():
    (top, *rest) = plan_ladder(make_info(1077, 1917), make_profile())  # portrait, odd
    assert (top.name, top.width, top.height) == (SOURCE_RENDITION, 1076, 1916)
    assert [p.name for p in rest] == ["720p", "480p", "360p"]
    (top, *_) = plan_ladder(make_info(1920, 1080, rotation=90), make_profile())
    assert top.name == "1080p"  # at a rung: no own-size rendition


@pytest.mark.parametrize(
    ("width", "height", "top"),
    [
        (1316, 740, ("720p", 1280, 720)),  # 740 is within 5% of 720: that rung is the top
        (1312, 738, ("720p", 1280, 720)),
        (1352, 760, (SOURCE_RENDITION, 1352, 760)),  # 5.6% above: its own size
        (3840, 2160, ("1080p", 1920, 1080)),  # above the top rung: capped, no own size
        (1920, 1080, ("1080p", 1920, 1080)),
        (320, 180, (SOURCE_RENDITION, 320, 180)),  # below the lowest rung, as before
    ],
)
def test_own_size_top_only_when_clearly_between_rungs(width, height, top):
    plans = plan_ladder(make_info(width, height), make_profile())
    assert sizes(plans)[0] == top
    assert [p.name for p in plans].count(SOURCE_RENDITION) <= 1


def test_own_size_top_in_each_codec_of_the_rung_above():
    profile = make_profile(
        Rung(name="720p-h264", height=720, codec="h264", video_bitrate_kbps=3000),
        Rung(name="720p-hevc", height=720, codec="hevc", video_bitrate_kbps=2000),
        Rung(name="480p-av1", height=480, codec="av1", video_bitrate_kbps=900),
    )
    plans = plan_ladder(make_info(1066, 600), profile)
    assert [(p.name, p.codec, p.width, p.height, p.extra.get("rung")) for p in plans] == [
        (SOURCE_RENDITION, "h264", 1066, 600, "720p-h264"),
        (f"{SOURCE_RENDITION}-hevc", "hevc", 1066, 600, "720p-hevc"),
        ("480p-av1", "av1", 852, 480, None),  # 1066x600 is a hair under 16:9
    ]


# -- constant output frame rate --------------------------------------------------------------------


def test_variable_frame_rate_source_is_planned_at_its_peak_rate():
    # 1 s each at 10, 30 and 60 fps: average 33.3, base (peak) 60
    info = make_info(320, 240, fps=100 / 3, max_fps=60.0, variable_fps=True)
    assert output_fps(info) == 60.0
    (plan,) = plan_ladder(info, make_profile(segment_seconds=2))
    assert (plan.fps, plan.gop_frames) == (60.0, 120)
    # a peak above 60 fps (or a bogus base rate) is capped
    assert output_fps(make_info(320, 240, fps=40.0, max_fps=120.0, variable_fps=True)) == MAX_VARIABLE_FPS
    # constant rate: its own; the exact base rate when the average is a hair off it
    assert output_fps(make_info(320, 240, fps=25.0, max_fps=25.0)) == 25.0
    assert output_fps(make_info(320, 240, fps=24.98, max_fps=25.0)) == 25.0
    assert output_fps(make_info(320, 240, fps=25.0)) == 25.0  # base rate unknown (an old catalog row)

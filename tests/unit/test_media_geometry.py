"""The geometry and argument checks of social crops, and of quality references (no ffmpeg run)."""

from __future__ import annotations

from pathlib import Path

import pytest

from vam.errors import VamError
from vam.media.derive import (
    GRAVITIES,
    InvalidTransform,
    crop_box,
    parse_aspect,
    social_crop,
    social_crop_plan,
)
from vam.media.quality import normalize_reference, quality_argv, trim_input_args
from vam.media.types import MediaInfo


def make_info(display_width: int = 320, display_height: int = 240, *, duration: float = 2.0) -> MediaInfo:
    return MediaInfo(
        container="mov,mp4,m4a,3gp,3g2,mj2",
        duration=duration,
        size_bytes=1000,
        bit_rate=None,
        video_codec="h264",
        width=display_width,
        height=display_height,
        sample_aspect_ratio="1:1",
        rotation=0,
        display_width=display_width,
        display_height=display_height,
        fps=25.0,
        fps_fraction="25/1",
        frame_count=round(duration * 25),
        pix_fmt="yuv420p",
    )


@pytest.mark.parametrize(
    ("text", "ratio"), [("1:1", (1, 1)), ("9:16", (9, 16)), (" 16 : 9 ", (16, 9)), ("1080:1920", (9, 16))]
)
def test_parse_aspect(text, ratio):
    assert parse_aspect(text) == ratio


@pytest.mark.parametrize("text", ["", "1", "0:1", "1:0", "-1:1", "16/9", "a:b", "1.5:1", "1:1:1", None])
def test_bad_aspect_is_a_clear_value_error(text):
    with pytest.raises(InvalidTransform, match="W:H of two positive integers") as excinfo:
        parse_aspect(text)
    assert isinstance(excinfo.value, ValueError)
    assert isinstance(excinfo.value, VamError)


@pytest.mark.parametrize(
    ("size", "aspect", "gravity", "box"),
    [
        ((320, 240), (1, 1), "center", {"w": 240, "h": 240, "x": 40, "y": 0}),
        ((320, 240), (1, 1), "west", {"w": 240, "h": 240, "x": 0, "y": 0}),
        ((320, 240), (1, 1), "east", {"w": 240, "h": 240, "x": 80, "y": 0}),
        ((320, 240), (1, 1), "north", {"w": 240, "h": 240, "x": 40, "y": 0}),
        ((320, 240), (9, 16), "center", {"w": 136, "h": 240, "x": 92, "y": 0}),
        ((320, 240), (9, 16), "south_east", {"w": 136, "h": 240, "x": 184, "y": 0}),
        ((320, 240), (16, 9), "north", {"w": 320, "h": 180, "x": 0, "y": 0}),
        ((320, 240), (16, 9), "center", {"w": 320, "h": 180, "x": 0, "y": 30}),
        ((320, 240), (16, 9), "south_west", {"w": 320, "h": 180, "x": 0, "y": 60}),
        ((1080, 1920), (1, 1), "north", {"w": 1080, "h": 1080, "x": 0, "y": 0}),
        ((1080, 1920), (1, 1), "south", {"w": 1080, "h": 1080, "x": 0, "y": 840}),
        ((1080, 1920), (16, 9), "center", {"w": 1080, "h": 608, "x": 0, "y": 656}),
        ((1920, 1080), (9, 16), "north_east", {"w": 608, "h": 1080, "x": 1312, "y": 0}),
        ((321, 241), (1, 1), "south_east", {"w": 240, "h": 240, "x": 81, "y": 1}),
        ((320, 240), (4, 3), "center", {"w": 320, "h": 240, "x": 0, "y": 0}),
    ],
)
def test_crop_box(size, aspect, gravity, box):
    assert crop_box(*size, aspect, gravity) == box


@pytest.mark.parametrize("gravity", list(GRAVITIES))
def test_every_gravity_fits_the_frame(gravity):
    for width, height in ((320, 240), (240, 320), (1920, 1080), (17, 16)):
        for aspect in ((1, 1), (9, 16), (16, 9), (4, 5)):
            box = crop_box(width, height, aspect, gravity)
            assert box["w"] % 2 == 0
            assert box["h"] % 2 == 0
            assert 0 <= box["x"] <= width - box["w"]
            assert 0 <= box["y"] <= height - box["h"]
            assert box["w"] / box["h"] == pytest.approx(aspect[0] / aspect[1], rel=0.15)


def test_plan_scales_down_never_up():
    plan = social_crop_plan(make_info(), aspect="9:16", max_height=200)
    assert (plan["width"], plan["height"]) == (114, 200)
    assert social_crop_plan(make_info(), aspect="9:16", max_height=1000)["height"] == 240
    plan = social_crop_plan(make_info(), aspect="1:1", gravity="west", start=0.5, max_seconds=1)
    assert plan == {
        "aspect": "1:1",
        "gravity": "west",
        "width": 240,
        "height": 240,
        "reference": {"start": 0.5, "duration": 1.0, "crop": {"w": 240, "h": 240, "x": 0, "y": 0}},
    }


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"aspect": "1:1", "gravity": "top"}, "gravity 'top' is not one of center, north"),
        ({"aspect": "1:1", "start": -1}, "start must be"),
        ({"aspect": "1:1", "start": 2.0}, "not before the end"),
        ({"aspect": "1:1", "max_seconds": 0}, "max_seconds must be"),
        ({"aspect": "1:1", "max_height": 1}, "max_height must be at least 2"),
        ({"aspect": "1:1", "max_height": 100.5}, "max_height must be a whole number"),
        ({"aspect": "1:1", "crf": 60}, "crf must be"),
        ({"aspect": "1:1", "preset": "fastest"}, "preset 'fastest'"),
        ({"aspect": "wide"}, "W:H"),
    ],
)
def test_bad_arguments_fail_before_ffmpeg(tmp_path, kwargs, message):
    with pytest.raises(InvalidTransform, match=message):
        social_crop(Path("/nonexistent/source.mp4"), tmp_path / "out.mp4", make_info(), **kwargs)
    assert not list(tmp_path.iterdir())


def test_reference_is_checked_and_completed():
    info = make_info()
    assert normalize_reference({}, info) == {"start": 0.0, "duration": None, "crop": None}
    crop = {"w": 100, "h": 100, "x": 220, "y": 140}
    assert normalize_reference({"start": 1, "crop": crop}, info)["crop"] == crop
    for bad, message in [
        ({"start": -1}, "start must be >= 0"),
        ({"duration": 0}, "duration must be > 0"),
        ({"start": "1"}, "must be a number"),
        ({"crop": {"w": 100, "h": 100, "x": 221, "y": 0}}, "does not fit"),
        ({"crop": {"w": 100, "h": 100}}, "must be"),
        ({"crop": {"w": 100.0, "h": 100, "x": 0, "y": 0}}, "integers"),
        ({"offset": 1}, "unknown key 'offset'"),
    ]:
        with pytest.raises(ValueError, match=message):
            normalize_reference(bad, info)


def test_quality_argv_with_a_reference(tmp_path):
    reference = {"start": 0.4, "duration": 1.0, "crop": {"w": 136, "h": 240, "x": 92, "y": 0}}
    argv = quality_argv(
        Path("/s.mp4"), Path("/d.mp4"), make_info(), log_file=tmp_path / "v.json", reference=reference
    )
    source_input = argv.index("/s.mp4")
    assert argv[source_input - 5 : source_input + 1] == ["-ss", "0.400000", "-t", "1.000000", "-i", "/s.mp4"]
    graph = argv[argv.index("-filter_complex") + 1]
    assert "[0:v:0]scale=w=136:h=240:" in graph  # the rendition is scored at the crop's size
    assert "crop=w=136:h=240:x=92:y=0:exact=1" in graph
    plain = quality_argv(Path("/s.mp4"), Path("/d.mp4"), make_info(), log_file=tmp_path / "v.json")
    assert "-ss" not in plain
    assert "crop=" not in plain[plain.index("-filter_complex") + 1]
    assert trim_input_args(0.0, None) == []

"""Transformation URLs: parsing, canonical form, validation and planning (no ffmpeg run)."""

from __future__ import annotations

import numpy as np
import pytest

from vam.media.saliency import best_window, spectral_residual
from vam.media.transform import Limits, TransformError, parse, plan
from vam.media.types import MediaInfo


def info(width: int = 640, height: int = 360, duration: float = 4.0, audio: bool = True) -> MediaInfo:
    return MediaInfo(
        container="mov,mp4", duration=duration, size_bytes=1, bit_rate=None, video_codec="h264",
        width=width, height=height, sample_aspect_ratio="1:1", rotation=0, display_width=width,
        display_height=height, fps=25.0, fps_fraction="25/1", frame_count=int(duration * 25),
        pix_fmt="yuv420p", audio_codec="aac" if audio else None,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("w_320,h_320", "h_320,w_320"),
        ("w_320,c_scale", "w_320"),
        ("c_fill,g_center,w_200,h_100", "h_100,w_200,c_fill"),
        ("so_1.50,du_2", "du_2.0,so_1.5"),
        ("ar_18:32,c_fill", "c_fill,ar_9:16"),
        ("ar_1.5,c_crop", "ar_3:2,c_crop"),
        ("l_logo,o_100,g_center", "l_logo"),
        ("w_320/f_mp4", "w_320"),
        ("f_webm,w_320", "w_320,f_webm"),
        ("so_0,w_320", "w_320"),
    ],
)
def test_canonical_forms_are_equal(a: str, b: str) -> None:
    assert parse(a).canonical == parse(b).canonical


def test_canonical_text_is_ordered_and_format_last() -> None:
    spec = parse("h_720,w_720,c_fill,g_auto/so_2,du_5/q_auto/l_logo,w_0.2,g_south_east,x_16,y_16,o_60", "mp4")
    assert spec.canonical == (
        "c_fill,g_auto,w_720,h_720/so_2,du_5/l_logo,g_south_east,w_0.2,x_16,y_16,o_60/f_mp4,q_auto"
    )
    assert spec.fmt == "mp4"
    assert spec.quality == "auto"
    assert spec.overlay_ids() == ["logo"]
    assert parse(spec.canonical).canonical == spec.canonical  # a fixed point


def test_chain_order_is_kept() -> None:
    assert parse("w_100/h_100").canonical != parse("h_100/w_100").canonical


@pytest.mark.parametrize(
    ("text", "ext", "parameter"),
    [
        ("w_abc", None, "w"),
        ("w_0", None, "w"),
        ("w_1.5", None, "w"),
        ("h_-3", None, "h"),
        ("ar_9-16", None, "ar"),
        ("ar_0:16", None, "ar"),
        ("c_stretch,w_10", None, "c"),
        ("g_up,w_10,c_fill", None, "g"),
        ("g_auto,w_10", None, "g"),  # auto needs fill or crop
        ("so_x", None, "so"),
        ("du_0", None, "du"),
        ("so_3,eo_2", None, "eo"),
        ("eo_3,du_2", None, "du"),
        ("f_avi", None, "f"),
        ("w_10", "mov", "f"),
        ("f_webm", "mp4", "f"),
        ("q_101", None, "q"),
        ("q_auto", "gif", "q"),
        ("zz_1", None, "zz"),
        ("w_10,w_20", None, "w"),
        ("o_50", None, "o"),
        ("l_logo,c_fill", None, "c"),
        ("l_bad id", None, "l"),
        ("c_fill", None, "c"),  # no size
        ("w_10,h_10,ar_1:1", None, "ar"),
        ("x_5,w_10", None, "x"),  # offsets need crop/fill/pad
        ("f_mp4/f_mp4", None, "f"),
    ],
)
def test_bad_parameters_name_the_parameter(text: str, ext: str | None, parameter: str) -> None:
    with pytest.raises(TransformError) as caught:
        parse(text, ext)
    assert caught.value.parameter == parameter
    assert str(caught.value).startswith(f"{parameter}_")


def test_empty_transformation() -> None:
    with pytest.raises(TransformError, match="empty"):
        parse("/")


def test_plan_sizes() -> None:
    src = info()
    assert (plan(parse("w_320"), src).width, plan(parse("w_320"), src).height) == (320, 180)
    assert (plan(parse("w_0.5,h_100"), src).width, plan(parse("w_0.5,h_100"), src).height) == (320, 100)
    p = plan(parse("c_fit,w_200,h_200"), src)
    assert (p.width, p.height) == (200, 112)
    p = plan(parse("c_pad,w_200,h_200"), src)
    assert (p.width, p.height) == (200, 200)
    assert p.steps[0]["at"] == [0, 44]
    p = plan(parse("c_fill,w_200,h_200,g_west"), src)
    assert (p.width, p.height) == (200, 200)
    assert p.steps[0]["box"]["x"] == 0
    p = plan(parse("c_fill,w_200,h_200,g_east"), src)
    assert p.steps[0]["box"]["x"] == p.steps[0]["scaled"][0] - 200
    p = plan(parse("c_crop,w_100,h_50,x_10,y_20"), src)
    assert p.steps[0]["box"] == {"w": 100, "h": 50, "x": 10, "y": 20}
    p = plan(parse("ar_9:16,c_fill"), src)
    assert (p.width, p.height) == (202, 360)
    p = plan(parse("w_321,h_99"), src)
    assert (p.width, p.height) == (320, 100)  # even (321 rounds to 320)


def test_plan_composes_trims() -> None:
    src = info(duration=10.0)
    p = plan(parse("so_2/so_1,du_3"), src)
    assert (p.start, p.duration) == (3.0, 3.0)
    p = plan(parse("so_2,eo_6/du_10"), src)
    assert (p.start, p.duration) == (2.0, 4.0)
    with pytest.raises(TransformError) as caught:
        plan(parse("so_11"), src)
    assert caught.value.parameter == "so"


def test_plan_limits() -> None:
    src = info(duration=100.0)
    with pytest.raises(TransformError) as caught:
        plan(parse("w_5000"), src, limits=Limits(max_dimension=1920, max_seconds=600))
    assert caught.value.parameter == "w"
    with pytest.raises(TransformError) as caught:
        plan(parse("w_320"), src, limits=Limits(max_dimension=1920, max_seconds=30))
    assert caught.value.parameter == "du"
    assert plan(parse("w_320,du_30"), src, limits=Limits(max_seconds=30)).duration == 30.0
    with pytest.raises(TransformError) as caught:
        plan(parse("c_crop,w_700,h_100"), info())
    assert caught.value.parameter == "w"


def test_plan_overlay_needs_a_known_image() -> None:
    with pytest.raises(TransformError) as caught:
        plan(parse("l_logo"), info())
    assert caught.value.parameter == "l"
    p = plan(
        parse("w_320/l_logo,w_0.25,g_south_east,x_8,y_4,o_50"), info(), overlay_sizes={"logo": (100, 50)}
    )
    assert p.steps[-1]["box"] == {"w": 80, "h": 40, "x": 320 - 80 - 8, "y": 180 - 40 - 4}
    assert p.overlays == ["logo"]
    assert "colorchannelmixer=aa=0.5000" in p.graph


def test_spectral_residual_finds_the_odd_object() -> None:
    frame = np.full((36, 64), 40, np.uint8)
    frame[10:20, 48:56] = 255  # a bright box on the right
    sal = spectral_residual(frame)
    assert sal.shape == frame.shape
    assert sal.max() == pytest.approx(1.0)
    assert sal[:, 40:].sum() > 3 * sal[:, :24].sum()
    x, _ = best_window(sal, (1.0, 0.0, 1.0, 0.0), 64, 36, 20, 36, (64.0, 36.0))
    assert 36 <= x + 10 <= 60  # the window's centre is over the box


def test_g_auto_plan_uses_saliency() -> None:
    src = info()
    grid = np.zeros((36, 64))
    grid[10:20, 4:10] = 1.0  # salient on the left
    p = plan(parse("c_fill,ar_1:1,g_auto"), src, saliency=lambda start, duration: grid)
    assert p.steps[0]["box"]["x"] == 0
    grid = np.zeros((36, 64))
    grid[10:20, 54:60] = 1.0
    p = plan(parse("c_fill,ar_1:1,g_auto"), src, saliency=lambda start, duration: grid)
    assert p.steps[0]["box"]["x"] == 640 - 360

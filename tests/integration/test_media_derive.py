"""Social crops (vam.media.derive) and quality against a transformed reference, on small generated clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from clipfactory import ClipFactory, decode_frame

from vam.media import tools
from vam.media.derive import social_crop
from vam.media.probe import describe, probe
from vam.media.quality import measure_quality
from vam.media.types import MediaInfo

pytestmark = pytest.mark.integration

FPS = 25


@pytest.fixture(scope="module")
def clip_factory(tmp_path_factory: pytest.TempPathFactory) -> ClipFactory:
    return ClipFactory(tmp_path_factory.mktemp("derive-clips"))


@pytest.fixture(scope="module")
def source(clip_factory: ClipFactory) -> Path:
    """320x240 testsrc2 with a white marker top-left and a black one bottom-right, 2 s, with audio."""
    return clip_factory.make(width=320, height=240, seconds=2.0, fps=FPS, markers=True)


@pytest.fixture(scope="module")
def info(source: Path) -> MediaInfo:
    return probe(source)


def crop_filter(crop: dict[str, int], size: tuple[int, int] | None = None) -> str:
    vf = f"crop=w={crop['w']}:h={crop['h']}:x={crop['x']}:y={crop['y']}:exact=1"
    return vf + (f",scale={size[0]}:{size[1]}:flags=lanczos" if size else "")


def shifted(crop: dict[str, int], width: int, height: int, by: int = 16) -> dict[str, int]:
    """The same crop moved ``by`` pixels, horizontally if it can be, else vertically."""
    for key, size, frame in (("x", "w", width), ("y", "h", height)):
        if crop[key] + crop[size] + by <= frame:
            return {**crop, key: crop[key] + by}
        if crop[key] >= by:
            return {**crop, key: crop[key] - by}
    raise AssertionError(f"{crop} fills the frame")


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.abs(a.astype(int) - b.astype(int)).mean())


# -- quality against a transformed reference -------------------------------------------------------


def test_quality_against_a_cropped_trimmed_reference(tmp_path: Path, source: Path, info: MediaInfo) -> None:
    """A crop made by hand (trim filter, frames 10-34, then crop) scores high against the reference
    that describes it, and clearly lower one frame late or 16 px off."""
    out = tmp_path / "hand-crop.mp4"
    vf = "trim=start_frame=10:end_frame=35,setpts=PTS-STARTPTS,crop=w=160:h=120:x=80:y=60"
    tools.run([*tools.ffmpeg_argv(), "-i", str(source), "-vf", vf, "-an", "-c:v", "libx264", "-crf", "18",
               "-preset", "veryfast", str(out)])  # fmt: skip
    crop = {"w": 160, "h": 120, "x": 80, "y": 60}
    right = measure_quality(source, out, info, reference={"start": 0.4, "duration": 1.0, "crop": crop})
    assert right["vmaf"]["mean"] > 90
    assert (right["width"], right["height"], right["frames_scored"]) == (160, 120, 25)
    assert right["reference"] == {"start": 0.4, "duration": 1.0, "crop": crop}

    shifted = measure_quality(
        source, out, info, reference={"start": 0.4, "duration": 1.0, "crop": {**crop, "x": 96}}
    )
    assert shifted["vmaf"]["mean"] < 50
    late = measure_quality(source, out, info, reference={"start": 0.44, "duration": 1.0, "crop": crop})
    assert late["vmaf"]["mean"] < right["vmaf"]["mean"] - 20  # one frame off: the trim is frame-exact

    with pytest.raises(ValueError, match="does not fit"):
        measure_quality(source, out, info, reference={"start": 0, "crop": {**crop, "x": 200}})


# -- social crops ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("aspect", "gravity", "max_height", "crop", "size"),
    [
        ("1:1", "center", None, {"w": 240, "h": 240, "x": 40, "y": 0}, (240, 240)),
        ("1:1", "north_west", None, {"w": 240, "h": 240, "x": 0, "y": 0}, (240, 240)),
        ("9:16", "east", None, {"w": 136, "h": 240, "x": 184, "y": 0}, (136, 240)),
        ("9:16", "south_west", 200, {"w": 136, "h": 240, "x": 0, "y": 0}, (114, 200)),
        ("16:9", "south", None, {"w": 320, "h": 180, "x": 0, "y": 60}, (320, 180)),
    ],
)
def test_social_crop(
    tmp_path: Path,
    source: Path,
    info: MediaInfo,
    aspect: str,
    gravity: str,
    max_height: int | None,
    crop: dict[str, int],
    size: tuple[int, int],
) -> None:
    out = tmp_path / f"{aspect.replace(':', 'x')}-{gravity}.mp4"
    result = social_crop(
        source, out, info, aspect=aspect, gravity=gravity, start=0.4, max_seconds=1.0, max_height=max_height
    )
    assert result == {
        "aspect": aspect,
        "gravity": gravity,
        "width": size[0],
        "height": size[1],
        "duration": pytest.approx(1.0, abs=0.05),
        "frame_count": 25,
        "codec": "h264",
        "reference": {"start": 0.4, "duration": 1.0, "crop": crop},
    }
    described = describe(out)
    assert described.video is not None
    assert described.video["pix_fmt"] == "yuv420p"
    assert described.audio is not None
    assert described.audio["codec_name"] == "aac"
    assert not list(tmp_path.glob(".*.part"))

    # The output's first frame is source frame 10 (0.4 s), cropped where the gravity says.
    first = decode_frame(out, 0)
    scaled = size if max_height else None
    assert mean_diff(first, decode_frame(source, 10, vf=crop_filter(crop, scaled))) < 8
    assert mean_diff(first, decode_frame(source, 10, vf=crop_filter(shifted(crop, 320, 240), scaled))) > 15

    quality = measure_quality(source, out, info, reference=result["reference"])
    assert quality["vmaf"]["mean"] > 90
    assert (quality["width"], quality["height"]) == (crop["w"], crop["h"])


def test_social_crop_to_the_end_without_audio(tmp_path: Path, clip_factory: ClipFactory) -> None:
    clip = clip_factory.make(width=320, height=240, seconds=2.0, fps=FPS, audio=False, markers=True)
    clip_info = probe(clip)
    result = social_crop(clip, tmp_path / "tail.mp4", clip_info, aspect="4:5", gravity="west", start=1.2)
    assert (result["width"], result["height"], result["frame_count"]) == (192, 240, 20)
    assert result["reference"] == {
        "start": 1.2,
        "duration": None,
        "crop": {"w": 192, "h": 240, "x": 0, "y": 0},
    }
    assert describe(tmp_path / "tail.mp4").audio is None
    assert (
        measure_quality(clip, tmp_path / "tail.mp4", clip_info, reference=result["reference"])["vmaf"]["mean"]
        > 90
    )


def test_social_crop_of_a_phone_portrait_clip(tmp_path: Path, clip_factory: ClipFactory) -> None:
    """Rotation is applied before cropping: the crop is of the scene as the viewer sees it."""
    phone, scene = clip_factory.make_phone_portrait(width=240, height=320, seconds=1.0)
    info = probe(phone)
    assert (info.rotation, info.display_width, info.display_height) == (90, 240, 320)
    out = tmp_path / "phone-square.mp4"
    result = social_crop(phone, out, info, aspect="1:1", gravity="north")
    assert result["reference"]["crop"] == {"w": 240, "h": 240, "x": 0, "y": 0}
    assert (result["width"], result["height"], result["frame_count"]) == (240, 240, 25)
    first = decode_frame(out, 0)
    assert first[24, 24].min() > 200  # the white marker, top-left as in the scene
    assert mean_diff(first, decode_frame(scene, 0, vf="crop=240:240:0:0")) < 8
    assert measure_quality(phone, out, info, reference=result["reference"])["vmaf"]["mean"] > 90


def test_social_crop_of_an_anamorphic_clip(tmp_path: Path, clip_factory: ClipFactory) -> None:
    """Non-square pixels are stretched to the display size before cropping (240x240 at SAR 4:3 shows
    as 320x240)."""
    square = clip_factory.make(width=320, height=240, seconds=1.0, fps=FPS, audio=False, markers=True)
    anamorphic = clip_factory.make(
        width=320, height=240, seconds=1.0, fps=FPS, audio=False, markers=True, vf="scale=240:240,setsar=4/3"
    )
    info = probe(anamorphic)
    assert (info.width, info.sample_aspect_ratio, info.display_width, info.display_height) == (
        240, "4:3", 320, 240,
    )  # fmt: skip
    out = tmp_path / "anamorphic-east.mp4"
    result = social_crop(anamorphic, out, info, aspect="1:1", gravity="east")
    assert result["reference"]["crop"] == {"w": 240, "h": 240, "x": 80, "y": 0}
    first = decode_frame(out, 0)
    assert first[216, 216].max() < 50  # the black marker, bottom-right
    assert mean_diff(first, decode_frame(square, 0, vf="crop=240:240:80:0")) < 12
    assert measure_quality(anamorphic, out, info, reference=result["reference"])["vmaf"]["mean"] > 90

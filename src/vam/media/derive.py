"""Derived outputs of one source: a social crop (``1:1``, ``9:16``, ...), trimmed, upright.

:func:`social_crop` takes the largest crop of the asked aspect ratio that fits the source's
upright display frame (rotation and sample aspect ratio applied, as :mod:`vam.media.encode` does:
ffmpeg rotates on decode, the picture is scaled to its display size with square pixels), places
it by gravity (compass names as Cloudinary uses them: ``north`` is the top, ``east`` the right),
trims it to at most ``max_seconds`` from ``start`` and encodes H.264 yuv420p (+ AAC when the source
has audio) MP4 with ``+faststart``.

It returns, with what the output is, the ``reference`` it was made from, the dict
:func:`vam.media.quality.measure_quality` takes to score the output against that part of the source.
"""

from __future__ import annotations

import logging
import math
import re
import time
from pathlib import Path
from typing import Any

from vam.errors import PermanentFailure
from vam.media import tools
from vam.media.encode import encode_checked
from vam.media.profiles import X26X_PRESETS
from vam.media.quality import trim_input_args
from vam.media.types import MediaInfo

log = logging.getLogger(__name__)

# gravity -> (horizontal, vertical) placement: 0 left/top, 1 centre, 2 right/bottom
GRAVITIES: dict[str, tuple[int, int]] = {
    "center": (1, 1),
    "north": (1, 0),
    "south": (1, 2),
    "east": (2, 1),
    "west": (0, 1),
    "north_east": (2, 0),
    "north_west": (0, 0),
    "south_east": (2, 2),
    "south_west": (0, 2),
}
SCALE_FLAGS = "lanczos"
AUDIO_BITRATE_KBPS = 128
_ASPECT_RE = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


class InvalidTransform(PermanentFailure, ValueError):
    """A derived output that cannot be made as asked (aspect, gravity, times, sizes, encoder settings)."""


def parse_aspect(aspect: str) -> tuple[int, int]:
    """``"9:16"`` -> ``(9, 16)``; raise :class:`InvalidTransform` unless it is ``W:H`` of positive ints."""
    match = _ASPECT_RE.match(aspect) if isinstance(aspect, str) else None
    if not match or int(match.group(1)) <= 0 or int(match.group(2)) <= 0:
        raise InvalidTransform(
            f"aspect {aspect!r} is not a ratio W:H of two positive integers; use e.g. '1:1', '9:16', '4:5'"
        )
    num, den = int(match.group(1)), int(match.group(2))
    divisor = math.gcd(num, den)
    return num // divisor, den // divisor


def crop_box(width: int, height: int, aspect: tuple[int, int], gravity: str = "center") -> dict[str, int]:
    """The largest crop of ``aspect`` (W, H) inside a ``width`` x ``height`` frame, placed by
    ``gravity``: ``{"w", "h", "x", "y"}`` with even ``w`` and ``h`` (the ratio is then approximate
    to within a pixel)."""
    if gravity not in GRAVITIES:
        raise InvalidTransform(f"gravity {gravity!r} is not one of {', '.join(GRAVITIES)}")
    if width < 2 or height < 2:
        raise InvalidTransform(f"cannot crop a {width}x{height} frame")
    a, b = aspect
    if width * b >= height * a:  # the frame is at least as wide as the aspect: keep the full height
        h = _even_down(height)
        w = min(_even_round(h * a / b), _even_down(width))
    else:
        w = _even_down(width)
        h = min(_even_round(w * b / a), _even_down(height))
    horizontal, vertical = GRAVITIES[gravity]
    x = (width - w) * horizontal // 2
    y = (height - h) * vertical // 2
    return {"w": w, "h": h, "x": x, "y": y}


def _output_size(crop: dict[str, int], max_height: int | None) -> tuple[int, int]:
    """The crop's size, scaled down (never up) to ``max_height``, even."""
    w, h = crop["w"], crop["h"]
    if max_height is None or max_height >= h:
        return w, h
    out_h = _even_down(max_height)
    return min(_even_round(w * out_h / h), w), out_h


def _video_filter(info: MediaInfo, crop: dict[str, int], out_w: int, out_h: int) -> str:
    # ffmpeg has rotated the frame upright on decode; the scale applies the SAR (a no-op when square).
    chain = [
        f"scale=w={int(info.display_width)}:h={int(info.display_height)}:flags={SCALE_FLAGS}",
        "setsar=1",
        f"crop=w={crop['w']}:h={crop['h']}:x={crop['x']}:y={crop['y']}:exact=1",
    ]
    if (out_w, out_h) != (crop["w"], crop["h"]):
        chain.append(f"scale=w={out_w}:h={out_h}:flags={SCALE_FLAGS}")
    return ",".join([*chain, "setsar=1", "format=yuv420p"])


def _check_times(info: MediaInfo, start: float, max_seconds: float | None) -> None:
    if not (isinstance(start, int | float) and math.isfinite(start)) or start < 0:
        raise InvalidTransform(f"start must be a number of seconds >= 0, got {start!r}")
    if start >= info.duration:
        raise InvalidTransform(
            f"start {start:g} s is not before the end of the source ({info.duration:.3f} s); start earlier"
        )
    if max_seconds is not None and (
        not (isinstance(max_seconds, int | float) and math.isfinite(max_seconds)) or max_seconds <= 0
    ):
        raise InvalidTransform(f"max_seconds must be a number of seconds > 0 (or None), got {max_seconds!r}")


def social_crop_plan(
    info: MediaInfo,
    *,
    aspect: str,
    gravity: str = "center",
    max_seconds: float | None = None,
    start: float = 0.0,
    max_height: int | None = None,
) -> dict[str, Any]:
    """What :func:`social_crop` makes of ``info``, without running anything:
    ``{"aspect", "gravity", "width", "height", "reference"}``."""
    ratio = parse_aspect(aspect)
    _check_times(info, start, max_seconds)
    if max_height is not None and (isinstance(max_height, bool) or not isinstance(max_height, int)):
        raise InvalidTransform(f"max_height must be a whole number of pixels (or None), got {max_height!r}")
    if max_height is not None and max_height < 2:
        raise InvalidTransform(f"max_height must be at least 2 pixels, got {max_height}")
    crop = crop_box(int(info.display_width), int(info.display_height), ratio, gravity)
    width, height = _output_size(crop, max_height)
    reference = {
        "start": float(start),
        "duration": float(max_seconds) if max_seconds is not None else None,
        "crop": crop,
    }
    return {
        "aspect": f"{ratio[0]}:{ratio[1]}",
        "gravity": gravity,
        "width": width,
        "height": height,
        "reference": reference,
    }


def social_crop_argv(
    source: Path,
    out: Path,
    info: MediaInfo,
    plan: dict[str, Any],
    *,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int = 0,
) -> list[str]:
    """The ffmpeg command that makes ``plan`` (see :func:`social_crop_plan`) of ``source`` into ``out``."""
    ref = plan["reference"]
    vf = _video_filter(info, ref["crop"], plan["width"], plan["height"])
    argv = [*tools.ffmpeg_argv(threads=threads), *trim_input_args(ref["start"], ref["duration"])]
    argv += ["-i", str(Path(source).absolute()), "-map", "0:v:0", "-vf", vf]
    argv += ["-c:v", "libx264", "-preset", preset, "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if threads > 0:
        argv += ["-threads", str(threads)]
    if info.audio_codec:
        argv += ["-map", "0:a:0", "-c:a", "aac", "-b:a", f"{AUDIO_BITRATE_KBPS}k"]
    else:
        argv += ["-an"]
    return argv + ["-sn", "-dn", "-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4", str(out)]


def social_crop(
    source: Path,
    out: Path,
    info: MediaInfo,
    *,
    aspect: str,
    gravity: str = "center",
    max_seconds: float | None = None,
    start: float = 0.0,
    max_height: int | None = None,
    crf: int = 23,
    preset: str = "veryfast",
    threads: int = 0,
) -> dict[str, Any]:
    """Encode the ``aspect`` crop of ``source`` placed by ``gravity`` to ``out`` (H.264/AAC MP4, upright).

    At most ``max_seconds`` from ``start`` (seconds from the start of the file), scaled down to
    ``max_height`` when the crop is taller (never up). ``info`` is the source's probe. Returns
    ``{"aspect", "gravity", "width", "height", "duration", "frame_count", "codec", "reference"}``,
    ``reference`` being ``{"start", "duration", "crop": {"w", "h", "x", "y"}}`` for
    :func:`vam.media.quality.measure_quality`. Bad arguments raise :class:`InvalidTransform`; ``out``
    appears only once complete and checked.
    """
    if preset not in X26X_PRESETS:
        choices = ", ".join(X26X_PRESETS)
        raise InvalidTransform(f"preset {preset!r} is not an x264 preset; use one of {choices}")
    if isinstance(crf, bool) or not isinstance(crf, int) or not 0 <= crf <= 51:
        raise InvalidTransform(f"crf must be an integer from 0 to 51, got {crf!r}")
    plan = social_crop_plan(
        info, aspect=aspect, gravity=gravity, max_seconds=max_seconds, start=start, max_height=max_height
    )
    source = Path(source)
    started = time.monotonic()
    made = encode_checked(
        lambda tmp: social_crop_argv(source, tmp, info, plan, crf=crf, preset=preset, threads=threads),
        out,
        what=f"social crop {plan['aspect']}",
        size=(plan["width"], plan["height"]),
    )
    result = {
        "aspect": plan["aspect"],
        "gravity": plan["gravity"],
        "width": made["width"],
        "height": made["height"],
        "duration": made["duration"],
        "frame_count": made["frame_count"],
        "codec": made["codec"],
        "reference": plan["reference"],
    }
    crop = plan["reference"]["crop"]
    log.info(
        "social crop %s (%s) of %s: %dx%d at (%d, %d) -> %dx%d, %.3f s, %d frames in %.1f s",
        result["aspect"], gravity, source.name, crop["w"], crop["h"], crop["x"], crop["y"],
        result["width"], result["height"], result["duration"], result["frame_count"],
        time.monotonic() - started,
    )  # fmt: skip
    return result


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def _even_round(value: float) -> int:
    return max(2, 2 * round(value / 2))

"""Fit a profile's ladder to one source: which renditions to encode, at which sizes.

Rules (all sizes are the upright display size: rotation and sample aspect ratio applied):

* A rung's ``height`` is the short side of the output: the height of a landscape (or square)
  source, the width of a portrait one.
* Never upscale: a rung is kept only when its short side is <= the source's short side.
* The long side follows the source's aspect ratio, rounded to an even number and never larger
  than the source's; the short side is even too (odd sizes round down).
* A source smaller than the lowest rung gets one rendition named ``"source"`` at its own size (even),
  with the lowest rung's codec and settings; ``extra["rung"]`` names that rung.
* A source whose short side falls between two rungs keeps its own quality: besides the rungs below it,
  it gets a top rendition named ``"source"`` at its own size (even), with the settings of the rung
  above (one per codec when several rungs share that height: ``"source"``, then
  ``"source-{codec}"``; ``extra["rung"]`` names the rung), its bitrate scaled to its pixel count
  (never below the bitrate of the rung under it). When its short side is within
  :data:`SNAP_FRACTION` (5%) of the rung below, that rung is its top instead (740p gets 720p, not a
  rendition 3% larger). A source above the top rung is capped at the top rung.
* Two rungs that come out with the same codec and size are encoded once (the first is kept); the
  same size in two codecs (a multi-codec profile) is kept twice.
* Frame rate (every rendition is constant frame rate, see :func:`output_fps`): a constant-rate source
  keeps its rate; a variable-rate one (:attr:`MediaInfo.variable_fps`) gets its peak rate (ffprobe's
  base rate, the fastest its frames come), at most :data:`MAX_VARIABLE_FPS` (60): no frame of the
  fastest part is dropped, the slower parts repeat frames.
* ``gop_frames`` is ``segment_seconds * fps`` rounded (the output fps), at least 1, so segments start
  on keyframes.
* Highest first.
"""

from __future__ import annotations

from collections.abc import Callable

from vam.media.types import MediaInfo, Profile, RenditionPlan, Rung

SOURCE_RENDITION = "source"
SNAP_FRACTION = 0.05  # a source at most 5% above a rung gets that rung as its top, no own-size rendition
MAX_VARIABLE_FPS = 60.0  # a variable-rate source is encoded at its peak rate, at most this
_SAME_RATE = 0.01  # base and average rates within 1%: one constant rate (take the base, the exact one)


def output_fps(info: MediaInfo) -> float:
    """The constant frame rate every rendition of ``info`` is encoded at.

    A variable-rate source gets its peak rate (``max_fps``, ffprobe's base rate) capped at
    :data:`MAX_VARIABLE_FPS`; a constant-rate one its own rate (the base rate when it agrees with
    the average within 1%: it is the exact one, e.g. 25 for an average of 24.98).
    """
    fps, base = float(info.fps), float(info.max_fps or 0.0)
    if info.variable_fps and base > fps:
        return min(base, MAX_VARIABLE_FPS)
    if base > 0 and fps > 0 and abs(base / fps - 1) <= _SAME_RATE:
        return base
    return fps


def plan_ladder(info: MediaInfo, profile: Profile) -> list[RenditionPlan]:
    """The renditions to encode for ``info`` under ``profile``, highest first."""
    width, height = info.display_width, info.display_height
    if width < 2 or height < 2:
        raise ValueError(f"cannot plan renditions for a {width}x{height} display size")
    if not profile.rungs:
        raise ValueError(f"profile {profile.key} has no rungs")
    portrait = height > width
    src_short, src_long = min(width, height), max(width, height)
    fps = output_fps(info)
    gop_frames = max(1, round(profile.segment_seconds * fps))

    def plan(
        name: str,
        rung: Rung,
        short: int,
        extra: dict[str, object] | None = None,
        bitrate_kbps: int | None = None,
    ) -> RenditionPlan:
        short = _even_down(short)
        long = min(_even_round(short * src_long / src_short), _even_down(src_long))
        out_w, out_h = (short, long) if portrait else (long, short)
        return RenditionPlan(
            name=name,
            codec=rung.codec,
            width=out_w,
            height=out_h,
            video_bitrate_kbps=bitrate_kbps or rung.video_bitrate_kbps,
            crf=rung.crf,
            preset=rung.preset,
            profile=rung.profile,
            gop_frames=gop_frames,
            fps=fps,
            audio_bitrate_kbps=rung.audio_bitrate_kbps,
            min_vmaf=rung.min_vmaf,
            min_ssim=rung.min_ssim,
            min_psnr=rung.min_psnr,
            extra=dict(extra or {}),
        )

    fitting = [rung for rung in profile.rungs if rung.height <= src_short]
    plans = [plan(rung.name, rung, rung.height) for rung in fitting]
    if not plans:
        lowest = min(profile.rungs, key=lambda r: r.height)
        plans = [plan(SOURCE_RENDITION, lowest, src_short, {"rung": lowest.name})]
    else:
        plans = _own_size_top(profile, fitting, src_short, plan) + plans

    unique: list[RenditionPlan] = []
    seen: set[tuple[str, int, int]] = set()
    for p in plans:
        if (p.codec, p.width, p.height) not in seen:
            seen.add((p.codec, p.width, p.height))
            unique.append(p)
    unique.sort(key=lambda p: p.width * p.height, reverse=True)  # stable: profile order among equals
    return unique


def _own_size_top(
    profile: Profile, fitting: list[Rung], src_short: int, plan: Callable[..., RenditionPlan]
) -> list[RenditionPlan]:
    """The own-size top renditions of a source between two rungs (none when it is at, within
    :data:`SNAP_FRACTION` above, a rung, or above the top rung)."""
    above = [rung for rung in profile.rungs if rung.height > src_short]
    below_height = max(rung.height for rung in fitting)
    short = _even_down(src_short)
    if not above or short <= below_height * (1 + SNAP_FRACTION):
        return []
    upper_height = min(rung.height for rung in above)
    tops: list[RenditionPlan] = []
    codecs: set[str] = set()
    for rung in (r for r in above if r.height == upper_height):
        if rung.codec in codecs:
            continue
        codecs.add(rung.codec)
        # The rung's bitrate for its own size, scaled to this one's pixels; never below the rung under it.
        floor = max((r.video_bitrate_kbps for r in fitting if r.codec == rung.codec), default=0)
        kbps = max(round(rung.video_bitrate_kbps * (short / rung.height) ** 2), floor, 1)
        name = SOURCE_RENDITION if not tops else f"{SOURCE_RENDITION}-{rung.codec}"
        tops.append(plan(name, rung, short, {"rung": rung.name}, bitrate_kbps=kbps))
    return tops


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def _even_round(value: float) -> int:
    return max(2, 2 * round(value / 2))

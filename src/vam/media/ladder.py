"""Fit a profile's ladder to one source: which renditions to encode, at which sizes.

Rules (all sizes are the upright display size: rotation and sample aspect ratio applied):

* A rung's ``height`` is the short side of the output: the height of a landscape (or square)
  source, the width of a portrait one.
* Never upscale: a rung is kept only when its short side is <= the source's short side.
* The long side follows the source's aspect ratio, rounded to an even number and never larger
  than the source's; the short side is even too (odd sizes round down).
* A source smaller than the lowest rung gets one rendition named ``"source"`` at its own size (even),
  with the lowest rung's codec and settings; ``extra["rung"]`` names that rung.
* Two rungs that come out with the same codec and size are encoded once (the first is kept); the
  same size in two codecs (a multi-codec profile) is kept twice.
* ``gop_frames`` is ``segment_seconds * fps`` rounded, at least 1, so segments start on keyframes.
* Highest first.
"""

from __future__ import annotations

from vam.media.types import MediaInfo, Profile, RenditionPlan, Rung

SOURCE_RENDITION = "source"


def plan_ladder(info: MediaInfo, profile: Profile) -> list[RenditionPlan]:
    """The renditions to encode for ``info`` under ``profile``, highest first."""
    width, height = info.display_width, info.display_height
    if width < 2 or height < 2:
        raise ValueError(f"cannot plan renditions for a {width}x{height} display size")
    if not profile.rungs:
        raise ValueError(f"profile {profile.key} has no rungs")
    portrait = height > width
    src_short, src_long = min(width, height), max(width, height)
    gop_frames = max(1, round(profile.segment_seconds * info.fps))

    def plan(name: str, rung: Rung, short: int, extra: dict[str, object] | None = None) -> RenditionPlan:
        short = _even_down(short)
        long = min(_even_round(short * src_long / src_short), _even_down(src_long))
        out_w, out_h = (short, long) if portrait else (long, short)
        return RenditionPlan(
            name=name,
            codec=rung.codec,
            width=out_w,
            height=out_h,
            video_bitrate_kbps=rung.video_bitrate_kbps,
            crf=rung.crf,
            preset=rung.preset,
            profile=rung.profile,
            gop_frames=gop_frames,
            fps=info.fps,
            audio_bitrate_kbps=rung.audio_bitrate_kbps,
            min_vmaf=rung.min_vmaf,
            min_ssim=rung.min_ssim,
            min_psnr=rung.min_psnr,
            extra=dict(extra or {}),
        )

    plans = [plan(rung.name, rung, rung.height) for rung in profile.rungs if rung.height <= src_short]
    if not plans:
        lowest = min(profile.rungs, key=lambda r: r.height)
        plans = [plan(SOURCE_RENDITION, lowest, src_short, {"rung": lowest.name})]

    unique: list[RenditionPlan] = []
    seen: set[tuple[str, int, int]] = set()
    for p in plans:
        if (p.codec, p.width, p.height) not in seen:
            seen.add((p.codec, p.width, p.height))
            unique.append(p)
    unique.sort(key=lambda p: p.width * p.height, reverse=True)  # stable: profile order among equals
    return unique


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def _even_round(value: float) -> int:
    return max(2, 2 * round(value / 2))

"""Encode one rendition of a source (or a whole ladder in one decode) with ffmpeg.

Every rendition is an MP4 (``+faststart``) with square pixels, progressive, at the constant frame
rate ``plan.fps`` (:func:`vam.media.ladder.output_fps`), a closed GOP of exactly ``plan.gop_frames``
frames (so HLS/DASH segments cut on keyframes) and, when the source has audio, AAC audio as the
profile asks. ffmpeg rotates the source upright on decode; the output carries no display matrix,
which :func:`encode_rendition` checks.

What a source needs before it can be published (:func:`video_filter`, in this order):

* interlaced or field-coded (:attr:`MediaInfo.interlaced`): deinterlaced with ``bwdif``, one frame
  per frame (same rate and frame count as the source), so the output is progressive;
* scaled (lanczos) to the rendition's size, square pixels;
* HDR (PQ/HDR10 or HLG): an 8-bit rendition (every H.264 rung; HEVC with profile ``main``) is
  tone-mapped to SDR BT.709 (zscale to linear light, BT.2020 -> BT.709 primaries, ``tonemap`` hable,
  BT.709 transfer and matrix) and tagged BT.709; a rung whose codec and profile carry 10 bits
  (HEVC ``main10`` or no profile, AV1) keeps a 10-bit source 10-bit, HDR, tagged as the source;
* ``fps``: a constant output rate (a variable-rate source would otherwise come out at whatever rate
  ffmpeg guesses, dropping frames);
* video shorter than its audio (by more than :data:`PAD_MIN_SECONDS` and a frame): padded by
  repeating its last frame (``tpad=stop_mode=clone``) to the audio's length, so players, manifests
  and the catalog (the file's duration) agree and nothing the user sent is cut.

:func:`expected_output` says how many frames and seconds a rendition must then have (the quality
gate compares with it), and :mod:`vam.media.quality` conditions its reference the same way.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from vam.errors import VamError
from vam.media import tools
from vam.media.probe import describe, display_rotation
from vam.media.types import MediaInfo, Profile, RenditionPlan

log = logging.getLogger(__name__)

VIDEO_ENCODERS = {"h264": "libx264", "hevc": "libx265", "av1": "libsvtav1"}
AUDIO_ENCODERS = {"aac": "aac", "opus": "libopus", "mp3": "libmp3lame"}
SCALE_FLAGS = "lanczos"
DEFAULT_SVTAV1_PRESET = 10


DEINTERLACE = "bwdif=mode=send_frame:parity=auto:deint=all"  # one progressive frame per frame
TONE_MAP = "hable"  # the ffmpeg tonemap operator: keeps highlights' detail, a filmic roll-off
NOMINAL_PEAK_NITS = 100  # SDR reference white: linear 1.0 is this many nits
PAD_MIN_SECONDS = 0.1  # audio outlasting the video by less than this (and a frame) is not padded
_SAME_RATE = 1e-4  # output rate == the source's average: the counted frames are the expected ones
_ZSCALE_RANGES = {"tv": "limited", "pc": "full"}
_SDR_TAGS = ["-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", "-color_range", "tv"]


def high_bit_depth_codec(plan: RenditionPlan) -> bool:
    """The rung's codec and profile can carry 10 bits: HEVC (``main10`` or no profile) or AV1 (main)."""
    if plan.codec == "hevc":
        return plan.profile in (None, "", "main10")
    return plan.codec == "av1" and plan.profile in (None, "", "main")


def output_pix_fmt(plan: RenditionPlan, info: MediaInfo) -> str:
    """``yuv420p10le`` for a 10-bit (or deeper) source on a rung that can carry it, else ``yuv420p``."""
    return "yuv420p10le" if info.bit_depth > 8 and high_bit_depth_codec(plan) else "yuv420p"


def tone_maps(plan: RenditionPlan, info: MediaInfo) -> bool:
    """True when an HDR source is tone-mapped to SDR BT.709 for this rendition (an 8-bit output)."""
    return info.hdr and output_pix_fmt(plan, info) == "yuv420p"


def pad_seconds(info: MediaInfo, fps: float) -> float:
    """Seconds of video to add (the last frame repeated) so the video lasts as long as the audio."""
    if not info.audio_codec or info.audio_duration is None or info.video_duration is None:
        return 0.0
    gap = float(info.audio_duration) - float(info.video_duration)
    return gap if gap > max(PAD_MIN_SECONDS, 1.0 / fps if fps > 0 else 0.0) else 0.0


def rate_fraction(fps: float) -> str:
    """A frame rate as an exact ffmpeg rational: 29.97002997 -> ``30000/1001``, 60.0 -> ``60/1``."""
    rate = Fraction(float(fps)).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def deinterlace_filters(info: MediaInfo) -> list[str]:
    """The deinterlacer for an interlaced or field-coded source, else nothing."""
    return [DEINTERLACE] if info.interlaced else []


def tone_map_filter(info: MediaInfo) -> str:
    """HDR (PQ or HLG, BT.2020) to SDR BT.709, limited range, yuv420p: zscale to linear light, gamut
    to BT.709, the ``tonemap`` operator (peak from the stream's HDR metadata, else 1000 nits), BT.709
    transfer and matrix."""
    rin = _ZSCALE_RANGES.get(info.color_range or "", "limited")
    linear = (
        f"zscale=tin={info.color_transfer}:pin={info.color_primaries or 'bt2020'}"
        f":min={info.color_space or 'bt2020nc'}:rin={rin}:t=linear:npl={NOMINAL_PEAK_NITS}"
    )
    return ",".join(
        [
            linear,
            "format=gbrpf32le",
            "zscale=p=bt709",
            f"tonemap=tonemap={TONE_MAP}:desat=0",
            "zscale=t=bt709:m=bt709:r=limited",
            "format=yuv420p",
        ]
    )


def _rendition_filters(plan: RenditionPlan, info: MediaInfo) -> list[str]:
    """What follows the deinterlacer for one rendition: size, colour, rate, padding."""
    chain = [f"scale=w={plan.width}:h={plan.height}:flags={SCALE_FLAGS}", "setsar=1"]
    if tone_maps(plan, info):
        chain.append(tone_map_filter(info))
    chain += [f"format={output_pix_fmt(plan, info)}", f"fps={rate_fraction(plan.fps)}"]
    pad = pad_seconds(info, plan.fps)
    if pad:
        chain.append(f"tpad=stop_mode=clone:stop_duration={pad:.6f}")
    return chain


def video_filter(plan: RenditionPlan, info: MediaInfo) -> str:
    """The ``-vf`` chain of one rendition of ``info`` (see the module's description)."""
    return ",".join([*deinterlace_filters(info), *_rendition_filters(plan, info)])


def expected_output(info: MediaInfo, plan: RenditionPlan) -> dict[str, Any]:
    """``{"frame_count", "duration"}`` a correct rendition of ``info`` under ``plan`` has.

    At the source's own (average) rate the frames are the source's counted frames; at another rate
    (a variable-rate source made constant, or the exact base rate of a source whose average is a hair
    off it) its video duration times the output rate. Padding adds its seconds' worth of frames.
    The duration is the file's (the longest stream), as the catalog has it.
    """
    fps = float(plan.fps)
    video = float(info.video_duration or info.duration)
    same_rate = not info.variable_fps and info.fps > 0 and abs(fps / info.fps - 1) <= _SAME_RATE
    frames = int(info.frame_count) if same_rate else round(video * fps)
    pad = pad_seconds(info, fps)
    frames += round(pad * fps)
    return {"frame_count": frames, "duration": max(float(info.duration), video + pad)}


def _colour_args(plan: RenditionPlan, info: MediaInfo) -> list[str]:
    """Colour tags of the output: BT.709 when tone-mapped, the source's when HDR is kept."""
    if tone_maps(plan, info):
        return list(_SDR_TAGS)
    if info.hdr:
        return [
            "-color_primaries", info.color_primaries or "bt2020",
            "-color_trc", str(info.color_transfer),
            "-colorspace", info.color_space or "bt2020nc",
            "-color_range", info.color_range or "tv",
        ]  # fmt: skip
    return []


def _video_args(plan: RenditionPlan, threads: int, info: MediaInfo) -> list[str]:
    """Encoder, GOP and rate-control options of one rendition (output options, no stream specifier)."""
    try:
        encoder = VIDEO_ENCODERS[plan.codec]
    except KeyError:
        raise VamError(
            f"rendition {plan.name!r}: unknown codec {plan.codec!r}; use one of {sorted(VIDEO_ENCODERS)}"
        ) from None
    gop = int(plan.gop_frames)
    if gop < 1:
        raise VamError(f"rendition {plan.name!r}: gop_frames must be >= 1, got {plan.gop_frames}")
    kbps = int(plan.video_bitrate_kbps)
    args = ["-c:v", encoder]
    if plan.codec == "av1":
        preset = plan.preset.strip() if plan.preset else ""
        args += ["-preset", preset if preset.isdigit() else str(DEFAULT_SVTAV1_PRESET)]
    else:
        args += ["-preset", plan.preset]
    if plan.profile:
        args += ["-profile:v", plan.profile]
    if plan.crf is not None:
        # Capped CRF: constant quality, peaks held to the rung's bitrate over a 2x buffer.
        args += ["-crf", str(plan.crf), "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]
    elif plan.codec == "av1":
        # SVT-AV1 turns b:v == maxrate into CBR, which needs its low-delay mode: plain VBR here.
        args += ["-b:v", f"{kbps}k"]
    else:
        args += ["-b:v", f"{kbps}k", "-maxrate", f"{kbps}k", "-bufsize", f"{2 * kbps}k"]
    if plan.codec == "h264":
        args += ["-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-flags", "+cgop"]
    elif plan.codec == "hevc":
        x265 = f"keyint={gop}:min-keyint={gop}:scenecut=0:open-gop=0:log-level=warning"
        args += ["-x265-params", x265, "-tag:v", "hvc1"]
    else:  # av1: -g sets the intra period; no scene-change keyframes; key frames (closed GOP)
        args += ["-g", str(gop), "-svtav1-params", "scd=0:irefresh-type=2"]
    args += ["-pix_fmt", output_pix_fmt(plan, info), *_colour_args(plan, info)]
    if threads > 0:
        args += ["-threads", str(threads)]
    return args


def _audio_args(plan: RenditionPlan, profile: Profile) -> list[str]:
    try:
        encoder = AUDIO_ENCODERS[profile.audio_codec]
    except KeyError:
        raise VamError(
            f"profile {profile.key}: unknown audio codec {profile.audio_codec!r}; "
            f"use one of {sorted(AUDIO_ENCODERS)}"
        ) from None
    return [
        "-c:a", encoder,
        "-b:a", f"{int(plan.audio_bitrate_kbps)}k",
        "-ac", str(profile.audio_channels),
        "-ar", str(profile.audio_sample_rate),
    ]  # fmt: skip


def _arg(path: Path) -> str:
    """An absolute path: never taken for an option ("-x") or a protocol ("a:b.mp4") by ffmpeg."""
    return str(Path(path).absolute())


def _mp4_args(out: Path) -> list[str]:
    return ["-map_chapters", "-1", "-movflags", "+faststart", "-f", "mp4", _arg(out)]


def _input_args(source: Path, threads: int) -> list[str]:
    return [*tools.ffmpeg_argv(threads=threads), "-i", _arg(source)]


def encode_argv(
    source: Path,
    plan: RenditionPlan,
    profile: Profile,
    out: Path,
    info: MediaInfo,
    *,
    threads: int = 0,
) -> list[str]:
    """The ffmpeg command that encodes ``source`` to ``out`` as ``plan`` says (``threads=0``: auto)."""
    argv = [*_input_args(source, threads), "-map", "0:v:0"]
    argv += ["-vf", video_filter(plan, info), *_video_args(plan, threads, info)]
    if info.audio_codec:
        argv += ["-map", "0:a:0", *_audio_args(plan, profile)]
    else:
        argv += ["-an"]
    return argv + ["-sn", "-dn", *_mp4_args(out)]


def ladder_split_argv(
    source: Path,
    plans: list[RenditionPlan],
    profile: Profile,
    outs: list[Path],
    info: MediaInfo,
    threads: int = 0,
) -> list[str]:
    """One ffmpeg process that decodes ``source`` once and encodes every plan (a ``split`` filter).

    Each output gets the same settings as :func:`encode_argv` gives it alone. Writes straight
    to ``outs`` (no temp file): this is the benchmark's single-decode floor.
    """
    if not plans or len(plans) != len(outs):
        raise ValueError(f"need one output per plan, got {len(plans)} plans and {len(outs)} outputs")
    n = len(plans)
    # The deinterlacer runs once, before the split; size, colour, rate and padding per output.
    pre = "".join(f"{f}," for f in deinterlace_filters(info))
    graph = [f"[0:v]{pre}split={n}" + "".join(f"[s{i}]" for i in range(n))]
    graph += [f"[s{i}]{','.join(_rendition_filters(plan, info))}[v{i}]" for i, plan in enumerate(plans)]
    argv = [*_input_args(source, threads), "-filter_complex", ";".join(graph)]
    for i, (plan, out) in enumerate(zip(plans, outs, strict=True)):
        argv += ["-map", f"[v{i}]", *_video_args(plan, threads, info)]
        if info.audio_codec:
            argv += ["-map", "0:a:0", *_audio_args(plan, profile)]
        argv += _mp4_args(out)
    return argv


def _fraction(value: str | None) -> float:
    if not value or value in ("0/0", "N/A"):
        return 0.0
    num, _, den = value.partition("/")
    return float(num) / float(den or 1) if float(den or 1) else 0.0


def describe_output(path: Path) -> dict[str, Any]:
    """What a finished rendition is, measured by ffprobe: codec, size, bitrate, frames, rotation.

    ``rotation`` is the display rotation left in the file (degrees clockwise, see
    :func:`vam.media.probe.display_rotation`): 0 for an upright output.
    """
    path = Path(path)
    described = describe(path)
    video, audio = described.video, described.audio
    if video is None:
        raise VamError(f"{path}: the encoded file has no video stream; check the ffmpeg log")
    fmt = described.format
    size = path.stat().st_size
    duration = float(fmt.get("duration") or video.get("duration") or 0.0)
    video_duration = float(video.get("duration") or duration)
    audio_duration = float(audio.get("duration") or 0.0) if audio else None
    frames = described.video_frame_count()
    if frames is None:  # container without a sample count: count the packets
        frames = describe(path, count_packets=True).video_frame_count() or 0
    if video.get("bit_rate"):
        kbps = int(video["bit_rate"]) / 1000
    else:
        kbps = size * 8 / duration / 1000 if duration else 0.0
    return {
        "codec": video.get("codec_name"),
        "width": int(video.get("width") or 0),
        "height": int(video.get("height") or 0),
        "bitrate_kbps": round(kbps, 1),
        "duration": duration,
        "video_duration": video_duration,
        "audio_duration": audio_duration,
        "size_bytes": size,
        "frame_count": frames,
        "fps": round(_fraction(video.get("avg_frame_rate")), 3),
        "pix_fmt": video.get("pix_fmt"),
        "sample_aspect_ratio": video.get("sample_aspect_ratio", "1:1"),
        "rotation": display_rotation(video),
        "field_order": video.get("field_order") or "unknown",
        "color_transfer": video.get("color_transfer"),
        "color_primaries": video.get("color_primaries"),
        "color_space": video.get("color_space"),
        "audio_codec": audio.get("codec_name") if audio else None,
        "audio_bitrate_kbps": round(int(audio["bit_rate"]) / 1000, 1)
        if audio and audio.get("bit_rate")
        else None,
    }


def encode_checked(
    argv_for: Callable[[Path], list[str]], out: Path, *, what: str, size: tuple[int, int]
) -> dict[str, Any]:
    """Run the ffmpeg command ``argv_for(tmp)`` writing a temp file next to ``out``, check the result
    (``size`` as planned, upright: no display rotation left), then rename it to ``out``; returns
    :func:`describe_output` of it. A killed or failed encode never leaves ``out``."""
    out = Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.part")
    try:
        tools.run(argv_for(tmp))
        made = describe_output(tmp)
        if (made["width"], made["height"]) != size:
            raise VamError(
                f"{what}: encoded {made['width']}x{made['height']}, planned {size[0]}x{size[1]};"
                " check the filters in the ffmpeg log"
            )
        if made["rotation"]:
            raise VamError(
                f"{what}: the output still carries a {made['rotation']} degree display rotation;"
                " it must be upright (was autorotation disabled?)"
            )
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return made


def add_expectations(result: dict[str, Any], info: MediaInfo, plan: RenditionPlan, elapsed: float) -> None:
    """Complete an encoded rendition's description (:func:`describe_output`) with its plan's name and
    GOP, what the quality gate expects of it (:func:`expected_output`) and the encode's seconds."""
    expected = expected_output(info, plan)
    result.update(
        name=plan.name,
        gop_frames=plan.gop_frames,
        expected_frame_count=expected["frame_count"],
        expected_duration=expected["duration"],
        has_audio=result["audio_codec"] is not None,
        encode_seconds=round(elapsed, 3),
    )


def encode_rendition(
    source: Path,
    plan: RenditionPlan,
    profile: Profile,
    out: Path,
    info: MediaInfo,
    *,
    threads: int = 0,
) -> dict[str, Any]:
    """Encode ``source`` to ``out`` and return what the output is (see :func:`describe_output`), with
    ``expected_frame_count`` and ``expected_duration`` (:func:`expected_output`) for the quality gate.

    ffmpeg writes a temp file next to ``out`` that is renamed only once it is complete and
    checked (right size, no rotation left), so a killed or failed encode never leaves ``out``.
    """
    source = Path(source)
    started = time.monotonic()
    result = encode_checked(
        lambda tmp: encode_argv(source, plan, profile, tmp, info, threads=threads),
        out,
        what=f"rendition {plan.name!r}",
        size=(plan.width, plan.height),
    )
    elapsed = time.monotonic() - started
    add_expectations(result, info, plan, elapsed)
    log.info(
        "encoded %s: %s %dx%d %.0f kb/s, %d frames in %.1f s",
        plan.name, result["codec"], result["width"], result["height"],
        result["bitrate_kbps"], result["frame_count"], elapsed,
    )  # fmt: skip
    return result

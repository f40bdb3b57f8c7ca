"""Encode one rendition of a source (or a whole ladder in one decode) with ffmpeg.

Every rendition is an MP4 (``+faststart``) with square pixels, yuv420p, the source's frame rate,
a closed GOP of exactly ``plan.gop_frames`` frames (so HLS/DASH segments cut on keyframes) and,
when the source has audio, AAC audio as the profile asks. ffmpeg rotates the source upright on
decode; the output carries no display matrix, which :func:`encode_rendition` checks.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
import uuid
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


def _video_filter(plan: RenditionPlan) -> str:
    return f"scale=w={plan.width}:h={plan.height}:flags={SCALE_FLAGS},setsar=1,format=yuv420p"


def _video_args(plan: RenditionPlan, threads: int) -> list[str]:
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
    args += ["-pix_fmt", "yuv420p"]
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
    argv += ["-vf", _video_filter(plan), *_video_args(plan, threads)]
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
    graph = [f"[0:v]split={n}" + "".join(f"[s{i}]" for i in range(n))]
    graph += [f"[s{i}]{_video_filter(plan)}[v{i}]" for i, plan in enumerate(plans)]
    argv = [*_input_args(source, threads), "-filter_complex", ";".join(graph)]
    for i, (plan, out) in enumerate(zip(plans, outs, strict=True)):
        argv += ["-map", f"[v{i}]", *_video_args(plan, threads)]
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
        "size_bytes": size,
        "frame_count": frames,
        "fps": round(_fraction(video.get("avg_frame_rate")), 3),
        "pix_fmt": video.get("pix_fmt"),
        "sample_aspect_ratio": video.get("sample_aspect_ratio", "1:1"),
        "rotation": display_rotation(video),
        "audio_codec": audio.get("codec_name") if audio else None,
        "audio_bitrate_kbps": round(int(audio["bit_rate"]) / 1000, 1)
        if audio and audio.get("bit_rate")
        else None,
    }


def encode_rendition(
    source: Path,
    plan: RenditionPlan,
    profile: Profile,
    out: Path,
    info: MediaInfo,
    *,
    threads: int = 0,
) -> dict[str, Any]:
    """Encode ``source`` to ``out`` and return what the output is (see :func:`describe_output`).

    ffmpeg writes a temp file next to ``out`` that is renamed only once it is complete and
    checked (right size, no rotation left), so a killed or failed encode never leaves ``out``.
    """
    source, out = Path(source), Path(out).absolute()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:12]}.part")
    started = time.monotonic()
    try:
        tools.run(encode_argv(source, plan, profile, tmp, info, threads=threads))
        result = describe_output(tmp)
        if (result["width"], result["height"]) != (plan.width, plan.height):
            raise VamError(
                f"rendition {plan.name!r}: encoded {result['width']}x{result['height']}, "
                f"planned {plan.width}x{plan.height}; check the scale filter in the ffmpeg log"
            )
        if result["rotation"]:
            raise VamError(
                f"rendition {plan.name!r}: the output still carries a {result['rotation']} degree "
                "display rotation; it must be upright (was autorotation disabled?)"
            )
        os.replace(tmp, out)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    elapsed = time.monotonic() - started
    result.update(
        name=plan.name,
        gop_frames=plan.gop_frames,
        has_audio=result["audio_codec"] is not None,
        encode_seconds=round(elapsed, 3),
    )
    log.info(
        "encoded %s: %s %dx%d %.0f kb/s, %d frames in %.1f s",
        plan.name, result["codec"], result["width"], result["height"],
        result["bitrate_kbps"], result["frame_count"], elapsed,
    )  # fmt: skip
    return result

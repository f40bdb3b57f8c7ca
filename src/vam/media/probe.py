"""Probe a source with ffprobe and reject what is not a usable video.

:func:`probe` returns a :class:`~vam.media.types.MediaInfo` or raises
:class:`~vam.errors.RejectedInput` whose ``code`` is one of:

``empty_file``          the file has 0 bytes
``not_a_video``         ffprobe cannot parse it (text, garbage) or it is a still image
``no_video_stream``     a media file without a video stream (audio only; cover art does not count)
``truncated``           the container is recognised but the data stops early
``undecodable``         the video stream does not decode
``absurd_dimensions``   a side below/above the limits or too many pixels
``absurd_duration``     too short, too long or unknown

Besides ffprobe it decodes the first frames and the last second of the video stream (cheap, and the
only way to catch an MP4 cut in half whose index is at the front).

:func:`describe` is the one ffprobe description of a media file (format and streams) that the
probe, the output check of :mod:`vam.media.encode` and :mod:`vam.media.package` share, and
:func:`display_rotation` the one reading of a stream's display rotation.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from vam.errors import RejectedInput, ToolError
from vam.media import tools
from vam.media.types import MediaInfo

log = logging.getLogger(__name__)

# Demuxers that read still images (or text rendered as an image): a file they parse is not a video.
_IMAGE_FORMATS = {"image2", "tty", "apng", "webp", "ico", "svg"}
# Demuxer messages that mean "the data stops before the container's index says it should".
_TRUNCATION_HINTS = ("partial file", "stream ends prematurely", "file ended prematurely")
_MAX_PLAUSIBLE_FPS = 1000.0
_ISO_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"styp", b"sidx", b"moof", b"pnot"}


@dataclass(frozen=True)
class ValidationLimits:
    """What :func:`probe` accepts."""

    min_side: int = 16  # pixels, coded and displayed
    max_side: int = 8192
    max_pixels: int = 8192 * 4320
    min_duration: float = 0.1  # seconds; a source must be longer than this
    max_duration: float = 24 * 3600.0
    decode_check: bool = True  # decode the first frames and the last second
    head_frames: int = 3
    tail_seconds: float = 1.0
    ffprobe_timeout: float = 120.0
    decode_timeout: float = 300.0
    count_timeout: float = 1800.0  # counting packets reads the whole file


def probe(path: str | Path, *, limits: ValidationLimits | None = None) -> MediaInfo:
    """Describe the video at ``path`` or raise :class:`RejectedInput` saying why it is not usable."""
    limits = limits or ValidationLimits()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"cannot probe {path}: no such file")
    size = path.stat().st_size
    if size == 0:
        raise RejectedInput(
            "empty_file", f"{path.name} is 0 bytes: the upload or copy produced an empty file; send it again"
        )

    try:
        described = describe(path, timeout=limits.ffprobe_timeout)
    except ToolError as exc:
        raise _classify_unreadable(path, exc.stderr_tail) from None

    fmt, streams = described.format, described.streams
    format_name = described.format_name
    video, audio = described.video, described.audio

    if format_name in _IMAGE_FORMATS or format_name.endswith("_pipe"):
        raise RejectedInput(
            "not_a_video", f"{path.name} is a still image ({format_name}), not a video; upload a video file"
        )
    if video is None:
        if audio is not None:
            raise RejectedInput(
                "no_video_stream",
                f"{path.name} has no video stream (only {_describe_streams(streams)}); "
                "upload a file that contains video",
            )
        raise RejectedInput(
            "not_a_video", f"{path.name} has no audio or video stream ({format_name or 'unknown format'})"
        )

    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    sar_num, sar_den = _parse_ratio(video.get("sample_aspect_ratio"), default=(1, 1))
    rotation = display_rotation(video)
    display_width, display_height = _display_size(width, height, sar_num, sar_den, rotation)
    _check_dimensions(path, width, height, display_width, display_height, limits)

    duration = _duration(fmt, video)
    if duration is None or not math.isfinite(duration):
        raise RejectedInput(
            "absurd_duration",
            f"{path.name}: ffprobe cannot tell its duration (a raw stream?); "
            "upload it in a container such as MP4 or MKV",
        )
    if duration <= limits.min_duration or duration > limits.max_duration:
        raise RejectedInput(
            "absurd_duration",
            f"{path.name} lasts {duration:.3f} s; accepted: more than {limits.min_duration:g} s "
            f"and at most {limits.max_duration / 3600:g} h",
        )

    fps_fraction, fps = _frame_rate(video)
    if limits.decode_check:
        _check_decodes(
            path,
            _video_end(fmt, video, duration),
            fps,
            limits,
            data_missing=_index_exceeds_file(fmt, streams, size, duration),
        )

    frame_count = _frame_count(described, duration, fps, limits)
    if (fps <= 0 or fps > _MAX_PLAUSIBLE_FPS) and frame_count > 1:  # missing, or a time base, not a rate
        rate = Fraction(frame_count / duration).limit_denominator(1001)
        fps, fps_fraction = float(rate), f"{rate.numerator}/{rate.denominator}"
    if fps <= 0:
        raise RejectedInput("undecodable", f"{path.name}: ffprobe reports no frame rate for the video stream")

    bit_rate = fmt.get("bit_rate")
    info = MediaInfo(
        container=format_name,
        duration=duration,
        size_bytes=size,
        bit_rate=int(bit_rate) if _is_int(bit_rate) else None,
        video_codec=str(video.get("codec_name") or "unknown"),
        width=width,
        height=height,
        sample_aspect_ratio=f"{sar_num}:{sar_den}",
        rotation=rotation,
        display_width=display_width,
        display_height=display_height,
        fps=fps,
        fps_fraction=fps_fraction,
        frame_count=frame_count,
        pix_fmt=str(video.get("pix_fmt") or ""),
        audio_codec=str(audio.get("codec_name")) if audio and audio.get("codec_name") else None,
        audio_channels=int(audio["channels"]) if audio and _is_int(audio.get("channels")) else None,
        audio_sample_rate=int(audio["sample_rate"]) if audio and _is_int(audio.get("sample_rate")) else None,
    )
    log.info(
        "probed %s: %s %dx%d (display %dx%d, rotation %d) %.3f s %s fps, %d frames, audio %s",
        path.name, info.video_codec, width, height, display_width, display_height, rotation,
        duration, fps_fraction, frame_count, info.audio_codec,
    )  # fmt: skip
    return info


# -- one ffprobe description of a file -------------------------------------------------------------


@dataclass(frozen=True)
class Description:
    """What one ffprobe run says about a file: ``format`` and ``streams`` as ffprobe's JSON has them."""

    path: Path
    format: dict[str, Any]
    streams: list[dict[str, Any]]

    @property
    def format_name(self) -> str:
        return str(self.format.get("format_name") or "")

    @property
    def video(self) -> dict[str, Any] | None:
        """The first video stream that is not cover art (an attached picture)."""
        return _first_video_stream(self.streams)

    @property
    def audio(self) -> dict[str, Any] | None:
        """The first audio stream."""
        return next((s for s in self.streams if s.get("codec_type") == "audio"), None)

    def video_frame_count(self) -> int | None:
        """Frames of :attr:`video`: the container's ``nb_frames``, else the packets counted by a
        ``count_packets`` run (``nb_read_packets``); None when neither is known."""
        video = self.video or {}
        for key in ("nb_frames", "nb_read_packets"):
            if _is_int(video.get(key)) and int(video[key]) > 0:
                return int(video[key])
        return None


def describe(
    path: str | Path, *, count_packets: bool = False, show_data: bool = False, timeout: float | None = 120.0
) -> Description:
    """Run ffprobe once (``-show_format -show_streams``) on ``path``.

    ``count_packets`` adds ``-count_packets`` (each stream's ``nb_read_packets``: reads the whole
    file, without decoding); ``show_data`` adds ``-show_data`` (each stream's ``extradata`` as a
    hexdump). A file ffprobe cannot open raises :class:`~vam.errors.ToolError`.
    """
    path = Path(path)
    args = ["-show_format", "-show_streams"]
    if count_packets:
        args.append("-count_packets")
    if show_data:
        args.append("-show_data")
    data = tools.run_ffprobe_json([*args, _input(path)], timeout=timeout)
    fmt = data.get("format")
    streams = data.get("streams")
    return Description(
        path=path,
        format=fmt if isinstance(fmt, dict) else {},
        streams=[s for s in streams if isinstance(s, dict)] if isinstance(streams, list) else [],
    )


# -- what went wrong -------------------------------------------------------------------------------


def _classify_unreadable(path: Path, stderr: str) -> RejectedInput:
    """ffprobe could not open the file: a truncated container or not media at all."""
    detail = _summary(stderr, path)
    if _looks_like_container(path) or _mentions_truncation(stderr):
        return RejectedInput(
            "truncated",
            f"{path.name} starts like a video container but cannot be read to the end ({detail}); "
            "the upload or copy was probably cut off: send the complete file again",
        )
    return RejectedInput(
        "not_a_video", f"{path.name} is not a video file ffmpeg can read ({detail}); upload a video file"
    )


def _looks_like_container(path: Path) -> bool:
    """True when the file starts with the signature of a video container (MP4/MOV, Matroska, AVI, ...)."""
    with path.open("rb") as f:
        head = f.read(16)
    if len(head) >= 8 and head[4:8] in _ISO_BMFF_BOXES:
        return True
    return head.startswith((b"\x1a\x45\xdf\xa3", b"FLV", b"OggS", b"\x00\x00\x01\xba")) or (
        head.startswith(b"RIFF") and head[8:12] in (b"AVI ", b"AVIX")
    )


def _check_dimensions(
    path: Path, width: int, height: int, display_width: int, display_height: int, limits: ValidationLimits
) -> None:
    for label, w, h in (("coded", width, height), ("display", display_width, display_height)):
        if min(w, h) < limits.min_side or max(w, h) > limits.max_side or w * h > limits.max_pixels:
            raise RejectedInput(
                "absurd_dimensions",
                f"{path.name} has a {label} size of {w}x{h}; accepted: sides of {limits.min_side}"
                f"-{limits.max_side} px and at most {limits.max_pixels} pixels",
            )


def _check_decodes(
    path: Path, video_end: float, fps: float, limits: ValidationLimits, *, data_missing: bool
) -> None:
    """Decode the first frames and the last second (at least two frames' worth) of the first video stream.

    The tail is taken from the end of the video stream, not of the file: a video shorter than its
    audio is not truncated.

    ``data_missing``: the container's index describes more media than the file holds; a failure to
    decode is then reported as ``truncated`` rather than ``undecodable``.
    """
    head_ok, head_frames, head_err = _decode(path, ["-frames:v", str(limits.head_frames)], [], limits)
    if not head_ok or head_frames == 0:
        if data_missing or _mentions_truncation(head_err):
            raise RejectedInput(
                "truncated",
                f"{path.name}: the file stops early, the first frames cannot be decoded "
                f"({_summary(head_err, path) or 'no frames'}); send the complete file again",
            )
        raise RejectedInput(
            "undecodable",
            f"{path.name}: the video stream does not decode ({_summary(head_err, path) or 'no frames'}); "
            "the file is corrupt or uses a codec ffmpeg cannot decode",
        )
    tail = max(limits.tail_seconds, 2.0 / fps if fps > 0 else 0.0)
    tail_start = max(0.0, video_end - tail)
    tail_ok, tail_frames, tail_err = _decode(path, [], ["-ss", f"{tail_start:.3f}"], limits)
    if not tail_ok or tail_frames == 0 or _mentions_truncation(tail_err):
        detail = _summary(tail_err, path) or "no frames there"
        raise RejectedInput(
            "truncated",
            f"{path.name}: the first frames decode but the last {tail:g} s do not ({detail}); "
            "the file is cut short or corrupt at the end: send the complete file again",
        )


def _mentions_truncation(stderr: str) -> bool:
    lowered = stderr.lower()
    return any(hint in lowered for hint in _TRUNCATION_HINTS)


def _index_exceeds_file(
    fmt: dict[str, Any], streams: list[dict[str, Any]], size: int, duration: float
) -> bool:
    """MP4/MOV only: the streams' bit rates (computed from the sample index) describe clearly more
    bytes than the file has. Used to name a decode failure, never to reject on its own."""
    if "mp4" not in str(fmt.get("format_name")) or duration <= 0:
        return False
    indexed_bits = sum(int(s["bit_rate"]) for s in streams if _is_int(s.get("bit_rate")))
    return indexed_bits > 0 and size * 8 < 0.9 * indexed_bits * duration


def _decode(
    path: Path, output_args: list[str], input_args: list[str], limits: ValidationLimits
) -> tuple[bool, int, str]:
    """Decode the first video stream to nowhere; return (exited 0, frames decoded, stderr tail)."""
    argv = [
        *tools.ffmpeg_argv(stats=False), "-xerror",
        *input_args, "-i", _input(path),
        "-map", "0:v:0", "-an", "-sn", "-dn", *output_args,
        "-f", "null", "-progress", "pipe:1", "-",
    ]  # fmt: skip
    try:
        result = tools.run(argv, timeout=limits.decode_timeout, log_progress=False)
    except ToolError as exc:
        return False, 0, exc.stderr_tail
    frames = [int(m) for m in re.findall(r"^frame=(\d+)$", result.stdout, flags=re.MULTILINE)]
    return True, frames[-1] if frames else 0, result.stderr


# -- what the streams say --------------------------------------------------------------------------


def _first_video_stream(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first video stream that is not cover art (an attached picture)."""
    for stream in streams:
        if stream.get("codec_type") != "video":
            continue
        if (stream.get("disposition") or {}).get("attached_pic"):
            continue
        return stream
    return None


def display_rotation(stream: dict[str, Any]) -> int:
    """Degrees clockwise a player turns the decoded picture to show it upright: 0, 90, 180 or 270.

    Read from the stream's display matrix, the only rotation ffmpeg applies when it decodes
    (autorotation). ffprobe reports the matrix's angle counter-clockwise, so a phone held upright,
    whose sensor records the scene turned a quarter counter-clockwise, has ``rotation: -90`` and
    needs a quarter turn clockwise: 90 here. The legacy ``rotate`` tag is not read: ffmpeg 6 and
    later neither write it nor apply it, so honouring it would plan a size the decoder does not make.
    """
    for side in stream.get("side_data_list") or []:
        if side.get("side_data_type") == "Display Matrix" and side.get("rotation") is not None:
            try:
                return _snap_rotation(-float(side["rotation"]))
            except (TypeError, ValueError):
                return 0
    return 0


def _snap_rotation(degrees: float) -> int:
    return int(round(degrees / 90.0)) * 90 % 360


def _display_size(width: int, height: int, sar_num: int, sar_den: int, rotation: int) -> tuple[int, int]:
    """Upright display size: the sample aspect ratio stretches the width (to an even size), then rotation."""
    display_width = width
    if sar_num != sar_den:
        display_width = max(2, 2 * round(width * sar_num / sar_den / 2))
    if rotation in (90, 270):
        return height, display_width
    return display_width, height


def _parse_ratio(value: Any, *, default: tuple[int, int]) -> tuple[int, int]:
    """``"16:15"`` or ``"30000/1001"`` to a pair of positive ints; ``default`` when absent or zero."""
    if not isinstance(value, str):
        return default
    parts = re.split(r"[:/]", value)
    if len(parts) != 2 or not all(_is_int(p) for p in parts):
        return default
    num, den = int(parts[0]), int(parts[1])
    if num <= 0 or den <= 0:
        return default
    return num, den


def _frame_rate(stream: dict[str, Any]) -> tuple[str, float]:
    """(fraction, fps) from avg_frame_rate, else r_frame_rate; ("0/1", 0.0) when neither is known."""
    for key in ("avg_frame_rate", "r_frame_rate"):
        num, den = _parse_ratio(stream.get(key), default=(0, 1))
        if num > 0:
            return f"{num}/{den}", num / den
    return "0/1", 0.0


def _duration(fmt: dict[str, Any], stream: dict[str, Any]) -> float | None:
    """The file's duration (what a player shows), else the video stream's."""
    value = _float(fmt.get("duration"))
    return value if value is not None else _stream_duration(stream)


def _stream_duration(stream: dict[str, Any]) -> float | None:
    value = _float(stream.get("duration"))
    if value is not None:
        return value
    tag = (stream.get("tags") or {}).get("DURATION")  # Matroska: "00:00:02.000000000"
    if isinstance(tag, str):
        match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip())
        if match:
            hours, minutes, seconds = match.groups()
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    return None


def _video_end(fmt: dict[str, Any], stream: dict[str, Any], duration: float) -> float:
    """Where the video stream ends, in seconds from the start of the file (what input ``-ss`` takes)."""
    stream_duration = _stream_duration(stream)
    if stream_duration is None:
        return duration
    offset = (_float(stream.get("start_time")) or 0.0) - (_float(fmt.get("start_time")) or 0.0)
    return max(0.0, offset) + stream_duration


def _float(value: Any) -> float | None:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return None
    return result if math.isfinite(result) else None


def _frame_count(described: Description, duration: float, fps: float, limits: ValidationLimits) -> int:
    """nb_frames from the container, else counted packets (reads but does not decode), else duration*fps."""
    known = described.video_frame_count()
    if known is not None:
        return known
    try:
        recounted = describe(described.path, count_packets=True, timeout=limits.count_timeout)
        counted = recounted.video_frame_count()
        if counted is not None:
            return counted
    except ToolError as exc:
        log.warning("counting packets of %s failed; estimating frames from duration: %s", described.path, exc)
    return max(1, round(duration * fps))


def _input(path: Path) -> str:
    """An absolute path: never mistaken for an option (leading "-") or a protocol ("x:...")."""
    return str(path.absolute())


def _is_int(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    return isinstance(value, str) and value.strip().lstrip("-").isdigit()


def _describe_streams(streams: list[dict[str, Any]]) -> str:
    kinds = [f"{s.get('codec_type', '?')} ({s.get('codec_name', '?')})" for s in streams]
    return ", ".join(kinds) or "nothing"


def _summary(text: str, path: Path, limit: int = 2) -> str:
    """The first distinct messages of an ffmpeg/ffprobe stderr, without "[demuxer @ 0x...]" prefixes."""
    seen: list[str] = []
    for raw in text.splitlines():
        line = re.sub(r"^(\[[^\]]*@ 0x[0-9a-f]+\]\s*)+", "", raw.strip()).replace(
            str(path.absolute()), path.name
        )
        if line and line not in seen and not line.startswith("Last message repeated"):
            seen.append(line)
        if len(seen) == limit:
            break
    return "; ".join(seen)

"""Probe a source with ffprobe and reject what is not a usable video.

:func:`probe` returns a :class:`~vam.media.types.MediaInfo` or raises
:class:`~vam.errors.RejectedInput` whose ``code`` is one of:

``empty_file``            the file has 0 bytes
``not_a_video``           ffprobe cannot parse it (text, garbage) or it is a still image
``no_video_stream``       a media file without a video stream (audio only; cover art does not count)
``unsupported_container`` a container other than MP4/MOV, MKV, WebM, MXF, MPEG-TS, AVI (FLV, GIF,
                          MPEG-PS, raw streams, ...): the message names the detected format
``truncated``             the container is recognised but the data stops early (or is corrupt at the end)
``undecodable``           the video stream does not decode (from its first frames)
``corrupt``               the video decodes, then fails in the middle: damaged, not cut short
``absurd_dimensions``     a side below 16 px, or larger than the limits (``max_width``/``max_height``)
``absurd_duration``       too short, unknown, or longer than the limits (``max_duration_s``)
``absurd_frame_rate``     the frame rate is outside the limits (``min_fps``/``max_fps``)

The limits come from the encoding profile (its ``limits:`` section) through
:meth:`ValidationLimits.from_profile`. A duration the container does not give (a WebM from a
browser's MediaRecorder, an MP4 whose headers say 0) is measured from the video packets' timestamps.

Besides ffprobe it decodes the whole video stream (``-xerror``, video only, no output: ~20x real
time for 720p H.264 on 2 threads); the position of the first error tells a file cut short (or corrupt
at the end) from one corrupt in the middle. With ``ValidationLimits(full_decode=False)`` it decodes
only the first frames and the tail, the tail from the keyframe before it (found in the packets'
flags), so that a long GOP in an MPEG-TS, where ``-ss`` does not land on a keyframe, decodes cleanly.

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
from typing import TYPE_CHECKING, Any

from vam.errors import RejectedInput, ToolError
from vam.media import tools
from vam.media.profiles import DEFAULT_LIMITS, profile_limits
from vam.media.types import MediaInfo

if TYPE_CHECKING:
    from vam.media.types import Profile

log = logging.getLogger(__name__)

# Demuxers that read still images (or text rendered as an image): a file they parse is not a video.
_IMAGE_FORMATS = {"image2", "tty", "apng", "webp", "ico", "svg"}
# Demuxer messages that mean "the data stops before the container's index says it should".
_TRUNCATION_HINTS = ("partial file", "stream ends prematurely", "file ended prematurely")
_MAX_PLAUSIBLE_FPS = 1000.0
_ISO_BMFF_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"styp", b"sidx", b"moof", b"pnot"}
# Accepted containers: ffprobe demuxer names (format_name lists a demuxer's names: "mov,mp4,m4a,...",
# "matroska,webm") and what to call them in a message.
CONTAINER_NAMES = {
    "mov": "MP4/MOV", "mp4": "MP4/MOV", "matroska": "MKV", "webm": "WebM", "mxf": "MXF",
    "mpegts": "MPEG-TS", "avi": "AVI",
}  # fmt: skip
ACCEPTED_CONTAINERS = frozenset(CONTAINER_NAMES)
_STATS_FRAME_RE = re.compile(r"\bframe=\s*(\d+)")
_STATS_TIME_RE = re.compile(r"\btime=\s*(-?)(\d+):(\d+):(\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class ValidationLimits:
    """What :func:`probe` accepts: the bounds an encoding profile sets (:meth:`from_profile`; the
    defaults are a profile's without a ``limits:`` section) and sanity checks no profile changes."""

    max_duration: float = DEFAULT_LIMITS.max_duration_s  # seconds (profile: max_duration_s)
    max_width: int = DEFAULT_LIMITS.max_width  # the long side of the picture turned to landscape
    max_height: int = DEFAULT_LIMITS.max_height  # its short side
    min_fps: float = DEFAULT_LIMITS.min_fps  # average frames per second
    max_fps: float = DEFAULT_LIMITS.max_fps
    origin: str = ""  # where the bounds come from, named in messages: "profile default@1"
    min_side: int = 16  # pixels, coded and displayed
    min_duration: float = 0.1  # seconds; a source must be longer than this
    containers: frozenset[str] = ACCEPTED_CONTAINERS  # ffprobe demuxer names
    decode_check: bool = True
    full_decode: bool = True  # decode the whole video stream; False: the first frames and the tail
    head_frames: int = 3
    tail_seconds: float = 1.0
    ffprobe_timeout: float = 120.0
    decode_timeout: float = 300.0  # a partial decode; the full one gets full_decode_factor x duration more
    full_decode_factor: float = 4.0
    count_timeout: float = 1800.0  # counting packets reads the whole file

    @classmethod
    def from_profile(cls, profile: Profile, **overrides: Any) -> ValidationLimits:
        """The limits of ``profile`` (its ``limits:`` section, else the defaults), named after it in
        messages; ``overrides`` set any other field (e.g. ``full_decode=False``)."""
        bounds = profile_limits(profile)
        fields: dict[str, Any] = {
            "max_duration": bounds.max_duration_s,
            "max_width": bounds.max_width,
            "max_height": bounds.max_height,
            "min_fps": bounds.min_fps,
            "max_fps": bounds.max_fps,
            "origin": f"profile {profile.key}",
        }
        fields.update(overrides)
        return cls(**fields)

    def _of(self) -> str:
        """Who set a bound, for messages: ' of profile default@1' or ' (the default limits)'."""
        return f" of {self.origin}" if self.origin else " (the default limits)"


def probe(path: str | Path, *, limits: ValidationLimits | None = None, threads: int = 0) -> MediaInfo:
    """Describe the video at ``path`` or raise :class:`RejectedInput` saying why it is not usable.

    ``limits``: what is accepted (``ValidationLimits.from_profile(profile)`` for an encoding
    profile's bounds; the defaults when None). ``threads``: decoder threads of the decode check
    (0: ffmpeg's choice).
    """
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
        raise _no_video(path, described)
    _check_container(path, described, limits)

    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    sar_num, sar_den = _parse_ratio(video.get("sample_aspect_ratio"), default=(1, 1))
    rotation = display_rotation(video)
    display_width, display_height = _display_size(width, height, sar_num, sar_den, rotation)
    _check_dimensions(path, width, height, display_width, display_height, limits)

    packets: _Packets | None = None
    duration = _duration(fmt, video)
    if duration is None:  # the container does not say (a live WebM, zeroed MP4 headers): measure it
        packets = _measure_packets(path, video, limits)
        duration = packets.duration
        if duration is None:
            raise RejectedInput(
                "absurd_duration",
                f"{path.name}: neither its container nor its video packets tell its duration; "
                "remux it (e.g. ffmpeg -i IN -c copy OUT.mkv) and upload that",
            )
        if _stream_duration(video) is None:  # what the container left out, measured
            video = {**video, "duration": f"{duration:.6f}"}
    _check_duration(path, duration, limits)

    fps_fraction, fps = _frame_rate(video)
    average_known = _parse_ratio(video.get("avg_frame_rate"), default=(0, 1))[0] > 0
    if average_known and fps <= _MAX_PLAUSIBLE_FPS:
        _check_frame_rate(path, fps, limits)  # before the (costlier) decode
    decoded_frames = None
    if limits.decode_check:
        decoded_frames = _check_decodes(
            path,
            fmt,
            video,
            duration,
            fps,
            limits,
            threads=threads,
            data_missing=_index_exceeds_file(fmt, streams, size, duration),
        )

    frame_count = decoded_frames or _frame_count(described, duration, fps, limits, packets)
    if (not average_known or fps <= 0 or fps > _MAX_PLAUSIBLE_FPS) and frame_count > 1:
        # missing, or a time base rather than a rate (variable rate): frames over the video's duration
        rate = Fraction(frame_count / (_stream_duration(video) or duration)).limit_denominator(1001)
        fps, fps_fraction = float(rate), f"{rate.numerator}/{rate.denominator}"
    if fps <= 0:
        raise RejectedInput("undecodable", f"{path.name}: ffprobe reports no frame rate for the video stream")
    _check_frame_rate(path, fps, limits)

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
        **_timing_and_colour(video, audio, fps),
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


def _no_video(path: Path, described: Description) -> RejectedInput:
    """No video stream: say what the file has instead (audio, cover art) or that it has nothing."""
    stills = [s for s in described.streams if _is_attached_picture(s)]
    others = [s for s in described.streams if not _is_attached_picture(s)]
    if described.audio is None and not stills:
        return RejectedInput(
            "not_a_video",
            f"{path.name} has no audio or video stream ({described.format_name or 'unknown format'})",
        )
    found = [_describe_streams(others)] if others else []
    if stills:
        codecs = ", ".join(sorted({str(s.get("codec_name") or "?") for s in stills}))
        found.append(f"a still image (cover art / attached picture, {codecs})")
    return RejectedInput(
        "no_video_stream",
        f"{path.name} has no video stream, only {' and '.join(found)}; upload a file that contains video",
    )


def _check_container(path: Path, described: Description, limits: ValidationLimits) -> None:
    names = set(described.format_name.split(","))
    if names & limits.containers:
        return
    long_name = str(described.format.get("format_long_name") or "") or described.format_name or "unknown"
    known = [n for n in CONTAINER_NAMES if n in limits.containers]
    others = sorted(limits.containers - set(CONTAINER_NAMES))
    accepted = ", ".join(dict.fromkeys([CONTAINER_NAMES[n] for n in known] + others))
    raise RejectedInput(
        "unsupported_container",
        f"{path.name} is in a container vam does not accept: {long_name} (ffprobe format "
        f"{described.format_name or '?'}); accepted: {accepted}: convert or remux it into one of these "
        "(e.g. ffmpeg -i IN -c copy OUT.mkv) and upload that",
    )


def _check_dimensions(
    path: Path, width: int, height: int, display_width: int, display_height: int, limits: ValidationLimits
) -> None:
    """A side below ``min_side``; a picture larger than max_width x max_height turned to landscape."""
    long_max, short_max = max(limits.max_width, limits.max_height), min(limits.max_width, limits.max_height)
    for label, w, h in (("coded", width, height), ("display", display_width, display_height)):
        if min(w, h) < limits.min_side:
            raise RejectedInput(
                "absurd_dimensions",
                f"{path.name} has a {label} size of {w}x{h}; a video needs sides of at least "
                f"{limits.min_side} px",
            )
        if max(w, h) > long_max or min(w, h) > short_max:
            raise RejectedInput(
                "absurd_dimensions",
                f"{path.name} has a {label} size of {w}x{h}, larger than max_width {limits.max_width} x "
                f"max_height {limits.max_height}{limits._of()} (a portrait picture is compared turned "
                "to landscape)",
            )


def _check_duration(path: Path, duration: float, limits: ValidationLimits) -> None:
    if not math.isfinite(duration) or duration <= limits.min_duration:
        raise RejectedInput(
            "absurd_duration",
            f"{path.name} lasts {duration:.3f} s; a source must last more than {limits.min_duration:g} s",
        )
    if duration > limits.max_duration:
        raise RejectedInput(
            "absurd_duration",
            f"{path.name} lasts {duration:.1f} s, longer than max_duration_s "
            f"{limits.max_duration:g}{limits._of()}",
        )


def _check_frame_rate(path: Path, fps: float, limits: ValidationLimits) -> None:
    if fps < limits.min_fps * (1 - 1e-6):
        raise RejectedInput(
            "absurd_frame_rate",
            f"{path.name} has {fps:.4g} frames per second, fewer than min_fps "
            f"{limits.min_fps:g}{limits._of()}",
        )
    if fps > limits.max_fps * (1 + 1e-6):
        raise RejectedInput(
            "absurd_frame_rate",
            f"{path.name} has {fps:.4g} frames per second, more than max_fps "
            f"{limits.max_fps:g}{limits._of()}",
        )


def _check_decodes(
    path: Path,
    fmt: dict[str, Any],
    video: dict[str, Any],
    duration: float,
    fps: float,
    limits: ValidationLimits,
    *,
    threads: int,
    data_missing: bool,
) -> int | None:
    """Decode the video stream (only it) and reject it if it does not decode to its end.

    ``limits.full_decode``: the whole stream, stopping at the first error (``-xerror``); where it
    stops tells the reason: within the first frames ``undecodable``, within the last
    ``tail_seconds`` (or with a demuxer's "file ended prematurely") ``truncated``, else ``corrupt``
    (in the middle). Returns the number of frames decoded. Otherwise the first frames and the tail,
    the tail from the keyframe before it, and returns None; only when the tail fails is the whole
    stream decoded, to confirm it and tell where it fails.

    The tail is taken from the end of the video stream, not of the file: a video shorter than its
    audio is not truncated. ``data_missing``: the container's index describes more media than the
    file holds; a failure to decode is then reported as ``truncated``.
    """
    index = _stream_index(video)
    tail = max(limits.tail_seconds, 2.0 / fps if fps > 0 else 0.0)
    if not limits.full_decode:
        head = _decode(
            path, index, output_args=["-frames:v", str(limits.head_frames)], threads=threads,
            timeout=limits.decode_timeout,
        )  # fmt: skip
        if not head.ok or head.frames == 0:
            raise _head_failure(path, head.stderr, data_missing)
        if _tail_decodes(path, fmt, video, duration, tail, limits, threads=threads):
            return None

    video_duration = _stream_duration(video)  # None: only the file's duration is known
    length = video_duration or duration
    run = _decode(
        path, index, threads=threads, timeout=limits.decode_timeout + limits.full_decode_factor * length
    )
    cut = _mentions_truncation(run.stderr)
    if run.ok and run.frames > 0 and not cut:
        if video_duration and run.seconds is not None and run.seconds < video_duration - tail:
            raise RejectedInput(
                "truncated",
                f"{path.name}: the video decodes cleanly but stops at {run.seconds:.2f} s of the "
                f"{video_duration:.2f} s its container announces; the file is cut short: send the "
                "complete file again",
            )
        return run.frames
    if run.frames < limits.head_frames:
        raise _head_failure(path, run.stderr, data_missing)
    position = run.seconds if run.seconds is not None else run.frames / fps if fps > 0 else 0.0
    where = f"it decodes up to {position:.2f} s of {length:.2f} s ({run.frames} frames)"
    detail = _summary(run.stderr, path) or "no error message"
    if data_missing or cut or position >= length - tail:
        raise RejectedInput(
            "truncated",
            f"{path.name}: {where}, then fails ({detail}); the file is cut short or corrupt at the end: "
            "send the complete file again",
        )
    raise RejectedInput(
        "corrupt",
        f"{path.name} is corrupt in the middle: {where}, then fails ({detail}); the data was damaged "
        "(in storage, in transfer or by the recorder), not cut short: send an intact copy",
    )


def _head_failure(path: Path, stderr: str, data_missing: bool) -> RejectedInput:
    """The first frames do not decode: ``truncated`` when the data is missing, else ``undecodable``."""
    if data_missing or _mentions_truncation(stderr):
        return RejectedInput(
            "truncated",
            f"{path.name}: the file stops early, the first frames cannot be decoded "
            f"({_summary(stderr, path) or 'no frames'}); send the complete file again",
        )
    return RejectedInput(
        "undecodable",
        f"{path.name}: the video stream does not decode ({_summary(stderr, path) or 'no frames'}); "
        "the file is corrupt or uses a codec ffmpeg cannot decode",
    )


def _tail_decodes(
    path: Path,
    fmt: dict[str, Any],
    video: dict[str, Any],
    duration: float,
    tail: float,
    limits: ValidationLimits,
    *,
    threads: int,
) -> bool:
    """Whether the last ``tail`` seconds of the video stream decode, from the keyframe before them.

    A plain input ``-ss`` does not start at that keyframe: MP4 and MKV seek to the keyframe at or
    before the time asked for, but ffmpeg first moves that time back 3/23 s when the video has
    B-frames (except for MP4, which seeks by presentation time), which can land a whole GOP early;
    an MPEG-TS is searched by decode timestamp and lands anywhere, and with a long GOP there is no
    keyframe in the tail at all ("mmco: unref short failure", no frames). So the keyframe is found
    in the packets' flags (read, not decoded) and the seek aimed at it.
    """
    tail_start = max(0.0, _video_end(fmt, video, duration) - tail)
    seek = _tail_seek(path, fmt, video, tail_start, limits)
    run = _decode(
        path, _stream_index(video), input_args=["-ss", f"{seek:.6f}"], threads=threads,
        timeout=limits.decode_timeout,
    )  # fmt: skip
    if run.ok and run.frames > 0 and not _mentions_truncation(run.stderr):
        return True
    log.info("%s: the tail from %.3f s does not decode (%s)", path.name, seek, _summary(run.stderr, path))
    return False


def _tail_seek(
    path: Path, fmt: dict[str, Any], video: dict[str, Any], at: float, limits: ValidationLimits
) -> float:
    """The input ``-ss`` (seconds from the file's start) that starts decoding at the last keyframe at
    or before ``at`` (same scale); 0 when there is none or the packets cannot be read."""
    start = _float(fmt.get("start_time")) or 0.0
    target = start + at  # packet timestamps are absolute
    keyframe = None
    for lookback in (max(10.0, 4 * limits.tail_seconds), None):
        read_from = target - lookback if lookback is not None and target - lookback > start else None
        try:
            keyframe = _video_packets(
                path, video, read_from=read_from, key_at_or_before=target, limits=limits
            ).keyframe
        except ToolError as exc:
            log.warning("cannot list the packets of %s: %s; decoding its tail from the start", path.name, exc)
            return 0.0
        if keyframe is not None or read_from is None:
            break
    if keyframe is None:
        return 0.0
    pts, dts = keyframe
    names = set(str(fmt.get("format_name") or "").split(","))
    if names & {"mov", "mp4"}:  # seeks by presentation time, to the keyframe at or before it
        seek = pts
    elif "mpegts" in names:  # searched by decode time: land just before the keyframe
        seek = dts - 0.001
    else:  # Matroska, AVI, MXF: by presentation time, moved back 3/23 s when there are B-frames
        seek = pts + (
            3 / 23 + 0.001 if _is_int(video.get("has_b_frames")) and int(video["has_b_frames"]) else 0
        )
    return max(0.0, math.floor((seek - start) * 1e6) / 1e6)


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


@dataclass(frozen=True)
class _DecodeRun:
    ok: bool  # ffmpeg exited 0 (with -xerror: no decoding or demuxing error)
    frames: int  # video frames decoded
    seconds: float | None  # how far the decoded video reaches, from its first frame (ffmpeg's time=)
    stderr: str  # the tail of ffmpeg's messages


def _decode(
    path: Path,
    stream_index: int,
    *,
    input_args: list[str] | None = None,
    output_args: list[str] | None = None,
    threads: int = 0,
    timeout: float | None = None,
) -> _DecodeRun:
    """Decode one video stream to nowhere (``-xerror``: stop at the first error).

    With frame threads a damaged frame can go through unflagged (seen on the partial last frame of
    a cut MPEG-TS: one run in two passed); so a run that succeeds while the decoder complained is
    repeated on one thread, which stops at the damaged frame every time.
    """
    run = _decode_once(path, stream_index, input_args, output_args, threads, timeout)
    if run.ok and threads != 1 and _complaints(run.stderr):
        run = _decode_once(path, stream_index, input_args, output_args, 1, timeout)
    return run


def _complaints(stderr: str) -> bool:
    """ffmpeg (at ``-v error``) printed something besides its stats line."""
    return any(line.strip() and not _STATS_FRAME_RE.search(line) for line in stderr.splitlines())


def _decode_once(
    path: Path,
    stream_index: int,
    input_args: list[str] | None,
    output_args: list[str] | None,
    threads: int,
    timeout: float | None,
) -> _DecodeRun:
    argv = [
        *tools.ffmpeg_argv(threads=threads), "-xerror",
        *(input_args or []), "-i", _input(path),
        "-map", f"0:{stream_index}", "-an", "-sn", "-dn", *(output_args or []),
        "-f", "null", "-",
    ]  # fmt: skip
    try:
        stderr, ok = tools.run(argv, timeout=timeout, log_progress=False).stderr, True
    except ToolError as exc:
        stderr, ok = exc.stderr_tail, False
    frames, seconds = _last_stats(stderr)
    return _DecodeRun(ok, frames, seconds, stderr)


def _last_stats(stderr: str) -> tuple[int, float | None]:
    """Frames and time of ffmpeg's last stats line (``frame=  37 ... time=00:00:01.48 ...``), which
    it prints also when it stops at an error."""
    frames, seconds = 0, None
    for line in stderr.splitlines():
        frame = _STATS_FRAME_RE.search(line)
        if not frame:
            continue
        frames = int(frame.group(1))
        time = _STATS_TIME_RE.search(line)
        if time:
            sign, hours, minutes, secs = time.groups()
            seconds = (-1 if sign else 1) * (int(hours) * 3600 + int(minutes) * 60 + float(secs))
        else:
            seconds = None
    return frames, seconds


# -- the video packets (read, not decoded) -----------------------------------------------------------


@dataclass(frozen=True)
class _Packets:
    count: int
    first: float | None  # the earliest timestamp, seconds
    end: float | None  # the latest timestamp plus its packet's duration
    keyframe: tuple[float, float] | None  # (pts, dts) of the last keyframe at or before the time asked for

    @property
    def duration(self) -> float | None:
        if self.first is None or self.end is None or not self.end > self.first:
            return None
        return self.end - self.first


def _measure_packets(path: Path, video: dict[str, Any], limits: ValidationLimits) -> _Packets:
    """All the video packets: their count and time span (the duration a container left out)."""
    try:
        return _video_packets(path, video, limits=limits)
    except ToolError as exc:
        log.warning("cannot list the packets of %s: %s", path.name, exc)
        return _Packets(0, None, None, None)


def _video_packets(
    path: Path,
    video: dict[str, Any],
    *,
    limits: ValidationLimits,
    read_from: float | None = None,
    key_at_or_before: float | None = None,
) -> _Packets:
    """Read the packets of the ``video`` stream with ffprobe (no decoding), from ``read_from``
    (seconds, absolute) or the start; a packet's time is its pts, else its dts."""
    num, den = _parse_ratio(video.get("time_base"), default=(1, 1000))
    tick = num / den
    argv = [tools.ffprobe_path(), "-v", "error", "-select_streams", str(_stream_index(video))]
    argv += ["-show_entries", "packet=pts,dts,duration,flags", "-of", "csv=p=0"]
    if read_from is not None:
        argv += ["-read_intervals", f"{read_from:.6f}%"]
    out = tools.run([*argv, _input(path)], timeout=limits.count_timeout, log_progress=False).stdout
    count, first, end, keyframe = 0, None, None, None
    for line in out.splitlines():
        fields = line.split(",")
        if len(fields) < 4:
            continue  # a side data line
        pts, dts, length = (int(f) if _is_int(f) else None for f in fields[:3])
        stamp = pts if pts is not None else dts
        if stamp is None:
            continue
        count += 1
        first = stamp * tick if first is None else min(first, stamp * tick)
        stop = (stamp + (length or 0)) * tick
        end = stop if end is None else max(end, stop)
        if key_at_or_before is not None and "K" in fields[3] and stamp * tick <= key_at_or_before + 1e-6:
            keyframe = (stamp * tick, (dts if dts is not None else stamp) * tick)
    return _Packets(count, first, end, keyframe)


# -- what the streams say --------------------------------------------------------------------------


def _first_video_stream(streams: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The first video stream that is not cover art (an attached picture)."""
    for stream in streams:
        if stream.get("codec_type") == "video" and not _is_attached_picture(stream):
            return stream
    return None


def _is_attached_picture(stream: dict[str, Any]) -> bool:
    """Cover art: a still image a container attaches to audio (an MP3's APIC, an MP4's covr)."""
    return stream.get("codec_type") == "video" and bool((stream.get("disposition") or {}).get("attached_pic"))


def _stream_index(stream: dict[str, Any]) -> int:
    """The stream's index in its file (``-map 0:N``; ``0:v:0`` could be cover art)."""
    return int(stream["index"]) if _is_int(stream.get("index")) else 0


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


def _timing_and_colour(video: dict[str, Any], audio: dict[str, Any] | None, fps: float) -> dict[str, Any]:
    """The MediaInfo fields on frame rate, scan, colour and stream durations, from the ffprobe streams."""
    base_num, base_den = _parse_ratio(video.get("r_frame_rate"), default=(0, 1))
    max_fps = base_num / base_den if 0 < base_num / base_den <= _MAX_PLAUSIBLE_FPS else None
    # Variable: the base rate clearly above the average. Exactly twice the average is ffprobe's field
    # rate of interlaced (or some MPEG-TS) H.264, not a variable rate.
    variable = bool(max_fps and fps > 0 and max_fps > fps * 1.01 and abs(max_fps / fps - 2) > 0.01)
    field_order = str(video.get("field_order") or "unknown")

    def tag(key: str) -> str | None:
        value = video.get(key)
        return str(value) if value and value not in ("unknown", "unspecified", "reserved") else None

    return {
        "max_fps": max_fps,
        "variable_fps": variable,
        "field_order": field_order,
        "color_transfer": tag("color_transfer"),
        "color_primaries": tag("color_primaries"),
        "color_space": tag("color_space"),
        "color_range": tag("color_range"),
        "bit_depth": _bit_depth(video),
        "video_duration": _stream_duration(video),
        "audio_duration": _stream_duration(audio) if audio else None,
    }


def _bit_depth(stream: dict[str, Any]) -> int:
    """Bits per sample: bits_per_raw_sample when given, else read from pix_fmt ("yuv420p10le": 10)."""
    if _is_int(stream.get("bits_per_raw_sample")) and int(stream["bits_per_raw_sample"]) > 0:
        return int(stream["bits_per_raw_sample"])
    match = re.search(r"[py](\d{1,2})(?:le|be)?$", str(stream.get("pix_fmt") or ""))
    return int(match.group(1)) if match else 8


def _duration(fmt: dict[str, Any], stream: dict[str, Any]) -> float | None:
    """The file's duration (what a player shows), else the video stream's; None when neither is
    known (0, as in an MP4 whose headers were zeroed, is not known)."""
    value = _float(fmt.get("duration"))
    return value if value is not None and value > 0 else _stream_duration(stream)


def _stream_duration(stream: dict[str, Any]) -> float | None:
    """A stream's duration in seconds (Matroska: its DURATION tag); None when unknown or not positive."""
    value = _float(stream.get("duration"))
    if value is not None and value > 0:
        return value
    tag = (stream.get("tags") or {}).get("DURATION")  # Matroska: "00:00:02.000000000"
    if isinstance(tag, str):
        match = re.fullmatch(r"(\d+):(\d+):(\d+(?:\.\d+)?)", tag.strip())
        if match:
            hours, minutes, seconds = match.groups()
            tagged = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
            return tagged if tagged > 0 else None
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


def _frame_count(
    described: Description,
    duration: float,
    fps: float,
    limits: ValidationLimits,
    packets: _Packets | None = None,
) -> int:
    """nb_frames from the container, else the video packets (``packets`` when already listed, else
    counted: reads but does not decode), else duration*fps."""
    known = described.video_frame_count()
    if known is not None:
        return known
    if packets is not None and packets.count > 0:
        return packets.count
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
        if line.startswith("frame=") or _STATS_FRAME_RE.match(line):
            continue  # ffmpeg's stats line
        if line and line not in seen and not line.startswith("Last message repeated"):
            seen.append(line)
        if len(seen) == limit:
            break
    return "; ".join(seen)

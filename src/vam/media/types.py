"""Plain data shared by the media modules: what a probe found, what a profile asks for, what to encode."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

INTERLACED_FIELD_ORDERS = frozenset({"tt", "bb", "tb", "bt"})  # ffprobe field_order of field-coded video
HDR_TRANSFERS = frozenset({"smpte2084", "arib-std-b67"})  # PQ (HDR10) and HLG


@dataclass(frozen=True)
class MediaInfo:
    """What ffprobe says about a source (after validation)."""

    container: str  # ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2"
    duration: float  # seconds
    size_bytes: int
    bit_rate: int | None  # bits/s of the whole file, when known
    video_codec: str  # e.g. "h264"
    width: int  # coded width, as stored
    height: int  # coded height, as stored
    sample_aspect_ratio: str  # "1:1" when square pixels
    rotation: int  # degrees clockwise the player must rotate: 0, 90, 180 or 270
    display_width: int  # upright display size: rotation and SAR applied
    display_height: int
    fps: float  # average frame rate
    fps_fraction: str  # e.g. "25/1", "30000/1001"
    frame_count: int  # counted or estimated from duration * fps
    pix_fmt: str
    audio_codec: str | None = None
    audio_channels: int | None = None
    audio_sample_rate: int | None = None
    # Frame rate: ``fps`` is the average (frames / duration); ``max_fps`` the stream's base rate (ffprobe
    # r_frame_rate, the rate on whose grid every timestamp falls: the fastest its frames come). A source
    # is ``variable_fps`` when its base rate is clearly above its average (segments at 10, 30 and 60 fps
    # joined: average 33.3, base 60). ``None``/False when unknown (older catalog rows).
    max_fps: float | None = None
    variable_fps: bool = False
    # Scan: ffprobe field_order, "progressive", "tt", "bb", "tb", "bt" or "unknown"; see ``interlaced``.
    field_order: str = "unknown"
    # Colour, as ffprobe names them (None when untagged): color_transfer "bt709", "smpte2084" (PQ, HDR10),
    # "arib-std-b67" (HLG); color_primaries "bt709", "bt2020"; color_space (the matrix) "bt709",
    # "bt2020nc"; color_range "tv" (limited) or "pc" (full). ``bit_depth``: bits per sample of pix_fmt.
    color_transfer: str | None = None
    color_primaries: str | None = None
    color_space: str | None = None
    color_range: str | None = None
    bit_depth: int = 8
    # Stream durations in seconds (``duration`` is the file's: the longest stream); None when unknown.
    video_duration: float | None = None
    audio_duration: float | None = None

    @property
    def interlaced(self) -> bool:
        """The video is field-coded (interlaced or field-ordered): it must be deinterlaced for the web."""
        return self.field_order in INTERLACED_FIELD_ORDERS

    @property
    def hdr(self) -> bool:
        """The video is HDR: a PQ (HDR10, smpte2084) or HLG (arib-std-b67) transfer."""
        return self.color_transfer in HDR_TRANSFERS

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MediaInfo:
        return cls(**data)


@dataclass(frozen=True)
class Rung:
    """One rung of a profile's ladder, as written in the profile YAML."""

    name: str  # e.g. "1080p"
    height: int  # target height of the short side for portrait, of the height for landscape
    codec: str  # "h264" | "hevc" | "av1"
    video_bitrate_kbps: int  # target/max bitrate
    crf: int | None = None  # constant-quality with -maxrate/-bufsize cap when set
    preset: str = "veryfast"
    profile: str | None = None  # codec profile, e.g. "high"
    audio_bitrate_kbps: int = 128
    min_vmaf: float = 0.0  # quality gate thresholds for this rung
    min_ssim: float = 0.0
    min_psnr: float = 0.0
    # per-title profiles (a ``per_title:`` section): the VMAF this rung must reach; the rung's
    # ``height`` is then the largest size it may use and ``video_bitrate_kbps`` its cap
    target_vmaf: float | None = None


@dataclass(frozen=True)
class PerTitle:
    """A profile's ``per_title:`` section: how the analysis samples, encodes and scores the source
    (:mod:`vam.media.per_title`)."""

    heights: tuple[int, ...] = (1080, 720, 540, 360)  # candidate sizes (short side), never upscaled
    crfs: tuple[int, ...] = (18, 24, 30, 36)  # trial CRFs at each size
    samples: int = 3  # segments of the source encoded as trials
    sample_seconds: float = 2.0  # each
    jnd: float = 6.0  # VMAF points of one just-noticeable difference
    min_bitrate_step: float = 0.15  # a rung within a JND of the one above is kept only if it saves this
    n_subsample: int = 5  # VMAF of the trials on every n-th frame (pairs, see vam.media.scoring)

    def to_dict(self) -> dict[str, Any]:
        return {
            "heights": list(self.heights),
            "crfs": list(self.crfs),
            "samples": self.samples,
            "sample_seconds": self.sample_seconds,
            "jnd": self.jnd,
            "min_bitrate_step": self.min_bitrate_step,
            "n_subsample": self.n_subsample,
        }


@dataclass(frozen=True)
class ProfileLimits:
    """The sources a profile accepts: a profile file's ``limits:`` section (every key optional)."""

    max_duration_s: float = 6 * 3600.0
    max_width: int = 8192  # of the upright picture turned to landscape: the long side
    max_height: int = 8192  # ... and the short side
    min_fps: float = 1.0
    max_fps: float = 240.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "max_duration_s": self.max_duration_s,
            "max_width": self.max_width,
            "max_height": self.max_height,
            "min_fps": self.min_fps,
            "max_fps": self.max_fps,
        }


@dataclass(frozen=True)
class Profile:
    """A versioned encoding profile (include/encoding_profiles/NAME.yaml)."""

    name: str
    version: int
    segment_seconds: float  # HLS/DASH segment duration; GOP is aligned with it
    rungs: tuple[Rung, ...]
    audio_codec: str = "aac"
    audio_channels: int = 2
    audio_sample_rate: int = 48000
    vmaf_model: str = "vmaf_v0.6.1"
    vmaf_n_subsample: int = 1  # score every n-th frame
    max_frame_delta: int = 1  # gate: rendition frame count may differ from the expected by at most this
    max_duration_delta: float = 0.25  # gate: seconds
    description: str = ""
    limits: ProfileLimits = field(default_factory=ProfileLimits)  # the sources it accepts
    per_title: PerTitle | None = None  # set: the ladder is chosen per source (vam.media.per_title)
    encode_grouping: str = ""  # "rendition" | "ladder"; empty: the deployment's VAM_ENCODE_GROUPING

    @property
    def key(self) -> str:
        """``name@version``, used in output keys and catalog rows."""
        return f"{self.name}@{self.version}"

    def to_dict(self) -> dict[str, Any]:
        """Everything this profile is, JSON-able, in the layout of a profile file (a version to pin).

        :func:`vam.media.profiles.profile_from_dict` validates it and gives
        back an equal profile.
        """
        data = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "segment_seconds": self.segment_seconds,
            "audio": {
                "codec": self.audio_codec,
                "channels": self.audio_channels,
                "sample_rate": self.audio_sample_rate,
            },
            "limits": self.limits.to_dict(),
            "quality": {
                "vmaf_model": self.vmaf_model,
                "n_subsample": self.vmaf_n_subsample,
                "max_frame_delta": self.max_frame_delta,
                "max_duration_delta": self.max_duration_delta,
            },
            "rungs": [
                {
                    "name": r.name,
                    "height": r.height,
                    "codec": r.codec,
                    "video_bitrate_kbps": r.video_bitrate_kbps,
                    "crf": r.crf,
                    # SVT-AV1 presets are numbers in a profile file; x264/x265 presets are names.
                    "preset": int(r.preset) if r.codec == "av1" and r.preset.isdigit() else r.preset,
                    "profile": r.profile,
                    "audio_bitrate_kbps": r.audio_bitrate_kbps,
                    "min_vmaf": r.min_vmaf,
                    "min_ssim": r.min_ssim,
                    "min_psnr": r.min_psnr,
                    **({"target_vmaf": r.target_vmaf} if r.target_vmaf is not None else {}),
                }
                for r in self.rungs
            ],
        }
        # Only when set, so the pinned definition (and its sha256) of older profiles is unchanged.
        if self.per_title is not None:
            data["per_title"] = self.per_title.to_dict()
        if self.encode_grouping:
            data["encode_grouping"] = self.encode_grouping
        return data


@dataclass(frozen=True)
class RenditionPlan:
    """One rendition to encode for one asset: a rung fitted to the source."""

    name: str  # rung name, or "source" sized when the source is below the lowest rung
    codec: str
    width: int  # output width (even), upright
    height: int  # output height (even), upright
    video_bitrate_kbps: int
    crf: int | None
    preset: str
    profile: str | None
    gop_frames: int  # keyframe interval: segment_seconds * fps, rounded
    fps: float  # the constant output rate (vam.media.ladder.output_fps)
    audio_bitrate_kbps: int
    min_vmaf: float
    min_ssim: float
    min_psnr: float
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RenditionPlan:
        return cls(**data)

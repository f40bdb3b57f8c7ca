"""Encoding profiles: versioned YAML files in the profiles directory (``include/encoding_profiles``).

A profile's ``name`` and ``version`` go into output keys and catalog rows (``Profile.key``), so a
change to what a profile produces must come with a new version. The file is ``NAME.yaml``; its
``name`` must match. Layout::

    name: default
    version: 1
    description: ...
    segment_seconds: 4
    audio: {codec: aac, channels: 2, sample_rate: 48000}
    quality: {vmaf_model: vmaf_v0.6.1, n_subsample: 10, max_frame_delta: 1, max_duration_delta: 0.25}
    limits: {max_duration_s: 21600, max_width: 8192, max_height: 8192, min_fps: 1, max_fps: 240}
    rungs:
      - {name: 1080p, height: 1080, codec: h264, video_bitrate_kbps: 5000, crf: 23, preset: veryfast,
         profile: high, audio_bitrate_kbps: 128, min_vmaf: 60, min_ssim: 0.7, min_psnr: 25}

``limits`` (optional, each key too) bounds the sources the profile accepts: :func:`vam.media.probe.probe`
rejects a longer, larger or faster/slower source (``ValidationLimits.from_profile``). ``max_width``
and ``max_height`` bound the picture turned to landscape (a portrait source's long side is compared
with the larger of the two). :func:`profile_limits` reads them from any profile.

``load_profile("default@1", profiles_dir)`` also checks the version. The directory is always
passed in (the edge reads it from the settings). A profile version pinned for an asset travels as
:meth:`Profile.to_dict` (the same layout, JSON-able) and comes back, validated the same way, with
:func:`profile_from_dict`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from vam.errors import ProfileError, UnknownProfile
from vam.media.types import PerTitle, Profile, ProfileLimits, Rung

CODECS = ("h264", "hevc", "av1")
AUDIO_CODECS = ("aac",)
X26X_PRESETS = (
    "ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow", "placebo",
)  # fmt: skip
_CODEC_PROFILES = {
    "h264": ("baseline", "main", "high"),
    "hevc": ("main", "main10"),
    "av1": ("main",),
}
_CRF_MAX = {"h264": 51, "hevc": 51, "av1": 63}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")

_TOP_KEYS = {
    "name", "version", "description", "segment_seconds", "audio", "quality", "limits", "rungs",
    "per_title", "encode_grouping",
}  # fmt: skip
_PER_TITLE_KEYS = {"heights", "crfs", "samples", "sample_seconds", "jnd", "min_bitrate_step", "n_subsample"}
ENCODE_GROUPINGS = ("rendition", "ladder")
_AUDIO_KEYS = {"codec", "channels", "sample_rate"}
_QUALITY_KEYS = {"vmaf_model", "n_subsample", "max_frame_delta", "max_duration_delta"}
_LIMITS_KEYS = {"max_duration_s", "max_width", "max_height", "min_fps", "max_fps"}
_RUNG_KEYS = {
    "name", "height", "codec", "video_bitrate_kbps", "crf", "preset", "profile",
    "audio_bitrate_kbps", "min_vmaf", "min_ssim", "min_psnr", "target_vmaf",
}  # fmt: skip


DEFAULT_LIMITS = ProfileLimits()


def profile_limits(profile: Profile) -> ProfileLimits:
    """The ``limits:`` of ``profile`` (the defaults where its file sets none)."""
    return profile.limits


def available_profiles(profiles_dir: str | Path) -> list[str]:
    """Names of the profiles in ``profiles_dir``, sorted."""
    directory = Path(profiles_dir)
    if not directory.is_dir():
        return []
    names = {p.stem for p in directory.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file()}
    return sorted(names)


def load_profile(name: str, profiles_dir: str | Path) -> Profile:
    """Load and validate profile ``name`` (or ``name@version``, which must match the file's version)
    from ``profiles_dir``."""
    directory = Path(profiles_dir)
    wanted_version: int | None = None
    if "@" in name:
        name, _, version_text = name.partition("@")
        if not version_text.isdigit():
            raise UnknownProfile(f"profile {name}@{version_text}: the version after '@' must be an integer")
        wanted_version = int(version_text)
    path = _find(directory, name)
    profile = _parse(path)
    if wanted_version is not None and profile.version != wanted_version:
        raise UnknownProfile(
            f"profile {name} is at version {profile.version} in {path}, not {wanted_version}; "
            "older versions are not kept: use the current one or restore the file from version control"
        )
    return profile


def profile_from_dict(data: dict[str, Any]) -> Profile:
    """The profile that :meth:`Profile.to_dict` gave ``data`` for, validated as a profile file is.

    ``profile_from_dict(p.to_dict()) == p`` for every profile :func:`load_profile` returns, so a
    version pinned for an asset (stored as JSON) is rebuilt exactly even after its file changed.
    Raises :class:`ProfileError` naming the key when ``data`` is not a valid profile.
    """
    if isinstance(data, dict):
        label = f"profile {data.get('name', '?')}@{data.get('version', '?')} (from a dict)"
    else:
        label = "profile (from a dict)"
    return _from_data(label, data)


def _find(directory: Path, name: str) -> Path:
    if _NAME_RE.match(name):
        for suffix in (".yaml", ".yml"):
            candidate = directory / f"{name}{suffix}"
            if candidate.is_file():
                return candidate
    available = available_profiles(directory)
    listed = ", ".join(available) if available else "none"
    raise UnknownProfile(f"unknown encoding profile {name!r}; available in {directory}: {listed}")


# -- parsing ---------------------------------------------------------------------------------------


_REQUIRED: Any = object()
_MISSING: Any = object()


class _Reader:
    """Reads typed values out of a mapping, raising ProfileError that names the file and the key."""

    def __init__(self, path: str | Path, data: Any, where: str = "") -> None:
        self.path = path
        self.where = where
        if not isinstance(data, dict):
            raise self.error(where or "(top level)", f"must be a mapping, got {type(data).__name__}")
        self.data: dict[str, Any] = data

    def key(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def error(self, key: str, problem: str) -> ProfileError:
        return ProfileError(f"{self.path}: {key}: {problem}")

    def check_keys(self, allowed: set[str]) -> None:
        unknown = sorted(set(map(str, self.data)) - allowed)
        if unknown:
            raise self.error(self.key(unknown[0]), f"unknown key; allowed here: {', '.join(sorted(allowed))}")

    def _value(self, key: str, default: Any) -> Any:
        """The value at ``key``; ``_MISSING`` when absent and optional; error when absent and required."""
        if key not in self.data or self.data[key] is None:
            if default is _REQUIRED:
                raise self.error(self.key(key), "missing (required)")
            return _MISSING
        return self.data[key]

    def raw(self, key: str, default: Any = _REQUIRED) -> Any:
        value = self._value(key, default)
        return default if value is _MISSING else value

    def string(self, key: str, default: Any = _REQUIRED, *, choices: tuple[str, ...] = ()) -> Any:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.error(self.key(key), f"must be a string, got {value!r}")
        value = str(value)
        if choices and value not in choices:
            raise self.error(self.key(key), f"{value!r} is not one of {', '.join(choices)}")
        return value

    def integer(
        self, key: str, default: Any = _REQUIRED, *, minimum: int = 0, maximum: int | None = None
    ) -> Any:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(self.key(key), f"must be an integer, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum}" if maximum is not None else ""
            raise self.error(self.key(key), f"must be at least {minimum}{upper}, got {value}")
        return value

    def number(
        self, key: str, default: Any = _REQUIRED, *, minimum: float = 0.0, maximum: float | None = None
    ) -> Any:
        value = self._value(key, default)
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(self.key(key), f"must be a number, got {value!r}")
        if value < minimum or (maximum is not None and value > maximum):
            upper = f" and at most {maximum:g}" if maximum is not None else ""
            raise self.error(self.key(key), f"must be at least {minimum:g}{upper}, got {value}")
        return float(value)


def _parse(path: Path) -> Profile:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ProfileError(f"{path}: cannot be read: {exc}") from None
    profile = _from_data(path, data)
    if profile.name != path.stem:
        raise ProfileError(f"{path}: name: {profile.name!r} must match the file name {path.stem!r}")
    return profile


def _from_data(path: str | Path, data: Any) -> Profile:
    """Validate the profile layout in ``data``; errors name ``path`` (a file or a label) and the key."""
    top = _Reader(path, data)
    top.check_keys(_TOP_KEYS)
    name = top.string("name")
    if not _NAME_RE.match(name):
        raise top.error("name", f"{name!r} must be letters, digits and '_.-', not starting with '_.-'")
    version = top.integer("version", minimum=1)
    segment_seconds = top.number("segment_seconds", minimum=0.5, maximum=60.0)

    audio = _Reader(path, top.raw("audio", {}), "audio")
    audio.check_keys(_AUDIO_KEYS)
    quality = _Reader(path, top.raw("quality", {}), "quality")
    quality.check_keys(_QUALITY_KEYS)
    limits = _parse_limits(_Reader(path, top.raw("limits", {}), "limits"))

    raw_rungs = top.raw("rungs")
    if not isinstance(raw_rungs, list) or not raw_rungs:
        raise top.error("rungs", "must be a non-empty list of rungs")
    rungs = [_parse_rung(path, raw, i) for i, raw in enumerate(raw_rungs)]
    seen: set[str] = set()
    for i, rung in enumerate(rungs):
        if rung.name in seen:
            raise top.error(f"rungs[{i}].name", f"duplicate rung name {rung.name!r}")
        seen.add(rung.name)
    rungs.sort(key=lambda r: r.height, reverse=True)  # highest first; stable for equal heights
    per_title = None
    if top.raw("per_title", None) is not None:
        per_title = _parse_per_title(_Reader(path, top.raw("per_title"), "per_title"))
        for i, rung in enumerate(rungs):
            if rung.target_vmaf is None:
                raise top.error(
                    f"rungs[{i}].target_vmaf", "missing: every rung of a per_title profile needs one"
                )
        targets = [r.target_vmaf for r in rungs]
        if targets != sorted(targets, reverse=True):
            raise top.error("rungs", "per_title: target_vmaf must not rise as the rungs' heights fall")

    return Profile(
        name=name,
        version=version,
        segment_seconds=segment_seconds,
        rungs=tuple(rungs),
        audio_codec=audio.string("codec", "aac", choices=AUDIO_CODECS),
        audio_channels=audio.integer("channels", 2, minimum=1, maximum=8),
        audio_sample_rate=audio.integer("sample_rate", 48000, minimum=8000, maximum=192000),
        vmaf_model=quality.string("vmaf_model", "vmaf_v0.6.1"),
        vmaf_n_subsample=quality.integer("n_subsample", 1, minimum=1),
        max_frame_delta=quality.integer("max_frame_delta", 1, minimum=0),
        max_duration_delta=quality.number("max_duration_delta", 0.25, minimum=0.0),
        description=str(top.raw("description", "")).strip(),
        limits=limits,
        per_title=per_title,
        encode_grouping=top.string("encode_grouping", "", choices=ENCODE_GROUPINGS),
    )


def _int_list(r: _Reader, key: str, default: tuple[int, ...], lo: int, hi: int) -> tuple[int, ...]:
    value = r.raw(key, list(default))
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value)
    ):
        raise r.error(r.key(key), f"must be a non-empty list of integers from {lo} to {hi}, got {value!r}")
    return tuple(sorted(set(value)))


def _parse_per_title(r: _Reader) -> PerTitle:
    r.check_keys(_PER_TITLE_KEYS)
    d = PerTitle()
    crfs = _int_list(r, "crfs", d.crfs, 0, 63)
    if len(crfs) < 2:
        raise r.error(r.key("crfs"), "needs at least two CRFs to interpolate between")
    return PerTitle(
        heights=tuple(sorted(_int_list(r, "heights", d.heights, 16, 8192), reverse=True)),
        crfs=crfs,
        samples=r.integer("samples", d.samples, minimum=1, maximum=20),
        sample_seconds=r.number("sample_seconds", d.sample_seconds, minimum=0.5, maximum=30.0),
        jnd=r.number("jnd", d.jnd, minimum=0.5, maximum=30.0),
        min_bitrate_step=r.number("min_bitrate_step", d.min_bitrate_step, minimum=0.0, maximum=0.9),
        n_subsample=r.integer("n_subsample", d.n_subsample, minimum=1, maximum=30),
    )


def _parse_limits(r: _Reader) -> ProfileLimits:
    r.check_keys(_LIMITS_KEYS)
    d = DEFAULT_LIMITS
    limits = ProfileLimits(
        max_duration_s=r.number("max_duration_s", d.max_duration_s, minimum=1.0, maximum=7 * 24 * 3600.0),
        max_width=r.integer("max_width", d.max_width, minimum=16, maximum=65536),
        max_height=r.integer("max_height", d.max_height, minimum=16, maximum=65536),
        min_fps=r.number("min_fps", d.min_fps, minimum=0.0, maximum=1000.0),
        max_fps=r.number("max_fps", d.max_fps, minimum=1.0, maximum=1000.0),
    )
    if limits.min_fps > limits.max_fps:
        raise r.error(r.key("min_fps"), f"{limits.min_fps:g} is above max_fps {limits.max_fps:g}")
    return limits


def _parse_rung(path: str | Path, raw: Any, index: int) -> Rung:
    r = _Reader(path, raw, f"rungs[{index}]")
    r.check_keys(_RUNG_KEYS)
    codec = r.string("codec", choices=CODECS)
    if codec in ("h264", "hevc"):
        preset = r.string("preset", "veryfast", choices=X26X_PRESETS)
    else:  # SVT-AV1: 0 (slowest) .. 13 (fastest)
        preset = str(r.integer("preset", 10, minimum=0, maximum=13))
    profile = r.string("profile", None, choices=_CODEC_PROFILES[codec])
    return Rung(
        name=r.string("name"),
        height=r.integer("height", minimum=16, maximum=8192),
        codec=codec,
        video_bitrate_kbps=r.integer("video_bitrate_kbps", minimum=50),
        crf=r.integer("crf", None, minimum=0, maximum=_CRF_MAX[codec]),
        preset=preset,
        profile=profile,
        audio_bitrate_kbps=r.integer("audio_bitrate_kbps", 128, minimum=8, maximum=512),
        min_vmaf=r.number("min_vmaf", 0.0, maximum=100.0),
        min_ssim=r.number("min_ssim", 0.0, maximum=1.0),
        min_psnr=r.number("min_psnr", 0.0, maximum=100.0),
        target_vmaf=r.number("target_vmaf", None, maximum=100.0),
    )

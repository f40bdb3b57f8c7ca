"""Transformation URLs: parse a Cloudinary-style transformation into a canonical spec, plan it
against a source, and build it with ffmpeg.

Syntax: components separated by ``/``, applied in order; each component is ``key_value`` parameters
separated by ``,``::

    c_fill,g_auto,w_720,h_720/so_2,du_5/l_logo,w_0.2,g_south_east,x_16,y_16,o_60/f_mp4,q_auto

=========  =====================================================================================
``w_``     width in pixels, or a fraction of the current width (``w_0.5``)
``h_``     height in pixels, or a fraction (``h_0.5``)
``ar_``    aspect ratio ``W:H`` (``ar_9:16``) or a decimal (``ar_1.5``)
``c_``     ``scale`` (default: exactly w x h), ``fit`` (inside w x h, aspect kept), ``pad`` (fit,
           then padded to w x h), ``fill`` (cover w x h, then cut by gravity), ``crop`` (cut
           w x h out of the frame, no scaling)
``g_``     gravity: ``center`` (default), ``north``, ``south``, ``east``, ``west``,
           ``north_east``, ``north_west``, ``south_east``, ``south_west``, or ``auto``
           (``fill``/``crop`` only: the window holding the most salient region, see
           :mod:`vam.media.saliency`)
``x_/y_``  offsets in pixels from the gravity's edge (``c_crop``: the top-left corner when no
           ``g_`` is given); for an overlay, from the edge it is placed at
``so_``    start offset, seconds; ``eo_`` end offset, seconds; ``du_`` duration, seconds
           (relative to what earlier components kept)
``l_``     overlay a watermark image uploaded through ``POST /overlays`` (its id); in that
           component ``w_``/``h_`` size the image (a fraction: of the frame's width/height),
           ``g_``/``x_``/``y_`` place it, ``o_`` is its opacity in percent
``f_``     output format: ``mp4`` (H.264/AAC), ``webm`` (VP9/Opus), ``gif``, ``jpg`` (one still
           at the start); the URL's extension when not given
``q_``     ``auto`` (lowest bitrate meeting VMAF 93; ``auto:best`` 95, ``auto:good`` 93,
           ``auto:eco`` 88, ``auto:low`` 80) or a number 1-100
=========  =====================================================================================

Every output dimension is even (H.264/VP9 in 4:2:0 need it). The canonical form sorts each
component's parameters, drops defaults (``c_scale``, ``g_center``, ``o_100``, ``x_0``, ``so_0``...)
and moves ``f_``/``q_`` into a last component, so ``w_320,h_320`` and ``h_320,w_320`` are one
object. Bad parameters raise :class:`TransformError` (a :class:`vam.errors.PermanentFailure`)
naming the parameter and what is allowed.
"""

from __future__ import annotations

import logging
import math
import re
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from vam.errors import PermanentFailure
from vam.media import tools
from vam.media.derive import GRAVITIES, SCALE_FLAGS
from vam.media.encode import deinterlace_filters, encode_checked, tone_map_filter
from vam.media.quality import trim_input_args
from vam.media.types import MediaInfo

log = logging.getLogger(__name__)

FORMATS = ("mp4", "webm", "gif", "jpg")
FORMAT_ALIASES = {"jpeg": "jpg"}
CONTENT_TYPES = {"mp4": "video/mp4", "webm": "video/webm", "gif": "image/gif", "jpg": "image/jpeg"}
CROP_MODES = ("scale", "fit", "pad", "fill", "crop")
QUALITY_TARGETS = {"auto": 93.0, "auto:best": 95.0, "auto:good": 93.0, "auto:eco": 88.0, "auto:low": 80.0}
PARAM_ORDER = ("l", "so", "eo", "du", "ar", "c", "g", "w", "h", "x", "y", "o")
GLOBAL_KEYS = ("f", "q")
ALL_KEYS = (*PARAM_ORDER, *GLOBAL_KEYS)
TRIM_KEYS = ("so", "eo", "du")
GEOMETRY_KEYS = ("ar", "c", "g", "w", "h", "x", "y")
OVERLAY_KEYS = ("l", "w", "h", "g", "x", "y", "o")
DEFAULTS = {"c": "scale", "g": "center", "o": "100", "x": "0", "y": "0", "so": "0"}
MAX_COMPONENTS = 12
MAX_TEXT = 1024
GIF_MAX_FPS = 15
X264_CRF = {"default": 23, "min": 16, "max": 40}
VP9_CRF_OFFSET = 10  # VP9's CRF scale (0-63) sits about this far above x264's for a like quality
AUDIO_KBPS = {"mp4": 128, "webm": 96}
OVERLAY_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_NUMBER_RE = re.compile(r"^\d+(\.\d+)?$")
_SIGNED_INT_RE = re.compile(r"^-?\d{1,5}$")


class TransformError(PermanentFailure, ValueError):
    """A transformation that cannot be made as asked; ``parameter`` names the culprit (e.g. ``w``)."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(f"{parameter}_: {message}" if parameter else message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Limits:
    """What one transformation may ask for: output side, output seconds."""

    max_dimension: int = 2160
    max_seconds: float = 300.0


# -- parsing ---------------------------------------------------------------------------------------


def _number_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _seconds(key: str, raw: str, *, positive: bool = False) -> str:
    if not _NUMBER_RE.match(raw):
        raise TransformError(key, f"{raw!r} is not a number of seconds (e.g. {key}_2.5)")
    value = float(raw)
    if positive and value <= 0:
        raise TransformError(key, f"must be more than 0 seconds, got {raw}")
    return _number_text(value)


def _size(key: str, raw: str) -> str:
    if _NUMBER_RE.match(raw) and "." in raw:
        value = float(raw)
        if not 0 < value <= 1:
            raise TransformError(key, f"a fraction must be in (0, 1], got {raw}; or give whole pixels")
        return _number_text(value)
    if not raw.isdigit() or int(raw) < 1:
        raise TransformError(key, f"{raw!r} is not a whole number of pixels >= 1 or a fraction like 0.5")
    return str(int(raw))


def _aspect(raw: str) -> str:
    if ":" in raw:
        num, _, den = raw.partition(":")
        if not (num.isdigit() and den.isdigit()) or int(num) < 1 or int(den) < 1:
            raise TransformError("ar", f"{raw!r} is not W:H of two positive integers (e.g. ar_9:16)")
        ratio = Fraction(int(num), int(den))
    elif _NUMBER_RE.match(raw) and float(raw) > 0:
        ratio = Fraction(raw).limit_denominator(1000)
    else:
        raise TransformError("ar", f"{raw!r} is not an aspect ratio; use W:H (ar_16:9) or a decimal (ar_1.5)")
    if not Fraction(1, 20) <= ratio <= 20:
        raise TransformError("ar", f"{raw} is outside 1:20 .. 20:1")
    return f"{ratio.numerator}:{ratio.denominator}"


def _value(key: str, raw: str) -> str:
    """The canonical text of one parameter's value (validated)."""
    if raw == "":
        raise TransformError(key, "has no value")
    if key in ("w", "h"):
        return _size(key, raw)
    if key == "ar":
        return _aspect(raw)
    if key == "c":
        if raw not in CROP_MODES:
            raise TransformError("c", f"{raw!r} is not a crop mode; use one of {', '.join(CROP_MODES)}")
        return raw
    if key == "g":
        if raw != "auto" and raw not in GRAVITIES:
            raise TransformError("g", f"{raw!r} is not a gravity; use auto or one of {', '.join(GRAVITIES)}")
        return raw
    if key in ("x", "y"):
        if not _SIGNED_INT_RE.match(raw):
            raise TransformError(key, f"{raw!r} is not a whole number of pixels (e.g. {key}_16)")
        return str(int(raw))
    if key == "o":
        if not raw.isdigit() or not 0 <= int(raw) <= 100:
            raise TransformError("o", f"{raw!r} is not an opacity from 0 to 100 (percent)")
        return str(int(raw))
    if key in ("so", "eo"):
        return _seconds(key, raw)
    if key == "du":
        return _seconds(key, raw, positive=True)
    if key == "l":
        if not OVERLAY_ID_RE.match(raw):
            raise TransformError(
                "l", f"{raw!r} is not an overlay id (letters, digits, - and _; upload one via POST /overlays)"
            )
        return raw
    if key == "f":
        fmt = FORMAT_ALIASES.get(raw, raw)
        if fmt not in FORMATS:
            raise TransformError("f", f"{raw!r} is not an output format; use one of {', '.join(FORMATS)}")
        return fmt
    if key == "q":
        if raw in QUALITY_TARGETS:
            return raw
        if raw.isdigit() and 1 <= int(raw) <= 100:
            return str(int(raw))
        raise TransformError(
            "q", f"{raw!r} is not a quality; use auto, {', '.join(list(QUALITY_TARGETS)[1:])} or 1-100"
        )
    raise TransformError(key, f"unknown parameter; allowed: {', '.join(k + '_' for k in ALL_KEYS)}")


@dataclass(frozen=True)
class TransformSpec:
    """A parsed, validated transformation: its components (each a dict of canonical values, in
    order), the output format and quality, and the canonical text."""

    components: tuple[dict[str, str], ...]
    fmt: str
    quality: str | None
    canonical: str = field(default="")

    @property
    def content_type(self) -> str:
        return CONTENT_TYPES[self.fmt]

    def overlay_ids(self) -> list[str]:
        return [c["l"] for c in self.components if "l" in c]


def _parse_component(text: str, index: int) -> dict[str, str]:
    params: dict[str, str] = {}
    for item in text.split(","):
        key, sep, raw = item.partition("_")
        if not sep or not key:
            raise TransformError(
                key or item, f"{item!r} (component {index + 1}) is not key_value, e.g. w_320 or c_fill"
            )
        if key not in ALL_KEYS:
            raise TransformError(key, f"unknown parameter; allowed: {', '.join(k + '_' for k in ALL_KEYS)}")
        if key in params:
            raise TransformError(key, f"given twice in component {index + 1} ({text!r})")
        params[key] = _value(key, raw)
    return params


def _check_component(params: dict[str, str], index: int) -> None:
    keys = set(params) - set(GLOBAL_KEYS)
    where = f"component {index + 1}"
    if "l" in keys:
        extra = sorted(keys - set(OVERLAY_KEYS))
        if extra:
            raise TransformError(
                extra[0], f"cannot be combined with l_ in one {where}: put it in its own component"
            )
        if params.get("g") == "auto":
            raise TransformError("g", "g_auto places a crop, not an overlay; use a compass gravity for l_")
        return
    if "o" in keys:
        raise TransformError("o", f"opacity applies to an overlay: put it with l_ ({where})")
    if "eo" in keys and "du" in keys:
        raise TransformError("du", f"give eo_ or du_, not both ({where})")
    if "eo" in keys and float(params["eo"]) <= float(params.get("so", "0")):
        raise TransformError("eo", f"end {params['eo']} s is not after start {params.get('so', '0')} s")
    geometry = keys & set(GEOMETRY_KEYS)
    if geometry and not keys & {"w", "h", "ar"}:
        raise TransformError(sorted(geometry)[0], f"needs w_, h_ or ar_ in the same {where}")
    if {"w", "h", "ar"} <= keys:
        raise TransformError("ar", f"give at most two of w_, h_ and ar_ ({where})")
    mode = params.get("c", "scale")
    if params.get("g") == "auto" and mode not in ("fill", "crop"):
        raise TransformError("g", "g_auto chooses what to keep of a cut: use it with c_fill or c_crop")
    if keys & {"x", "y"} and mode not in ("fill", "crop", "pad"):
        raise TransformError(
            sorted(keys & {"x", "y"})[0], "offsets apply to c_crop, c_fill, c_pad and l_ only"
        )


def canonical_text(components: tuple[dict[str, str], ...], fmt: str, quality: str | None) -> str:
    parts = []
    for params in components:
        keep = {k: v for k, v in params.items() if DEFAULTS.get(k) != v or k == "l"}
        if keep:
            parts.append(",".join(f"{k}_{keep[k]}" for k in PARAM_ORDER if k in keep))
    tail = f"f_{fmt}" + (f",q_{quality}" if quality else "")
    return "/".join([*parts, tail])


def parse(text: str, ext: str | None = None) -> TransformSpec:
    """Parse ``text`` (``w_320,h_320/so_1``) for an output named ``*.ext``: a :class:`TransformSpec`.

    ``f_`` and the extension must agree when both are given; with neither, the output is MP4.
    """
    if not isinstance(text, str) or not text.strip("/"):
        raise TransformError("", "the transformation is empty; e.g. c_fill,w_320,h_320")
    if len(text) > MAX_TEXT:
        raise TransformError("", f"the transformation is longer than {MAX_TEXT} characters")
    raw_components = [c for c in text.strip("/").split("/") if c]
    if len(raw_components) > MAX_COMPONENTS:
        raise TransformError("", f"{len(raw_components)} components; at most {MAX_COMPONENTS} are allowed")
    components: list[dict[str, str]] = []
    found: dict[str, str] = {}
    for index, raw in enumerate(raw_components):
        params = _parse_component(raw, index)
        for key in GLOBAL_KEYS:
            if key in params:
                if key in found:
                    raise TransformError(key, "given twice: give the output's format and quality once")
                found[key] = params.pop(key)
        _check_component(params, index)
        if params:
            components.append(params)
    fmt = found.get("f")
    if ext is not None:
        ext_fmt = FORMAT_ALIASES.get(ext.lower(), ext.lower())
        if ext_fmt not in FORMATS:
            raise TransformError(
                "f", f"extension .{ext} is not an output format; use one of {', '.join(FORMATS)}"
            )
        if fmt is not None and fmt != ext_fmt:
            raise TransformError("f", f"f_{fmt} does not match the extension .{ext}; make them agree")
        fmt = ext_fmt
    fmt = fmt or "mp4"
    quality = found.get("q")
    if quality in QUALITY_TARGETS and fmt not in ("mp4", "webm"):
        raise TransformError("q", f"q_{quality} searches a video bitrate: use it with f_mp4 or f_webm")
    comps = tuple(components)
    return TransformSpec(comps, fmt, quality, canonical_text(comps, fmt, quality))


# -- planning --------------------------------------------------------------------------------------


@dataclass
class _Frame:
    """The picture at a point of the chain: its size and the affine map from source display
    coordinates (``cur = a * src + b`` per axis), for g_auto."""

    w: int
    h: int
    ax: float = 1.0
    bx: float = 0.0
    ay: float = 1.0
    by: float = 0.0

    def scaled(self, w: int, h: int) -> _Frame:
        sx, sy = w / self.w, h / self.h
        return _Frame(w, h, self.ax * sx, self.bx * sx, self.ay * sy, self.by * sy)

    def cut(self, w: int, h: int, x: int, y: int) -> _Frame:
        return _Frame(w, h, self.ax, self.bx - x, self.ay, self.by - y)

    def padded(self, w: int, h: int, x: int, y: int) -> _Frame:
        return _Frame(w, h, self.ax, self.bx + x, self.ay, self.by + y)


@dataclass
class TransformPlan:
    """What :func:`build` runs: trim, the filter graph, the output's size, format and encoder."""

    spec: TransformSpec
    start: float
    duration: float
    width: int
    height: int
    graph: str  # -filter_complex, input [0:v] (and [N:v] overlays) to [vout]
    overlays: list[str]  # overlay ids, input 1.. in this order
    audio: bool
    fps: float
    steps: list[dict[str, Any]] = field(default_factory=list)  # what each component did (tests, logs)

    @property
    def pixel_seconds(self) -> float:
        """Work estimate: output pixels x frames (the inline/DAG decision)."""
        return self.width * self.height * max(self.duration, 1.0 / max(self.fps, 1.0)) * self.fps

    def summary(self) -> dict[str, Any]:
        return {
            "canonical": self.spec.canonical,
            "format": self.spec.fmt,
            "quality": self.spec.quality,
            "start": round(self.start, 6),
            "duration": round(self.duration, 6),
            "width": self.width,
            "height": self.height,
            "overlays": list(self.overlays),
            "steps": self.steps,
        }


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


def _even_down(value: float) -> int:
    v = int(value)
    return max(2, v - v % 2)


def _resolve_size(raw: str | None, current: int) -> int | None:
    if raw is None:
        return None
    return round(float(raw) * current) if "." in raw else int(raw)


def _place(free: int, anchor: int, offset: int) -> int:
    """Position along one axis: 0 = from the start edge, 1 = centred, 2 = from the end edge."""
    if anchor == 0:
        pos = offset
    elif anchor == 1:
        pos = free // 2 + offset
    else:
        pos = free - offset
    return min(max(pos, 0), max(free, 0))


def _target(params: dict[str, str], frame: _Frame, mode: str, limits: Limits) -> tuple[int, int]:
    w = _resolve_size(params.get("w"), frame.w)
    h = _resolve_size(params.get("h"), frame.h)
    ar = Fraction(*map(int, params["ar"].split(":"))) if "ar" in params else None
    if w is not None and h is None:
        h = round(w / ar) if ar else (frame.h if mode == "crop" else round(w * frame.h / frame.w))
    elif h is not None and w is None:
        w = round(h * ar) if ar else (frame.w if mode == "crop" else round(h * frame.w / frame.h))
    elif w is None and h is None and ar is not None:
        if mode == "pad":  # the smallest frame of that aspect holding the picture
            if frame.w * ar.denominator >= frame.h * ar.numerator:
                w, h = frame.w, round(frame.w / ar)
            else:
                w, h = round(frame.h * ar), frame.h
        elif mode == "scale":
            w, h = frame.w, round(frame.w / ar)
        else:  # fill, crop, fit: the largest cut of that aspect
            if frame.w * ar.denominator >= frame.h * ar.numerator:
                w, h = round(frame.h * ar), frame.h
            else:
                w, h = frame.w, round(frame.w / ar)
    if w is None or h is None:  # _check_component guarantees one of w, h, ar
        raise TransformError("w", "needs w_, h_ or ar_")
    w, h = _even(w), _even(h)
    for key, value in (("w", w), ("h", h)):
        if value > limits.max_dimension:
            name = key if key in params else ("ar" if "ar" in params else ("h" if key == "w" else "w"))
            raise TransformError(
                name,
                f"the output would be {value} pixels {'wide' if key == 'w' else 'high'}; "
                f"the limit is {limits.max_dimension}",
            )
    return w, h


def _auto_position(frame: _Frame, cw: int, ch: int, saliency: Callable[[], Any] | None) -> tuple[int, int]:
    from vam.media.saliency import best_window

    if saliency is None:
        return (frame.w - cw) // 2, (frame.h - ch) // 2
    sal, display = saliency()
    return best_window(sal, (frame.ax, frame.bx, frame.ay, frame.by), frame.w, frame.h, cw, ch, display)


def _geometry(
    params: dict[str, str],
    frame: _Frame,
    chain: list[str],
    limits: Limits,
    saliency: Callable[[], Any] | None,
) -> tuple[_Frame, dict[str, Any]]:
    mode = params.get("c", "scale")
    tw, th = _target(params, frame, mode, limits)
    top_left = mode == "crop" and bool({"x", "y"} & params.keys())
    gravity = params.get("g", "north_west" if top_left else "center")
    ox, oy = int(params.get("x", 0)), int(params.get("y", 0))
    step: dict[str, Any] = {"op": mode, "in": [frame.w, frame.h], "gravity": gravity}
    if mode == "scale":
        chain += [f"scale=w={tw}:h={th}:flags={SCALE_FLAGS}", "setsar=1"]
        frame = frame.scaled(tw, th)
    elif mode in ("fit", "pad"):
        s = min(tw / frame.w, th / frame.h)
        fw, fh = min(_even(frame.w * s), tw), min(_even(frame.h * s), th)
        chain += [f"scale=w={fw}:h={fh}:flags={SCALE_FLAGS}", "setsar=1"]
        frame = frame.scaled(fw, fh)
        step["scaled"] = [fw, fh]
        if mode == "pad":
            hx, vy = GRAVITIES[gravity]
            px, py = _place(tw - fw, hx, ox), _place(th - fh, vy, oy)
            chain.append(f"pad=w={tw}:h={th}:x={px}:y={py}:color=black")
            frame = frame.padded(tw, th, px, py)
            step["at"] = [px, py]
    else:  # fill: cover, then cut; crop: cut only
        if mode == "fill":
            s = max(tw / frame.w, th / frame.h)
            sw, sh = max(_even(frame.w * s), tw), max(_even(frame.h * s), th)
            if (sw, sh) != (frame.w, frame.h):
                chain += [f"scale=w={sw}:h={sh}:flags={SCALE_FLAGS}", "setsar=1"]
                frame = frame.scaled(sw, sh)
            step["scaled"] = [sw, sh]
        elif tw > frame.w or th > frame.h:
            key = "w" if tw > frame.w else "h"
            raise TransformError(
                key if key in params else "ar",
                f"c_crop cuts {tw}x{th} out of a {frame.w}x{frame.h} frame without scaling; "
                "ask for a smaller cut or use c_fill",
            )
        if gravity == "auto":
            x, y = _auto_position(frame, tw, th, saliency)
        else:
            hx, vy = GRAVITIES[gravity]
            x, y = _place(frame.w - tw, hx, ox), _place(frame.h - th, vy, oy)
        chain.append(f"crop=w={tw}:h={th}:x={x}:y={y}:exact=1")
        frame = frame.cut(tw, th, x, y)
        step["box"] = {"w": tw, "h": th, "x": x, "y": y}
    step["out"] = [frame.w, frame.h]
    return frame, step


def _overlay_size(params: dict[str, str], frame: _Frame, size: tuple[int, int]) -> tuple[int, int]:
    iw, ih = size
    w = _resolve_size(params.get("w"), frame.w)
    h = _resolve_size(params.get("h"), frame.h)
    if w is None and h is None:
        w, h = iw, ih
    elif h is None:
        h = round(w * ih / iw)  # type: ignore[operator]
    elif w is None:
        w = round(h * iw / ih)
    if w > 4 * frame.w or h > 4 * frame.h:  # type: ignore[operator]
        raise TransformError(
            "w" if "w" in params else "h", f"the overlay would be {w}x{h}, over 4x the frame"
        )
    return max(1, int(w)), max(1, int(h))  # type: ignore[arg-type]


def plan(
    spec: TransformSpec,
    info: MediaInfo,
    *,
    overlay_sizes: dict[str, tuple[int, int]] | None = None,
    limits: Limits | None = None,
    saliency: Callable[[float, float], Any] | None = None,
) -> TransformPlan:
    """Plan ``spec`` on a source described by ``info``: trims composed, the filter graph, the
    output's size. ``overlay_sizes`` maps each ``l_`` id to its image's (width, height);
    ``saliency(start, duration)`` returns the source's saliency map for ``g_auto``
    (:func:`vam.media.saliency.saliency_map`), centred cuts without it. Raises
    :class:`TransformError` naming the parameter that cannot be satisfied."""
    limits = limits or Limits()
    overlay_sizes = overlay_sizes or {}
    t0, t1 = 0.0, float(info.duration)
    for params in spec.components:  # time commutes with space: all trims compose into one cut
        so, eo, du = (float(params[k]) if k in params else None for k in TRIM_KEYS)
        if so is not None:
            if t0 + so >= t1:
                raise TransformError("so", f"starts at {so:g} s, past the end ({t1 - t0:.3f} s are left)")
            t0 += so
        if eo is not None:
            t1 = min(t1, t0 - (so or 0.0) + eo)
        if du is not None:
            t1 = min(t1, t0 + du)
    duration = t1 - t0
    fps = float(info.fps or 25.0)
    if spec.fmt == "jpg":
        duration = 1.0 / fps
    elif duration > limits.max_seconds:
        raise TransformError(
            "du",
            f"the output would last {duration:.1f} s; the limit is {limits.max_seconds:g} s: add du_ or eo_",
        )
    base_w, base_h = _even_down(info.display_width), _even_down(info.display_height)
    chain = [*deinterlace_filters(info), f"scale=w={base_w}:h={base_h}:flags={SCALE_FLAGS}", "setsar=1"]
    if info.hdr:
        chain.append(tone_map_filter(info))
    frame = _Frame(base_w, base_h, base_w / info.display_width, 0.0, base_h / info.display_height, 0.0)
    cached: list[Any] = []

    def sal() -> Any:
        if not cached and saliency is not None:
            cached.append(saliency(t0, duration))
        return (cached[0] if cached else None), (float(info.display_width), float(info.display_height))

    graph: list[str] = []
    label, overlays, steps = "0:v", [], []
    for params in spec.components:
        if "l" in params:
            oid = params["l"]
            if oid not in overlay_sizes:
                raise TransformError("l", f"no overlay {oid!r}: upload it first (POST /overlays)")
            ow, oh = _overlay_size(params, frame, overlay_sizes[oid])
            hx, vy = GRAVITIES[params.get("g", "center")]
            x = _place(frame.w - ow, hx, int(params.get("x", 0))) if ow <= frame.w else (frame.w - ow) // 2
            y = _place(frame.h - oh, vy, int(params.get("y", 0))) if oh <= frame.h else (frame.h - oh) // 2
            alpha = int(params.get("o", 100)) / 100
            overlays.append(oid)
            n = len(overlays)
            graph.append(f"[{label}]{','.join(chain) or 'null'}[b{n}]")
            graph.append(
                f"[{n}:v]format=rgba,scale=w={ow}:h={oh}:flags={SCALE_FLAGS},"
                f"colorchannelmixer=aa={alpha:.4f}[l{n}]"
            )
            graph.append(f"[b{n}][l{n}]overlay=x={x}:y={y}:format=auto:eof_action=repeat[o{n}]")
            label, chain = f"o{n}", []
            steps.append(
                {"op": "overlay", "id": oid, "box": {"w": ow, "h": oh, "x": x, "y": y}, "opacity": alpha}
            )
        elif params.keys() & {"w", "h", "ar"}:
            saliency_fn = sal if saliency is not None else None
            frame, step = _geometry(params, frame, chain, limits, saliency_fn)
            steps.append(step)
    if spec.fmt == "gif":
        graph.append(f"[{label}]{','.join([*chain, f'fps={min(fps, GIF_MAX_FPS):g}'])},split[g1][g2]")
        graph += ["[g1]palettegen=stats_mode=diff[pal]", "[g2][pal]paletteuse[vout]"]
    else:
        chain.append("format=yuvj420p" if spec.fmt == "jpg" else "format=yuv420p")
        graph.append(f"[{label}]{','.join(chain)}[vout]")
    return TransformPlan(
        spec=spec,
        start=t0,
        duration=duration,
        width=frame.w,
        height=frame.h,
        graph=";".join(graph),
        overlays=overlays,
        audio=bool(info.audio_codec) and spec.fmt in ("mp4", "webm"),
        fps=fps,
        steps=steps,
    )


# -- building --------------------------------------------------------------------------------------


def _crf(spec: TransformSpec) -> int:
    q = spec.quality
    if q is None or q in QUALITY_TARGETS:
        return X264_CRF["default"]
    return round(18 + (100 - int(q)) * 0.3)


def build_argv(
    source: Path,
    out: Path,
    tplan: TransformPlan,
    overlay_paths: dict[str, Path],
    *,
    crf: int | None = None,
    audio: bool | None = None,
    lossless: bool = False,
    threads: int = 0,
) -> list[str]:
    """The one ffmpeg command that makes ``tplan`` of ``source`` into ``out``."""
    spec = tplan.spec
    argv = tools.ffmpeg_argv(threads=threads)
    still = spec.fmt == "jpg"
    argv += trim_input_args(tplan.start, None if still else tplan.duration)
    argv += ["-i", str(Path(source).absolute())]
    for oid in tplan.overlays:
        argv += ["-i", str(Path(overlay_paths[oid]).absolute())]
    argv += ["-filter_complex", tplan.graph, "-map", "[vout]"]
    crf = _crf(spec) if crf is None else crf
    if lossless:
        argv += ["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p"]
    elif spec.fmt == "mp4":
        argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    elif spec.fmt == "webm":
        argv += ["-c:v", "libvpx-vp9", "-crf", str(min(63, crf + VP9_CRF_OFFSET)), "-b:v", "0"]
        argv += ["-deadline", "good", "-cpu-used", "5", "-row-mt", "1", "-pix_fmt", "yuv420p"]
    elif spec.fmt == "gif":
        argv += ["-c:v", "gif", "-loop", "0"]
    else:
        qv = 3 if spec.quality is None else max(2, min(31, round(2 + (100 - int(spec.quality)) * 0.29)))
        argv += ["-frames:v", "1", "-c:v", "mjpeg", "-q:v", str(qv)]
    if threads > 0:
        argv += ["-threads", str(threads)]
    with_audio = tplan.audio if audio is None else audio
    if with_audio and not lossless:
        codec = "aac" if spec.fmt == "mp4" else "libopus"
        argv += ["-map", "0:a:0", "-c:a", codec, "-b:a", f"{AUDIO_KBPS[spec.fmt]}k"]
    else:
        argv += ["-an"]
    argv += ["-sn", "-dn", "-map_chapters", "-1", "-map_metadata", "-1"]
    if lossless:
        return [*argv, "-f", "matroska", str(out)]
    muxer = {"mp4": ["-movflags", "+faststart", "-f", "mp4"], "webm": ["-f", "webm"], "gif": ["-f", "gif"]}
    return [*argv, *muxer.get(spec.fmt, ["-f", "image2", "-update", "1"]), str(out)]


def _search_crf(
    source: Path, tplan: TransformPlan, overlay_paths: dict[str, Path], work: Path, threads: int
) -> dict[str, Any]:
    """q_auto: the highest CRF (lowest bitrate) whose VMAF against the lossless transformed
    reference meets the target, by bisection over the CRF range (at most 4 encodes + VMAF)."""
    from vam.media.probe import probe
    from vam.media.quality import measure_quality

    target = QUALITY_TARGETS[tplan.spec.quality or "auto"]
    reference = work / "reference.mkv"
    tools.run(build_argv(source, reference, tplan, overlay_paths, lossless=True, threads=threads))
    ref_info = probe(reference)
    lo, hi = X264_CRF["min"], X264_CRF["max"]
    best, probes = lo, []
    while lo <= hi and len(probes) < 4:
        crf = (lo + hi + 1) // 2
        candidate = work / f"crf{crf}.{tplan.spec.fmt}"
        tools.run(build_argv(source, candidate, tplan, overlay_paths, crf=crf, audio=False, threads=threads))
        vmaf = measure_quality(reference, candidate, ref_info, n_subsample=2, threads=threads)["vmaf"]["mean"]
        probes.append({"crf": crf, "vmaf": round(vmaf, 2), "bytes": candidate.stat().st_size})
        if vmaf >= target:
            best, lo = crf, crf + 1
        else:
            hi = crf - 1
    passing = [p for p in probes if p["crf"] == best]
    return {
        "target_vmaf": target,
        "crf": best,
        "vmaf": passing[0]["vmaf"] if passing else None,
        "probes": probes,
    }


def build(
    source: Path,
    out: Path,
    tplan: TransformPlan,
    overlay_paths: dict[str, Path] | None = None,
    *,
    threads: int = 0,
) -> dict[str, Any]:
    """Make ``tplan`` of ``source`` into ``out`` (appears only complete and checked: the planned
    size, upright). Returns what the output is (:func:`vam.media.encode.describe_output` fields)
    plus ``build_seconds`` and, for ``q_auto``, ``quality`` (the CRF search)."""
    overlay_paths = overlay_paths or {}
    missing = [o for o in tplan.overlays if o not in overlay_paths]
    if missing:
        raise TransformError("l", f"no image for overlay {missing[0]!r}")
    started = time.monotonic()
    quality = None
    crf = None
    if tplan.spec.quality in QUALITY_TARGETS:
        work = Path(
            tempfile.mkdtemp(prefix="vam-qauto-", dir=Path(out).parent if Path(out).parent.exists() else None)
        )
        try:
            quality = _search_crf(source, tplan, overlay_paths, work, threads)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        crf = quality["crf"]
    made = encode_checked(
        lambda tmp: build_argv(source, tmp, tplan, overlay_paths, crf=crf, threads=threads),
        out,
        what=f"transformation {tplan.spec.canonical}",
        size=(tplan.width, tplan.height),
    )
    made["build_seconds"] = round(time.monotonic() - started, 3)
    if quality is not None:
        made["quality"] = quality
    log.info(
        "transformation %s of %s: %dx%d %s, %.2f s in %.1f s",
        tplan.spec.canonical, Path(source).name, made["width"], made["height"], tplan.spec.fmt,
        made["duration"] or 0.0, made["build_seconds"],
    )  # fmt: skip
    return made


def check_duration(made: dict[str, Any], tplan: TransformPlan) -> None:
    """A video output must last the planned seconds (within a frame and a bit): never a cut-short file."""
    if tplan.spec.fmt == "jpg":
        return
    slack = max(0.25, 2.0 / max(tplan.fps, 1.0))
    if not math.isclose(float(made.get("duration") or 0.0), tplan.duration, abs_tol=slack):
        raise PermanentFailure(
            f"transformation {tplan.spec.canonical}: built {made.get('duration')} s, planned "
            f"{tplan.duration:.3f} s; see the ffmpeg log"
        )

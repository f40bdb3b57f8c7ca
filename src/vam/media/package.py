"""Package encoded renditions for streaming, HLS and DASH, without re-encoding (``-c copy``).

HLS (fMP4, VOD): one media playlist per rendition, each variant carrying its own audio muxed
next to the video in the same fMP4 segments. That is the simplest correct choice: every variant
plays on its own, and each rung keeps the audio bitrate it was encoded with (the cost is one
copy of the audio per rung, small next to the video). The master playlist is written here rather
than by ffmpeg, because ffmpeg leaves out FRAME-RATE and the CODECS of HEVC: BANDWIDTH is the
peak segment bit rate as RFC 8216 defines it, AVERAGE-BANDWIDTH the mean, CODECS comes from
each rendition's decoder configuration record (avcC / hvcC / av1C), and an HDR rendition is declared
VIDEO-RANGE=PQ or HLG. Declared durations are the renditions' own: the encode pads video shorter
than its audio (:mod:`vam.media.encode`), so the manifests last as long as the audio.

DASH: one adaptation set per video codec (a player switches only inside one) and one audio
adaptation set holding each distinct audio track once. Rungs whose widths were rounded to even
(426x240 next to 640x360) are declared at the set's aspect ratio, which the dash muxer requires.

Layout under ``out_dir``: ``hls/master.m3u8``, ``hls/{name}/playlist.m3u8``, ``init.mp4``,
``seg_00001.m4s``...; ``dash/manifest.mpd`` with its ``init-stream*.m4s`` and
``chunk-stream*-*.m4s``. Both trees are built in a temp directory and moved in at the end.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import shutil
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any

from vam.errors import VamError
from vam.media import tools
from vam.media.probe import describe

log = logging.getLogger(__name__)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_MANIFEST_SUFFIXES = (".m3u8", ".mpd")
_AAC_OBJECT_TYPES = {"LC": 2, "HE-AAC": 5, "HE-AACv2": 29, "LD": 23, "Main": 1}
_AUDIO_CODECS = {"mp3": "mp4a.40.34", "ac3": "ac-3", "eac3": "ec-3", "opus": "Opus", "flac": "fLaC"}
SUBTITLES_GROUP = "subs"
_VIDEO_RANGES = {"smpte2084": "PQ", "arib-std-b67": "HLG"}  # HLS VIDEO-RANGE by transfer; else SDR
_ASPECT_TOLERANCE = 0.01  # rungs within 1% of the set's display aspect ratio share its adaptation set


# ---------------------------------------------------------------------------------------------
# What each rendition is


def _extradata(stream: dict[str, Any]) -> bytes:
    """The bytes of ffprobe's ``-show_data`` hexdump of a stream's extradata."""
    out = bytearray()
    for line in (stream.get("extradata") or "").splitlines():
        _, sep, rest = line.partition(": ")
        if not sep:
            continue
        out += bytes.fromhex("".join(rest[:40].split()))
    return bytes(out)


def _reverse_bits32(value: int) -> int:
    return int(f"{value:032b}"[::-1], 2)


def video_codecs_string(codec: str, extradata: bytes) -> str | None:
    """The RFC 6381 CODECS value of an MP4 video track, from its decoder configuration record."""
    data = extradata
    if codec == "h264" and len(data) >= 4 and data[0] == 1:  # avcC
        return f"avc1.{data[1]:02x}{data[2]:02x}{data[3]:02x}"
    if codec == "hevc" and len(data) >= 13 and data[0] == 1:  # hvcC
        space = "ABC"[(data[1] >> 6) - 1] if data[1] >> 6 else ""
        tier = "H" if data[1] & 0x20 else "L"
        profile_idc = data[1] & 0x1F
        compat = _reverse_bits32(int.from_bytes(data[2:6], "big"))
        constraints = list(data[6:12])
        while constraints and constraints[-1] == 0:
            constraints.pop()
        parts = [f"hvc1.{space}{profile_idc}", f"{compat:X}", f"{tier}{data[12]}"]
        parts += [f"{b:02X}" for b in constraints]
        return ".".join(parts)
    if codec == "av1" and len(data) >= 3 and data[0] & 0x7F == 1:  # av1C
        profile = data[1] >> 5
        level = data[1] & 0x1F
        tier = "H" if data[2] & 0x80 else "M"
        high_bitdepth, twelve_bit = bool(data[2] & 0x40), bool(data[2] & 0x20)
        depth = 12 if twelve_bit else 10 if high_bitdepth else 8
        return f"av01.{profile}.{level:02d}{tier}.{depth:02d}"
    return None


def audio_codecs_string(stream: dict[str, Any]) -> str | None:
    codec = stream.get("codec_name")
    if codec == "aac":
        return f"mp4a.40.{_AAC_OBJECT_TYPES.get(stream.get('profile') or 'LC', 2)}"
    return _AUDIO_CODECS.get(codec or "")


def _describe(path: Path) -> dict[str, Any]:
    """What packaging needs of a rendition, from :func:`vam.media.probe.describe` (with the extradata)."""
    described = describe(path, show_data=True)
    video, audio = described.video, described.audio
    if video is None:
        raise VamError(f"{path} has no video stream: only encoded renditions can be packaged")
    rate = video.get("avg_frame_rate") or video.get("r_frame_rate") or "0/1"
    num, _, den = rate.partition("/")
    fps = float(Fraction(int(num), int(den or 1))) if int(den or 1) else 0.0
    sar_num, _, sar_den = (video.get("sample_aspect_ratio") or "1:1").partition(":")
    sar = (
        Fraction(int(sar_num), int(sar_den))
        if sar_num.isdigit() and int(sar_num) and sar_den.isdigit()
        else 1
    )
    return {
        "codec": video.get("codec_name"),
        "width": int(video["width"]),
        "height": int(video["height"]),
        "fps": fps,
        "duration": float(video.get("duration") or 0.0),
        "dar": Fraction(int(video["width"]), int(video["height"])) * sar,
        "video_codecs": video_codecs_string(video.get("codec_name") or "", _extradata(video)),
        "audio": audio,
        "audio_codecs": audio_codecs_string(audio) if audio else None,
        "video_range": _VIDEO_RANGES.get(video.get("color_transfer") or "", "SDR"),
    }


def _check_input(renditions: list[tuple[Path, dict]]) -> None:
    if not renditions:
        raise VamError("nothing to package: the rendition list is empty")
    names = [meta["name"] for _, meta in renditions]
    for name in names:
        if not _NAME_RE.match(str(name)):
            raise VamError(f"rendition name {name!r} cannot name a directory: use letters, digits, '._-'")
    if len(set(names)) != len(names):
        raise VamError(f"rendition names must be unique, got {names}")
    for path, _ in renditions:
        if not Path(path).is_file():
            raise VamError(f"rendition file {path} does not exist; encode it before packaging")


# ---------------------------------------------------------------------------------------------
# HLS


def _input_args(renditions: list[tuple[Path, dict]]) -> list[str]:
    argv = tools.ffmpeg_argv()
    for path, _ in renditions:
        argv += ["-i", str(Path(path).absolute())]
    return argv


def hls_argv(
    renditions: list[tuple[Path, dict]],
    described: list[dict[str, Any]],
    hls_dir: Path,
    segment_seconds: float,
) -> list[str]:
    """One ffmpeg command writing every variant's media playlist (and ffmpeg's own master)."""
    argv = _input_args(renditions)
    stream_map = []
    n_audio = 0
    for i, ((_, meta), desc) in enumerate(zip(renditions, described, strict=True)):
        argv += ["-map", f"{i}:v:0"]
        entry = f"v:{i}"
        if desc["audio"] is not None:
            argv += ["-map", f"{i}:a:0"]
            entry += f",a:{n_audio}"
            n_audio += 1
        stream_map.append(f"{entry},name:{meta['name']}")
    return argv + [
        "-c", "copy",
        "-f", "hls",
        "-hls_segment_type", "fmp4",
        "-hls_playlist_type", "vod",
        "-hls_list_size", "0",
        "-hls_time", f"{segment_seconds:g}",
        "-hls_flags", "independent_segments",
        "-start_number", "1",
        "-hls_fmp4_init_filename", "init.mp4",
        "-hls_segment_filename", str(hls_dir / "%v" / "seg_%05d.m4s"),
        "-master_pl_name", "master.m3u8",
        "-var_stream_map", " ".join(stream_map),
        str(hls_dir / "%v" / "playlist.m3u8"),
    ]  # fmt: skip


def _fix_init_name(variant_dir: Path) -> None:
    """ffmpeg numbers the init file of each variant (``init_0.mp4``); name it ``init.mp4``."""
    playlist = variant_dir / "playlist.m3u8"
    text = playlist.read_text()
    match = re.search(r'#EXT-X-MAP:URI="([^"]+)"', text)
    if not match:
        raise VamError(f"{playlist} has no EXT-X-MAP: ffmpeg did not write fMP4 segments")
    current = match.group(1)
    if current != "init.mp4":
        (variant_dir / current).replace(variant_dir / "init.mp4")
        playlist.write_text(text.replace(f'URI="{current}"', 'URI="init.mp4"'))


def _segments(playlist: Path) -> list[tuple[float, int]]:
    """(duration, bytes) of every media segment of a media playlist."""
    segments = []
    duration = None
    for line in playlist.read_text().splitlines():
        line = line.strip()
        if line.startswith("#EXTINF:"):
            duration = float(line[len("#EXTINF:") :].split(",")[0])
        elif line and not line.startswith("#") and duration is not None:
            segments.append((duration, (playlist.parent / line).stat().st_size))
            duration = None
    return segments


def peak_and_average_bandwidth(segments: list[tuple[float, int]], target: float) -> tuple[int, int]:
    """BANDWIDTH and AVERAGE-BANDWIDTH (bits/s) as RFC 8216 defines them.

    The peak is the largest bit rate of any run of consecutive segments lasting between 0.5 and
    1.5 times the target duration (so a short last segment does not count on its own).
    """
    total_s = sum(d for d, _ in segments)
    total_bits = sum(b for _, b in segments) * 8
    average = math.ceil(total_bits / total_s) if total_s else 0
    peak = 0
    for start in range(len(segments)):
        dur = bits = 0.0
        for d, b in segments[start:]:
            dur += d
            bits += b * 8
            if dur > 1.5 * target:
                break
            if dur >= 0.5 * target:
                peak = max(peak, math.ceil(bits / dur))
    return max(peak, average), average


def _ffmpeg_master_codecs(master: Path) -> dict[str, str]:
    """URI -> CODECS from the master ffmpeg wrote (a fallback for codecs not parsed here)."""
    found: dict[str, str] = {}
    if not master.exists():
        return found
    codecs = None
    for line in master.read_text().splitlines():
        if line.startswith("#EXT-X-STREAM-INF:"):
            match = re.search(r'CODECS="([^"]+)"', line)
            codecs = match.group(1) if match else None
        elif line and not line.startswith("#") and codecs:
            found[line.strip()] = codecs
            codecs = None
    return found


def write_master(
    hls_dir: Path,
    renditions: list[tuple[Path, dict]],
    described: list[dict[str, Any]],
    segment_seconds: float,
    subtitles: list[dict[str, Any]] | None = None,
) -> str:
    """Write ``hls_dir/master.m3u8`` listing every variant, in the order given, and the
    ``subtitles`` (``{"language", "name", "uri"}``) as one SUBTITLES group; return its text."""
    fallback = _ffmpeg_master_codecs(hls_dir / "master.m3u8")
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for i, sub in enumerate(subtitles or []):
        default = "YES" if i == 0 else "NO"
        lines.append(
            f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBTITLES_GROUP}",NAME="{sub["name"]}",'
            f'LANGUAGE="{sub["language"]}",DEFAULT={default},AUTOSELECT=YES,FORCED=NO,URI="{sub["uri"]}"'
        )
    for (_, meta), desc in zip(renditions, described, strict=True):
        uri = f"{meta['name']}/playlist.m3u8"
        segments = _segments(hls_dir / uri)
        target = max([segment_seconds, *(d for d, _ in segments)])
        peak, average = peak_and_average_bandwidth(segments, target)
        codecs = [c for c in (desc["video_codecs"], desc["audio_codecs"]) if c]
        if not desc["video_codecs"]:
            codecs = fallback.get(uri, "").split(",") if uri in fallback else codecs
            log.warning("no CODECS for %s (%s) parsed here; using %r", uri, desc["codec"], codecs)
        attrs = [
            f"BANDWIDTH={peak}",
            f"AVERAGE-BANDWIDTH={average}",
            f"RESOLUTION={desc['width']}x{desc['height']}",
        ]
        if codecs:
            attrs.append(f'CODECS="{",".join(codecs)}"')
        if desc["fps"]:
            attrs.append(f"FRAME-RATE={desc['fps']:.3f}")
        if desc.get("video_range", "SDR") != "SDR":  # an HDR rung (10-bit HEVC/AV1 of an HDR source)
            attrs.append(f"VIDEO-RANGE={desc['video_range']}")
        if subtitles:
            attrs.append(f'SUBTITLES="{SUBTITLES_GROUP}"')
        lines += [f"#EXT-X-STREAM-INF:{','.join(attrs)}", uri]
    text = "\n".join(lines) + "\n"
    (hls_dir / "master.m3u8").write_text(text)
    return text


def _package_hls(
    renditions: list[tuple[Path, dict]],
    described: list[dict[str, Any]],
    hls_dir: Path,
    segment_seconds: float,
    captions: list[dict[str, Any]],
) -> None:
    hls_dir.mkdir(parents=True)
    tools.run(hls_argv(renditions, described, hls_dir, segment_seconds))
    for _, meta in renditions:
        _fix_init_name(hls_dir / meta["name"])
    duration = max(d["duration"] for d in described)
    subtitles = [_hls_subtitle_playlist(hls_dir, c, duration) for c in captions]
    write_master(hls_dir, renditions, described, segment_seconds, subtitles)


def _hls_subtitle_playlist(hls_dir: Path, caption: dict[str, Any], duration: float) -> dict[str, Any]:
    """Copy a WebVTT track into ``hls/subs/`` with a one-segment VOD playlist spanning the video."""
    lang = caption["language"]
    subs = hls_dir / "subs"
    subs.mkdir(exist_ok=True)
    shutil.copyfile(caption["path"], subs / f"{lang}.vtt")
    (subs / f"{lang}.m3u8").write_text(
        "#EXTM3U\n#EXT-X-VERSION:3\n"
        f"#EXT-X-TARGETDURATION:{max(1, math.ceil(duration))}\n"
        "#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n"
        f"#EXTINF:{duration:.3f},\n{lang}.vtt\n#EXT-X-ENDLIST\n"
    )
    return {"language": lang, "name": caption.get("name") or lang, "uri": f"subs/{lang}.m3u8"}


# ---------------------------------------------------------------------------------------------
# DASH


def _same_audio(a: dict[str, Any], b: dict[str, Any]) -> bool:
    keys = ("codec_name", "profile", "channels", "sample_rate")
    if any(a.get(k) != b.get(k) for k in keys):
        return False
    ra, rb = int(a.get("bit_rate") or 0), int(b.get("bit_rate") or 0)
    return abs(ra - rb) <= 0.1 * max(ra, rb, 1)


def dash_argv(
    renditions: list[tuple[Path, dict]],
    described: list[dict[str, Any]],
    dash_dir: Path,
    segment_seconds: float,
) -> tuple[list[str], dict[int, int]]:
    """One ffmpeg command writing the MPD: a video adaptation set per codec and shape, one for audio.

    Also returns which rendition each video Representation (id = output stream index) comes from.
    """
    argv = _input_args(renditions)
    # Video adaptation sets: same codec, display aspect ratio within the tolerance of the set's
    # largest rung; the set's other rungs are declared at that ratio (a new SAR, no re-encode).
    order = sorted(range(len(renditions)), key=lambda i: -described[i]["width"] * described[i]["height"])
    sets: list[tuple[str, Fraction, list[int]]] = []
    for i in order:
        desc = described[i]
        for codec, dar, members in sets:
            if codec == desc["codec"] and abs(desc["dar"] / dar - 1) <= _ASPECT_TOLERANCE:
                members.append(i)
                break
        else:
            sets.append((desc["codec"], desc["dar"], [i]))
    representations: dict[int, int] = {}
    set_specs = []
    aspect_args: list[str] = []
    for set_id, (_, _, members) in enumerate(sets):
        # Declare the set at its simplest ratio (16:9 rather than 854x480's 427:240): ffmpeg stores
        # an overridden aspect with small terms, so only a simple ratio survives exactly.
        dar = min((described[i]["dar"] for i in members), key=lambda f: (f.denominator, f.numerator))
        indexes = []
        for i in sorted(members):
            out_index = len(representations)
            argv += ["-map", f"{i}:v:0"]
            if described[i]["dar"] != dar:
                aspect_args += [f"-aspect:{out_index}", f"{dar.numerator}:{dar.denominator}"]
            representations[out_index] = i
            indexes.append(str(out_index))
        set_specs.append(f"id={set_id},streams={','.join(indexes)}")
    audio_indexes: list[str] = []
    kept: list[dict[str, Any]] = []
    for i, desc in enumerate(described):
        audio = desc["audio"]
        if audio is None or any(_same_audio(audio, k) for k in kept):
            continue
        kept.append(audio)
        argv += ["-map", f"{i}:a:0"]
        audio_indexes.append(str(len(representations) + len(audio_indexes)))
    if audio_indexes:
        set_specs.append(f"id={len(sets)},streams={','.join(audio_indexes)}")
    argv += [
        "-c", "copy",
        *aspect_args,
        "-f", "dash",
        "-dash_segment_type", "mp4",
        "-seg_duration", f"{segment_seconds:g}",
        "-use_template", "1",
        "-use_timeline", "1",
        "-adaptation_sets", " ".join(set_specs),
        str(dash_dir / "manifest.mpd"),
    ]  # fmt: skip
    return argv, representations


def _fix_mpd(text: str, codecs: dict[int, str]) -> str:
    """Set each video Representation's ``codecs`` (the dash muxer leaves HEVC's empty) and turn
    off ``bitstreamSwitching``: the muxer always declares it, promising that one init segment
    decodes every representation, which rungs of different sizes (different SPS) break."""

    def representation(match: re.Match[str]) -> str:
        tag = match.group(0)
        rep_id = int(match.group(1))
        if rep_id in codecs:
            tag = re.sub(r'codecs="[^"]*"', f'codecs="{codecs[rep_id]}"', tag)
        return tag

    text = re.sub(r'<Representation id="(\d+)"[^>]*>', representation, text)
    return text.replace('bitstreamSwitching="true"', 'bitstreamSwitching="false"')


def _dash_text_sets(text: str, dash_dir: Path, captions: list[dict[str, Any]]) -> str:
    """Add one text AdaptationSet (WebVTT, side-loaded) per caption track to the MPD."""
    if not captions:
        return text
    (dash_dir / "subs").mkdir(exist_ok=True)
    next_id = 1 + max((int(i) for i in re.findall(r'<AdaptationSet id="(\d+)"', text)), default=-1)
    sets = []
    for offset, caption in enumerate(captions):
        lang = caption["language"]
        shutil.copyfile(caption["path"], dash_dir / "subs" / f"{lang}.vtt")
        sets.append(
            f'\t\t<AdaptationSet id="{next_id + offset}" contentType="text" mimeType="text/vtt"'
            f' lang="{lang}">\n'
            '\t\t\t<Role schemeIdUri="urn:mpeg:dash:role:2011" value="subtitle"/>\n'
            f'\t\t\t<Representation id="captions-{lang}" bandwidth="256">\n'
            f"\t\t\t\t<BaseURL>subs/{lang}.vtt</BaseURL>\n"
            "\t\t\t</Representation>\n\t\t</AdaptationSet>\n"
        )
    head, sep, tail = text.rpartition("\t</Period>")
    if not sep:
        head, sep, tail = text.rpartition("</Period>")
    return head + "".join(sets) + sep + tail


def _package_dash(
    renditions: list[tuple[Path, dict]],
    described: list[dict[str, Any]],
    dash_dir: Path,
    segment_seconds: float,
    captions: list[dict[str, Any]],
) -> None:
    dash_dir.mkdir(parents=True)
    argv, representations = dash_argv(renditions, described, dash_dir, segment_seconds)
    tools.run(argv)
    mpd = dash_dir / "manifest.mpd"
    codecs = {
        rep: described[i]["video_codecs"]
        for rep, i in representations.items()
        if described[i]["video_codecs"]
    }
    mpd.write_text(_dash_text_sets(_fix_mpd(mpd.read_text(), codecs), dash_dir, captions))


# ---------------------------------------------------------------------------------------------


def _listing(out_dir: Path) -> tuple[list[str], list[str]]:
    """(manifests, segments) under ``out_dir/hls`` and ``out_dir/dash``; masters come last."""
    manifests, segments = [], []
    for sub in ("hls", "dash"):
        for path in sorted((out_dir / sub).rglob("*")):
            if not path.is_file():
                continue
            rel = path.relative_to(out_dir).as_posix()
            (manifests if path.suffix in _MANIFEST_SUFFIXES else segments).append(rel)
    manifests.sort(key=lambda rel: (rel in ("hls/master.m3u8", "dash/manifest.mpd"), rel))
    return manifests, segments


def package(
    renditions: list[tuple[Path, dict]],
    out_dir: Path,
    *,
    segment_seconds: float,
    captions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Package ``renditions`` (``(mp4 path, {"name", "width", "height", "codec", "bitrate_kbps"})``)
    as HLS and DASH under ``out_dir``, copying the streams (no re-encode). ``captions``
    (``{"language", "name", "path"}`` of WebVTT files) become an HLS SUBTITLES group and DASH
    text adaptation sets.

    Returns ``{"hls_master", "dash_manifest", "manifests", "segments"}`` with paths relative to
    ``out_dir``: upload ``segments`` first and ``manifests`` last (media playlists before masters).
    Existing ``out_dir/hls`` and ``out_dir/dash`` are replaced.
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be > 0, got {segment_seconds}")
    _check_input(renditions)
    out_dir = Path(out_dir).absolute()
    out_dir.mkdir(parents=True, exist_ok=True)
    described = [_describe(Path(path)) for path, _ in renditions]
    for (_, meta), desc in zip(renditions, described, strict=True):
        if (int(meta.get("width", desc["width"])), int(meta.get("height", desc["height"]))) != (
            desc["width"],
            desc["height"],
        ):
            raise VamError(
                f"rendition {meta['name']!r} says {meta.get('width')}x{meta.get('height')} but its file is "
                f"{desc['width']}x{desc['height']}; package the files the encoder reported"
            )
    work = out_dir / f".package-{uuid.uuid4().hex[:12]}"
    try:
        _package_hls(renditions, described, work / "hls", segment_seconds, captions or [])
        _package_dash(renditions, described, work / "dash", segment_seconds, captions or [])
        for sub in ("hls", "dash"):
            if (out_dir / sub).exists():
                shutil.rmtree(out_dir / sub)
            (work / sub).replace(out_dir / sub)
    finally:
        with contextlib.suppress(FileNotFoundError):
            shutil.rmtree(work)
    manifests, segments = _listing(out_dir)
    log.info(
        "packaged %d renditions into %s: %d manifests, %d segment files",
        len(renditions), out_dir, len(manifests), len(segments),
    )  # fmt: skip
    return {
        "hls_master": "hls/master.m3u8",
        "dash_manifest": "dash/manifest.mpd",
        "manifests": manifests,
        "segments": segments,
    }

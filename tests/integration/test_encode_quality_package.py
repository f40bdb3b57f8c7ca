"""Encoding, quality measurement and packaging on small generated clips (real ffmpeg, no servers)."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clipfactory import ClipFactory, decode_frame

from vam.errors import ToolError
from vam.media import tools
from vam.media.encode import encode_rendition, ladder_split_argv
from vam.media.package import package, peak_and_average_bandwidth, video_codecs_string
from vam.media.probe import probe
from vam.media.quality import decode_check, measure_quality
from vam.media.types import MediaInfo, Profile, RenditionPlan

pytestmark = pytest.mark.integration

FPS = 25
SEGMENT_SECONDS = 1.0
GOP = int(SEGMENT_SECONDS * FPS)
PROFILE = Profile(name="test", version=1, segment_seconds=SEGMENT_SECONDS, rungs=())


# -- helpers ---------------------------------------------------------------------------------------


def make_clip(out: Path, *, seconds: float, width: int, height: int, audio: bool = True) -> Path:
    """testsrc2 (+ a 440 Hz sine) as H.264/AAC MP4, nearly lossless so it can serve as a reference."""
    argv = [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error"]
    argv += ["-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate={FPS}:duration={seconds}"]
    if audio:
        argv += ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}"]
        argv += ["-c:a", "aac", "-b:a", "96k"]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "10", "-pix_fmt", "yuv420p", str(out)]
    tools.run(argv)
    return out


def rotate_clip(source: Path, out: Path, degrees: int) -> Path:
    """Remux ``source`` with a display matrix (``-display_rotation`` is counter-clockwise)."""
    argv = [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error"]
    argv += ["-display_rotation:v:0", str(degrees), "-i", str(source), "-c", "copy", str(out)]
    tools.run(argv)
    return out


def plan(name: str, codec: str, width: int, height: int, *, crf: int | None = 23, **kw: Any) -> RenditionPlan:
    fields: dict[str, Any] = {
        "video_bitrate_kbps": 1500,
        "preset": "veryfast",
        "profile": "high" if codec == "h264" else None,
        "gop_frames": GOP,
        "fps": float(FPS),
        "audio_bitrate_kbps": 96,
        "min_vmaf": 0.0,
        "min_ssim": 0.0,
        "min_psnr": 0.0,
    }
    fields.update(kw)
    return RenditionPlan(name=name, codec=codec, width=width, height=height, crf=crf, **fields)


def streams(path: Path) -> list[dict[str, Any]]:
    return tools.run_ffprobe_json(["-show_streams", str(path)])["streams"]


def video_stream(path: Path) -> dict[str, Any]:
    return next(s for s in streams(path) if s["codec_type"] == "video")


def has_rotation(stream: dict[str, Any]) -> bool:
    side = [s for s in stream.get("side_data_list") or [] if "rotation" in s or "Display" in str(s)]
    return bool(side) or "rotate" in (stream.get("tags") or {})


def keyframe_frames(path: Path) -> list[int]:
    """Frame numbers (in presentation order) of the video's keyframes, from packet flags."""
    data = tools.run_ffprobe_json(["-select_streams", "v:0", "-show_entries", "packet=pts,flags", str(path)])
    packets = sorted(data["packets"], key=lambda p: int(p["pts"]))
    return [i for i, p in enumerate(packets) if "K" in p["flags"]]


def decoded_frames(url: Path) -> int:
    argv = [tools.ffmpeg_path(), "-nostdin", "-v", "error", "-xerror", "-i", str(url.absolute())]
    argv += ["-map", "0:v:0", "-progress", "pipe:1", "-nostats", "-f", "null", "-"]
    frames = re.findall(r"^frame=(\d+)$", tools.run(argv, log_progress=False).stdout, flags=re.MULTILINE)
    return int(frames[-1])


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("encode")


@pytest.fixture(scope="module")
def source(work: Path) -> Path:
    return make_clip(work / "source.mp4", seconds=3, width=640, height=360)


@pytest.fixture(scope="module")
def info(source: Path) -> MediaInfo:
    return probe(source)


@pytest.fixture(scope="module")
def ladder(work: Path, source: Path, info: MediaInfo) -> list[tuple[Path, dict[str, Any]]]:
    """Two H.264 renditions: 360p (same size as the source) and 240p (426x240)."""
    out = []
    for p in (plan("360p", "h264", 640, 360), plan("240p", "h264", 426, 240, video_bitrate_kbps=600)):
        path = work / "renditions" / f"{p.name}.mp4"
        out.append((path, encode_rendition(source, p, PROFILE, path, info)))
    return out


# -- encode ----------------------------------------------------------------------------------------


def test_h264_renditions(ladder: list[tuple[Path, dict[str, Any]]], info: MediaInfo) -> None:
    assert info.frame_count == 75
    for (path, result), (width, height) in zip(ladder, [(640, 360), (426, 240)], strict=True):
        assert (result["codec"], result["width"], result["height"]) == ("h264", width, height)
        assert result["frame_count"] == info.frame_count
        assert result["duration"] == pytest.approx(3.0, abs=0.05)
        assert result["size_bytes"] == path.stat().st_size
        assert 0 < result["bitrate_kbps"] < 1500 * 1.1
        video = video_stream(path)
        assert (video["width"], video["height"], video["sample_aspect_ratio"]) == (width, height, "1:1")
        assert video["pix_fmt"] == "yuv420p"
        assert video["avg_frame_rate"] == "25/1"
        assert not has_rotation(video)
        assert keyframe_frames(path) == [0, GOP, 2 * GOP]
        audio = [s for s in streams(path) if s["codec_type"] == "audio"]
        assert len(audio) == 1
        assert (audio[0]["codec_name"], audio[0]["channels"], audio[0]["sample_rate"]) == ("aac", 2, "48000")
    leftovers = [p.name for p in ladder[0][0].parent.iterdir() if p.suffix == ".part"]
    assert leftovers == []


def test_failed_encode_leaves_no_output(work: Path, source: Path, info: MediaInfo) -> None:
    out = work / "failed" / "bad.mp4"
    with pytest.raises(ToolError):
        encode_rendition(source, plan("bad", "h264", 640, 360, preset="no-such-preset"), PROFILE, out, info)
    assert list(out.parent.iterdir()) == []


@pytest.mark.parametrize("codec", ["hevc", "av1"])
def test_hevc_and_av1(work: Path, codec: str) -> None:
    clip = make_clip(work / f"tiny-{codec}.mp4", seconds=1, width=320, height=180)
    out = work / "tiny" / f"{codec}.mp4"
    result = encode_rendition(clip, plan(codec, codec, 320, 180, crf=30), PROFILE, out, probe(clip))
    assert (result["codec"], result["width"], result["height"]) == (codec, 320, 180)
    assert result["frame_count"] == 25
    video = video_stream(out)
    assert video["codec_tag_string"] == ("hvc1" if codec == "hevc" else "av01")
    assert keyframe_frames(out) == [0]
    assert decode_check(out)["frame_count"] == 25


def test_ladder_split_single_decode(work: Path, source: Path, info: MediaInfo) -> None:
    plans = [plan("a", "h264", 320, 180), plan("b", "h264", 160, 90)]
    outs = [work / "split" / "a.mp4", work / "split" / "b.mp4"]
    outs[0].parent.mkdir()
    argv = ladder_split_argv(source, plans, PROFILE, outs, info)
    assert argv.count("-i") == 1
    tools.run(argv)
    for out, p in zip(outs, plans, strict=True):
        video = video_stream(out)
        assert (video["width"], video["height"], int(video["nb_frames"])) == (p.width, p.height, 75)
        assert keyframe_frames(out) == [0, GOP, 2 * GOP]


def test_rotated_source_encodes_upright(work: Path) -> None:
    landscape = make_clip(work / "landscape.mp4", seconds=1, width=320, height=180)
    rotated = rotate_clip(landscape, work / "rotated.mp4", 90)
    info = probe(rotated)
    assert info.rotation in (90, 270)
    assert (info.display_width, info.display_height) == (180, 320)
    out = work / "upright" / "portrait.mp4"
    result = encode_rendition(rotated, plan("portrait", "h264", 180, 320), PROFILE, out, info)
    assert (result["width"], result["height"], result["rotation"]) == (180, 320, 0)
    assert not has_rotation(video_stream(out))
    quality = measure_quality(rotated, out, info)
    assert (quality["width"], quality["height"]) == (180, 320)
    # An output turned the wrong way would be compared against the upright reference and score low.
    assert quality["vmaf"]["mean"] > 70


def corner_colours(frame: np.ndarray) -> dict[str, str]:
    """The colour at the centre of each corner fifth of an RGB frame: "white", "black" or "other"."""
    h, w, _ = frame.shape
    out = {}
    for vertical, y in (("top", h // 10), ("bottom", h - 1 - h // 10)):
        for horizontal, x in (("left", w // 10), ("right", w - 1 - w // 10)):
            pixel = frame[y, x]
            colour = "white" if pixel.min() > 200 else "black" if pixel.max() < 50 else "other"
            out[f"{vertical}_{horizontal}"] = colour
    return out


def test_phone_portrait_clip_comes_out_upright(work: Path) -> None:
    """A phone held upright stores the scene turned a quarter counter-clockwise with a display matrix
    that ffprobe reports as ``rotation: -90``: a quarter turn clockwise (probe's 90) makes it upright.
    The rendition must show the scene as it was: same pixels, white marker top-left, black bottom-right."""
    phone, scene = ClipFactory(work / "clips").make_phone_portrait(width=240, height=320, seconds=1.0)
    side_data = video_stream(phone)["side_data_list"]
    assert [s["rotation"] for s in side_data if s.get("side_data_type") == "Display Matrix"] == [-90]
    info = probe(phone)
    assert (info.width, info.height, info.rotation) == (320, 240, 90)
    assert (info.display_width, info.display_height) == (240, 320)
    upright = decode_frame(scene, 5).astype(int)
    # What probe's 90 means: the coded picture turned 90 degrees clockwise by hand is the scene.
    by_hand = decode_frame(phone, 5, autorotate=False, vf="transpose=clock").astype(int)
    assert np.abs(by_hand - upright).mean() < 6
    assert np.abs(decode_frame(phone, 5, autorotate=False, vf="transpose=cclock") - upright).mean() > 30

    out = work / "upright" / "phone.mp4"
    result = encode_rendition(phone, plan("phone", "h264", 240, 320), PROFILE, out, info)
    assert (result["width"], result["height"], result["rotation"]) == (240, 320, 0)

    frame = decode_frame(out, 5).astype(int)
    assert frame.shape == upright.shape == (320, 240, 3)
    assert corner_colours(frame) == {
        "top_left": "white", "top_right": "other", "bottom_left": "other", "bottom_right": "black",
    }  # fmt: skip
    assert np.abs(frame - upright).mean() < 6  # the scene itself, not just its markers
    assert np.abs(frame - upright[::-1, ::-1]).mean() > 30  # turned the other way it would be upside down
    assert measure_quality(phone, out, info)["vmaf"]["mean"] > 90


# -- quality ---------------------------------------------------------------------------------------


def test_measure_quality(
    work: Path, source: Path, info: MediaInfo, ladder: list[tuple[Path, dict[str, Any]]]
) -> None:
    log_path = work / "logs" / "vmaf-360p.json"
    good = measure_quality(source, ladder[0][0], info, log_path=log_path)
    assert 30 < good["vmaf"]["mean"] <= 100
    assert good["vmaf"]["min"] <= good["vmaf"]["harmonic_mean"] <= good["vmaf"]["mean"]
    assert 0.9 < good["ssim"]["mean"] <= 1
    assert good["psnr"]["mean"] > 30
    assert set(good["psnr_components"]) == {"psnr_y", "psnr_cb", "psnr_cr"}
    assert good["frames_scored"] == len(good["frames"]) == info.frame_count
    assert set(good["frames"][0]) == {"frameNum", "vmaf", "float_ssim", "psnr_y"}
    assert (good["model"], good["n_subsample"]) == ("vmaf_v0.6.1", 1)
    assert log_path.is_file()

    bad_path = work / "renditions" / "bad.mp4"
    encode_rendition(source, plan("bad", "h264", 160, 90, crf=51), PROFILE, bad_path, info)
    bad = measure_quality(source, bad_path, info, n_subsample=5)
    assert bad["frames_scored"] == 15
    assert bad["vmaf"]["mean"] < good["vmaf"]["mean"] - 20
    assert bad["psnr"]["mean"] < good["psnr"]["mean"]


def test_decode_check(work: Path, info: MediaInfo, ladder: list[tuple[Path, dict[str, Any]]]) -> None:
    path = ladder[0][0]
    good = decode_check(path)
    assert good == {"decodes": True, "error": None, "frame_count": info.frame_count, "duration": 3.0}

    truncated = work / "truncated.mp4"
    data = path.read_bytes()
    truncated.write_bytes(data[: len(data) * 2 // 3])
    cut = decode_check(truncated)
    assert cut["decodes"] is False
    assert 0 < cut["frame_count"] < info.frame_count
    assert cut["duration"] < 3.0
    assert cut["error"]

    missing = decode_check(work / "missing.mp4")
    assert missing["decodes"] is False


# -- package ---------------------------------------------------------------------------------------


def test_package(work: Path, ladder: list[tuple[Path, dict[str, Any]]]) -> None:
    out = work / "package"
    renditions = [(path, {k: meta[k] for k in ("name", "width", "height", "codec", "bitrate_kbps")})
                  for path, meta in ladder]  # fmt: skip
    result = package(renditions, out, segment_seconds=SEGMENT_SECONDS)
    assert result["hls_master"] == "hls/master.m3u8"
    assert result["dash_manifest"] == "dash/manifest.mpd"
    assert set(result["manifests"]) == {
        "hls/master.m3u8", "hls/360p/playlist.m3u8", "hls/240p/playlist.m3u8", "dash/manifest.mpd",
    }  # fmt: skip
    assert result["manifests"][-2:] == ["dash/manifest.mpd", "hls/master.m3u8"]
    assert "hls/360p/init.mp4" in result["segments"]
    assert "hls/240p/seg_00001.m4s" in result["segments"]
    on_disk = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert on_disk == set(result["manifests"]) | set(result["segments"])

    master = (out / "hls" / "master.m3u8").read_text()
    infs = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    assert [uri for _, uri in infs] == ["360p/playlist.m3u8", "240p/playlist.m3u8"]
    for (attrs, _), (w, h) in zip(infs, [(640, 360), (426, 240)], strict=True):
        assert f"RESOLUTION={w}x{h}" in attrs
        assert re.search(r'CODECS="avc1\.64[0-9a-f]{4},mp4a\.40\.2"', attrs)
        assert "FRAME-RATE=25.000" in attrs
        peak = int(re.search(r"(?<!-)BANDWIDTH=(\d+)", attrs).group(1))
        average = int(re.search(r"AVERAGE-BANDWIDTH=(\d+)", attrs).group(1))
        assert peak >= average > 0

    for _, meta in ladder:
        playlist = out / "hls" / meta["name"] / "playlist.m3u8"
        text = playlist.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text
        assert '#EXT-X-MAP:URI="init.mp4"' in text
        assert "#EXT-X-ENDLIST" in text
        assert text.count("#EXTINF:1.0") == 3  # 1 s segments, cut on the 1 s GOP
        assert decoded_frames(playlist) == meta["frame_count"]

    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    mpd = ET.parse(out / "dash" / "manifest.mpd").getroot()
    video_sets = mpd.findall(".//d:AdaptationSet[@contentType='video']", ns)
    assert len(video_sets) == 1
    reps = video_sets[0].findall("d:Representation", ns)
    assert sorted((int(r.get("width")), int(r.get("height"))) for r in reps) == [(426, 240), (640, 360)]
    assert all(r.get("codecs", "").startswith("avc1.64") for r in reps)
    assert len(mpd.findall(".//d:AdaptationSet[@contentType='audio']/d:Representation", ns)) == 1
    assert decoded_frames(out / "dash" / "manifest.mpd") == 75

    again = package(renditions, out, segment_seconds=SEGMENT_SECONDS)  # idempotent: replaces the trees
    assert again == result


# -- pure helpers ----------------------------------------------------------------------------------


def test_codecs_strings() -> None:
    assert video_codecs_string("h264", bytes.fromhex("0164001effe1")) == "avc1.64001e"
    hvcc = bytes.fromhex("010160000000900000000000" + "3c")
    assert video_codecs_string("hevc", hvcc) == "hvc1.1.6.L60.90"
    hvcc_main_l93 = bytes.fromhex("010160000000b00000000000" + "5d")
    assert video_codecs_string("hevc", hvcc_main_l93) == "hvc1.1.6.L93.B0"
    assert video_codecs_string("av1", bytes.fromhex("81080c00")) == "av01.0.08M.08"
    assert video_codecs_string("h264", b"") is None


def test_peak_bandwidth_ignores_a_lone_short_tail() -> None:
    # On its own the 0.04 s tail would be 6 Mb/s; RFC 8216 measures runs of 0.5-1.5x the target.
    segments = [(2.0, 250_000), (2.0, 250_000), (0.04, 30_000)]
    peak, average = peak_and_average_bandwidth(segments, target=2.0)
    assert peak == math.ceil(280_000 * 8 / 2.04)  # the second segment plus the tail
    assert average == math.ceil(530_000 * 8 / 4.04)


def test_package_with_captions(work: Path, ladder: list[tuple[Path, dict[str, Any]]]) -> None:
    vtt = work / "en.vtt"
    vtt.write_text("WEBVTT\n\n00:00:00.500 --> 00:00:02.000\nhello captions\n")
    renditions = [(path, {k: meta[k] for k in ("name", "width", "height", "codec", "bitrate_kbps")})
                  for path, meta in ladder]  # fmt: skip
    out = work / "package-captions"
    result = package(
        renditions,
        out,
        segment_seconds=SEGMENT_SECONDS,
        captions=[{"language": "en", "name": "English", "path": vtt}],
    )
    assert {"hls/subs/en.vtt", "dash/subs/en.vtt"} <= set(result["segments"])
    assert "hls/subs/en.m3u8" in result["manifests"]
    master = (out / "hls" / "master.m3u8").read_text()
    media = r'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en".*URI="subs/en.m3u8"'
    assert re.search(media, master)
    assert all(
        'SUBTITLES="subs"' in line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF")
    )
    sub_playlist = (out / "hls" / "subs" / "en.m3u8").read_text()
    assert "#EXT-X-ENDLIST" in sub_playlist
    assert sub_playlist.strip().splitlines()[-2] == "en.vtt"
    assert (out / "hls" / "subs" / "en.vtt").read_text() == vtt.read_text()
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    mpd = ET.parse(out / "dash" / "manifest.mpd").getroot()
    text_sets = mpd.findall(".//d:AdaptationSet[@contentType='text']", ns)
    assert len(text_sets) == 1
    assert text_sets[0].get("lang") == "en"
    assert text_sets[0].find("d:Representation/d:BaseURL", ns).text == "subs/en.vtt"
    # ffmpeg still plays the video through the master with the subtitle group present
    assert decoded_frames(out / "hls" / "master.m3u8") > 0

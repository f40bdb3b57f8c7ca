"""Robust inputs, end to end at the media level: probe -> plan -> encode -> decode check / quality -> gate
(-> package), on small generated clips that used to come out wrong.

* variable frame rate (1 s at 10, 30 and 60 fps joined by the concat demuxer): constant 60 fps out,
  no frame of the 60 fps part dropped, and the gate expects duration x 60 frames;
* audio longer than video: the video is padded (last frame repeated) to the audio's length and the
  HLS/DASH manifests declare the full length;
* interlaced: deinterlaced, the output is progressive (idet) and flagged so;
* HDR (PQ and HLG): tone-mapped to SDR BT.709 on H.264, tagged BT.709, not washed out; a 10-bit
  HEVC rung keeps HDR.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clipfactory import ClipFactory, decode_frame

from vam.media import tools
from vam.media.encode import encode_rendition
from vam.media.gate import metrics_table, run_gate
from vam.media.ladder import plan_ladder
from vam.media.package import package
from vam.media.probe import probe
from vam.media.quality import decode_check, measure_quality
from vam.media.types import MediaInfo, Profile, RenditionPlan, Rung

pytestmark = pytest.mark.integration

SEGMENT_SECONDS = 1.0


def profile(*rungs: Rung) -> Profile:
    if not rungs:
        rungs = (Rung(name="240p", height=240, codec="h264", video_bitrate_kbps=800, crf=23, profile="high"),)
    return Profile(name="robust", version=1, segment_seconds=SEGMENT_SECONDS, rungs=rungs, vmaf_n_subsample=1)


PROFILE = profile()


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> ClipFactory:
    return ClipFactory(tmp_path_factory.mktemp("robust-clips"))


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("robust")


def video_stream(path: Path) -> dict[str, Any]:
    streams = tools.run_ffprobe_json(["-show_streams", str(path)])["streams"]
    return next(s for s in streams if s["codec_type"] == "video")


def encode_top(source: Path, out: Path, prof: Profile = PROFILE) -> tuple[MediaInfo, RenditionPlan, dict]:
    info = probe(source)
    plan = plan_ladder(info, prof)[0]
    return info, plan, encode_rendition(source, plan, prof, out, info)


def gate_result(source: Path, out: Path, info: MediaInfo, plan: RenditionPlan, encoded: dict) -> dict:
    """What the quality step makes of a rendition: the encode's result, a full decode, the scores."""
    check = decode_check(out)
    scores = measure_quality(source, out, info)
    return {
        **encoded,
        **{k: scores[k] for k in ("vmaf", "ssim", "psnr")},
        "frames_scored": scores["frames_scored"],
        "decodes": check["decodes"],
        "decode_error": check["error"],
        "frame_count": check["frame_count"],
        "duration": check["duration"],
        "min_vmaf": plan.min_vmaf,
        "min_ssim": plan.min_ssim,
        "min_psnr": plan.min_psnr,
    }


def gate(result: dict, info: MediaInfo, prof: Profile = PROFILE):
    rows = metrics_table([result], source_frame_count=info.frame_count, source_duration=info.duration)
    return run_gate(rows, prof)


# -- variable frame rate ---------------------------------------------------------------------------


def test_variable_frame_rate_comes_out_constant_without_dropping_frames(
    clips: ClipFactory, work: Path
) -> None:
    source = clips.make_vfr(rates=(10, 30, 60))
    info, plan, encoded = encode_top(source, work / "vfr" / "top.mp4")
    assert info.frame_count == 100  # 10 + 30 + 60 frames over 3 s
    assert info.variable_fps
    assert info.max_fps == 60.0
    assert info.fps == pytest.approx(100 / 3)
    assert (plan.fps, plan.gop_frames) == (60.0, 60)

    out = work / "vfr" / "top.mp4"
    video = video_stream(out)
    assert video["avg_frame_rate"] == video["r_frame_rate"] == "60/1"  # constant 60 fps
    assert encoded["expected_frame_count"] == 180  # 3 s x 60 fps
    result = gate_result(source, out, info, plan, encoded)
    assert result["decodes"]
    assert abs(result["frame_count"] - 180) <= 1  # was 31: 10 fps out, 70 frames dropped
    assert result["duration"] == pytest.approx(3.0, abs=0.1)
    # the reference is brought to the same 60 fps: every output frame pairs with one source frame
    assert result["frames_scored"] == result["frame_count"]
    assert result["vmaf"]["mean"] > 80
    report = gate(result, info)
    assert report.success, report.message
    row = report.table[0]
    assert (row["expected_frame_count"], abs(row["frame_delta"]) <= 1) == (180, True)

    # The gate still catches a rendition that lost frames (the 10 fps encode of old: 31 frames).
    short = gate({**result, "frame_count": 31}, info)
    assert not short.success
    assert "frame count 31 differs from the expected 180 by -149" in short.message


# -- audio longer than video -----------------------------------------------------------------------


def test_video_shorter_than_audio_is_padded_to_the_audio(clips: ClipFactory, work: Path) -> None:
    source = clips.make_audio_longer(video_seconds=2.0, audio_seconds=7.0)
    out = work / "longaudio" / "top.mp4"
    info, plan, encoded = encode_top(source, out)
    assert info.video_duration == pytest.approx(2.0, abs=0.05)
    assert info.audio_duration == pytest.approx(7.0, abs=0.05)
    assert info.duration == pytest.approx(7.0, abs=0.05)  # what the catalog shows
    assert info.frame_count == 50

    assert encoded["video_duration"] == pytest.approx(7.0, abs=0.05)  # was 2.0
    assert encoded["audio_duration"] == pytest.approx(7.0, abs=0.05)
    assert encoded["frame_count"] == encoded["expected_frame_count"] == 175  # 50 + 5 s x 25 fps
    # the padding repeats the last picture
    last_real, padded = decode_frame(out, 49).astype(int), decode_frame(out, 170).astype(int)
    assert np.abs(last_real - padded).mean() < 3

    result = gate_result(source, out, info, plan, encoded)
    # scored on the source's own 50 frames, not on the 125 repeated ones
    assert result["frames_scored"] == 50
    assert result["vmaf"]["mean"] > 60
    report = gate(result, info)
    assert report.success, report.message

    packaged = work / "longaudio" / "package"
    package([(out, {"name": plan.name})], packaged, segment_seconds=SEGMENT_SECONDS)
    playlist = (packaged / "hls" / plan.name / "playlist.m3u8").read_text()
    hls_seconds = sum(float(d) for d in re.findall(r"#EXTINF:([\d.]+),", playlist))
    assert hls_seconds == pytest.approx(7.0, abs=0.1)  # was 2.0: players stopped at 2 s
    mpd = ET.parse(packaged / "dash" / "manifest.mpd").getroot()
    match = re.fullmatch(r"PT(?:(\d+)M)?([\d.]+)S", mpd.get("mediaPresentationDuration"))
    assert match is not None
    assert int(match.group(1) or 0) * 60 + float(match.group(2)) == pytest.approx(7.0, abs=0.1)


# -- interlaced ------------------------------------------------------------------------------------


def idet(path: Path) -> dict[str, int]:
    """ffmpeg idet's per-frame verdicts on the whole file: {"tff", "bff", "progressive", "undetermined"}."""
    argv = [tools.ffmpeg_path(), "-nostdin", "-hide_banner", "-v", "info", "-i", str(path)]
    argv += ["-map", "0:v:0", "-vf", "idet", "-f", "null", "-"]
    stderr = tools.run(argv, log_progress=False).stderr
    lines = re.findall(
        r"Single frame detection: TFF:\s*(\d+) BFF:\s*(\d+) Progressive:\s*(\d+) Undetermined:\s*(\d+)",
        stderr,
    )
    tff, bff, progressive, undetermined = (int(x) for x in lines[-1])
    return {"tff": tff, "bff": bff, "progressive": progressive, "undetermined": undetermined}


def test_interlaced_source_is_deinterlaced(clips: ClipFactory, work: Path) -> None:
    source = clips.make_interlaced(width=320, height=240, seconds=2.0, fps=25)
    assert idet(source)["tff"] >= 45  # really interlaced content
    out = work / "interlaced" / "top.mp4"
    info, plan, encoded = encode_top(source, out)
    assert (info.field_order, info.interlaced) == ("tt", True)
    assert plan.fps == 25.0

    assert video_stream(out)["field_order"] == "progressive"
    verdict = idet(out)
    assert verdict["progressive"] >= 0.8 * sum(verdict.values())  # was TFF on every frame
    assert verdict["tff"] + verdict["bff"] <= 0.1 * sum(verdict.values())
    result = gate_result(source, out, info, plan, encoded)
    assert result["frame_count"] == encoded["expected_frame_count"] == info.frame_count == 50
    assert result["vmaf"]["mean"] > 70  # against the source deinterlaced the same way
    assert gate(result, info).success


# -- HDR -------------------------------------------------------------------------------------------


def bars(frame: np.ndarray) -> dict[str, np.ndarray]:
    """Mean RGB of the middle of each bar of :data:`ClipFactory.HDR_BARS`."""
    h, w, _ = frame.shape
    out = {}
    for i, name in enumerate(ClipFactory.HDR_BARS):
        x0, x1 = i * w // 4 + w // 16, (i + 1) * w // 4 - w // 16
        out[name] = frame[h // 3 : 2 * h // 3, x0:x1].reshape(-1, 3).mean(axis=0)
    return out


def naive_sdr(source: Path, out: Path) -> Path:
    """What the encode did before: 8-bit H.264 of the HDR code values, no tone mapping."""
    argv = [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error", "-i", str(source), "-vf", "format=yuv420p"]
    argv += ["-c:v", "libx264", "-preset", "ultrafast", "-color_primaries", "bt709", "-color_trc", "bt709"]
    tools.run([*argv, "-colorspace", "bt709", str(out)], log_progress=False)
    return out


@pytest.mark.parametrize("transfer", ["smpte2084", "arib-std-b67"])
def test_hdr_is_tone_mapped_to_sdr_bt709_on_h264(clips: ClipFactory, work: Path, transfer: str) -> None:
    source = clips.make_hdr(transfer=transfer, seconds=1.0)
    out = work / f"hdr-{transfer}" / "top.mp4"
    info, plan, encoded = encode_top(source, out)
    assert (info.color_transfer, info.color_primaries, info.color_space) == (transfer, "bt2020", "bt2020nc")
    assert (info.bit_depth, info.hdr) == (10, True)

    video = video_stream(out)
    assert video["pix_fmt"] == "yuv420p"
    colour = (video.get("color_transfer"), video.get("color_primaries"), video.get("color_space"))
    assert colour == ("bt709", "bt709", "bt709")  # was bt2020 / smpte2084 on 8-bit H.264

    tone_mapped = bars(decode_frame(out, 10))
    naive = bars(decode_frame(naive_sdr(source, work / f"hdr-{transfer}" / "naive.mp4"), 10))
    # The highlight (SDR white mastered at 1000 nits) is SDR white, black stays black, grey in between.
    assert tone_mapped["white"].min() > 235
    assert tone_mapped["black"].max() < 20
    assert 90 < tone_mapped["gray"].mean() < 220
    # Red is red (BT.2020 -> BT.709 gamut); shown without conversion it is an orange-pink.
    red = tone_mapped["red"]
    assert red[0] > 230
    assert max(red[1], red[2]) < 60
    assert naive["red"][0] - naive["red"][1] < 120
    if transfer == "smpte2084":  # PQ shown as SDR: highlights grey, the picture dim and flat
        assert naive["white"].mean() < 200
        assert tone_mapped["white"].mean() - tone_mapped["black"].mean() > naive["white"].mean() + 40

    result = gate_result(source, out, info, plan, encoded)
    assert result["vmaf"]["mean"] > 80  # against the source tone-mapped the same way
    assert gate(result, info).success


def test_hdr_is_kept_on_a_10_bit_hevc_rung(clips: ClipFactory, work: Path) -> None:
    source = clips.make_hdr(transfer="smpte2084", seconds=1.0)
    prof = profile(
        Rung(name="240p-hevc", height=240, codec="hevc", video_bitrate_kbps=600, crf=30, preset="ultrafast"),
        Rung(name="240p", height=240, codec="h264", video_bitrate_kbps=800, crf=23, profile="high"),
    )
    info = probe(source)
    plans = plan_ladder(info, prof)
    assert [p.name for p in plans] == ["240p-hevc", "240p"]
    renditions = []
    for plan in plans:
        out = work / "hdr-kept" / f"{plan.name}.mp4"
        renditions.append((out, encode_rendition(source, plan, prof, out, info)))
    hevc, h264 = (video_stream(path) for path, _ in renditions)
    assert hevc["pix_fmt"] == "yuv420p10le"
    assert (hevc.get("color_transfer"), hevc.get("color_primaries")) == ("smpte2084", "bt2020")
    assert (h264["pix_fmt"], h264.get("color_transfer")) == ("yuv420p", "bt709")
    # scored in its own (PQ) domain: the reference is not tone-mapped for the HDR rung
    assert measure_quality(source, renditions[0][0], info)["vmaf"]["mean"] > 70

    packaged = work / "hdr-kept" / "package"
    package([(path, {"name": meta["name"]}) for path, meta in renditions], packaged, segment_seconds=1.0)
    master = (packaged / "hls" / "master.m3u8").read_text()
    infs = dict(
        (uri, attrs) for attrs, uri in re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    )  # fmt: skip
    assert "VIDEO-RANGE=PQ" in infs["240p-hevc/playlist.m3u8"]
    assert "VIDEO-RANGE" not in infs["240p/playlist.m3u8"]  # SDR, the default

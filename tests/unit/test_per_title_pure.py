"""Per-title analysis, grouped mode and the shared scoring pass: the pure parts (no ffmpeg)."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from vam.errors import ProfileError
from vam.media import per_title as pt
from vam.media.profiles import load_profile, profile_from_dict
from vam.media.scoring import (
    Distorted,
    Reference,
    effective_subsample,
    pair_offset,
    pair_select_expr,
    parse_input_stats,
    score_argv,
)
from vam.media.types import MediaInfo
from vam.settings import REPO_ROOT

PROFILES = REPO_ROOT / "include" / "encoding_profiles"
INFO = MediaInfo(
    container="mov,mp4", duration=30.0, size_bytes=1, bit_rate=None, video_codec="h264", width=1920,
    height=1080, sample_aspect_ratio="1:1", rotation=0, display_width=1920, display_height=1080, fps=25.0,
    fps_fraction="25/1", frame_count=750, pix_fmt="yuv420p", max_fps=25.0,
)  # fmt: skip


def curve(height: int, width: int, scale: float, quality: float) -> dict:
    """Synthetic trial points: bits halve every 6 CRF; VMAF falls 1.2 points per CRF."""
    points = [
        {
            "width": width,
            "height": height,
            "size": height,
            "crf": crf,
            "bitrate_kbps": scale * 2 ** ((20 - crf) / 6),
            "vmaf": min(100.0, quality - 1.2 * (crf - 20)),
        }
        for crf in (20, 28, 36)
    ]
    return {"height": height, "width": width, "points": points}


def packets(seconds: float = 30.0, *, gop: int | None = 50, busy: tuple[float, float] = (10.0, 12.0)):
    """25 fps packets: frames growing from 4 kB by 100 B a second, 40 kB inside ``busy``, 60 kB
    keyframes every ``gop`` frames."""
    out = []
    for i in range(int(seconds * 25)):
        t = i / 25
        key = i == 0 or (gop is not None and i % gop == 0)
        out.append((t, 60_000 if key else 40_000 if busy[0] <= t < busy[1] else 4_000 + int(100 * t), key))
    return out


def test_parse_packets_reads_compact_lines_relative_to_the_first_frame():
    text = (
        "pts_time=1.480000|dts_time=1.400000|size=5000|flags=__\n"
        "pts_time=1.400000|dts_time=1.360000|size=90000|flags=K__\n"
        "side_data|side_data_type=whatever\n"
        "pts_time=N/A|dts_time=1.440000|size=700|flags=___\n"
    )
    assert pt.parse_packets(text) == [(0.0, 90000, True), (0.04, 700, False), (0.08, 5000, False)]


def test_choose_samples_start_on_keyframes_and_span_the_sources_difficulty():
    pkts = packets()
    samples = pt.choose_samples(pkts, 30.0, count=3, seconds=1.5)
    assert len(samples) == 3
    keys = {t for t, _, key in pkts if key}
    assert all(s["start"] in keys for s in samples)  # reading one decodes nothing before it
    starts = [s["start"] for s in samples]
    assert starts == sorted(starts)
    assert all(b - a >= 1.5 for a, b in zip(starts, starts[1:], strict=False))  # never overlapping
    # one window from the middle of each of three equal bands of the windows' rates
    windows = sorted(
        sum(size for t, size, _ in pkts if k <= t < k + 1.5) * 8 / 1.5 / 1000
        for k in sorted(keys)
        if k <= 28.5
    )
    picked = sorted(s["complexity"] for s in samples)
    assert picked[0] == pytest.approx(windows[int(0.5 / 3 * len(windows))], abs=0.1)
    assert picked[-1] == pytest.approx(windows[int(2.5 / 3 * len(windows))], abs=0.1)


def test_choose_samples_without_keyframes_use_a_grid():
    samples = pt.choose_samples(packets(gop=None, busy=(10.0, 20.0)), 30.0, count=3, seconds=1.5)
    assert len(samples) == 3
    assert all(abs(s["start"] / 0.375 - round(s["start"] / 0.375)) < 1e-9 for s in samples)
    # a third of the source is busy: the hardest band's sample lies in it, the others outside
    assert sum(s["start"] >= 10.0 and s["start"] + 1.5 <= 20.0 for s in samples) == 1
    assert any(s["start"] >= 10.0 and s["start"] + 1.5 <= 12.0 for s in samples)


def test_short_source_is_its_own_sample():
    pkts = [(0.0, 10_000, True), (0.04, 5_000, False)]
    assert pt.choose_samples(pkts, 2.0, count=3, seconds=1.5) == [
        {"start": 0.0, "duration": 2.0, "complexity": 60.0}
    ]


def test_convex_hull_keeps_only_efficient_points():
    points = [
        {"bitrate_kbps": 100, "vmaf": 50},
        {"bitrate_kbps": 200, "vmaf": 60},
        {"bitrate_kbps": 300, "vmaf": 58},  # more bits, less quality
        {"bitrate_kbps": 400, "vmaf": 62},  # under the chord 200-800
        {"bitrate_kbps": 800, "vmaf": 80},
    ]
    hull = pt.convex_hull(points)
    assert [p["bitrate_kbps"] for p in hull] == [100, 200, 800]


def test_choose_ladder_targets_caps_and_jnd_pruning():
    prof = load_profile("per-title", PROFILES)
    trials = [curve(1080, 1920, 3000, 99), curve(720, 1280, 1500, 93), curve(540, 960, 900, 87)]
    analysis = pt.choose_ladder(trials, prof, INFO)
    rungs = analysis["rungs"]
    assert [r["name"] for r in rungs][0] == "q95"
    for r in rungs:
        if r["target_met"]:
            assert r["predicted_vmaf"] >= r["target_vmaf"]
        assert r["predicted_kbps"] <= r["cap_kbps"]
    rates = [r["predicted_kbps"] for r in rungs]
    assert rates == sorted(rates, reverse=True)
    # a cap too low for the target: reported, not silently missed
    low_cap = replace(prof, rungs=(replace(prof.rungs[0], video_bitrate_kbps=200),))
    only = pt.choose_ladder(trials, low_cap, INFO)["rungs"][0]
    assert only["target_met"] is False
    assert "cannot be reached" in only["reason"] or "above the cap" in only["reason"]
    # out of reach and flat near the cap (grain): the fewest bits within a sixth of a JND of the best
    grain = {"height": 1080, "width": 1920, "points": [
        {"width": 1920, "height": 1080, "size": 1080, "crf": 20, "bitrate_kbps": 6000, "vmaf": 89.6},
        {"width": 1920, "height": 1080, "size": 1080, "crf": 28, "bitrate_kbps": 3900, "vmaf": 89.3},
        {"width": 1920, "height": 1080, "size": 1080, "crf": 36, "bitrate_kbps": 1100, "vmaf": 74.9},
    ]}  # fmt: skip
    top = pt.choose_ladder([grain], replace(prof, rungs=prof.rungs[:1]), INFO)["rungs"][0]
    assert (top["target_met"], top["crf"]) == (False, 28)
    assert top["predicted_vmaf"] >= 89.6 - 1.0
    assert "fewest bits within 1.0 of the best, 89.6" in top["reason"]
    # a source so easy every size saturates: lower rungs within a JND saving little are dropped
    flat = [curve(1080, 1920, 100, 100), curve(720, 1280, 95, 100)]
    easy = pt.choose_ladder(flat, prof, INFO)
    assert easy["dropped"]
    assert all("within one JND" in d["reason"] for d in easy["dropped"])


def test_ladder_plans_use_the_chosen_size_crf_and_cap():
    prof = load_profile("per-title", PROFILES)
    analysis = pt.choose_ladder([curve(1080, 1920, 3000, 99), curve(720, 1280, 1500, 93)], prof, INFO)
    plans = pt.ladder_plans(analysis, prof, INFO)
    for plan, rung in zip(plans, analysis["rungs"], strict=True):
        assert (plan.name, plan.height, plan.crf) == (rung["name"], rung["height"], rung["crf"])
        assert plan.video_bitrate_kbps == rung["cap_kbps"]
        assert plan.extra["per_title"]["target_vmaf"] == rung["target_vmaf"]


def test_per_title_profile_validation(tmp_path: Path):
    data = yaml.safe_load((PROFILES / "per-title.yaml").read_text())
    prof = load_profile("per-title", PROFILES)
    assert profile_from_dict(prof.to_dict()) == prof
    bad = dict(data, rungs=[dict(data["rungs"][0], target_vmaf=None), *data["rungs"][1:]])
    with pytest.raises(ProfileError, match="target_vmaf"):
        profile_from_dict(bad)
    with pytest.raises(ProfileError, match="crfs"):
        profile_from_dict(dict(data, per_title={**data["per_title"], "crfs": [23]}))
    with pytest.raises(ProfileError, match="encode_grouping"):
        profile_from_dict(dict(data, encode_grouping="bunch"))
    assert profile_from_dict(dict(data, encode_grouping="ladder")).encode_grouping == "ladder"


def test_score_argv_decodes_the_reference_once_and_subsamples_pairs(tmp_path: Path):
    ref = Reference(inputs=[["-i", "/src.mp4"]], chain=[], width=1920, height=1080)
    encodes = [Distorted(Path("/a.mp4")), Distorted(Path("/b.mp4"), ["trim=duration=2"])]
    argv = score_argv(ref, encodes, [tmp_path / "a.json", tmp_path / "b.json"], n_subsample=5)
    graph = argv[argv.index("-filter_complex") + 1]
    assert argv.count("/src.mp4") == 1
    assert "split=2" in graph
    assert graph.count(f"select={pair_select_expr(5)}") == 3  # the reference once, each encode once
    assert graph.count("n_subsample=2") == 2
    assert "trim=duration=2" in graph
    assert "-xerror" in argv
    assert graph.count("name=float_ssim") == 2  # the quality stage: VMAF, PSNR and SSIM
    trials = score_argv(
        ref, encodes, [tmp_path / "a.json", tmp_path / "b.json"], n_subsample=8, vmaf_only=True
    )
    assert "float_ssim" not in trials[trials.index("-filter_complex") + 1]  # trials: VMAF alone


def test_parse_input_stats():
    stderr = (
        "[in#0/mov,mp4,m4a,3gp,3g2,mj2 @ 0x1]   Input stream #0:0 (video): 100 packets read (5 bytes); "
        "100 frames decoded; 0 decode errors; \n"
        "[in#1/mov,mp4,m4a,3gp,3g2,mj2 @ 0x2]   Input stream #1:0 (video): 50 packets read (5 bytes); "
        "48 frames decoded; 2 decode errors; \n"
    )
    assert parse_input_stats(stderr) == {0: {"frames": 100, "errors": 0}, 1: {"frames": 48, "errors": 2}}


def test_candidate_heights_never_upscale():
    per_title = load_profile("per-title", PROFILES).per_title
    assert pt.candidate_heights(INFO, per_title) == [1080, 720, 540, 360]
    small = replace(INFO, display_width=1000, display_height=562)
    assert pt.candidate_heights(small, per_title) == [562, 540, 360]
    assert math.isclose(per_title.jnd, 6.0)


def test_scored_pairs_sit_at_varying_places_in_their_blocks():
    for step in (3, 5, 10):
        offsets = [pair_offset(block, step) for block in range(200)]
        assert all(0 <= o <= step - 2 for o in offsets)  # the pair stays inside its block
        assert set(offsets) == set(range(step - 1))  # every place is used: no fixed period
    with pytest.raises(ValueError, match="at least 3 frames"):
        pair_select_expr(2)


def test_short_videos_score_enough_frames():
    assert effective_subsample(10, 1500) == 10  # 60 s at 25 fps: 150 scored frames
    assert effective_subsample(10, 250) == 8  # at least 30 scored frames
    assert effective_subsample(10, 89) == 1  # blocks of 2 hold no pair of neighbours: every frame
    assert effective_subsample(5, None) == 5  # frame count unknown: as asked
    assert effective_subsample(1, 1500) == 1

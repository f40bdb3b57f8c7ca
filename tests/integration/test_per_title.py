"""Per-title ladders, grouped encoding and the one-decode quality pass, on generated clips of
distinct difficulty (real ffmpeg, libx264, libvmaf; the catalog for the end-to-end runs)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from clipfactory import decode_frame

import vam
from vam.media import per_title as pt
from vam.media.encode import encode_rendition
from vam.media.probe import probe
from vam.media.profiles import load_profile, profile_from_dict
from vam.media.quality import decode_check, measure_quality
from vam.media.scoring import score_renditions
from vam.settings import REPO_ROOT

pytestmark = pytest.mark.integration

PROFILES = REPO_ROOT / "include" / "encoding_profiles"
# Kinds of content (lavfi patterns at 320x180, 3 s): static, high motion, flat colours, grain.
KINDS = {
    "static": {"pattern": "smptehdbars"},
    "motion": {"pattern": "mandelbrot", "vf": "hue=H=2*PI*t"},
    "flat": {"pattern": "testsrc"},
    "noise": {"pattern": "testsrc2", "vf": "noise=alls=50:allf=t+u"},
}


def small_profile(directory: Path, *, grouping: str | None = None) -> Path:
    """The shipped per-title profile shrunk for 320x180 test clips (sizes 180/120, three CRFs)."""
    data = yaml.safe_load((PROFILES / "per-title.yaml").read_text())
    data["name"] = "pt-small"
    data["per_title"].update(heights=[180, 120], crfs=[20, 30, 40], samples=2, sample_seconds=1)
    for rung, height in zip(data["rungs"], (180, 180, 180, 120, 120), strict=True):
        rung["height"] = height
        rung["video_bitrate_kbps"] = max(100, rung["video_bitrate_kbps"] // 6)
    if grouping:
        data["encode_grouping"] = grouping
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("default.yaml", "per-title.yaml"):
        shutil.copy(PROFILES / name, directory / name)
    (directory / "pt-small.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return directory


@pytest.fixture(scope="module")
def kinds(clips):
    return {k: clips.make(width=320, height=180, seconds=3, **v) for k, v in KINDS.items()}


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    return load_profile("pt-small", small_profile(tmp_path_factory.mktemp("profiles")))


@pytest.fixture(scope="module")
def analyses(kinds, profile):
    """The per-title analysis of every clip, as the pipeline's steps run it."""
    out = {}
    for kind, clip in kinds.items():
        info = probe(clip)
        samples = pt.choose_samples(pt.packet_scan(clip), info.duration, count=2, seconds=1.0)
        trials = [
            pt.run_trial(clip, info, profile, samples, h)
            for h in pt.candidate_heights(info, profile.per_title)
        ]
        out[kind] = (info, samples, trials, pt.choose_ladder(trials, profile, info))
    return out


def test_shipped_per_title_profile_round_trips():
    prof = load_profile("per-title", PROFILES)
    assert prof.per_title is not None
    assert prof.per_title.jnd == 6
    assert [r.target_vmaf for r in prof.rungs] == [95, 89, 83, 77, 71]
    assert profile_from_dict(prof.to_dict()) == prof
    # a fixed profile's pinned definition is unchanged by the new options (same keys as before)
    assert "per_title" not in load_profile("default", PROFILES).to_dict()


def test_samples_lie_inside_the_source_without_overlap(analyses):
    for kind, (info, samples, _, _) in analyses.items():
        assert len(samples) == 2, kind
        assert all(s["start"] >= 0 and s["start"] + s["duration"] <= info.duration + 0.01 for s in samples)
        assert samples[0]["start"] + samples[0]["duration"] <= samples[1]["start"] + 1e-6  # no overlap


def test_trial_curves_and_hull_are_monotone(analyses):
    for kind, (_, _, trials, analysis) in analyses.items():
        for trial in trials:
            curve = sorted(trial["points"], key=lambda p: p["crf"])
            rates = [p["bitrate_kbps"] for p in curve]
            assert rates == sorted(rates, reverse=True), (
                kind,
                trial["height"],
                rates,
            )  # higher CRF, fewer bits
            assert all(0 <= p["vmaf"] <= 100 for p in curve)
        hull = analysis["hull"]
        assert len(hull) >= 2, kind
        assert [p["bitrate_kbps"] for p in hull] == sorted(p["bitrate_kbps"] for p in hull)
        vmafs = [p["vmaf"] for p in hull]
        assert vmafs == sorted(vmafs), (kind, vmafs)
        assert len(set(vmafs)) == len(vmafs), (kind, vmafs)


def test_rungs_are_ordered_and_meet_or_report_their_targets(analyses, profile):
    targets = {r.name: r.target_vmaf for r in profile.rungs}
    for kind, (_, _, _, analysis) in analyses.items():
        rungs = analysis["rungs"]
        assert rungs, kind
        assert rungs[0]["name"] == "q95", kind
        assert [r["height"] for r in rungs] == sorted((r["height"] for r in rungs), reverse=True)
        rates = [r["predicted_kbps"] for r in rungs]
        assert rates == sorted(rates, reverse=True), (kind, rates)
        assert len(set(rates)) == len(rates), (kind, rates)
        for r in rungs:
            assert r["predicted_kbps"] <= r["cap_kbps"] + 0.1
            if r["target_met"]:
                assert r["predicted_vmaf"] >= targets[r["name"]] - 1e-6, (kind, r)
            else:
                assert "cannot be reached" in r["reason"] or "above the cap" in r["reason"], (kind, r)
        for d in analysis["dropped"]:
            assert "within one JND" in d["reason"]
        assert {r["name"] for r in rungs} | {d["name"] for d in analysis["dropped"]} == set(targets)


def test_static_content_gets_far_fewer_bits_than_hard_content(analyses):
    top = {kind: a[3]["rungs"][0] for kind, a in analyses.items()}
    assert top["static"]["predicted_kbps"] * 4 < top["noise"]["predicted_kbps"], top
    assert top["static"]["predicted_kbps"] * 2 < top["motion"]["predicted_kbps"], top


def test_chosen_rung_encodes_to_its_predicted_quality(kinds, analyses, profile, tmp_path):
    """The top rung of the static and the flat clip, encoded whole: the decoded rendition has the
    planned size and frames, and its VMAF is near what the samples predicted."""
    for kind in ("static", "flat"):
        info, _, _, analysis = analyses[kind]
        plan = pt.ladder_plans(analysis, profile, info)[0]
        out = tmp_path / f"{kind}.mp4"
        made = encode_rendition(kinds[kind], plan, profile, out, info)
        assert (made["width"], made["height"]) == (plan.width, plan.height)
        assert decode_check(out)["frame_count"] == info.frame_count
        frame = decode_frame(out, 10)
        assert frame.shape[:2] == (plan.height, plan.width)
        assert float(np.std(frame)) > 5
        vmaf = measure_quality(kinds[kind], out, info)["vmaf"]["mean"]
        assert vmaf >= analysis["rungs"][0]["predicted_vmaf"] - 4, (kind, vmaf, analysis["rungs"][0])


def test_hull_chart_is_a_png(analyses, tmp_path):
    path = pt.hull_chart(analyses["motion"][3], tmp_path / "hull.png", title="motion")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert path.stat().st_size > 5000


def test_one_pass_scoring_matches_scoring_every_frame(clips, kinds, tmp_path):
    """One decode of the source for every rendition, subsampled before scaling, with the decode
    check folded in: pooled VMAF within 1.5 points of each rendition scored on every frame."""
    clip = clips.make(width=320, height=180, seconds=10, audio=False, **KINDS["motion"])
    info = probe(clip)
    prof = load_profile("default", PROFILES)
    outs = []
    for height, crf in ((180, 23), (120, 30)):
        plan = pt.trial_plan(info, prof, prof.rungs[0], height, crf)
        out = tmp_path / f"{height}.mp4"
        encode_rendition(clip, plan, prof, out, info)
        outs.append(out)
    shared = score_renditions(clip, info, outs, n_subsample=5)
    assert [r["n_subsample"] for r in shared] == [5, 5]  # 250 frames: 50 scored pairs
    small, small_info = kinds["motion"], probe(kinds["motion"])
    encode_rendition(
        small, pt.trial_plan(small_info, prof, prof.rungs[0], 120, 30), prof, tmp_path / "s.mp4", small_info
    )
    short = score_renditions(small, small_info, [tmp_path / "s.mp4"], n_subsample=5)
    assert short[0]["n_subsample"] == 1  # 75 frames: too few to subsample, every frame is scored
    for out, result in zip(outs, shared, strict=True):
        full = measure_quality(clip, out, info, n_subsample=1)
        assert abs(result["vmaf"]["mean"] - full["vmaf"]["mean"]) <= 1.5, (
            out.name,
            result["vmaf"],
            full["vmaf"],
        )
        assert result["decodes"]
        assert result["frame_count"] == decode_check(out)["frame_count"]
        assert abs(result["ssim"]["mean"] - full["ssim"]["mean"]) < 0.02


def test_one_pass_scoring_fails_on_a_broken_rendition(kinds, tmp_path):
    clip = kinds["flat"]
    info = probe(clip)
    good = tmp_path / "good.mp4"
    prof = load_profile("default", PROFILES)
    encode_rendition(clip, pt.trial_plan(info, prof, prof.rungs[0], 180, 30), prof, good, info)
    broken = tmp_path / "broken.mp4"
    data = bytearray(good.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4000] = b"\x00" * 4000
    broken.write_bytes(bytes(data))
    with pytest.raises(vam.errors.VamError):
        score_renditions(clip, info, [good, broken], n_subsample=5)


@pytest.mark.slow
def test_process_per_title_end_to_end(vam_home, clips, kinds, tmp_path, monkeypatch):
    """``vam.process`` with a per-title profile in ladder grouping: the analysis, the chosen ladder in
    the catalog and the summary, the hull PNG stored with the asset, every rendition scored."""
    monkeypatch.setenv("VAM_PROFILES_DIR", str(small_profile(tmp_path / "profiles", grouping="ladder")))
    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    result = vam.process(str(kinds["flat"]), profile="pt-small")
    assert result["status"] == "ready", result["reason"]
    analysis = result["ladder_analysis"]
    assert analysis
    assert analysis["rungs"]
    assert analysis["hull"]
    assert analysis["samples"]
    chosen = {r["name"]: r for r in analysis["rungs"]}
    renditions = {r["name"]: r for r in result["renditions"]}
    assert set(renditions) == set(chosen)
    for name, r in renditions.items():
        assert r["height"] == chosen[name]["height"]
        assert r["vmaf"] is not None
        assert r["vmaf"] > 40
    shown = vam.show(result["asset_id"])
    charts = [o for o in shown["objects"] if o["kind"] == "ladder_chart"]
    assert len(charts) == 1
    assert charts[0]["uri"] == analysis["chart_uri"]
    from vam import storage

    chart = tmp_path / "chart.png"
    storage.store_for(charts[0]["uri"]).get(charts[0]["uri"], chart)
    assert chart.read_bytes()[:4] == b"\x89PNG"
    from vam.runtime import Runtime

    with Runtime.from_env().catalog() as cat:
        trials = cat.ladder_trials(result["asset_id"], result["profile"])
    assert [t["candidate"] for t in trials] == ["180p", "120p"]
    assert all(len(t["points"]) == 3 for t in trials)


@pytest.mark.slow
def test_process_default_profile_grouped_ladder(vam_home, clips, monkeypatch):
    """``VAM_ENCODE_GROUPING=ladder`` with the fixed default ladder: one decode for every rung, and
    each rendition still has its own row, scores and decodable file."""
    monkeypatch.setenv("VAM_ENCODE_GROUPING", "ladder")
    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    clip = clips.make(width=854, height=480, seconds=2, pattern="testsrc2")
    result = vam.process(str(clip))
    assert result["status"] == "ready", result["reason"]
    assert [r["name"] for r in result["renditions"]] == ["480p", "360p"]
    assert result["ladder_analysis"] is None
    for r in result["renditions"]:
        assert r["vmaf"] is not None
        assert r["vmaf"] > 50
        assert r["ssim"]
        assert r["psnr"]

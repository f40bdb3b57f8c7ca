"""Per-title benchmark: the per-title ladder against the fixed default ladder on clips of distinct
difficulty, and what the analysis costs.

Run as ``.venv/bin/python bench/bench_per_title.py [--seconds 30] [--clips static,motion,...]
[--keep]``. For each generated 1080p25 clip (lavfi, x264 CRF 16 mezzanine, no audio) it:

1. encodes the fixed ``default`` ladder (vam's ``plan_ladder`` + ``encode_rendition``) and scores
   every rendition (``score_renditions``: VMAF at 1080p, n_subsample 10);
2. runs the per-title analysis of the ``per-title`` profile as the pipeline does (packet scan,
   samples, one trial per candidate size, hull, rungs), then encodes and scores the chosen ladder;
3. compares them: total video bitrate of each ladder; the bits a per-title ladder needs to match
   every fixed rung's VMAF (interpolated on the per-title rungs' measured points, log rate);
   a BD-rate style figure (mean log-rate difference over the VMAF range both ladders cover,
   piecewise linear); the analysis CPU as a share of the per-title ladder's encode CPU.

CPU seconds are user+system of the ffmpeg children (``getrusage(RUSAGE_CHILDREN)`` deltas).
"""

from __future__ import annotations

import argparse
import math
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from vam.media import per_title as pt
from vam.media import tools
from vam.media.encode import encode_rendition
from vam.media.ladder import plan_ladder
from vam.media.probe import probe
from vam.media.profiles import load_profile
from vam.media.scoring import score_renditions
from vam.settings import load_settings

# lavfi sources at 1920x1080, 25 fps: from easy to hard
CLIPS = {
    "static": (  # a webinar: a still slide with a small talking-head box moving a little
        "color=c=0x203040:s=1920x1080:r=25[bg];testsrc2=s=480x270:r=25[box];"
        "smptehdbars=s=1200x675:r=25[slide];[bg][slide]overlay=x=80:y=200[a];"
        "[a][box]overlay=x='1360+20*sin(t)':y=600"
    ),
    "animation": (  # flat colours, hard edges, lots of movement
        "life=s=480x270:r=25:mold=10:ratio=0.1:seed=7:death_color=#C83232:life_color=#00ff00,"
        "scale=1920:1080:flags=neighbor"
    ),
    "motion": (  # everything moves (the transcode benchmark's source)
        "testsrc2=s=1920x1080:r=25[a];mandelbrot=s=1920x1080:r=25[b];[a][b]blend=all_mode=average"
    ),
    "grain": "testsrc2=s=1920x1080:r=25,noise=alls=24:allf=t+u",  # film-grain-like noise
}


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def make_clip(kind: str, seconds: float, out: Path) -> Path:
    argv = [*tools.ffmpeg_argv(), "-filter_complex", CLIPS[kind] + ",format=yuv420p", "-t", str(seconds)]
    argv += ["-c:v", "libx264", "-preset", "veryfast", "-crf", "16", "-an", str(out)]
    tools.run(argv, log_progress=False)
    return out


def encode_and_score(source: Path, info: Any, plans: list, prof: Any, work: Path) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    started = cpu()
    outs, made = [], []
    for plan in plans:
        out = work / f"{plan.name}.mp4"
        made.append(encode_rendition(source, plan, prof, out, info))
        outs.append(out)
    encode_cpu = cpu() - started
    started = cpu()
    scores = score_renditions(source, info, outs, n_subsample=10)
    score_cpu = cpu() - started
    rungs = [
        {
            "name": p.name,
            "size": f"{p.width}x{p.height}",
            "crf": p.crf,
            "kbps": m["size_bytes"] * 8 / m["duration"] / 1000,
            "vmaf": s["vmaf"]["mean"],
        }
        for p, m, s in zip(plans, made, scores, strict=True)
    ]
    return {"rungs": rungs, "encode_cpu": encode_cpu, "score_cpu": score_cpu}


def rate_at(curve: list[tuple[float, float]], vmaf: float) -> float:
    """kb/s a ladder needs for ``vmaf``, on its (vmaf, kbps) points (log rate, piecewise linear);
    below its lowest point: its lowest rung's rate (which scores higher: an overestimate)."""
    pts = sorted(curve)
    if vmaf <= pts[0][0] or len(pts) < 2:
        return pts[0][1]
    for (v0, r0), (v1, r1) in zip(pts, pts[1:], strict=False):
        if v0 <= vmaf <= v1:
            f = (vmaf - v0) / (v1 - v0) if v1 > v0 else 0.0
            return math.exp(math.log(r0) + f * (math.log(r1) - math.log(r0)))
    # above the best this ladder reached: extrapolate its top segment (log rate)
    (v0, r0), (v1, r1) = pts[-2], pts[-1]
    slope = (math.log(r1) - math.log(r0)) / (v1 - v0) if v1 > v0 else 0.0
    return math.exp(math.log(r1) + slope * (vmaf - v1))


def bd_rate(fixed: list[tuple[float, float]], other: list[tuple[float, float]]) -> float | None:
    """Mean relative rate difference (other vs fixed) over the VMAF range both cover, or None."""
    lo = max(min(v for v, _ in fixed), min(v for v, _ in other))
    hi = min(max(v for v, _ in fixed), max(v for v, _ in other))
    if hi - lo < 1.0:
        return None
    steps = 200
    diffs = []
    for i in range(steps + 1):
        v = lo + (hi - lo) * i / steps
        diffs.append(math.log(rate_at(other, v)) - math.log(rate_at(fixed, v)))
    return math.exp(sum(diffs) / len(diffs)) - 1


def analyse(source: Path, info: Any, prof: Any) -> tuple[dict[str, Any], float, float]:
    wall, started = time.monotonic(), cpu()
    packets = pt.packet_scan(source)
    samples = pt.choose_samples(
        packets, info.duration, count=prof.per_title.samples, seconds=prof.per_title.sample_seconds
    )
    trials = [
        pt.run_trial(source, info, prof, samples, h) for h in pt.candidate_heights(info, prof.per_title)
    ]
    analysis = pt.choose_ladder(trials, prof, info)
    analysis["samples"] = samples
    return analysis, cpu() - started, time.monotonic() - wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="clip length (default 30)")
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated, of {', '.join(CLIPS)}")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    settings = load_settings()
    tools.configure(ffmpeg=settings.ffmpeg or None, ffprobe=settings.ffprobe or None)
    fixed_prof = load_profile("default", settings.profiles_dir)
    pt_prof = load_profile("per-title", settings.profiles_dir)
    work = Path(tempfile.mkdtemp(prefix="vam-bench-pt-"))
    totals = {
        "fixed_kbps": 0.0,
        "matched_kbps": 0.0,
        "pt_kbps": 0.0,
        "analysis_cpu": 0.0,
        "pt_encode_cpu": 0.0,
    }
    bds = []
    print("=== vam per-title benchmark ===")
    print(
        f"clips: {args.clips}, {args.seconds:g} s 1080p25 each; "
        f"fixed: {fixed_prof.key}; per-title: {pt_prof.key}"
    )
    print(f"per_title: {pt_prof.per_title.to_dict()}")
    try:
        for kind in args.clips.split(","):
            print(f"\n--- {kind} ---", flush=True)
            source = make_clip(kind, args.seconds, work / f"{kind}.mp4")
            info = probe(source)
            fixed = encode_and_score(
                source, info, plan_ladder(info, fixed_prof), fixed_prof, work / kind / "fixed"
            )
            analysis, analysis_cpu, analysis_wall = analyse(source, info, pt_prof)
            plans = pt.ladder_plans(analysis, pt_prof, info)
            ours = encode_and_score(source, info, plans, pt_prof, work / kind / "per-title")
            print(f"samples: {analysis['samples']}")
            for label, result in (("fixed", fixed), ("per-title", ours)):
                for r in result["rungs"]:
                    print(
                        f"  {label:9} {r['name']:6} {r['size']:>10} crf {r['crf']!s:>3}"
                        f" {r['kbps']:8.0f} kb/s  VMAF {r['vmaf']:6.2f}"
                    )
            for r in analysis["rungs"]:
                print(f"  chosen {r['name']}: {r['reason']} (predicted {r['predicted_vmaf']:.1f})")
            for r in analysis["dropped"]:
                print(f"  dropped {r['name']}: {r['reason']}")
            fixed_curve = [(r["vmaf"], r["kbps"]) for r in fixed["rungs"]]
            ours_curve = [(r["vmaf"], r["kbps"]) for r in ours["rungs"]]
            matched = sum(min(rate_at(ours_curve, v), math.inf) for v, _ in fixed_curve)
            fixed_total = sum(k for _, k in fixed_curve)
            ours_total = sum(k for _, k in ours_curve)
            bd = bd_rate(fixed_curve, ours_curve)
            if bd is not None:
                bds.append(bd)
            share = analysis_cpu / ours["encode_cpu"] if ours["encode_cpu"] else 0.0
            print(
                f"  totals: fixed ladder {fixed_total:.0f} kb/s ({len(fixed_curve)} rungs), per-title ladder "
                f"{ours_total:.0f} kb/s ({len(ours_curve)} rungs); per-title at each fixed rung's VMAF "
                f"{matched:.0f} kb/s = {100 * (matched / fixed_total - 1):+.1f}%"
            )
            print(
                f"  BD-rate (per-title vs fixed, log rate over the shared VMAF range): "
                f"{'n/a (no shared range)' if bd is None else f'{100 * bd:+.1f}%'}"
            )
            print(
                f"  analysis: {analysis_cpu:.1f} CPU s ({analysis_wall:.1f} s wall); per-title ladder encode "
                f"{ours['encode_cpu']:.1f} CPU s; share {100 * share:.0f}%; fixed ladder encode "
                f"{fixed['encode_cpu']:.1f} CPU s; scoring {fixed['score_cpu']:.1f} / "
                f"{ours['score_cpu']:.1f} CPU s"
            )
            totals["fixed_kbps"] += fixed_total
            totals["matched_kbps"] += matched if math.isfinite(matched) else fixed_total
            totals["pt_kbps"] += ours_total
            totals["analysis_cpu"] += analysis_cpu
            totals["pt_encode_cpu"] += ours["encode_cpu"]
        print("\n=== overall ===")
        print(
            f"bits at equal or better VMAF per fixed rung: {totals['matched_kbps']:.0f} vs "
            f"{totals['fixed_kbps']:.0f} "
            f"kb/s = {100 * (totals['matched_kbps'] / totals['fixed_kbps'] - 1):+.1f}% (aim: <= -30%)"
        )
        if bds:
            print(f"BD-rate, mean over {len(bds)} clips: {100 * sum(bds) / len(bds):+.1f}%")
        print(
            f"analysis CPU / per-title ladder encode CPU: "
            f"{100 * totals['analysis_cpu'] / totals['pt_encode_cpu']:.0f}% (aim: <= 50%)"
        )
        return 0
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Per-title ladders: encode samples of the source, score them, choose each rung's size and CRF.

The analysis, in the order the pipeline runs it (:mod:`vam.steps.ladder_analysis`):

1. **Samples** (:func:`scene_activity`, :func:`choose_samples`): a fast pass over a 144-line decode
   of the source gives every frame's scene-change score (ffmpeg's ``select`` scene score). Cuts are
   where it jumps (>= :data:`CUT_SCORE`); a window's *activity* is its mean score (motion and
   change). ``samples`` windows of ``sample_seconds`` that do not straddle a cut are picked at
   spread quantiles of activity, always including the most active one, so the samples span the
   source's difficulty and lean on its hardest part. (TransNetV2, vam's scene detector, runs in
   enrichment beside the transcode and is slower than this whole analysis, so the plan cannot
   wait for it.) A source shorter than the samples together is its own single sample.
2. **Trials** (:func:`run_trial`, one per candidate size: a mapped task each): one ffmpeg process
   reads just the samples (input seeking), joins them, scales once and encodes every trial CRF
   through a ``split``; a second process decodes the samples once and scores every trial against
   them with VMAF upscaled to the source's display size (:func:`vam.media.scoring.score_many`).
   Each trial is a point (size, CRF, bitrate, VMAF).
3. **Hull and rungs** (:func:`convex_hull`, :func:`choose_ladder`): the upper convex hull of VMAF
   against log bitrate over every point shows which size is efficient at which rate. For each rung
   (highest target first), every candidate size no larger than the rung's ``height`` and the size
   of the rung above is interpolated (VMAF and log bitrate, piecewise linear in CRF) to the CRF that
   reaches the rung's ``target_vmaf`` (rounded down: never below target); the size that needs the
   fewest bits within the rung's cap (``video_bitrate_kbps``) wins. A rung that cannot reach its
   target within its cap takes the best VMAF under the cap and says so (``target_met: false`` and a
   ``reason``). A rung within one JND (``jnd`` VMAF points) of the rung kept above it that also saves
   less than ``min_bitrate_step`` of its bits adds nothing and is dropped, with the reason.
4. :func:`hull_chart` draws the points, the hull and the chosen rungs (matplotlib, PNG).

The chosen rungs are encoded with capped CRF as every rung is (``-crf`` with ``-maxrate`` = the cap).
"""

from __future__ import annotations

import logging
import math
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from vam.media import tools
from vam.media.encode import (
    _rendition_filters,
    _video_args,
    deinterlace_filters,
    rate_fraction,
    tone_map_filter,
)
from vam.media.ladder import plan_ladder
from vam.media.quality import reference_conditioning, trim_input_args
from vam.media.scoring import Distorted, Reference, score_many
from vam.media.types import MediaInfo, PerTitle, Profile, RenditionPlan, Rung

log = logging.getLogger(__name__)

CUT_SCORE = 0.3  # a frame whose scene score reaches this starts a new shot
SCAN_HEIGHT = 144  # lines of the decode the activity scan looks at
TRIAL_CAP_KBPS = 200_000  # trials are uncapped CRF encodes: a cap no trial reaches


# -- 1. samples ------------------------------------------------------------------------------------


def scene_activity(source: Path, *, threads: int = 0) -> list[tuple[float, float]]:
    """``[(time s, scene score 0..1)]`` for every frame of ``source``, from a small decode."""
    with tempfile.TemporaryDirectory(prefix="vam-scan-") as tmp:
        out = Path(tmp) / "scores.txt"
        chain = (
            f"scale=w=-2:h={SCAN_HEIGHT}:flags=fast_bilinear,select=gte(scene\\,0),"
            f"metadata=print:key=lavfi.scene_score:file={out.as_posix()}"
        )
        argv = [*tools.ffmpeg_argv(threads=threads), "-an", "-sn", "-dn", "-i", str(Path(source).absolute())]
        tools.run([*argv, "-map", "0:v:0", "-vf", chain, "-f", "null", "-"], log_progress=False)
        return parse_scene_scores(out.read_text() if out.exists() else "")


def parse_scene_scores(text: str) -> list[tuple[float, float]]:
    """The ``metadata=print`` file of a scene-score pass as ``[(pts_time, score)]``."""
    scores: list[tuple[float, float]] = []
    when: float | None = None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("frame:"):
            for part in line.split():
                if part.startswith("pts_time:"):
                    try:
                        when = float(part.partition(":")[2])
                    except ValueError:
                        when = None
        elif line.startswith("lavfi.scene_score=") and when is not None:
            scores.append((when, float(line.partition("=")[2])))
            when = None
    return scores


def choose_samples(
    scores: list[tuple[float, float]], duration: float, *, count: int, seconds: float
) -> list[dict[str, Any]]:
    """``count`` windows of ``seconds`` that represent the source (see the module's description):
    ``[{"start", "duration", "activity"}]`` in time order."""
    duration = float(duration)
    if duration <= count * seconds or len(scores) < 2:
        mean = sum(s for _, s in scores) / len(scores) if scores else 0.0
        return [{"start": 0.0, "duration": round(duration, 3), "activity": round(mean, 4)}]
    cuts = [t for t, s in scores if s >= CUT_SCORE]
    step = max(seconds / 4, 0.25)
    windows = []
    start = 0.0
    while start + seconds <= duration + 1e-6:
        inside = [s for t, s in scores if start <= t < start + seconds]
        crosses = any(start < c < start + seconds for c in cuts)
        if inside:
            windows.append({"start": start, "activity": sum(inside) / len(inside), "crosses": crosses})
        start += step
    clean = [w for w in windows if not w["crosses"]]
    pool = clean if len(clean) >= count else windows
    pool.sort(key=lambda w: w["activity"])
    chosen: list[dict[str, Any]] = []
    for k in range(count):
        quantile = 1.0 - k / count  # 1.0 (the hardest), then spread down
        wanted = pool[min(len(pool) - 1, round(quantile * (len(pool) - 1)))]["activity"]
        free = [w for w in pool if all(abs(w["start"] - c["start"]) >= seconds for c in chosen)]
        if not free:
            break
        chosen.append(min(free, key=lambda w: abs(w["activity"] - wanted)))
    chosen.sort(key=lambda w: w["start"])
    return [
        {"start": round(w["start"], 3), "duration": float(seconds), "activity": round(w["activity"], 4)}
        for w in chosen
    ]


def candidate_heights(info: MediaInfo, per_title: PerTitle) -> list[int]:
    """The sizes (short side) to try: the profile's, never above the source; the source's own size
    when it lies above every candidate that fits (or none fits)."""
    short = min(info.display_width, info.display_height)
    own = max(2, short - short % 2)
    heights = [h for h in per_title.heights if h <= short]
    if not heights or (own > max(heights) and max(per_title.heights) > own):
        heights.append(own)
    return sorted(set(heights), reverse=True)


# -- 2. trials -------------------------------------------------------------------------------------


def trial_plan(info: MediaInfo, profile: Profile, rung: Rung, height: int, crf: int) -> RenditionPlan:
    """The rendition plan of one trial: ``rung``'s codec settings at ``height`` and ``crf``, uncapped."""
    template = replace(rung, height=height, crf=crf, video_bitrate_kbps=TRIAL_CAP_KBPS)
    one = replace(profile, rungs=(template,), per_title=None)
    plan = plan_ladder(info, one)[0]
    return replace(plan, name=f"{height}p-crf{crf}")


def _sample_inputs(source: Path, samples: list[dict[str, Any]]) -> list[list[str]]:
    path = str(Path(source).absolute())
    return [[*trim_input_args(s["start"], s["duration"]), "-i", path] for s in samples]


def trial_encode_argv(
    source: Path,
    info: MediaInfo,
    samples: list[dict[str, Any]],
    plans: list[RenditionPlan],
    outs: list[Path],
    *,
    threads: int = 0,
) -> list[str]:
    """One ffmpeg process: read the samples, join them, scale once, encode every plan (its CRF)."""
    quiet = replace(info, audio_codec=None)  # samples are never padded to the audio
    argv = tools.ffmpeg_argv(threads=threads)
    for group in _sample_inputs(source, samples):
        argv += ["-an", "-sn", "-dn", *group]
    n = len(samples)
    joined = "".join(f"[{i}:v:0]" for i in range(n))
    head = f"{joined}concat=n={n}:v=1:a=0," if n > 1 else "[0:v:0]"
    chain = [*deinterlace_filters(info), *_rendition_filters(plans[0], quiet)]
    graph = f"{head}{','.join(chain)},split={len(plans)}" + "".join(f"[v{i}]" for i in range(len(plans)))
    argv += ["-filter_complex", graph]
    for i, (plan, out) in enumerate(zip(plans, outs, strict=True)):
        argv += ["-map", f"[v{i}]", *_video_args(plan, threads, quiet), "-an", "-f", "mp4", str(out)]
    return argv


def run_trial(
    source: Path,
    info: MediaInfo,
    profile: Profile,
    samples: list[dict[str, Any]],
    height: int,
    *,
    threads: int = 0,
) -> dict[str, Any]:
    """Encode the samples at ``height`` with every trial CRF and score them: ``{"height", "width",
    "points": [{"width", "height", "crf", "bitrate_kbps", "vmaf", "vmaf_min", "bytes"}],
    "encode_seconds", "score_seconds"}``."""
    per_title = profile.per_title or PerTitle()
    rung = profile.rungs[0]
    plans = [trial_plan(info, profile, rung, height, crf) for crf in per_title.crfs]
    seconds = sum(float(s["duration"]) for s in samples)
    with tempfile.TemporaryDirectory(prefix="vam-trial-") as tmp:
        outs = [Path(tmp) / f"{p.name}.mp4" for p in plans]
        started = time.monotonic()
        tools.run(trial_encode_argv(source, info, samples, plans, outs, threads=threads))
        encoded = time.monotonic() - started
        conditioning = reference_conditioning(info, outs[0], trimmed=True)
        chain = list(deinterlace_filters(info))
        if conditioning["tone_map"]:
            chain.append(tone_map_filter(info))
        # the joined samples get the trials' constant rate, as the encode gave it (this also closes
        # the timestamp gaps between samples, so frames pair one to one)
        chain.append(f"fps={conditioning['fps'] or rate_fraction(plans[0].fps)}")
        reference = Reference(
            inputs=_sample_inputs(source, samples),
            chain=chain,
            width=int(info.display_width),
            height=int(info.display_height),
        )
        scored = score_many(
            reference,
            [Distorted(o) for o in outs],
            model=profile.vmaf_model,
            n_subsample=per_title.n_subsample,
            threads=threads,
        )
        points = []
        for plan, out, score in zip(plans, outs, scored, strict=True):
            size = out.stat().st_size
            points.append(
                {
                    "width": plan.width,
                    "height": plan.height,
                    "size": height,
                    "crf": plan.crf,
                    "bitrate_kbps": round(size * 8 / seconds / 1000, 1) if seconds else 0.0,
                    "vmaf": round(score["vmaf"]["mean"], 3),
                    "vmaf_min": round(score["vmaf"]["min"], 3),
                    "bytes": size,
                }
            )
    result = {
        "height": height,
        "width": plans[0].width,
        "points": points,
        "encode_seconds": round(encoded, 3),
        "score_seconds": round(scored[0]["elapsed_seconds"], 3),
    }
    summary = ", ".join(f"crf {p['crf']} {p['bitrate_kbps']:.0f} kb/s vmaf {p['vmaf']:.1f}" for p in points)
    log.info("trials at %dp: %s", height, summary)
    return result


# -- 3. hull and rungs -----------------------------------------------------------------------------


def convex_hull(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The upper convex hull of VMAF against log bitrate: the efficient points, by rising bitrate."""
    pts = sorted((p for p in points if p["bitrate_kbps"] > 0), key=lambda p: (p["bitrate_kbps"], -p["vmaf"]))
    hull: list[dict[str, Any]] = []
    for p in pts:
        if hull and p["vmaf"] <= hull[-1]["vmaf"]:
            continue  # more bits for no more quality: never on the hull
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    return hull


def _cross(a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]) -> float:
    """> 0 when b lies below the segment a-c (b is then not on the upper hull)."""
    ax, bx, cx = (math.log(p["bitrate_kbps"]) for p in (a, b, c))
    return (bx - ax) * (c["vmaf"] - a["vmaf"]) - (b["vmaf"] - a["vmaf"]) * (cx - ax)


def _interpolate(curve: list[dict[str, Any]], crf: float) -> tuple[float, float]:
    """(VMAF, bitrate kb/s) at ``crf`` on one size's trial curve (sorted by CRF), piecewise linear
    (bitrate in log), clamped to the CRFs tried."""
    crf = min(max(crf, curve[0]["crf"]), curve[-1]["crf"])
    for lo, hi in zip(curve, curve[1:], strict=False):
        if lo["crf"] <= crf <= hi["crf"]:
            f = (crf - lo["crf"]) / (hi["crf"] - lo["crf"]) if hi["crf"] != lo["crf"] else 0.0
            vmaf = lo["vmaf"] + f * (hi["vmaf"] - lo["vmaf"])
            rate = math.exp(
                math.log(lo["bitrate_kbps"])
                + f * (math.log(hi["bitrate_kbps"]) - math.log(lo["bitrate_kbps"]))
            )
            return vmaf, rate
    return curve[0]["vmaf"], curve[0]["bitrate_kbps"]


def _options(curve: list[dict[str, Any]]) -> list[tuple[int, float, float]]:
    """Every integer CRF in the tried range with its predicted (VMAF, bitrate)."""
    return [(c, *_interpolate(curve, c)) for c in range(curve[0]["crf"], curve[-1]["crf"] + 1)]


def choose_ladder(trials: list[dict[str, Any]], profile: Profile, info: MediaInfo) -> dict[str, Any]:
    """The rungs for this source from its trials (see the module's description).

    Returns ``{"rungs": [{"name", "target_vmaf", "cap_kbps", "height", "width", "crf",
    "predicted_vmaf", "predicted_kbps", "target_met", "reason"}], "dropped": [{"name", "reason",
    ...}], "hull": [points], "points": [every point]}``, rungs highest first.
    """
    per_title = profile.per_title or PerTitle()
    curves = {t["height"]: sorted(t["points"], key=lambda p: p["crf"]) for t in trials if t.get("points")}
    if not curves:
        raise ValueError("no trial points: the per-title analysis has nothing to choose from")
    points = [p for t in trials for p in t.get("points", [])]
    chosen: list[dict[str, Any]] = []
    dropped: list[dict[str, Any]] = []
    ceiling = max(curves)
    for rung in profile.rungs:
        target, cap = float(rung.target_vmaf or 0.0), float(rung.video_bitrate_kbps)
        sizes = [h for h in curves if h <= min(rung.height, ceiling)] or [min(curves)]
        meeting, capped = [], []
        for h in sizes:
            for crf, vmaf, rate in _options(curves[h]):
                option = {"height": h, "crf": crf, "predicted_vmaf": vmaf, "predicted_kbps": rate}
                if rate <= cap:
                    capped.append(option)
                    if vmaf >= target:
                        meeting.append(option)
        if meeting:
            best = min(meeting, key=lambda o: (o["predicted_kbps"], -o["height"]))
            met = True
            why = (
                f"{best['height']}p CRF {best['crf']} is the fewest bits reaching VMAF {target:g} "
                f"among {', '.join(f'{h}p' for h in sizes)} (cap {cap:g} kb/s)"
            )
        elif capped:
            best = max(capped, key=lambda o: (o["predicted_vmaf"], -o["predicted_kbps"]))
            met = False
            why = (
                f"VMAF {target:g} cannot be reached within the cap of {cap:g} kb/s: best under the cap "
                f"is {best['height']}p CRF {best['crf']} at VMAF {best['predicted_vmaf']:.1f}"
            )
        else:
            h = min(sizes)
            crf, vmaf, rate = _options(curves[h])[-1]
            best = {"height": h, "crf": crf, "predicted_vmaf": vmaf, "predicted_kbps": rate}
            met = False
            why = (
                f"even {h}p at CRF {crf} needs {rate:.0f} kb/s, above the cap of {cap:g} kb/s: the "
                f"encode is held to the cap (maxrate) and will score below VMAF {target:g}"
            )
        width = next(p["width"] for p in curves[best["height"]])
        entry = {
            "name": rung.name,
            "target_vmaf": target,
            "cap_kbps": cap,
            "height": best["height"],
            "width": width,
            "crf": best["crf"],
            "predicted_vmaf": round(best["predicted_vmaf"], 2),
            "predicted_kbps": round(min(best["predicted_kbps"], cap), 1),
            "target_met": met,
            "reason": why,
        }
        above = chosen[-1] if chosen else None
        if above is not None:
            step = above["predicted_vmaf"] - entry["predicted_vmaf"]
            saving = 1 - entry["predicted_kbps"] / above["predicted_kbps"] if above["predicted_kbps"] else 0
            if step < per_title.jnd and saving < per_title.min_bitrate_step:
                dropped.append(
                    {
                        **entry,
                        "reason": (
                            f"adds nothing: VMAF {entry['predicted_vmaf']:.1f} is within one JND "
                            f"({per_title.jnd:g}) of {above['name']} ({above['predicted_vmaf']:.1f}) and "
                            f"saves only {saving:.0%} of its bits (< {per_title.min_bitrate_step:.0%})"
                        ),
                    }
                )
                continue
        chosen.append(entry)
        ceiling = entry["height"]  # rungs below never use a larger size
    return {"rungs": chosen, "dropped": dropped, "hull": convex_hull(points), "points": points}


def ladder_plans(analysis: dict[str, Any], profile: Profile, info: MediaInfo) -> list[RenditionPlan]:
    """The renditions to encode for a chosen ladder: each rung at its size and CRF, capped."""
    by_name = {r.name: r for r in profile.rungs}
    plans = []
    for chosen in analysis["rungs"]:
        rung = replace(by_name[chosen["name"]], height=int(chosen["height"]), crf=int(chosen["crf"]))
        plan = plan_ladder(info, replace(profile, rungs=(rung,), per_title=None))[0]
        extra = {
            "per_title": {
                k: chosen[k] for k in ("target_vmaf", "predicted_vmaf", "predicted_kbps", "target_met")
            }
        }
        plans.append(replace(plan, name=rung.name, extra={**plan.extra, **extra}))
    return plans


# -- 4. chart --------------------------------------------------------------------------------------


def hull_chart(analysis: dict[str, Any], path: Path, *, title: str = "") -> Path:
    """A PNG of the trial points per size, the convex hull and the chosen rungs."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5), dpi=100)
    try:
        sizes = sorted({p["size"] for p in analysis["points"]}, reverse=True)
        for size in sizes:
            pts = sorted(
                (p for p in analysis["points"] if p["size"] == size), key=lambda p: p["bitrate_kbps"]
            )
            ax.plot(
                [p["bitrate_kbps"] for p in pts], [p["vmaf"] for p in pts], "o-", alpha=0.6, label=f"{size}p"
            )
        hull = analysis["hull"]
        ax.plot(
            [p["bitrate_kbps"] for p in hull], [p["vmaf"] for p in hull], "k--", lw=1.5, label="convex hull"
        )
        for rung in analysis["rungs"]:
            marker = "*" if rung["target_met"] else "x"
            ax.plot(rung["predicted_kbps"], rung["predicted_vmaf"], marker, ms=14, color="crimson")
            ax.annotate(
                f"{rung['name']}: {rung['height']}p crf {rung['crf']}",
                (rung["predicted_kbps"], rung["predicted_vmaf"]),
                textcoords="offset points",
                xytext=(6, -12),
                fontsize=8,
            )
        ax.set_xscale("log")
        ax.set_xlabel("bitrate (kb/s, log)")
        ax.set_ylabel("VMAF (scaled to the source size)")
        ax.set_title(title or "per-title ladder")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8, loc="lower right")
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, format="png", bbox_inches="tight")
    finally:
        plt.close(fig)
    return path

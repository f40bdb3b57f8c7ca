"""Per-title ladders: encode samples of the source, score them, choose each rung's size and CRF.

The analysis, in the order the pipeline runs it (:mod:`vam.steps.ladder_analysis`):

1. **Samples** (:func:`packet_scan`, :func:`choose_samples`): the source's packets (sizes, times,
   keyframes; read from the container, nothing decoded) give every window's *complexity*, the bits
   the source's own encoder spent on it. ``samples`` windows of ``sample_seconds``, starting on
   keyframes where the source has enough of them (a shot or GOP start: reading from there decodes
   nothing before the sample), are picked at the middle of equal bands of complexity, so together
   they cost what the source costs on average. (A decode of the whole source to score its motion
   cost as much as the trials on a high-bitrate mezzanine, and its calm-looking picks predicted
   rates below the source's. TransNetV2, vam's scene detector, runs in enrichment beside the
   transcode, so the plan cannot wait for it.) A source shorter than the samples together is its
   own single sample.
2. **Trials** (:func:`run_trial`, one per candidate size: a mapped task each): one ffmpeg process
   reads just the samples (input seeking), joins them, scales once and encodes every trial CRF
   through a ``split``, each capped at the profile's highest cap (no rung may use more). A second
   process decodes the samples once and scores every trial against them with VMAF upscaled to the
   source's display size (:func:`vam.media.scoring.score_many`, VMAF alone). Each trial is a point
   (size, CRF, bitrate, VMAF).
3. **Hull and rungs** (:func:`convex_hull`, :func:`choose_ladder`): the upper convex hull of VMAF
   against log bitrate over every point shows which size is efficient at which rate. For each rung
   (highest target first), every candidate size no larger than the rung's ``height`` and the size
   of the rung above is interpolated (VMAF and log bitrate, piecewise linear in CRF) to the CRF that
   reaches the rung's ``target_vmaf`` (rounded down: never below target); the size that needs the
   fewest bits within the rung's cap (``video_bitrate_kbps``) wins. A rung that cannot reach its
   target within its cap takes the best VMAF under the cap (the fewest bits within a sixth of a
   JND of it: where the curve goes flat, more bits buy nothing) and says so (``target_met: false`` and a
   ``reason``). A rung within one JND (``jnd`` VMAF points) of the rung kept above it that also saves
   less than ``min_bitrate_step`` of its bits adds nothing and is dropped, with the reason.
4. :func:`hull_chart` draws the points, the hull and the chosen rungs (matplotlib, PNG).

The chosen rungs are encoded with capped CRF as every rung is (``-crf`` with ``-maxrate`` = the cap).
"""

from __future__ import annotations

import bisect
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

TRIAL_CAP_KBPS = 200_000  # a trial above every cap of the profile is held to this (see trial_plan)


# -- 1. samples ------------------------------------------------------------------------------------


def packet_scan(source: Path) -> list[tuple[float, int, bool]]:
    """``[(seconds from the first frame, bytes, keyframe)]`` of every packet of the source's first
    video stream, in presentation order. Read from the container: nothing is decoded."""
    argv = [tools.ffprobe_path(), "-v", "error", "-select_streams", "v:0"]
    argv += ["-show_entries", "packet=pts_time,dts_time,size,flags", "-of", "compact=p=0"]
    out = tools.run([*argv, str(Path(source).absolute())], log_progress=False).stdout
    return parse_packets(out)


def parse_packets(text: str) -> list[tuple[float, int, bool]]:
    """ffprobe's ``compact`` packet lines (``pts_time=..|dts_time=..|size=..|flags=K__``) as
    ``[(seconds from the first packet, bytes, keyframe)]`` sorted by time."""
    packets: list[tuple[float, int, bool]] = []
    for line in text.splitlines():
        fields = dict(part.partition("=")[::2] for part in line.strip().split("|") if "=" in part)
        when = (
            fields.get("pts_time")
            if fields.get("pts_time") not in (None, "", "N/A")
            else fields.get("dts_time")
        )
        try:
            packets.append((float(when or ""), int(fields.get("size") or 0), "K" in fields.get("flags", "")))
        except ValueError:
            continue  # no timestamp: nothing to place it by
    packets.sort(key=lambda p: p[0])
    if packets:
        first = packets[0][0]
        packets = [(round(t - first, 6), size, key) for t, size, key in packets]
    return packets


def choose_samples(
    packets: list[tuple[float, int, bool]], duration: float, *, count: int, seconds: float
) -> list[dict[str, Any]]:
    """``count`` windows of ``seconds`` that represent the source, from its packets
    (:func:`packet_scan`): ``[{"start", "duration", "complexity"}]`` in time order.

    A window's *complexity* is the source's own bits per second over it: the source encoder spent
    them where the picture is hard to code (motion, detail, noise), so without decoding anything
    they rank the stretches of the source by difficulty. Windows start on keyframes when the source
    has enough of them (a keyframe is where a shot or a GOP starts, and reading a sample from one
    decodes nothing before it); else on a grid of a quarter window. The windows picked sit at the
    middle quantile of each of ``count`` equal bands of complexity, so together they cost what the
    source costs on average, from its easier to its harder parts, and never overlap. A source
    shorter than the samples together is its own single sample.
    """
    duration = float(duration)
    if duration <= count * seconds or len(packets) < 2:
        total = sum(size for _, size, _ in packets)
        rate = round(total * 8 / duration / 1000, 1) if duration > 0 else 0.0
        return [{"start": 0.0, "duration": round(duration, 3), "complexity": rate}]
    times = [t for t, _, _ in packets]
    sizes = [0]
    for _, size, _ in packets:
        sizes.append(sizes[-1] + size)

    def window(start: float) -> dict[str, Any]:
        lo, hi = bisect.bisect_left(times, start - 1e-6), bisect.bisect_left(times, start + seconds - 1e-6)
        return {"start": start, "complexity": (sizes[hi] - sizes[lo]) * 8 / seconds / 1000}

    last = duration - seconds
    keyed = sorted({t for t, _, key in packets if key and t <= last + 1e-6})
    grid = [i * seconds / 4 for i in range(int(last / (seconds / 4)) + 1)]
    starts = keyed if _fits(keyed, count, seconds) else grid
    pool = sorted((window(s) for s in starts), key=lambda w: w["complexity"])
    chosen: list[dict[str, Any]] = []
    for k in range(count):
        wanted = pool[min(len(pool) - 1, int((k + 0.5) / count * len(pool)))]["complexity"]
        free = [w for w in pool if all(abs(w["start"] - c["start"]) >= seconds for c in chosen)]
        if not free:
            break
        chosen.append(min(free, key=lambda w: (abs(w["complexity"] - wanted), w["start"])))
    chosen.sort(key=lambda w: w["start"])
    return [
        {"start": round(w["start"], 6), "duration": float(seconds), "complexity": round(w["complexity"], 1)}
        for w in chosen
    ]


def _fits(starts: list[float], count: int, seconds: float) -> bool:
    """Whether ``count`` windows of ``seconds`` starting at some of ``starts`` can avoid overlapping."""
    placed, last = 0, -math.inf
    for start in starts:
        if start - last >= seconds:
            placed, last = placed + 1, start
    return placed >= count


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
    """The rendition plan of one trial: ``rung``'s codec settings at ``height`` and ``crf``, capped
    at the highest cap of the profile (as the top rung would be): no rung can use bits above it, so
    a point there only costs time (a CRF 20 trial of grainy 1080p runs at 80 Mb/s uncapped)."""
    cap = max((r.video_bitrate_kbps for r in profile.rungs if r.video_bitrate_kbps), default=TRIAL_CAP_KBPS)
    template = replace(rung, height=height, crf=crf, video_bitrate_kbps=cap)
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
            vmaf_only=True,  # the hull is VMAF against bits
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
            # the best VMAF under the cap, but not at any price: near the cap a grainy source's curve
            # goes flat (CRF 23 at 6 Mb/s and CRF 28 at 4 Mb/s both score 89), so the rung takes the
            # fewest bits within a sixth of a JND of the best
            top = max(o["predicted_vmaf"] for o in capped)
            near = [o for o in capped if o["predicted_vmaf"] >= top - per_title.jnd / 6]
            best = min(near, key=lambda o: (o["predicted_kbps"], -o["height"]))
            met = False
            why = (
                f"VMAF {target:g} cannot be reached within the cap of {cap:g} kb/s: best under the cap "
                f"is {best['height']}p CRF {best['crf']} at VMAF {best['predicted_vmaf']:.1f}"
            )
            if top - best["predicted_vmaf"] > 0.05:
                why += f" (the fewest bits within {per_title.jnd / 6:.1f} of the best, {top:.1f})"
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

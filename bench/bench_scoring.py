"""Scoring benchmark: what subsampling the one-decode quality pass costs in accuracy, and saves in CPU.

Run as ``.venv/bin/python bench/bench_scoring.py [--seconds 20] [--clips static,motion,...]
[--steps 5,8,10,12] [--keep]``. For each generated 1080p25 clip (the per-title benchmark's clips:
easy to hard) it encodes the ``default`` ladder (vam's ``plan_ladder`` + ``encode_rendition``) and
scores all four renditions with :func:`vam.media.scoring.score_renditions`:

* over **every frame** (``n_subsample`` 1): the reference answer;
* with a **fixed period** (the pair of frames ``kN, kN+1``: the pass before jittered sampling);
* with **jittered pairs** (one pair per block of ``N`` frames at a pseudo-random place: today's pass)
  at each ``--steps`` value.

It prints every rendition's pooled VMAF per mode, the largest difference from every frame, and the
CPU of each pass against the CPU of encoding the ladder (user+system of the ffmpeg children,
``getrusage(RUSAGE_CHILDREN)`` deltas).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

from bench_per_title import CLIPS, cpu, make_clip

from vam.media import scoring, tools
from vam.media.encode import encode_rendition
from vam.media.ladder import plan_ladder
from vam.media.probe import probe
from vam.media.profiles import load_profile
from vam.settings import load_settings


def periodic(step: int) -> str:
    return f"lt(mod(n\\,{step})\\,2)"


def score(
    source: Path, info, outs: list[Path], step: int, *, jittered: bool = True
) -> tuple[list[float], float]:
    original = scoring.pair_select_expr
    if not jittered:
        scoring.pair_select_expr = periodic
    try:
        started = cpu()
        results = scoring.score_renditions(source, info, outs, n_subsample=step)
        return [r["vmaf"]["mean"] for r in results], cpu() - started
    finally:
        scoring.pair_select_expr = original


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="clip length (default 20)")
    parser.add_argument("--clips", default=",".join(CLIPS), help=f"comma-separated, of {', '.join(CLIPS)}")
    parser.add_argument("--steps", default="5,8,10,12", help="jittered n_subsample values to try")
    parser.add_argument("--keep", action="store_true", help="keep the temp directory")
    args = parser.parse_args(argv)
    settings = load_settings()
    tools.configure(ffmpeg=settings.ffmpeg or None, ffprobe=settings.ffprobe or None)
    prof = load_profile("default", settings.profiles_dir)
    steps = [int(s) for s in args.steps.split(",")]
    work = Path(tempfile.mkdtemp(prefix="vam-bench-score-"))
    worst: dict[str, float] = {}
    share: dict[str, list[float]] = {}
    print("=== vam scoring benchmark ===")
    print(f"clips: {args.clips}, {args.seconds:g} s 1080p25 each; ladder {prof.key}; VMAF {prof.vmaf_model}")
    try:
        for kind in args.clips.split(","):
            print(f"\n--- {kind} ---", flush=True)
            source = make_clip(kind, args.seconds, work / f"{kind}.mp4")
            info = probe(source)
            plans = plan_ladder(info, prof)
            started = cpu()
            outs = []
            for plan in plans:
                out = work / kind / f"{plan.name}.mp4"
                out.parent.mkdir(parents=True, exist_ok=True)
                encode_rendition(source, plan, prof, out, info)
                outs.append(out)
            encode_cpu = cpu() - started
            every, every_cpu = score(source, info, outs, 1)
            names = " / ".join(p.name for p in plans)
            print(f"  ladder encode {encode_cpu:.1f} CPU s; renditions {names}")
            print(
                f"  {'every frame':22} VMAF {' / '.join(f'{v:6.2f}' for v in every)}  {every_cpu:6.1f} CPU s"
            )
            modes = [(f"fixed period N={s}", s, False) for s in steps[:1]]
            modes += [(f"jittered N={s}", s, True) for s in steps]
            for label, step, jittered in modes:
                vmafs, used = score(source, info, outs, step, jittered=jittered)
                diff = max(abs(a - b) for a, b in zip(vmafs, every, strict=True))
                worst[label] = max(worst.get(label, 0.0), diff)
                share.setdefault(label, []).append(used / encode_cpu)
                print(
                    f"  {label:22} VMAF {' / '.join(f'{v:6.2f}' for v in vmafs)}  {used:6.1f} CPU s"
                    f" = {used / encode_cpu:.2f} x encode; largest difference {diff:.2f}"
                )
        print("\n=== overall ===")
        for label, diff in worst.items():
            ratios = share[label]
            print(
                f"{label:22} largest VMAF difference from every frame {diff:.2f} (aim <= 1.5); "
                f"scoring CPU / encode CPU {min(ratios):.2f}-{max(ratios):.2f}"
            )
        return 0
    finally:
        if args.keep:
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

"""Archive ingest throughput: the vam_archive_ingest DAG against `vam process` called once per file.

1. makes COUNT distinct one-second 160x90 clips (lavfi patterns at different rates) in a folder;
2. (a) runs `vam archive ingest file://FOLDER` once (the DAG in-process, batches of 25) on a fresh
   catalog database;
3. (b) runs `vam process CLIP` COUNT times in a loop on another fresh catalog database;
4. prints wall times, assets/min and the ratio (a)/(b). Enrichment is off in both (the setting), so
   the figures are about ingest, not about the models.

    .venv/bin/python bench/bench_archive.py [--count 100]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from vam.catalog.dsn import create_database, drop_database, local_postgres_dsn, with_dbname
from vam.media import tools

PATTERNS = ["testsrc", "testsrc2", "smptebars", "rgbtestsrc", "yuvtestsrc", "pal75bars", "mandelbrot"]
BIN = Path(sys.executable).parent


def make_clips(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    clips = []
    for n in range(count):
        out = folder / f"clip-{n:04d}.mp4"
        pattern = PATTERNS[n % len(PATTERNS)]
        rate = 10 + n // len(PATTERNS)  # distinct bytes for every clip
        subprocess.run(
            [tools.ffmpeg_path(), "-v", "error", "-y", "-f", "lavfi", "-i",
             f"{pattern}=size=160x90:rate={rate}", "-f", "lavfi", "-i", "sine=duration=1", "-t", "1",
             "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
             str(out)],
            check=True,
        )  # fmt: skip
        clips.append(out)
    return clips


def timed(argv: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("a") as out:
        subprocess.run(argv, env=env, stdout=out, stderr=out, check=True)
    return time.monotonic() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100)
    args = parser.parse_args()
    admin = local_postgres_dsn()
    if admin is None:
        print("needs the machine's PostgreSQL on 127.0.0.1:5432", file=sys.stderr)
        return 1
    work = Path(tempfile.mkdtemp(prefix="vam-bench-archive-"))
    clips = make_clips(work / "archive", args.count)
    names = [f"vam_bench_{uuid.uuid4().hex[:8]}" for _ in range(2)]
    dsns = [create_database(admin, name) for name in names]
    base = {k: v for k, v in os.environ.items() if not k.startswith(("VAM_", "AIRFLOW"))}
    try:
        results = {}
        for label, dsn, home in (("archive", dsns[0], work / "home-a"), ("loop", dsns[1], work / "home-b")):
            env = {**base, "VAM_HOME": str(home), "VAM_CATALOG_DSN": dsn, "VAM_ENRICHMENT": "false"}
            log = work / f"{label}.log"
            # the Airflow metadata DB is created before timing, as a running deployment has it
            subprocess.run([str(BIN / "vam"), "profiles"], env=env, check=True, stdout=subprocess.DEVNULL)
            if label == "archive":
                seconds = timed(
                    [str(BIN / "vam"), "archive", "ingest", (work / "archive").as_uri(), "--json"], env, log
                )
            else:
                seconds = sum(timed([str(BIN / "vam"), "process", str(c), "--json"], env, log) for c in clips)
            results[label] = seconds
            print(f"{label:8} {seconds:8.1f} s  {60 * args.count / seconds:6.1f} assets/min", flush=True)
        print(f"ratio archive/loop wall time: {results['archive'] / results['loop']:.2f}")
        print(f"speed-up of the archive DAG: {results['loop'] / results['archive']:.2f}x")
    finally:
        for name in names:
            drop_database(with_dbname(admin, "postgres"), name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

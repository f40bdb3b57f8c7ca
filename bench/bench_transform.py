"""Transformation URL benchmark: time to first byte of a cached transformation against a plain origin
read of the same object, and the build time of a 10 s 1080p -> 720x720 crop against the same ffmpeg
command run alone.

Run as ``.venv/bin/python bench/bench_transform.py [--seconds 10] [--reps 3] [--requests 40]``.

- A fresh catalog database (the machine's PostgreSQL, else the embedded one; dropped at the end)
  and a temp ``VAM_HOME`` (file:// objects).
- A generated 10 s 1920x1080 25 fps testsrc2 clip with a tone, registered as a ready asset with its
  probe (the ladder is not made: it plays no part in either figure).
- Build: ``c_fill,w_720,h_720`` through ``vam.steps.transform.transform`` (catalog lookups, claim,
  plan, the ffmpeg build, its checks, SHA-256, publish to a temp key + copy, catalog rows), its row
  and object deleted between rounds, interleaved with the very ffmpeg command it runs
  (:func:`vam.media.transform.build_argv`) run alone. Then ``g_auto`` once (saliency sampling added).
- TTFB: ``vam serve`` in a subprocess; ``GET /t/c_fill,w_720,h_720/{asset}.mp4`` (cached: catalog
  hit + stream) and ``GET /o/{asset}/transforms/{digest}.mp4`` (the origin reading the very same
  object), interleaved ``--requests`` times over one keep-alive connection each; time until the
  first body byte.

Prints JSON: best and median seconds, and the ratios against the baselines.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
VAM = str(Path(sys.executable).with_name("vam"))
TRANSFORMATION = "c_fill,w_720,h_720"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def make_clip(path: Path, seconds: float) -> Path:
    from vam.media import tools

    tools.run(
        [tools.ffmpeg_path(), "-nostdin", "-y", "-v", "error",
         "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=25",
         "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={seconds}",
         "-t", str(seconds), "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "128k", str(path)],
        log_progress=False,
    )  # fmt: skip
    return path


def register_ready(rt, source: Path) -> str:
    from vam import storage
    from vam.media.probe import probe

    with rt.catalog() as cat:
        asset_id, _ = cat.register_asset(
            sha256=storage.sha256_file(source), source_uri=source.as_uri(), size_bytes=source.stat().st_size
        )
        cat.update_asset(asset_id, source_meta=probe(source).to_dict())
        cat.set_status(asset_id, "ready")
    return asset_id


def bench_build(rt, asset_id: str, source: Path, reps: int, work: Path) -> dict:
    from vam import storage
    from vam.media import tools
    from vam.media import transform as tm
    from vam.steps.transform import prepare, transform

    prepared = prepare(rt, asset_id, TRANSFORMATION)
    baseline, vam_times, ratios = [], [], []
    for _ in range(reps):
        out = work / f"alone-{uuid.uuid4().hex[:6]}.mp4"
        argv = tm.build_argv(source, out, prepared.plan, {}, threads=rt.settings.ffmpeg_threads)
        started = time.perf_counter()
        tools.run(argv, log_progress=False)
        baseline.append(time.perf_counter() - started)
        out.unlink()
        with rt.catalog() as cat:
            cat.forget_transformation(asset_id, prepared.digest)
        with contextlib.suppress(Exception):
            storage.store_for(prepared.uri).delete(prepared.uri)
        started = time.perf_counter()
        result = transform(rt, asset_id, TRANSFORMATION)
        vam_times.append(time.perf_counter() - started)
        if result["cached"]:
            raise SystemExit("the transformation was cached: the round measured nothing")
        ratios.append(vam_times[-1] / baseline[-1])
    started = time.perf_counter()
    auto = transform(rt, asset_id, TRANSFORMATION + ",g_auto")
    auto_s = time.perf_counter() - started
    return {
        "transformation": TRANSFORMATION,
        "output": {k: result[k] for k in ("width", "height", "duration", "size_bytes")},
        "ffmpeg_alone_s": {"best": round(min(baseline), 3), "median": round(statistics.median(baseline), 3)},
        "vam_build_s": {"best": round(min(vam_times), 3), "median": round(statistics.median(vam_times), 3)},
        "ratio_median": round(statistics.median(ratios), 3),
        "g_auto_build_s": round(auto_s, 3),
        "g_auto_transformation": auto["transformation"],
        "uri": result["uri"],
        "digest": result["digest"],
        "size_bytes": result["size_bytes"],
    }


def ttfb(client: httpx.Client, url: str) -> tuple[float, float, int]:
    started = time.perf_counter()
    with client.stream("GET", url) as resp:
        if resp.status_code != 200:
            raise SystemExit(f"{url}: {resp.status_code} {resp.read()[:300]!r}")
        chunks = resp.iter_raw()
        first = next(chunks)
        first_at = time.perf_counter() - started
        size = len(first) + sum(len(c) for c in chunks)
    return first_at, time.perf_counter() - started, size


def bench_ttfb(env: dict[str, str], asset_id: str, digest: str, requests: int, work: Path) -> dict:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = work / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [VAM, "serve", "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(base + "/health", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"vam serve did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        transformed = f"{base}/t/{TRANSFORMATION}/{asset_id}.mp4"
        origin = f"{base}/o/{asset_id}/transforms/{digest}.mp4"
        results: dict[str, list[tuple[float, float, int]]] = {"transformation": [], "origin": []}
        with httpx.Client(timeout=30) as t_client, httpx.Client(timeout=30) as o_client:
            for client, url in ((t_client, transformed), (o_client, origin)):  # warm: connection, index
                ttfb(client, url)
            for _ in range(requests):
                results["transformation"].append(ttfb(t_client, transformed))
                results["origin"].append(ttfb(o_client, origin))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()

    def summary(rows: list[tuple[float, float, int]]) -> dict:
        firsts = sorted(r[0] * 1000 for r in rows)
        totals = [r[1] * 1000 for r in rows]
        return {
            "ttfb_ms_median": round(statistics.median(firsts), 2),
            "ttfb_ms_p90": round(firsts[int(0.9 * (len(firsts) - 1))], 2),
            "total_ms_median": round(statistics.median(totals), 2),
            "bytes": rows[0][2],
        }

    t, o = summary(results["transformation"]), summary(results["origin"])
    return {
        "requests": requests,
        "transformation": t,
        "origin": o,
        "ttfb_ratio_median": round(t["ttfb_ms_median"] / o["ttfb_ms_median"], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--requests", type=int, default=40)
    args = parser.parse_args()

    from vam.catalog.dsn import create_database, drop_database
    from vam.devstack import ensure_catalog
    from vam.settings import load_settings

    work = Path(tempfile.mkdtemp(prefix="vam-bench-transform-"))
    base_dsn = ensure_catalog(load_settings())
    name = f"vam_bench_{uuid.uuid4().hex[:8]}"
    dsn = create_database(base_dsn, name)
    env = {**os.environ, "VAM_HOME": str(work / "home"), "VAM_CATALOG_DSN": dsn, "VAM_ENRICHMENT": "false"}
    os.environ.update(env)
    try:
        from vam.runtime import Runtime

        rt = Runtime.from_env()
        source = make_clip(work / "source-1080p.mp4", args.seconds)
        asset_id = register_ready(rt, source)
        build = bench_build(rt, asset_id, source, args.reps, work)
        served = bench_ttfb(env, asset_id, build["digest"], args.requests, work)
        print(
            json.dumps(
                {"cpus": os.cpu_count(), "load": os.getloadavg(), "build": build, "ttfb": served}, indent=2
            )
        )
    finally:
        drop_database(base_dsn, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()

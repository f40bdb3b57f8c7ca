"""Delivery benchmark: segment requests per second and latency of the origin (`vam serve`, signed
URLs, file:// storage) against nginx serving the same files from disk, and the service's memory
while it streams a 2 GB object.

Run as ``nice -n 5 .venv/bin/python bench/bench_delivery.py [--seconds 10] [--clients 1 50]``.

- A catalog database of its own on the machine's PostgreSQL (dropped at the end) with one asset
  whose ``--segments`` segments of ``--segment-mib`` MiB (random bytes) are recorded as stored
  objects under ``{home}/objects/processed/{asset}/default@1/hls/720p/``, plus a 2 GiB rendition
  (a sparse file: the bytes are zeros, the path through the origin is the same).
- nginx (Debian's package) started on 127.0.0.1 with its own temporary config: ``root`` at the
  processed directory, ``sendfile on``, two workers (one per core), no access log.
- `vam serve` started on 127.0.0.1 in a subprocess (one uvicorn process), requests through a
  signed URL (the HMAC is checked on every request).
- The load generator runs in a separate process: N keep-alive HTTP/1.1 connections (asyncio
  streams, a minimal client: GET, read headers, read exactly Content-Length bytes), each asking for
  random segments back to back for ``--seconds``; it reports requests/s, MiB/s, p50 and p99
  latency. nginx and the origin are measured alternately at each client count.
- Then the same at a bounded total rate (``--rate``, requests/s spread over the clients, each
  client waiting for its next slot): latency when the servers are not saturated.
- Memory: the origin's RSS sampled every 50 ms while one client streams the 2 GiB object.

Prints the figures as JSON.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

MIB = 1024 * 1024
NGINX_CONF = """
daemon off;
worker_processes 2;
user root;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 100000;
    types {{ video/iso.segment m4s; video/mp4 mp4; }}
    client_body_temp_path {prefix}/body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{ add_header Cache-Control "public, max-age=31536000, immutable"; }}
    }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url}")


# -- the load generator (its own process) ---------------------------------------------------------


async def _client(
    host: str, port: int, paths: list[str], until: float, lat: list[float], sizes: list[int], interval: float
):
    reader, writer = await asyncio.open_connection(host, port)
    rnd = random.Random()
    due = time.perf_counter() + rnd.random() * interval
    try:
        while time.perf_counter() < until:
            if interval:  # rate-bounded: one request every `interval` s per client
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += interval
            path = rnd.choice(paths)
            t0 = time.perf_counter()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            left = length
            while left:
                chunk = await reader.read(min(left, 4 * MIB))
                if not chunk:
                    raise RuntimeError("connection closed mid-body")
                left -= len(chunk)
            if status != 200:
                raise RuntimeError(f"{path}: HTTP {status}")
            lat.append(time.perf_counter() - t0)
            sizes.append(length)
    finally:
        writer.close()


def _load(host: str, port: int, paths: list[str], clients: int, seconds: float, rate: float, out) -> None:  # type: ignore[no-untyped-def]
    lat: list[float] = []
    sizes: list[int] = []
    interval = clients / rate if rate else 0.0

    async def main() -> None:
        until = time.perf_counter() + seconds
        await asyncio.gather(
            *(_client(host, port, paths, until, lat, sizes, interval) for _ in range(clients))
        )

    t0 = time.perf_counter()
    asyncio.run(main())
    elapsed = time.perf_counter() - t0
    lat.sort()
    out.put(
        {
            "clients": clients,
            "rate_limit": rate or None,
            "requests": len(lat),
            "rps": round(len(lat) / elapsed, 1),
            "mib_s": round(sum(sizes) / MIB / elapsed, 1),
            "p50_ms": round(lat[len(lat) // 2] * 1000, 1),
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1),
        }
    )


def load(port: int, paths: list[str], clients: int, seconds: float, rate: float = 0.0) -> dict:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_load, args=("127.0.0.1", port, paths, clients, seconds, rate, out))
    proc.start()
    result = out.get(timeout=seconds + 120)
    proc.join()
    return result


# -- set-up ---------------------------------------------------------------------------------------


def make_asset(
    home: Path, dsn: str, segments: int, segment_mib: int, big_gib: float
) -> tuple[str, Path, list[str], str]:
    from vam.catalog import open_catalog

    sha = uuid.uuid4().hex + uuid.uuid4().hex
    with open_catalog(dsn, actor="bench") as cat:
        asset_id, _ = cat.register_asset(sha256=sha, source_uri="file:///bench/source.mp4", size_bytes=1)
        processed = home / "objects" / "processed"
        seg_dir = processed / asset_id / "default@1" / "hls" / "720p"
        seg_dir.mkdir(parents=True)
        rel = []
        for i in range(1, segments + 1):
            path = seg_dir / f"seg_{i:05d}.m4s"
            path.write_bytes(os.urandom(segment_mib * MIB))
            cat.record_object(
                path.as_uri(), asset_id=asset_id, kind="segment", size_bytes=path.stat().st_size
            )
            rel.append(f"{asset_id}/default@1/hls/720p/{path.name}")
        big = processed / asset_id / "default@1" / "renditions" / "big.mp4"
        big.parent.mkdir(parents=True)
        with big.open("wb") as f:
            f.truncate(int(big_gib * 1024 * MIB))
        cat.record_object(big.as_uri(), asset_id=asset_id, kind="rendition", size_bytes=big.stat().st_size)
    return asset_id, processed, rel, f"{asset_id}/default@1/renditions/big.mp4"


def rss_while_streaming(proc: psutil.Process, url: str) -> dict:
    samples: list[int] = []
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            samples.append(sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)]))
            time.sleep(0.05)

    idle = proc.memory_info().rss
    t = threading.Thread(target=sample)
    t.start()
    t0 = time.perf_counter()
    received = 0
    with httpx.stream("GET", url, timeout=600) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_bytes(4 * MIB):
            received += len(chunk)
    elapsed = time.perf_counter() - t0
    done.set()
    t.join()
    return {
        "object_mib": round(received / MIB),
        "seconds": round(elapsed, 1),
        "mib_s": round(received / MIB / elapsed, 1),
        "rss_idle_mib": round(idle / MIB, 1),
        "rss_peak_mib": round(max(samples) / MIB, 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=10.0, help="load per measurement")
    ap.add_argument("--clients", type=int, nargs="+", default=[1, 50])
    ap.add_argument(
        "--rate", type=float, nargs="*", default=[100.0], help="also: the most clients at these total req/s"
    )
    ap.add_argument("--segments", type=int, default=16)
    ap.add_argument("--segment-mib", type=int, default=2)
    ap.add_argument("--big-gib", type=float, default=2.0, help="object streamed for the RSS figure (0: skip)")
    args = ap.parse_args()

    from vam.catalog.db import connect, migrate
    from vam.catalog.dsn import create_database, drop_database
    from vam.delivery.signing import KeyRing
    from vam.devstack import ensure_catalog
    from vam.settings import load_settings

    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        raise SystemExit("nginx is not installed: run scripts/install_system.sh")
    work = Path(tempfile.mkdtemp(prefix="vam-bench-delivery-"))
    home = work / "home"
    base = ensure_catalog(load_settings({"VAM_HOME": str(home)}))
    db = f"vam_bench_{uuid.uuid4().hex[:8]}"
    dsn = create_database(base, db)
    conn = connect(dsn)
    migrate(conn)
    conn.close()
    procs: list[subprocess.Popen] = []
    try:
        asset_id, processed, rel, big_rel = make_asset(
            home, dsn, args.segments, args.segment_mib, args.big_gib
        )
        env = {**os.environ, "VAM_HOME": str(home), "VAM_CATALOG_DSN": dsn}
        vport, nport = free_port(), free_port()
        (work / "nginx").mkdir()
        conf = work / "nginx" / "nginx.conf"
        conf.write_text(NGINX_CONF.format(prefix=work / "nginx", port=nport, root=processed))
        with (work / "nginx.log").open("wb") as out:
            procs.append(
                subprocess.Popen([nginx, "-c", str(conf), "-p", str(work / "nginx")], stdout=out, stderr=out)
            )
        with (work / "serve.log").open("wb") as out:
            procs.append(
                subprocess.Popen(
                    [str(Path(sys.executable).with_name("vam")), "serve", "--port", str(vport)],
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )
        wait_http(f"http://127.0.0.1:{nport}/{rel[0]}", procs[0])
        wait_http(f"http://127.0.0.1:{vport}/health", procs[1])
        token, _ = KeyRing("", home).sign(f"{asset_id}/", 3600)
        vam_paths = [f"/v/{token}/{r}" for r in rel]
        nginx_paths = [f"/{r}" for r in rel]
        for vp, np_ in zip(vam_paths[:2], nginx_paths[:2], strict=True):  # warm up, same bytes?
            a = httpx.get(f"http://127.0.0.1:{vport}{vp}").content
            b = httpx.get(f"http://127.0.0.1:{nport}{np_}").content
            if a != b or len(a) != args.segment_mib * MIB:
                raise SystemExit("the origin and nginx answer different bytes")
        results: dict = {"segment_mib": args.segment_mib, "seconds_per_run": args.seconds, "runs": []}
        for clients in args.clients:
            n = load(nport, nginx_paths, clients, args.seconds)
            v = load(vport, vam_paths, clients, args.seconds)
            run = {
                "clients": clients,
                "nginx": n,
                "vam": v,
                "rps_ratio": round(v["rps"] / n["rps"], 3) if n["rps"] else None,
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        for rate in args.rate:
            clients = max(args.clients)
            run = {
                "clients": clients,
                "rate": rate,
                "nginx": load(nport, nginx_paths, clients, args.seconds, rate),
                "vam": load(vport, vam_paths, clients, args.seconds, rate),
            }
            results["runs"].append(run)
            print(json.dumps(run), flush=True)
        if args.big_gib:
            results["memory"] = rss_while_streaming(
                psutil.Process(procs[1].pid), f"http://127.0.0.1:{vport}/v/{token}/{big_rel}"
            )
            print(json.dumps(results["memory"]), flush=True)
        print(json.dumps(results, indent=2))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM if p is procs[-1] else signal.SIGQUIT)
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
        drop_database(base, db)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

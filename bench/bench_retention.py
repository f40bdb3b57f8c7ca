"""Retention benchmark: purge, dedup and the storage cost report over a synthetic catalog on SeaweedFS.

Run as ``.venv/bin/python bench/bench_retention.py [--assets 1000] [--objects-per-asset 5]``.
It starts SeaweedFS (``weed mini`` on 127.0.0.1) and a fresh catalog database (applies the real
migrations), then writes ``--assets`` assets with ``--objects-per-asset`` small objects each (a
source plus derived outputs, 4 KiB), every tenth asset's source also dropped under a second key
and every fifth asset sharing its derived output with the previous asset (dedup material), with a
campaign tag on half of them. Then it times, in this process:

- the storage cost report (``vam.steps.storage_report``) over every object;
- the dedup report and ``--apply`` (hashes and re-points every redundant copy);
- the purge of every asset (``vam.steps.retention.purge`` after a soft delete with no grace),
  in objects/s, against a plain boto3 ``delete_object`` loop over the same number of objects of
  the same size in the same process (the baseline the ratio is against);

and prints the figures, the peak RSS and the objects left (0 expected). Everything is dropped at
the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import resource
import secrets
import sys
import tempfile
import time
import uuid
from pathlib import Path

from psycopg2.extras import execute_values

CHUNK = 4096


def _load(cat, s3, bucket: str, assets: int, per_asset: int) -> list[str]:
    """Upload the objects and write their catalog rows with COPY-like batches."""
    rows_assets, rows_objects, rows_sources, rows_derived = [], [], [], []
    prev_crop: tuple[str, str] | None = None
    ids = []
    for n in range(assets):
        data = n.to_bytes(4, "big") + os.urandom(CHUNK - 4)
        sha = hashlib.sha256(data).hexdigest()
        aid = sha[:16]
        ids.append(aid)
        src = f"drop/{aid}.mp4"
        s3.put_object(Bucket=bucket, Key=src, Body=data)
        tags = json.dumps({"campaign": f"campaign-{n % 7}"} if n % 2 == 0 else {})
        rows_assets.append((aid, sha, f"s3://{bucket}/{src}", f"asset {n}", "ready", CHUNK, tags))
        rows_objects.append((f"s3://{bucket}/{src}", aid, "source", CHUNK, sha, None, None))
        rows_sources.append((f"s3://{bucket}/{src}", aid, None, CHUNK))
        if n % 10 == 0:  # the same source dropped again under another key
            again = f"drop/again/{aid}.mp4"
            s3.put_object(Bucket=bucket, Key=again, Body=data)
            etag = s3.head_object(Bucket=bucket, Key=again)["ETag"].strip('"')
            rows_sources.append((f"s3://{bucket}/{again}", aid, etag, CHUNK))
        for k in range(per_asset - 1):
            body = os.urandom(CHUNK)
            if k == 0 and n % 5 == 1 and prev_crop:  # identical derived file of two assets
                body = prev_crop[1]
            key = f"processed/{aid}/out-{k}.bin"
            s3.put_object(Bucket=bucket, Key=key, Body=body)
            osha = hashlib.sha256(body).hexdigest()
            kind = "derived" if k == 0 else "rendition"
            rows_objects.append((f"s3://{bucket}/{key}", aid, kind, CHUNK, osha, "STANDARD", "hot"))
            if k == 0:
                rows_derived.append((aid, "crop", "social_crop", f"s3://{bucket}/{key}", CHUNK, osha))
                prev_crop = (key, body)
    with cat.conn, cat.conn.cursor() as cur:
        execute_values(
            cur,
            "INSERT INTO assets (asset_id, content_sha256, source_uri, title, status, size_bytes, tags)"
            " VALUES %s",
            rows_assets,
            template="(%s, %s, %s, %s, %s, %s, %s::jsonb)",
        )
        execute_values(
            cur,
            "INSERT INTO stored_objects (uri, asset_id, kind, size_bytes, sha256, storage_class, tier)"
            " VALUES %s",
            rows_objects,
        )
        execute_values(
            cur, "INSERT INTO asset_sources (source_uri, asset_id, etag, size_bytes) VALUES %s", rows_sources
        )
        execute_values(
            cur,
            "INSERT INTO derived_outputs (asset_id, name, kind, uri, size_bytes, sha256) VALUES %s",
            rows_derived,
        )
        cur.execute("ANALYZE")
    return ids


def _count(s3, bucket: str) -> int:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sum(
        1 for p in pages for o in p.get("Contents", []) if not o["Key"].startswith("processed/_reports/")
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--assets", type=int, default=1000)
    parser.add_argument("--objects-per-asset", type=int, default=5)
    args = parser.parse_args()

    from vam import devstack, storage
    from vam.catalog import open_catalog
    from vam.catalog.dsn import create_database, drop_database
    from vam.runtime import Runtime
    from vam.settings import load_settings
    from vam.steps.dedup import dedup
    from vam.steps.retention import purge
    from vam.steps.storage_report import storage_report
    from vam.storage.s3 import make_s3_client

    tmp = Path(tempfile.mkdtemp(prefix="vam-bench-retention-"))
    os.environ["VAM_HOME"] = str(tmp / "home")
    base = devstack.ensure_catalog(load_settings())
    db = f"vam_bench_retention_{uuid.uuid4().hex[:8]}"
    dsn = create_database(base, db)
    os.environ["VAM_CATALOG_DSN"] = dsn
    access, secret = "bench" + secrets.token_hex(4), secrets.token_hex(16)
    server = devstack.start_seaweedfs(tmp / "seaweed", access_key=access, secret_key=secret)
    try:
        s3 = make_s3_client(server.endpoint_url, access_key=access, secret_key=secret)
        storage.configure(s3_client=s3)
        bucket, baseline_bucket = "bench-retention", "bench-baseline"
        server.ensure_buckets([bucket, baseline_bucket])
        os.environ["VAM_PROCESSED_URI"] = f"s3://{bucket}/processed"  # outputs under processed/<asset>/
        os.environ["VAM_S3_ENDPOINT_URL"] = server.endpoint_url
        rt = Runtime(load_settings())
        t0 = time.perf_counter()
        with open_catalog(dsn) as cat:
            _load(cat, s3, bucket, args.assets, args.objects_per_asset)
        stored = _count(s3, bucket)
        print(f"loaded {args.assets} assets, {stored} objects in {time.perf_counter() - t0:.1f} s")

        t0 = time.perf_counter()
        rep = storage_report(rt)
        t_report = time.perf_counter() - t0
        print(
            f"storage report: {rep['totals']['objects']} objects in {t_report:.2f} s"
            f" ({rep['totals']['objects'] / t_report:,.0f} objects/s),"
            f" {rep['totals']['monthly_cost']:.6f} USD/month"
        )

        t0 = time.perf_counter()
        found = dedup(rt, apply=False)
        t_dedup = time.perf_counter() - t0
        print(
            f"dedup report: {found['groups']} groups, {found['redundant_copies']} redundant copies,"
            f" {found['reclaimable_bytes']} bytes in {t_dedup:.2f} s"
        )
        t0 = time.perf_counter()
        applied = dedup(rt, apply=True, write=False)
        t_apply = time.perf_counter() - t0
        print(
            f"dedup --apply: {len(applied['removed'])} copies removed (verified + re-pointed)"
            f" in {t_apply:.2f} s ({len(applied['removed']) / max(t_apply, 1e-9):,.1f} copies/s),"
            f" {len(applied['skipped'])} skipped"
        )

        with open_catalog(dsn) as cat, cat.conn, cat.conn.cursor() as cur:
            cur.execute("UPDATE assets SET deleted_at = now(), purge_after = now()")
            cur.execute("SELECT count(*) FROM stored_objects")
            n_rows = cur.fetchone()[0]
        t0 = time.perf_counter()
        done = purge(rt, now=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=5), limit=args.assets + 10)
        t_purge = time.perf_counter() - t0
        left = _count(s3, bucket)
        n_deleted = done["objects"]["deleted"]
        print(
            f"purge: {len(done['purged'])} assets, {n_deleted} objects ({n_rows} object rows)"
            f" in {t_purge:.2f} s"
            f" = {n_deleted / t_purge:,.1f} objects/s; objects left in the bucket: {left}"
        )

        for i in range(n_deleted):
            s3.put_object(Bucket=baseline_bucket, Key=f"b/{i}", Body=b"x" * CHUNK)
        t0 = time.perf_counter()
        for i in range(n_deleted):
            s3.delete_object(Bucket=baseline_bucket, Key=f"b/{i}")
        t_base = time.perf_counter() - t0
        print(
            f"baseline boto3 delete_object loop: {n_deleted} objects in {t_base:.2f} s"
            f" = {n_deleted / t_base:,.1f} objects/s; purge/baseline ratio {t_base / t_purge:.2f}"
        )
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak RSS {rss:.0f} MiB")
        return 0 if left == 0 else 1
    finally:
        storage.configure(s3_client=None)
        server.stop()
        drop_database(base, db)


if __name__ == "__main__":
    sys.exit(main())

"""Lifecycle mover throughput: objects moved hot -> warm in SeaweedFS by `vam lifecycle run` against a
plain boto3 copy+delete loop, in the same process.

1. starts SeaweedFS on 127.0.0.1 (generated credentials) and a fresh catalog database;
2. writes SMALL small objects (4 KiB, 100 per asset) and LARGE large ones (one asset each) into a hot
   bucket, recorded in the catalog with their SHA-256, and the same bytes into a second hot bucket;
3. (a) `vam.steps.lifecycle.run` with a hot -> warm policy (plan, then copy with the STANDARD_IA
   class, read back and verify every copy's SHA-256, one catalog transaction per asset, delete);
4. (b) a plain loop over the second bucket: boto3 copy_object (StorageClass=STANDARD_IA) then
   delete_object, object after object, nothing verified, nothing recorded;
5. prints objects/s and MB/s of both, the ratio (a)/(b), the peak RSS, and checks that nothing was
   lost: every object in the warm bucket, none left in hot, every catalog row pointing at a copy
   whose SHA-256 is the recorded one.

    .venv/bin/python bench/bench_lifecycle.py [--small 10000] [--large 20] [--large-mib 16]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import os
import resource
import secrets
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SMALL_SIZE = 4096
PER_ASSET = 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=10000)
    parser.add_argument("--large", type=int, default=20)
    parser.add_argument("--large-mib", type=int, default=16)
    parser.add_argument("--threads", type=int, default=8, help="the mover's copy threads")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="vam-bench-lifecycle-"))
    os.environ["VAM_HOME"] = str(tmp / "home")
    from vam.catalog.dsn import create_database, drop_database, local_postgres_dsn
    from vam.devstack import start_seaweedfs

    admin = local_postgres_dsn()
    if admin is None:
        print("needs the machine's PostgreSQL on 127.0.0.1:5432", file=sys.stderr)
        return 1
    dbname = f"vam_bench_lc_{uuid.uuid4().hex[:8]}"
    os.environ["VAM_CATALOG_DSN"] = create_database(admin, dbname)
    access, secret = "bench" + secrets.token_hex(4), secrets.token_hex(16)
    server = start_seaweedfs(tmp / "seaweed", access_key=access, secret_key=secret)
    try:
        return run(args, server, access, secret, tmp)
    finally:
        server.stop()
        drop_database(admin, dbname)


def run(args, server, access: str, secret: str, tmp: Path) -> int:
    from vam import storage
    from vam.runtime import Runtime
    from vam.steps import lifecycle
    from vam.storage.s3 import make_s3_client

    client = make_s3_client(server.endpoint_url, access_key=access, secret_key=secret)
    storage.configure(s3_client=client)
    sfx = uuid.uuid4().hex[:6]
    hot, warm, hot_b, warm_b = (f"{n}-{sfx}" for n in ("hot", "warm", "base-hot", "base-warm"))
    server.ensure_buckets([hot, warm, hot_b, warm_b])
    rt = Runtime.from_env()

    # -- the objects: the same bytes in both hot buckets; the catalog knows the first set ---------------
    large = args.large_mib * 1024 * 1024
    specs = [(f"a{i // PER_ASSET:05d}", f"small/{i:06d}.bin", SMALL_SIZE) for i in range(args.small)]
    specs += [(f"L{i:04d}", f"large/{i:03d}.bin", large) for i in range(args.large)]

    def put(spec):
        asset, key, size = spec
        data = os.urandom(size)
        for bucket in (hot, hot_b):
            client.put_object(Bucket=bucket, Key=f"{asset}/{key}", Body=data)
        return asset, f"s3://{hot}/{asset}/{key}", size, hashlib.sha256(data).hexdigest()

    t0 = time.monotonic()
    with ThreadPoolExecutor(16) as pool:
        written = list(pool.map(put, specs))
    total_bytes = sum(w[2] for w in written)
    print(f"wrote {len(written)} objects ({total_bytes / 1e6:.1f} MB) twice in {time.monotonic() - t0:.1f}s")
    from psycopg2.extras import execute_values

    with rt.catalog() as cat, cat.conn, cat.conn.cursor() as cur:  # bench setup: bulk rows
        assets = sorted({w[0] for w in written})
        execute_values(
            cur,
            "INSERT INTO assets (asset_id, content_sha256, source_uri, status) VALUES %s",
            [(a, hashlib.sha256(a.encode()).hexdigest(), f"s3://{hot}/{a}", "ready") for a in assets],
        )
        execute_values(
            cur,
            "INSERT INTO stored_objects (uri, asset_id, kind, size_bytes, sha256, tier) VALUES %s",
            [(uri, a, "derived", size, digest, "hot") for a, uri, size, digest in written],
        )
    policy = tmp / "bench.yaml"
    policy.write_text(
        f"""name: bench
version: 1
tiers:
  hot:  {{uri: "s3://{hot}", class: STANDARD}}
  warm: {{uri: "s3://{warm}", class: STANDARD_IA}}
rules:
  - {{name: warm-after-30-days-idle, when: {{tier: hot, idle_days: 30}}, action: {{move: warm}}}}
"""
    )
    later = dt.datetime.now(dt.UTC) + dt.timedelta(days=45)

    # -- (a) vam ------------------------------------------------------------------------------------------
    t0 = time.monotonic()
    result = lifecycle.run(rt, str(policy), later, threads=args.threads)
    vam_s = time.monotonic() - t0
    rss_vam = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    done = result["executed"]

    # -- (b) the plain loop -------------------------------------------------------------------------------
    keys = [f"{a}/{k}" for a, k, _ in specs]
    t0 = time.monotonic()
    for key in keys:
        client.copy_object(
            Bucket=warm_b, Key=key, CopySource={"Bucket": hot_b, "Key": key}, StorageClass="STANDARD_IA"
        )
        client.delete_object(Bucket=hot_b, Key=key)
    base_s = time.monotonic() - t0

    # -- nothing lost -------------------------------------------------------------------------------------
    in_warm = {o.uri for o in storage.store_for(f"s3://{warm}/").list(f"s3://{warm}/")}
    in_hot = [
        o.uri for o in storage.store_for(f"s3://{hot}/").list(f"s3://{hot}/") if "/_lifecycle/" not in o.uri
    ]
    with rt.catalog() as cat, cat.conn.cursor() as cur:
        cur.execute("SELECT uri, sha256 FROM stored_objects")
        rows = cur.fetchall()
    pointed = {r[0] for r in rows}
    with ThreadPoolExecutor(8) as pool:
        bad = sum(pool.map(lambda r: storage.sha256_object(r[0]) != r[1], rows))
    lost = len(written) - len(pointed & in_warm)
    n, mb = len(written), total_bytes / 1e6
    print(f"objects: {args.small} x {SMALL_SIZE} B + {args.large} x {args.large_mib} MiB = {n} ({mb:.1f} MB)")
    print(f"plan: {result['summary']['actions']['move']['objects']} moves; executed: {done['moved']} moved,"
          f" errors {len(done['errors'])}")  # fmt: skip
    print(f"(a) vam lifecycle run ({args.threads} copy threads): {vam_s:.1f}s  {n / vam_s:.1f} objects/s "
          f" {mb / vam_s:.1f} MB/s")  # fmt: skip
    print(f"(b) boto3 copy+delete loop:         {base_s:.1f}s  {n / base_s:.1f} objects/s "
          f" {mb / base_s:.1f} MB/s")  # fmt: skip
    print(f"ratio (a)/(b): {base_s / vam_s:.2f}")
    print(f"peak RSS after (a): {rss_vam:.0f} MiB; after both: "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")  # fmt: skip
    print(f"lost: {lost}; left in hot: {len(in_hot)}; wrong checksums: {bad}; warm holds {len(in_warm)}")
    return 0 if lost == 0 and not in_hot and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())

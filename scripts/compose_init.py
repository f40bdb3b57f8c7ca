#!/usr/bin/env python3
"""docker-compose.yaml's airflow-init step for vam: the catalog database (created and migrated) and the
buckets (landing, processed, quarantine) on the S3 endpoint. Safe to run again.

Reads the containers' environment: VAM_CATALOG_DSN, VAM_S3_ENDPOINT_URL, VAM_LANDING_URI,
VAM_PROCESSED_URI, VAM_QUARANTINE_URI, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.
"""

from __future__ import annotations

import os
import sys
import time

import psycopg2.extensions


def _bucket(uri: str) -> str:
    return uri.removeprefix("s3://").split("/", 1)[0]


def main() -> int:
    from vam.catalog.db import connect, migrate
    from vam.catalog.dsn import create_database, with_dbname

    dsn = os.environ["VAM_CATALOG_DSN"]
    dbname = psycopg2.extensions.parse_dsn(dsn)["dbname"]
    create_database(with_dbname(dsn, "postgres"), dbname)
    conn = connect(dsn)
    try:
        applied = migrate(conn)
    finally:
        conn.close()
    print(f"catalog {dbname}: {len(applied)} migrations applied", flush=True)

    import boto3
    import botocore.exceptions

    s3 = boto3.client("s3", endpoint_url=os.environ["VAM_S3_ENDPOINT_URL"], region_name="us-east-1")
    buckets = {_bucket(os.environ[k]) for k in ("VAM_LANDING_URI", "VAM_PROCESSED_URI", "VAM_QUARANTINE_URI")}
    for attempt in range(30):  # SeaweedFS answers health checks a little before it takes requests
        try:
            existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
            break
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            if attempt == 29:
                raise
            time.sleep(2)
    for name in sorted(buckets - existing):
        s3.create_bucket(Bucket=name)
        print(f"created bucket {name}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""``python -m vam.devstack``: start and stop the development servers (used by the Makefile's
local stack and by hand). Development only."""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from pathlib import Path

from vam.devstack.postgres import ensure_catalog, pgdata_dir, stop_embedded_catalog
from vam.devstack.seaweed import load_or_create_credentials, read_info, start_seaweedfs, stop_from_pidfile
from vam.errors import CatalogError, StorageError
from vam.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vam.devstack",
        description="Development servers on 127.0.0.1: SeaweedFS (S3) and the catalog PostgreSQL.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start-s3", help="start (or reuse) SeaweedFS on 127.0.0.1")
    start.add_argument("--dir", required=True, type=Path, help="data directory")
    start.add_argument("--port", type=int, default=None, help="S3 port (default: a free one)")
    start.add_argument("--bucket", action="append", default=[], help="bucket to create (repeatable)")
    start.add_argument("--timeout", type=float, default=30.0)
    stop = sub.add_parser("stop-s3", help="stop the SeaweedFS started in --dir")
    stop.add_argument("--dir", required=True, type=Path)
    env = sub.add_parser("env", help="print shell exports for the SeaweedFS running in --dir")
    env.add_argument("--dir", required=True, type=Path)
    sub.add_parser(
        "catalog",
        help="print the catalog DSN (creating database vam, starting PostgreSQL if needed) and record "
        "it in VAM_HOME/catalog.dsn",
    )
    sub.add_parser("stop-catalog", help="stop the embedded PostgreSQL under VAM_HOME, if running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    try:
        if args.command == "start-s3":
            access_key, secret_key, where = load_or_create_credentials(args.dir)
            server = start_seaweedfs(
                args.dir,
                s3_port=args.port,
                access_key=access_key,
                secret_key=secret_key,
                timeout=args.timeout,
            )
            server.ensure_buckets(args.bucket)
            state = "already running" if server.reused else f"started in {server.startup_seconds:.2f} s"
            print(f"SeaweedFS S3 endpoint: {server.endpoint_url} (pid {server.pid}, {state})")
            print(f"credentials: {where}")
        elif args.command == "stop-s3":
            stopped = stop_from_pidfile(args.dir)
            print("stopped SeaweedFS" if stopped else f"no SeaweedFS running in {args.dir}")
        elif args.command == "env":
            info = read_info(Path(args.dir).expanduser().resolve())
            if info is None:
                print(f"no SeaweedFS running in {args.dir}; run start-s3 first", file=sys.stderr)
                return 1
            access_key, secret_key, _ = load_or_create_credentials(args.dir)
            for name, value in (
                ("VAM_S3_ENDPOINT_URL", info["endpoint_url"]),
                ("VAM_S3_ACCESS_KEY", access_key),
                ("VAM_S3_SECRET_KEY", secret_key),
                ("AWS_ACCESS_KEY_ID", access_key),
                ("AWS_SECRET_ACCESS_KEY", secret_key),
            ):
                print(f"export {name}={shlex.quote(str(value))}")
        elif args.command == "catalog":
            print(ensure_catalog(load_settings()))
        elif args.command == "stop-catalog":
            pgdata = pgdata_dir(load_settings().home)
            stopped = stop_embedded_catalog(pgdata)
            print(
                "stopped the embedded PostgreSQL"
                if stopped
                else f"no embedded PostgreSQL running in {pgdata}"
            )
    except (StorageError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

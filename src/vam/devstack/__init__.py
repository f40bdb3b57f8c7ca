"""Development servers only: SeaweedFS (S3) and the development catalog PostgreSQL on 127.0.0.1.

Used by the local stack (``make run``, scripts/local_stack.py), the tests and the benchmarks.
Nothing else under src/vam imports this package: production resolves its catalog with
``vam.catalog.dsn.resolve_dsn``, which never starts a server.

CLI (``python -m vam.devstack --help``)::

    python -m vam.devstack start-s3 --dir D [--port P] [--bucket NAME ...]
    python -m vam.devstack stop-s3 --dir D
    python -m vam.devstack env --dir D       # shell exports for the running server
    python -m vam.devstack catalog           # prints the catalog DSN (and records it in VAM_HOME)
    python -m vam.devstack stop-catalog      # stops the embedded PostgreSQL, if running
"""

from __future__ import annotations

from vam.devstack.postgres import (
    ensure_catalog,
    pgdata_dir,
    start_embedded_catalog,
    stop_embedded_catalog,
    write_dsn_file,
)
from vam.devstack.seaweed import (
    SeaweedServer,
    find_weed,
    free_port,
    load_or_create_credentials,
    read_info,
    start_seaweedfs,
    stop_from_pidfile,
)

__all__ = [
    "SeaweedServer",
    "ensure_catalog",
    "find_weed",
    "free_port",
    "load_or_create_credentials",
    "pgdata_dir",
    "read_info",
    "start_embedded_catalog",
    "start_seaweedfs",
    "stop_embedded_catalog",
    "stop_from_pidfile",
    "write_dsn_file",
]

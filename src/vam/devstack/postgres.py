"""The development catalog: the machine's PostgreSQL, else an embedded one. Development servers
only: nothing in production imports this package.

``ensure_catalog`` picks the machine's PostgreSQL on 127.0.0.1:5432 when it answers, else starts
an embedded one from the pgserver wheel under ``<home>/pgdata`` (unix socket only, left running
for other processes; ``stop_embedded_catalog`` stops it), creates database ``vam`` there and
records its DSN in ``<home>/catalog.dsn`` (mode 0600), where production's
``vam.catalog.dsn.resolve_dsn`` finds it. Note that pgserver, when run as root, runs PostgreSQL
as a ``pgserver`` system user that it creates, and opens the parent directories of the data
directory for traversal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
from pathlib import Path

from vam.catalog.dsn import (
    AUTO,
    CATALOG_DBNAME,
    LOCAL_HOST,
    LOCAL_PORT,
    create_database,
    dsn_file,
    local_postgres_dsn,
    redact_dsn,
    with_dbname,
)
from vam.devstack._files import write_private
from vam.errors import CatalogError
from vam.settings import Settings

log = logging.getLogger(__name__)

PGDATA_SUBDIR = "pgdata"


def pgdata_dir(home: str | Path) -> Path:
    """Where the embedded PostgreSQL of VAM_HOME ``home`` keeps its data."""
    return Path(home).expanduser() / PGDATA_SUBDIR


def start_embedded_catalog(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL of the pgserver wheel in ``pgdata``; return an
    admin DSN (database ``postgres``, over a unix socket). The server outlives this process."""
    import pgserver

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # pgserver raises CalledProcessError, AssertionError, RuntimeError...
        raise CatalogError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {exc}; see {pgdata / 'log'}"
        ) from exc
    return str(server.get_uri("postgres"))


def stop_embedded_catalog(pgdata: Path) -> bool:
    """Stop the embedded PostgreSQL in ``pgdata``; False when it was not running. The
    ``catalog.dsn`` beside ``pgdata`` is removed when it points at this server."""
    import psutil
    from pgserver import _commands
    from pgserver.utils import PostmasterInfo

    pgdata = Path(pgdata).expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or info.pid is None or not psutil.pid_exists(info.pid):
        return False
    try:
        recorded = with_dbname(info.get_uri(database="postgres"), CATALOG_DBNAME)
    except RuntimeError:  # postmaster.pid without socket or port
        recorded = None
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user under root
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"cannot stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    if recorded is not None:
        _forget_dsn(pgdata.parent, recorded)
    return True


def write_dsn_file(home: str | Path, dsn: str) -> Path:
    """Record ``dsn`` as the catalog of VAM_HOME ``home`` (``<home>/catalog.dsn``, mode 0600)."""
    path = dsn_file(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        if path.read_text().strip() == dsn and (path.stat().st_mode & 0o077) == 0:
            return path
    write_private(path, dsn + "\n")
    log.info("recorded the catalog DSN %s in %s", redact_dsn(dsn), path)
    return path


def _forget_dsn(home: Path, dsn: str) -> None:
    path = dsn_file(home)
    with contextlib.suppress(OSError):
        if path.read_text().strip() == dsn:
            path.unlink()
            log.info("removed %s (it pointed at the embedded PostgreSQL being stopped)", path)


def ensure_catalog(settings: Settings) -> str:
    """The catalog DSN, starting a development PostgreSQL when needed.

    ``settings.catalog_dsn`` unless it is "auto"; else database ``vam`` (created if missing) on the
    machine's PostgreSQL at 127.0.0.1:5432, or on an embedded PostgreSQL under ``<home>/pgdata``
    (started if needed) when the machine has none. For "auto" the DSN is recorded in
    ``<home>/catalog.dsn`` so that later processes with the same VAM_HOME resolve to it.
    """
    if settings.catalog_dsn and settings.catalog_dsn != AUTO:
        return settings.catalog_dsn
    home = Path(settings.home)
    admin = local_postgres_dsn()
    if admin is None:
        log.info(
            "no PostgreSQL on %s:%s; using the embedded one in %s", LOCAL_HOST, LOCAL_PORT, pgdata_dir(home)
        )
        admin = start_embedded_catalog(pgdata_dir(home))
    dsn = create_database(admin, CATALOG_DBNAME)
    write_dsn_file(home, dsn)
    return dsn

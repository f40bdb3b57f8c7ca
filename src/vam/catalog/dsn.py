"""Which PostgreSQL the catalog lives in, and creating or dropping a database there.

``resolve_dsn`` turns the ``catalog_dsn`` setting into a DSN. It never starts a server: an
explicit DSN is used as is, and "auto" (the default) means, in order,

1. the DSN in ``<home>/catalog.dsn``, written by the development stack (``python -m vam.devstack
   catalog``, ``make run``) when it chose or started a catalog for this VAM_HOME;
2. database ``vam`` (created if missing) on the machine's PostgreSQL at 127.0.0.1:5432, if it
   answers to $PGUSER, the current user or ``postgres``;
3. else a CatalogError that says what to do.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import re
import socket
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from vam.errors import CatalogError

log = logging.getLogger(__name__)

AUTO = "auto"
DSN_FILE = "catalog.dsn"  # in VAM_HOME; written by vam.devstack, read here
CATALOG_DBNAME = "vam"
LOCAL_HOST = "127.0.0.1"
LOCAL_PORT = 5432

_URI_SCHEMES = ("postgresql://", "postgres://")
_KV_PASSWORD = re.compile(r"(\bpassword\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")


def redact_dsn(dsn: str) -> str:
    """``dsn`` with its password replaced by ``***`` (URI or key=value form), for messages and logs."""
    if dsn.startswith(_URI_SCHEMES):
        parts = urlsplit(dsn)
        netloc = parts.netloc
        userinfo, at, hostport = netloc.rpartition("@")
        user, colon, password = userinfo.partition(":")
        if at and colon and password:
            netloc = f"{user}:***@{hostport}"
        query = parts.query
        if query:
            pairs = parse_qsl(query, keep_blank_values=True)
            if any(key == "password" for key, _ in pairs):
                query = urlencode([(k, "***" if k == "password" else v) for k, v in pairs], safe="/*")
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    return _KV_PASSWORD.sub(r"\1***", dsn)


def with_dbname(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` instead (URI or key=value form)."""
    if dsn.startswith(_URI_SCHEMES):
        return urlunsplit(urlsplit(dsn)._replace(path="/" + quote(name)))
    from psycopg2.extensions import make_dsn

    return str(make_dsn(dsn, dbname=name))


def _connect(dsn: str, **kwargs: Any) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(dsn, **kwargs)
    except psycopg2.Error as exc:
        raise CatalogError(f"cannot connect to PostgreSQL at {redact_dsn(dsn)}: {str(exc).strip()}") from exc


def create_database(dsn_admin: str, name: str) -> str:
    """Create database ``name`` unless it exists, connecting with ``dsn_admin``; return its DSN."""
    import psycopg2
    from psycopg2 import sql

    conn = _connect(dsn_admin, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("created database %s", name)
                except psycopg2.errors.DuplicateDatabase:
                    pass  # created concurrently
    except psycopg2.Error as exc:
        raise CatalogError(
            f"cannot create database {name!r} at {redact_dsn(dsn_admin)}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()
    return with_dbname(dsn_admin, name)


def drop_database(dsn_admin: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions first."""
    import psycopg2
    from psycopg2 import sql

    conn = _connect(dsn_admin, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg2.Error as exc:
        raise CatalogError(
            f"cannot drop database {name!r} at {redact_dsn(dsn_admin)}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()


def _find_local_postgres(host: str, port: int) -> tuple[str | None, str]:
    """``(admin DSN, "")`` for the PostgreSQL on host:port, else ``(None, why not)``."""
    import psycopg2

    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError:
        return None, f"nothing answers on {host}:{port}"
    users = [os.environ["PGUSER"]] if os.environ.get("PGUSER") else []
    with contextlib.suppress(Exception):
        users.append(getpass.getuser())
    users.append("postgres")
    users = list(dict.fromkeys(users))
    for user in users:
        dsn = f"postgresql://{quote(user, safe='')}@{host}:{port}/postgres"
        try:
            psycopg2.connect(dsn, connect_timeout=3).close()
        except psycopg2.OperationalError as exc:
            log.debug("PostgreSQL at %s:%s refused user %s: %s", host, port, user, exc)
            continue
        return dsn, ""
    why = (
        f"the PostgreSQL on {host}:{port} accepts none of the users {', '.join(users)} "
        "(set PGUSER, and PGPASSWORD or ~/.pgpass if it needs a password)"
    )
    log.warning("%s", why)
    return None, why


def local_postgres_dsn(host: str = LOCAL_HOST, port: int = LOCAL_PORT) -> str | None:
    """An admin DSN (database ``postgres``) for the machine's PostgreSQL on host:port, trying the
    users $PGUSER, the current user and ``postgres``; None when none answers or accepts them."""
    return _find_local_postgres(host, port)[0]


def dsn_file(home: str | Path) -> Path:
    """``<home>/catalog.dsn``: the catalog the development stack chose for this VAM_HOME."""
    return Path(home).expanduser() / DSN_FILE


def read_dsn_file(home: str | Path) -> str | None:
    """The DSN recorded in ``<home>/catalog.dsn``, or None when there is no such file."""
    path = dsn_file(home)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise CatalogError(f"cannot read the catalog DSN from {path}: {exc}") from exc
    if not text:
        raise CatalogError(
            f"{path} is empty; delete it, or write the catalog DSN in it "
            "(`python -m vam.devstack catalog` does for the development catalog)"
        )
    return text


def resolve_dsn(catalog_dsn: str, home: str | Path, *, host: str = LOCAL_HOST, port: int = LOCAL_PORT) -> str:
    """The catalog DSN for the ``catalog_dsn`` setting (VAM_CATALOG_DSN) and VAM_HOME ``home``.

    An explicit DSN is returned as is. "auto" (or empty) is the DSN in ``<home>/catalog.dsn`` when
    that file exists, else database ``vam`` (created if missing) on the PostgreSQL at host:port
    (127.0.0.1:5432), else a CatalogError. Never starts a server.
    """
    if catalog_dsn and catalog_dsn != AUTO:
        return catalog_dsn
    recorded = read_dsn_file(home)
    if recorded is not None:
        log.debug("catalog DSN from %s: %s", dsn_file(home), redact_dsn(recorded))
        return recorded
    admin, why = _find_local_postgres(host, port)
    if admin is None:
        raise CatalogError(
            f"no catalog database: VAM_CATALOG_DSN is {AUTO!r}, there is no {dsn_file(home)} and {why}. "
            "Set VAM_CATALOG_DSN to a PostgreSQL DSN, or start PostgreSQL on "
            f"{host}:{port}, or, for development, start the embedded catalog with "
            "`python -m vam.devstack catalog` (or `make run`) with the same VAM_HOME"
        )
    return create_database(admin, CATALOG_DBNAME)

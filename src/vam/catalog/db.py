"""Connections to the catalog database and its schema migrations (numbered files in sql/)."""

from __future__ import annotations

import logging
import re
import threading
from pathlib import Path

import psycopg2
import psycopg2.extensions
import psycopg2.extras

from vam.errors import CatalogError
from vam.settings import REPO_ROOT

log = logging.getLogger(__name__)

SQL_DIR = REPO_ROOT / "sql"
_MIGRATION_RE = re.compile(r"^(\d{3})_[a-z0-9_]+\.sql$")
_MIGRATION_LOCK = 0x7A6D_0001  # pg_advisory_xact_lock key: one migrator at a time
_migrated: set[str] = set()
_migrated_lock = threading.Lock()


def migrations(sql_dir: Path = SQL_DIR) -> list[tuple[int, Path]]:
    """The numbered migration files, in order."""
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        match = _MIGRATION_RE.match(path.name)
        if not match:
            raise CatalogError(f"{path} is not named NNN_name.sql; rename it so its order is explicit")
        found.append((int(match.group(1)), path))
    return found


def connect(dsn: str) -> psycopg2.extensions.connection:
    """Open a connection; a clear CatalogError when the server cannot be reached."""
    try:
        conn = psycopg2.connect(dsn, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise CatalogError(
            f"cannot connect to the catalog database ({_redact(dsn)}): {str(exc).strip()}; "
            "set VAM_CATALOG_DSN or start PostgreSQL"
        ) from exc
    psycopg2.extras.register_default_jsonb(conn)
    return conn


def migrate(conn: psycopg2.extensions.connection, sql_dir: Path = SQL_DIR) -> list[int]:
    """Apply the migrations not applied yet, each in its own transaction. Returns those applied."""
    applied: list[int] = []
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
    for version, path in migrations(sql_dir):
        with conn, conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
            cur.execute("SELECT 1 FROM schema_migrations WHERE version = %s", (version,))
            if cur.fetchone():
                continue
            log.info("applying catalog migration %s", path.name)
            cur.execute(path.read_text())
            cur.execute("INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (version, path.name))
            applied.append(version)
    return applied


def open_catalog_connection(dsn: str) -> psycopg2.extensions.connection:
    """Connect and make sure the schema is current (migrations run once per process and DSN)."""
    conn = connect(dsn)
    with _migrated_lock:
        if dsn not in _migrated:
            migrate(conn)
            _migrated.add(dsn)
    return conn


def _redact(dsn: str) -> str:
    return re.sub(r"(password=|:)[^@\s]*@", r"\1***@", dsn)

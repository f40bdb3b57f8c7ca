"""The development stack: the catalog bootstrap (the machine's PostgreSQL, or the embedded one, answers
to the DSN returned and recorded for production's resolve_dsn) and the `python -m vam.devstack` CLI."""

from __future__ import annotations

import os
import secrets
import socket
import stat
import subprocess
import sys
from pathlib import Path

import psycopg2
import pytest

from vam.catalog.dsn import (
    DSN_FILE,
    create_database,
    drop_database,
    local_postgres_dsn,
    resolve_dsn,
    with_dbname,
)
from vam.devstack import ensure_catalog, free_port, stop_embedded_catalog
from vam.devstack import postgres as devstack_postgres
from vam.errors import CatalogError
from vam.settings import load_settings

pytestmark = pytest.mark.integration


def _current_database(dsn: str) -> str:
    conn = psycopg2.connect(dsn, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_database()")
            return str(cur.fetchone()[0])
    finally:
        conn.close()


def _closed_port() -> tuple[socket.socket, int]:
    """A socket bound to a 127.0.0.1 port without listening: connections to that port are refused."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return sock, int(sock.getsockname()[1])


def test_ensure_catalog_returns_a_dsn_that_connects(tmp_path: Path) -> None:
    dsn = ensure_catalog(load_settings({"VAM_HOME": str(tmp_path)}))
    assert _current_database(dsn) == "vam"
    assert ensure_catalog(load_settings({"VAM_HOME": str(tmp_path)})) == dsn  # idempotent


def test_ensure_catalog_records_the_dsn_for_production(tmp_path: Path) -> None:
    """What the devstack chose for a VAM_HOME is what production's resolve_dsn("auto") returns, even
    with nothing on the port it would otherwise try."""
    dsn = ensure_catalog(load_settings({"VAM_HOME": str(tmp_path)}))
    recorded = tmp_path / DSN_FILE
    assert recorded.read_text().strip() == dsn
    assert stat.S_IMODE(recorded.stat().st_mode) == 0o600
    sock, port = _closed_port()
    with sock:
        assert resolve_dsn("auto", tmp_path, port=port) == dsn


def test_explicit_dsn_is_returned_unchanged(tmp_path: Path) -> None:
    settings = load_settings({"VAM_HOME": str(tmp_path), "VAM_CATALOG_DSN": "postgresql://u@db.example/vam"})
    assert ensure_catalog(settings) == "postgresql://u@db.example/vam"
    assert not (tmp_path / DSN_FILE).exists()  # an explicit DSN is not recorded


@pytest.mark.skipif(local_postgres_dsn() is None, reason="no PostgreSQL on 127.0.0.1:5432")
def test_resolve_dsn_uses_the_machines_postgres(tmp_path: Path) -> None:
    """Without catalog.dsn, "auto" is database vam on 127.0.0.1:5432 (created if missing), and no file
    is written: production records nothing."""
    dsn = resolve_dsn("auto", tmp_path)
    assert _current_database(dsn) == "vam"
    assert not (tmp_path / DSN_FILE).exists()


def test_create_and_drop_a_fresh_database(tmp_path: Path) -> None:
    admin = with_dbname(ensure_catalog(load_settings({"VAM_HOME": str(tmp_path)})), "postgres")
    name = f"vam_test_{secrets.token_hex(4)}"
    dsn = create_database(admin, name)
    try:
        assert create_database(admin, name) == dsn  # exists already: fine
        held = psycopg2.connect(dsn)  # an open session must not block the drop
        assert _current_database(dsn) == name
    finally:
        drop_database(admin, name)
    held.close()
    with pytest.raises(psycopg2.OperationalError):
        psycopg2.connect(dsn, connect_timeout=5)
    drop_database(admin, name)  # dropping a missing database is not an error


def test_unreachable_catalog_is_a_catalog_error() -> None:
    with pytest.raises(CatalogError, match="cannot connect to PostgreSQL"):
        create_database(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", "x")


def test_catalog_errors_do_not_show_the_password() -> None:
    with pytest.raises(CatalogError) as caught:
        create_database(f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/postgres", "x")
    assert "s3cret" not in str(caught.value)
    assert "postgres:***@127.0.0.1" in str(caught.value)


@pytest.mark.slow
def test_embedded_catalog_when_no_local_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With nothing on 127.0.0.1:5432, ensure_catalog starts pgserver's PostgreSQL under <home>/pgdata and
    records it; stopping it forgets the record, and production then says what to do."""
    monkeypatch.setattr(devstack_postgres, "local_postgres_dsn", lambda: None)
    home = tmp_path / "home"
    try:
        dsn = ensure_catalog(load_settings({"VAM_HOME": str(home)}))
        assert (home / "pgdata" / "PG_VERSION").is_file()
        assert _current_database(dsn) == "vam"
        assert ensure_catalog(load_settings({"VAM_HOME": str(home)})) == dsn  # reuses the running server
        sock, port = _closed_port()
        with sock:
            assert resolve_dsn("auto", home, port=port) == dsn
    finally:
        assert stop_embedded_catalog(home / "pgdata")
    assert not stop_embedded_catalog(home / "pgdata")
    assert not (home / DSN_FILE).exists()
    sock, port = _closed_port()
    with sock, pytest.raises(CatalogError, match="python -m vam.devstack catalog"):
        resolve_dsn("auto", home, port=port)


def _cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAM_", "AWS_"))}
    env.update(VAM_HOME=str(home), HOME=str(home))
    return env


def test_cli_catalog_prints_and_records_the_dsn(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "vam.devstack", "catalog"],
        env=_cli_env(tmp_path),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    dsn = out.stdout.strip()
    assert _current_database(dsn) == "vam"
    assert (tmp_path / DSN_FILE).read_text().strip() == dsn


def test_cli_start_env_stop_s3(tmp_path: Path) -> None:
    """The local stack's path: start-s3 generates private credentials once, env exports them, stop-s3
    stops."""
    import boto3

    data_dir = tmp_path / "s3"
    port = free_port()
    env = _cli_env(tmp_path)

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "vam.devstack", *args],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    out = cli("start-s3", "--dir", str(data_dir), "--port", str(port), "--bucket", "vam-hot")
    try:
        assert f"http://127.0.0.1:{port}" in out
        assert str(data_dir / "credentials.json") in out
        assert stat.S_IMODE((data_dir / "credentials.json").stat().st_mode) == 0o600
        assert stat.S_IMODE((data_dir / "s3-identities.json").stat().st_mode) == 0o600
        assert "already running" in cli("start-s3", "--dir", str(data_dir))
        exports = dict(
            line.removeprefix("export ").split("=", 1)
            for line in cli("env", "--dir", str(data_dir)).splitlines()
        )
        assert exports["VAM_S3_ENDPOINT_URL"] == f"http://127.0.0.1:{port}"
        client = boto3.session.Session().client(
            "s3",
            endpoint_url=exports["VAM_S3_ENDPOINT_URL"],
            region_name="us-east-1",
            aws_access_key_id=exports["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=exports["AWS_SECRET_ACCESS_KEY"],
        )
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["vam-hot"]
    finally:
        assert "stopped SeaweedFS" in cli("stop-s3", "--dir", str(data_dir))
    assert not (data_dir / "seaweedfs.pid").exists()
    assert "no SeaweedFS running" in cli("stop-s3", "--dir", str(data_dir))

"""Catalog DSN resolution without servers: explicit DSNs, the devstack's catalog.dsn, and the error
when nothing answers."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from vam.catalog.dsn import DSN_FILE, local_postgres_dsn, redact_dsn, resolve_dsn, with_dbname
from vam.errors import CatalogError


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port bound but not listening: connections to it are refused while the test runs."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


def test_an_explicit_dsn_is_returned_as_is(tmp_path: Path, closed_port: int) -> None:
    (tmp_path / DSN_FILE).write_text("postgresql://other@127.0.0.1/vam\n")  # ignored: explicit wins
    for dsn in ("postgresql://u:pw@db.example:6543/vam?sslmode=require", "host=db.example dbname=vam"):
        assert resolve_dsn(dsn, tmp_path, port=closed_port) == dsn


def test_auto_reads_the_catalog_dsn_file(tmp_path: Path, closed_port: int) -> None:
    dsn = "postgresql://postgres:@/vam?host=/somewhere/pgdata"
    (tmp_path / DSN_FILE).write_text(dsn + "\n")
    assert resolve_dsn("auto", tmp_path, port=closed_port) == dsn
    assert resolve_dsn("auto", str(tmp_path), port=closed_port) == dsn
    assert resolve_dsn("", tmp_path, port=closed_port) == dsn  # unset means auto


def test_auto_with_nothing_answering_says_what_to_do(tmp_path: Path, closed_port: int) -> None:
    with pytest.raises(CatalogError) as caught:
        resolve_dsn("auto", tmp_path, host="127.0.0.1", port=closed_port)
    message = str(caught.value)
    assert "VAM_CATALOG_DSN" in message
    assert f"127.0.0.1:{closed_port}" in message
    assert "python -m vam.devstack catalog" in message
    assert "make run" in message
    assert str(tmp_path / DSN_FILE) in message


def test_an_empty_catalog_dsn_file_is_an_error(tmp_path: Path, closed_port: int) -> None:
    (tmp_path / DSN_FILE).write_text("\n")
    with pytest.raises(CatalogError, match="is empty"):
        resolve_dsn("auto", tmp_path, port=closed_port)


def test_no_local_postgres_on_a_closed_port(closed_port: int) -> None:
    assert local_postgres_dsn(port=closed_port) is None


@pytest.mark.parametrize(
    ("dsn", "shown"),
    [
        ("postgresql://vam:s3cret@db.example:5432/vam", "postgresql://vam:***@db.example:5432/vam"),
        (
            "postgres://vam:s3cret@db.example/vam?sslmode=require",
            "postgres://vam:***@db.example/vam?sslmode=require",
        ),
        ("postgresql://vam@db.example/vam", "postgresql://vam@db.example/vam"),
        ("postgresql://postgres:@/vam?host=/tmp/pg", "postgresql://postgres:@/vam?host=/tmp/pg"),
        (
            "postgresql://vam@/vam?host=/tmp/pg&password=s3cret",
            "postgresql://vam@/vam?host=/tmp/pg&password=***",
        ),
        ("host=db.example password=s3cret dbname=vam", "host=db.example password=*** dbname=vam"),
        (
            "host=db.example password = 'it\\'s secret' dbname=vam",
            "host=db.example password = *** dbname=vam",
        ),
        ("host=db.example dbname=vam", "host=db.example dbname=vam"),
    ],
)
def test_redact_dsn_hides_only_the_password(dsn: str, shown: str) -> None:
    assert redact_dsn(dsn) == shown


def test_with_dbname() -> None:
    assert (
        with_dbname("postgresql://root@127.0.0.1:5432/postgres", "vam")
        == "postgresql://root@127.0.0.1:5432/vam"
    )
    assert (
        with_dbname("postgresql://postgres:@/postgres?host=/tmp/pg", "vam")
        == "postgresql://postgres:@/vam?host=/tmp/pg"
    )
    assert "dbname=vam" in with_dbname("host=127.0.0.1 dbname=postgres user=root", "vam")

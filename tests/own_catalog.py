"""A catalog database of a test module's own, for tests of whole-catalog operations (purge of every
due asset, dedup over every object, the storage report) that other tests' rows must not disturb."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from vam.runtime import Runtime


@contextmanager
def own_catalog() -> Iterator[str]:
    """Create a fresh, migrated catalog database; yield its DSN; drop it afterwards."""
    from vam.catalog.db import connect, migrate
    from vam.catalog.dsn import create_database, drop_database
    from vam.devstack import ensure_catalog
    from vam.settings import load_settings

    base = ensure_catalog(load_settings())
    name = f"vam_test_own_{uuid.uuid4().hex[:10]}"
    dsn = create_database(base, name)
    conn = connect(dsn)
    migrate(conn)
    conn.close()
    try:
        yield dsn
    finally:
        drop_database(base, name)


# Fixtures of the modules that use their own catalog (a plugin of tests/conftest.py; such a module
# says pytestmark = pytest.mark.usefixtures("logging_restored")).
@pytest.fixture(scope="module")
def module_catalog(catalog_dsn):
    """This module's own catalog: its purges, dedups and reports see only its own assets."""
    with own_catalog() as dsn:
        yield dsn


@pytest.fixture
def rt(vam_home, module_catalog, monkeypatch):
    monkeypatch.setenv("VAM_CATALOG_DSN", module_catalog)
    return Runtime.from_env()


@pytest.fixture
def logging_restored():
    """``vam.cli.main`` points the root logger at the (captured) stderr of its test: undo that."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)

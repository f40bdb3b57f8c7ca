"""A catalog database of a test module's own, for tests of whole-catalog operations (purge of every
due asset, dedup over every object, the storage report) that other tests' rows must not disturb."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager


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

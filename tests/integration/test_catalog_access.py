"""Last access: at most one write per asset every few minutes, whatever the read traffic."""

from __future__ import annotations

import hashlib
import uuid

import pytest

from vam.catalog import open_catalog


@pytest.fixture
def cat(catalog_dsn):
    with open_catalog(catalog_dsn) as c:
        yield c


def test_touch_access_writes_once_per_interval(cat):
    sha = hashlib.sha256(uuid.uuid4().bytes).hexdigest()
    asset_id, _ = cat.register_asset(sha256=sha, source_uri=f"file:///tmp/{sha}.mp4", size_bytes=1)
    assert cat.get_asset(asset_id)["last_accessed_at"] is None
    assert cat.touch_access(asset_id) is True
    first = cat.get_asset(asset_id)["last_accessed_at"]
    assert first is not None
    assert [cat.touch_access(asset_id) for _ in range(20)] == [False] * 20
    assert cat.get_asset(asset_id)["last_accessed_at"] == first
    assert cat.touch_access(asset_id, min_interval_s=0) is True
    assert cat.get_asset(asset_id)["last_accessed_at"] > first
    assert cat.touch_access("no-such-asset") is False

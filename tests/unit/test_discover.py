"""Which landing objects the ingest DAG treats as sources."""

from __future__ import annotations

import pytest

from vam.ingest.landings import is_candidate


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://landing/show/episode-1.mp4", True),
        ("s3://landing/show/Episode 2.MOV", True),
        ("file:///drop/clip.mkv", True),
        ("s3://landing/show/episode-1.mp4.part", False),  # upload in progress
        ("s3://landing/show/episode-1.tmp", False),
        ("s3://landing/show/episode-1.json", False),  # sidecar metadata, read with its video
        ("s3://landing/show/episode-1.yaml", False),
        ("s3://landing/show/.DS_Store", False),  # hidden
        ("s3://landing/show/", False),  # a "folder" marker
    ],
)
def test_is_candidate(uri, expected):
    assert is_candidate(uri) is expected

"""URI helpers of vam.storage: uri_join, parse_uri, to_uri, store_for's scheme registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vam.errors import StorageError
from vam.storage import parse_uri, store_for, to_uri, uri_join
from vam.storage.file import FileStore, file_uri_to_path


@pytest.mark.parametrize(
    ("base", "parts", "expected"),
    [
        ("s3://bucket", ("a", "b.mp4"), "s3://bucket/a/b.mp4"),
        ("s3://bucket/", ("a/", "/b.mp4"), "s3://bucket/a/b.mp4"),
        ("s3://bucket/prefix/", ("asset1", "default@3/"), "s3://bucket/prefix/asset1/default@3/"),
        ("s3://bucket/x", ("a//b",), "s3://bucket/x/a/b"),
        ("s3://bucket/x", (), "s3://bucket/x"),
        ("s3://bucket/x", ("", "/"), "s3://bucket/x"),
        ("s3://bucket", ("a b#c?.ts",), "s3://bucket/a b#c?.ts"),
        ("file:///data/objects", ("a", "b.mp4"), "file:///data/objects/a/b.mp4"),
        ("file:///", ("data", "x"), "file:///data/x"),
        ("file:///data", ("a b", "c#d.ts"), "file:///data/a%20b/c%23d.ts"),
        ("gs://archive", ("k",), "gs://archive/k"),
    ],
)
def test_uri_join(base: str, parts: tuple[str, ...], expected: str) -> None:
    assert uri_join(base, *parts) == expected


@pytest.mark.parametrize("bad", ["..", "a/../b", "./a"])
def test_uri_join_refuses_relative_segments(bad: str) -> None:
    with pytest.raises(StorageError, match="relative segment"):
        uri_join("s3://bucket/x", bad)


def test_uri_join_file_matches_path_as_uri(tmp_path: Path) -> None:
    joined = uri_join(tmp_path.as_uri(), "dir with space", "f#1.ts")
    assert joined == (tmp_path / "dir with space" / "f#1.ts").as_uri()
    assert file_uri_to_path(joined) == tmp_path / "dir with space" / "f#1.ts"


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://bucket/a/b.mp4", ("s3", "bucket", "a/b.mp4")),
        ("s3://bucket", ("s3", "bucket", "")),
        ("s3://bucket/", ("s3", "bucket", "")),
        ("s3://bucket/dir/", ("s3", "bucket", "dir/")),
        ("S3://bucket/k", ("s3", "bucket", "k")),
        ("gs://archive/x/y", ("gs", "archive", "x/y")),
        ("ftp://user@host:21/in/a.mov", ("ftp", "user@host:21", "in/a.mov")),
        ("file:///data/a%20b.mp4", ("file", "/", "data/a b.mp4")),
        ("file://localhost/data/x", ("file", "/", "data/x")),
        ("file:///data/dir/", ("file", "/", "data/dir/")),
    ],
)
def test_parse_uri(uri: str, expected: tuple[str, str, str]) -> None:
    assert parse_uri(uri) == expected


@pytest.mark.parametrize("bad", ["/plain/path", "s3:///key", "file://otherhost/x", "relative/path"])
def test_parse_uri_rejects(bad: str) -> None:
    with pytest.raises(StorageError):
        parse_uri(bad)


def test_to_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert to_uri("s3://bucket/k") == "s3://bucket/k"
    assert to_uri("file:///x/y") == "file:///x/y"
    assert to_uri(tmp_path / "a b.mp4") == (tmp_path / "a b.mp4").as_uri()
    monkeypatch.chdir(tmp_path)
    assert to_uri("clip.mp4") == (tmp_path / "clip.mp4").as_uri()
    assert to_uri("sub/../clip.mp4") == (tmp_path / "clip.mp4").as_uri()
    assert to_uri("~/x") == Path(os.path.expanduser("~/x")).as_uri()


def test_store_for_file_and_unsupported() -> None:
    assert isinstance(store_for("file:///tmp/x"), FileStore)
    with pytest.raises(StorageError, match=r"unsupported URI scheme 'webdav'.*file://.*s3://"):
        store_for("webdav://host/x")
    with pytest.raises(StorageError, match="not a URI"):
        store_for("/tmp/x")

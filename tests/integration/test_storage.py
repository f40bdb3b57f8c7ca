"""FileStore and S3Store against the real filesystem and a real SeaweedFS (``weed mini``) on loopback."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import psutil
import pytest
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

import vam.storage as storage
from vam.devstack import SeaweedServer, start_seaweedfs, stop_from_pidfile
from vam.errors import ChecksumMismatch, StorageError
from vam.storage import configure, copy_verified, sha256_file, sha256_object, store_for, uri_join
from vam.storage.file import FileStore, file_uri_to_path
from vam.storage.s3 import S3Store

pytestmark = pytest.mark.integration

BUCKET = "vam-test"
PUBLIC_BUCKET = "vam-test-public"  # anonymous GET/HEAD allowed, nothing else


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedServer]:
    """A SeaweedFS started for the test session on free loopback ports, stopped at the end."""
    data_dir = tmp_path_factory.mktemp("seaweedfs")
    server = start_seaweedfs(
        data_dir,
        access_key="VAMTEST" + secrets.token_hex(6).upper(),
        secret_key=secrets.token_urlsafe(24),
        public_read_buckets=[PUBLIC_BUCKET],
    )
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_client(seaweedfs: SeaweedServer) -> Any:
    seaweedfs.ensure_buckets([BUCKET])
    return seaweedfs.client()


@pytest.fixture
def s3(s3_client: Any) -> S3Store:
    return S3Store(s3_client)


@pytest.fixture
def s3_prefix() -> str:
    """A fresh key prefix per test, so tests do not see each other's objects."""
    return f"s3://{BUCKET}/t-{secrets.token_hex(4)}/"


@pytest.fixture
def registry(s3_client: Any) -> Iterator[None]:
    """store_for("s3://...") served by the test server's client for the duration of a test."""
    configure(s3_client=s3_client)
    yield
    configure(s3_client=None)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- FileStore


def test_file_store_roundtrip(tmp_path: Path) -> None:
    store = FileStore()
    root = (tmp_path / "objects").as_uri()
    uri = uri_join(root, "asset 1", "v#1.txt")
    info = store.put_bytes(b"hello", uri)
    assert info.size == 5
    assert info.uri == uri
    assert info.last_modified is not None
    assert store.exists(uri)
    assert store.read_bytes(uri) == b"hello"
    assert store.local_path(uri) == tmp_path / "objects" / "asset 1" / "v#1.txt"
    with store.open_read(uri) as stream:
        assert stream.read() == b"hello"

    src = tmp_path / "src.bin"
    src.write_bytes(os.urandom(3 * 1024 * 1024 + 7))
    big = uri_join(root, "asset 1", "big.bin")
    assert store.put(src, big, content_type="video/mp4", storage_class="COLD").size == src.stat().st_size
    out = store.get(big, tmp_path / "down" / "big.bin")
    assert out.read_bytes() == src.read_bytes()
    copied = store.copy(big, uri_join(root, "other", "big.bin"))
    assert copied.size == src.stat().st_size
    assert sha256_file(file_uri_to_path(copied.uri)) == sha256_file(src)

    listed = [o.uri for o in store.list(root + "/")]
    assert listed == sorted(listed)
    assert [o.uri.removeprefix(root) for o in store.list(root + "/")] == [
        "/asset%201/big.bin",
        "/asset%201/v%231.txt",
        "/other/big.bin",
    ]
    # a prefix that is not a directory matches like an S3 prefix
    assert [o.uri.removeprefix(root) for o in store.list(uri_join(root, "asset 1", "b"))] == [
        "/asset%201/big.bin"
    ]
    assert list(store.list(uri_join(root, "nothing-here/"))) == []
    assert not any(p.name.endswith(".vam-tmp") for p in tmp_path.rglob("*")), "temporary files left behind"

    store.delete(uri)
    store.delete(uri)  # deleting a missing object is not an error
    assert not store.exists(uri)


def test_file_store_missing(tmp_path: Path) -> None:
    store = FileStore()
    missing = (tmp_path / "nope.mp4").as_uri()
    for call in (store.head, store.read_bytes, store.open_read, lambda u: store.get(u, tmp_path / "x")):
        with pytest.raises(StorageError, match=f"no object at {missing}"):
            call(missing)
    with pytest.raises(StorageError, match="no object at"):
        store.copy(missing, (tmp_path / "y").as_uri())
    assert not store.exists(missing)


def test_file_store_write_is_atomic(tmp_path: Path) -> None:
    """A failing writer leaves the previous object intact and no temporary file."""
    store = FileStore()
    uri = (tmp_path / "obj").as_uri()
    store.put_bytes(b"old", uri)

    class Boom(Exception):
        pass

    class Exploding:
        def read(self, n: int = -1) -> bytes:
            raise Boom

    from vam.storage.file import _atomic_write

    with pytest.raises(Boom):
        _atomic_write(tmp_path / "obj", lambda out: out.write(Exploding().read()))
    assert store.read_bytes(uri) == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["obj"]


# --------------------------------------------------------------------------- S3Store


def test_s3_put_get_head(s3: S3Store, s3_client: Any, s3_prefix: str, tmp_path: Path) -> None:
    uri = s3_prefix + "manifest.m3u8"
    info = s3.put_bytes(b"#EXTM3U\n", uri)
    assert info.size == 8
    assert info.etag
    head = s3.head(uri)
    assert head.size == 8
    assert head.etag == info.etag
    assert head.last_modified is not None
    assert head.storage_class == "STANDARD"
    bucket, key = uri[len("s3://") :].split("/", 1)
    raw = s3_client.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED")
    assert raw["ContentType"] == "application/vnd.apple.mpegurl"  # guessed from the key
    assert "ChecksumSHA256" in raw
    assert s3.read_bytes(uri) == b"#EXTM3U\n"
    with s3.open_read(uri) as stream:
        assert stream.read(3) == b"#EX"

    src = tmp_path / "video.bin"
    src.write_bytes(os.urandom(256 * 1024))
    up = s3.put(src, s3_prefix + "video.mp4", storage_class="STANDARD_IA")
    assert up.size == src.stat().st_size
    assert up.storage_class == "STANDARD_IA"
    raw = s3_client.head_object(
        Bucket=bucket, Key=key.replace("manifest.m3u8", "video.mp4"), ChecksumMode="ENABLED"
    )
    assert raw["ContentType"] == "video/mp4"
    assert "ChecksumSHA256" in raw
    dest = s3.get(s3_prefix + "video.mp4", tmp_path / "out" / "video.mp4")
    assert dest.read_bytes() == src.read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["video.mp4"]
    assert s3.local_path(uri) is None

    s3.delete(uri)
    s3.delete(uri)
    assert not s3.exists(uri)
    assert s3.exists(s3_prefix + "video.mp4")


def test_s3_multipart_upload(s3_client: Any, s3_prefix: str, tmp_path: Path) -> None:
    small_parts = TransferConfig(multipart_threshold=5 * 1024 * 1024, multipart_chunksize=5 * 1024 * 1024)
    store = S3Store(s3_client, transfer_config=small_parts)
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(12 * 1024 * 1024))
    info = store.put(src, s3_prefix + "big.bin")
    assert info.size == src.stat().st_size
    assert info.etag is not None
    assert info.etag.endswith("-3"), info.etag  # three parts
    configure(s3_client=s3_client)
    try:
        assert sha256_object(s3_prefix + "big.bin") == sha256_file(src)
    finally:
        configure(s3_client=None)


def test_s3_list_pages_past_1000_keys(s3: S3Store, s3_client: Any, s3_prefix: str) -> None:
    n = 1100
    uris = [f"{s3_prefix}k/{i:05d}.txt" for i in range(n)]
    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda u: s3.put_bytes(b"x", u), uris))
    s3.put_bytes(b"y", s3_prefix + "other.txt")
    upload_seconds = time.monotonic() - started

    calls: list[dict[str, Any]] = []

    def count(params: dict[str, Any], **kwargs: Any) -> None:
        calls.append(params)

    s3_client.meta.events.register("before-call.s3.ListObjectsV2", count)
    try:
        listed = list(s3.list(s3_prefix + "k/"))
    finally:
        s3_client.meta.events.unregister("before-call.s3.ListObjectsV2", count)
    assert [o.uri for o in listed] == uris  # every key, sorted, nothing outside the prefix
    assert {o.size for o in listed} == {1}
    assert len(calls) >= 2, "1100 keys must take more than one ListObjectsV2 page"

    small_pages = S3Store(s3_client, page_size=250)
    assert [o.uri for o in small_pages.list(s3_prefix)] == [*uris, s3_prefix + "other.txt"]
    assert upload_seconds < 30, f"uploading {n} tiny keys took {upload_seconds:.1f} s"


def test_s3_copy_and_storage_class(s3: S3Store, s3_client: Any, s3_prefix: str) -> None:
    src = s3_prefix + "a.vtt"
    s3.put_bytes(b"WEBVTT\n", src)
    dst = s3_prefix + "copies/a.vtt"
    info = s3.copy(src, dst)
    assert info.size == 7
    assert s3.read_bytes(dst) == b"WEBVTT\n"

    moved = s3.copy(dst, s3_prefix + "warm/a.vtt", storage_class="STANDARD_IA")
    assert moved.storage_class == "STANDARD_IA"

    # in place: only the storage class changes, the content type survives
    in_place = s3.copy(src, src, storage_class="STANDARD_IA")
    assert in_place.storage_class == "STANDARD_IA"
    bucket, key = src[len("s3://") :].split("/", 1)
    assert s3_client.head_object(Bucket=bucket, Key=key)["ContentType"] == "text/vtt"
    assert s3.read_bytes(src) == b"WEBVTT\n"
    assert s3.copy(src, src).storage_class == "STANDARD_IA"  # nothing to change: no request fails


def test_s3_missing_objects_name_the_uri(s3: S3Store, s3_prefix: str, tmp_path: Path) -> None:
    missing = s3_prefix + "missing.mp4"
    for call in (s3.head, s3.read_bytes, s3.open_read, lambda u: s3.get(u, tmp_path / "x")):
        with pytest.raises(StorageError, match=f"no object at {missing}"):
            call(missing)
    with pytest.raises(StorageError, match=f"no object at {missing}"):
        s3.copy(missing, s3_prefix + "y")
    assert not s3.exists(missing)
    assert not (tmp_path / "x").exists()
    assert list(tmp_path.iterdir()) == []

    no_bucket = "s3://vam-no-such-bucket/k.mp4"
    with pytest.raises(StorageError, match="vam-no-such-bucket/k.mp4"):
        s3.read_bytes(no_bucket)
    with pytest.raises(StorageError, match="bucket 'vam-no-such-bucket' does not exist"):
        s3.put_bytes(b"x", no_bucket)
    assert not s3.exists(no_bucket)


def test_anonymous_requests_are_refused(seaweedfs: SeaweedServer, s3_client: Any) -> None:
    s3_client.put_object(Bucket=BUCKET, Key="private.txt", Body=b"secret")
    anonymous = boto3.session.Session().client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        region_name="us-east-1",
        config=Config(signature_version=UNSIGNED, s3={"addressing_style": "path"}),
    )
    for call in (
        anonymous.list_buckets,
        lambda: anonymous.get_object(Bucket=BUCKET, Key="private.txt"),
        lambda: anonymous.put_object(Bucket=BUCKET, Key="anon.txt", Body=b"x"),
        lambda: anonymous.list_objects_v2(Bucket=BUCKET),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    # the public bucket: anonymous GET and HEAD of objects, nothing else
    seaweedfs.ensure_buckets([PUBLIC_BUCKET])
    s3_client.put_object(Bucket=PUBLIC_BUCKET, Key="hls/master.m3u8", Body=b"#EXTM3U\n")
    assert anonymous.get_object(Bucket=PUBLIC_BUCKET, Key="hls/master.m3u8")["Body"].read() == b"#EXTM3U\n"
    assert anonymous.head_object(Bucket=PUBLIC_BUCKET, Key="hls/master.m3u8")["ContentLength"] == 8
    for call in (
        lambda: anonymous.put_object(Bucket=PUBLIC_BUCKET, Key="anon.txt", Body=b"x"),
        lambda: anonymous.delete_object(Bucket=PUBLIC_BUCKET, Key="hls/master.m3u8"),
        lambda: anonymous.list_objects_v2(Bucket=PUBLIC_BUCKET),
    ):
        with pytest.raises(ClientError) as excinfo:
            call()
        assert excinfo.value.response["Error"]["Code"] == "AccessDenied"
    assert s3_client.head_object(Bucket=PUBLIC_BUCKET, Key="hls/master.m3u8")["ContentLength"] == 8

    wrong = boto3.session.Session().client(
        "s3",
        endpoint_url=seaweedfs.endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=seaweedfs.access_key,
        aws_secret_access_key="not-the-secret",
    )
    with pytest.raises(ClientError):
        wrong.list_buckets()


def test_server_listens_on_loopback_only(seaweedfs: SeaweedServer) -> None:
    proc = psutil.Process(seaweedfs.pid)
    listening = [
        conn.laddr
        for p in (proc, *proc.children(recursive=True))
        for conn in p.net_connections(kind="inet")
        if conn.status == psutil.CONN_LISTEN
    ]
    assert {addr.ip for addr in listening} == {"127.0.0.1"}, listening
    ports = {addr.port for addr in listening}
    assert set(seaweedfs.ports.values()) == ports  # exactly the ports we chose, nothing else
    assert int(seaweedfs.endpoint_url.rsplit(":", 1)[1]) in ports


# --------------------------------------------------------------------------- copy_verified


@pytest.mark.usefixtures("registry")
def test_copy_verified_across_stores(tmp_path: Path, s3_prefix: str) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    src = tmp_path / "in" / "source.mp4"
    src.parent.mkdir()
    src.write_bytes(data)
    src_uri = src.as_uri()

    up = copy_verified(src_uri, s3_prefix + "hot/source.mp4")  # file -> s3
    assert up.size == len(data)
    assert sha256_object(up.uri) == _sha(data)

    warm = copy_verified(up.uri, s3_prefix + "warm/source.mp4", storage_class="STANDARD_IA")  # s3 -> s3
    assert warm.storage_class == "STANDARD_IA"
    assert store_for(warm.uri).read_bytes(warm.uri) == data

    back_uri = (tmp_path / "restored" / "source.mp4").as_uri()
    back = copy_verified(warm.uri, back_uri)  # s3 -> file
    assert back.size == len(data)
    assert file_uri_to_path(back_uri).read_bytes() == data

    local = copy_verified(src_uri, (tmp_path / "local-copy.mp4").as_uri())  # file -> file
    assert local.size == len(data)

    assert src.read_bytes() == data
    assert store_for(up.uri).exists(up.uri)
    with pytest.raises(StorageError, match="onto itself"):
        copy_verified(up.uri, up.uri)
    with pytest.raises(StorageError, match="onto itself"):
        copy_verified(src_uri, src_uri)
    with pytest.raises(StorageError, match="no object at"):
        copy_verified(s3_prefix + "missing.mp4", (tmp_path / "m.mp4").as_uri())


class _CorruptingStore(FileStore):
    """``corrupt:///path``: a file store whose uploads flip one byte, as a failing disk or network would."""

    scheme = "corrupt"

    def _path(self, uri: str) -> Path:
        return file_uri_to_path("file://" + uri.removeprefix("corrupt://"))

    def local_path(self, uri: str) -> None:  # type: ignore[override]
        return None  # behave like a remote store: copy_verified must upload, then re-read

    def put(self, src: Path, uri: str, *, content_type: str | None = None, storage_class: str | None = None):  # type: ignore[no-untyped-def]
        data = bytearray(Path(src).read_bytes())
        data[len(data) // 2] ^= 0xFF
        return self.put_bytes(bytes(data), uri)


@pytest.mark.usefixtures("registry")
def test_copy_verified_deletes_a_bad_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3_prefix: str
) -> None:
    monkeypatch.setitem(storage._stores, "corrupt", _CorruptingStore())
    data = os.urandom(100_000)
    src = tmp_path / "source.mp4"
    src.write_bytes(data)
    dst_uri = "corrupt://" + str(tmp_path / "dst" / "source.mp4")

    with pytest.raises(ChecksumMismatch, match="bad copy was deleted"):
        copy_verified(src.as_uri(), dst_uri)
    assert not (tmp_path / "dst" / "source.mp4").exists()
    assert src.read_bytes() == data  # the source is never touched

    s3_src = s3_prefix + "src.mp4"
    store_for(s3_src).put_bytes(data, s3_src)
    with pytest.raises(ChecksumMismatch):
        copy_verified(s3_src, dst_uri)
    assert store_for(s3_src).read_bytes(s3_src) == data
    assert not (tmp_path / "dst" / "source.mp4").exists()


def test_store_for_s3_uses_configured_client(s3_client: Any) -> None:
    configure(s3_client=s3_client)
    try:
        store = store_for(f"s3://{BUCKET}/x")
        assert isinstance(store, S3Store)
        assert store.client is s3_client
    finally:
        configure(s3_client=None)


def test_store_for_s3_builds_client_from_settings(
    seaweedfs: SeaweedServer, s3_client: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The settings reach the storage layer once, at the edge (building a Runtime)."""
    from vam.runtime import Runtime

    monkeypatch.setenv("VAM_S3_ENDPOINT_URL", seaweedfs.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweedfs.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweedfs.secret_key)
    monkeypatch.delenv("VAM_S3_ACCESS_KEY", raising=False)
    monkeypatch.delenv("VAM_S3_SECRET_KEY", raising=False)
    configure(s3_client=None)
    try:
        Runtime.from_env()
        uri = f"s3://{BUCKET}/from-settings.txt"
        store_for(uri).put_bytes(b"ok", uri)
        assert s3_client.get_object(Bucket=BUCKET, Key="from-settings.txt")["Body"].read() == b"ok"
    finally:
        storage.set_s3_defaults(None, None)
        configure(s3_client=None)


# --------------------------------------------------------------------------- server lifecycle


def test_start_reuses_the_running_server(seaweedfs: SeaweedServer) -> None:
    again = start_seaweedfs(
        seaweedfs.data_dir, access_key=seaweedfs.access_key, secret_key=seaweedfs.secret_key
    )
    assert again.reused
    assert again.pid == seaweedfs.pid
    assert again.endpoint_url == seaweedfs.endpoint_url
    with pytest.raises(StorageError, match="already runs"):
        start_seaweedfs(seaweedfs.data_dir, access_key=seaweedfs.access_key, secret_key="wrong-secret")
    assert seaweedfs.is_running()


def test_stop_from_pidfile_and_restart_keeps_data(tmp_path: Path) -> None:
    data_dir = tmp_path / "s3"
    server = start_seaweedfs(data_dir, access_key="AKSTOPTEST", secret_key="stop-test-secret")
    try:
        assert (data_dir / "seaweedfs.pid").read_text().strip() == str(server.pid)
        assert server.startup_seconds < 10
        server.ensure_buckets(["vam-keep"])
        S3Store(server.client()).put_bytes(b"kept", "s3://vam-keep/a.txt")
        assert stop_from_pidfile(data_dir)
        assert (
            not psutil.pid_exists(server.pid) or psutil.Process(server.pid).status() == psutil.STATUS_ZOMBIE
        )
        assert not (data_dir / "seaweedfs.pid").exists()
        assert not stop_from_pidfile(data_dir)
    finally:
        server.stop()
    again = start_seaweedfs(data_dir, access_key="AKSTOPTEST", secret_key="stop-test-secret")
    try:
        assert not again.reused
        assert again.pid != server.pid
        assert S3Store(again.client()).read_bytes("s3://vam-keep/a.txt") == b"kept"
    finally:
        again.stop()
    assert not again.is_running()

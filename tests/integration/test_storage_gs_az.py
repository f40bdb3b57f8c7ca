"""GCSStore and AzureStore against a real fake-gcs-server and a real Azurite on loopback (no mocks).

Where an emulator ignores something (fake-gcs-server accepts storage-class changes on rewrite and
keeps the old class), the test asserts what the client sent, recorded from the live HTTP traffic.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psutil
import pytest
from azure.storage.blob import BlobServiceClient

import vam.storage as storage
from vam.devstack.azurite import AzuriteServer, start_azurite
from vam.devstack.gcs import FakeGcsServer, start_fake_gcs
from vam.errors import StorageError
from vam.storage import configure_store, copy_verified, sha256_file, sha256_object, store_for
from vam.storage.az import AzureStore
from vam.storage.gs import GCSStore

pytestmark = pytest.mark.integration

BUCKET = "vam-gs-test"
CONTAINER = "vam-az-test"
KIB = 1024
SMALL = 256 * KIB  # chunk/block size of the stores under test: a 1 MiB file takes several requests


class GcsRecorder:
    """Records (method, url, body) of every request a google.cloud.storage.Client sends."""

    def __init__(self, client: Any) -> None:
        self.requests: list[tuple[str, str, bytes]] = []
        session = client._http
        original = session.request

        def request(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
            data = kwargs.get("data")
            body = data if isinstance(data, bytes) else (data.encode() if isinstance(data, str) else b"")
            self.requests.append((method.upper(), url, body))
            return original(method, url, *args, **kwargs)

        session.request = request

    def clear(self) -> None:
        self.requests.clear()

    def matching(self, method: str, fragment: str) -> list[tuple[str, str, bytes]]:
        return [r for r in self.requests if r[0] == method and fragment in r[1]]


# --------------------------------------------------------------------------- servers


@pytest.fixture(scope="module")
def fake_gcs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeGcsServer]:
    server = start_fake_gcs(log_path=tmp_path_factory.mktemp("fake-gcs") / "fake-gcs.log")
    try:
        server.ensure_buckets([BUCKET])
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteServer]:
    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    try:
        server.ensure_containers([CONTAINER])
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def gcs_client(fake_gcs: FakeGcsServer) -> Any:
    return fake_gcs.client()


@pytest.fixture(scope="module")
def recorder(gcs_client: Any) -> GcsRecorder:
    return GcsRecorder(gcs_client)


@pytest.fixture(scope="module")
def az_responses() -> list[Any]:
    return []


@pytest.fixture(scope="module")
def az_client(azurite: AzuriteServer, az_responses: list[Any]) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        azurite.connection_string, raw_response_hook=az_responses.append
    )


@pytest.fixture(scope="module")
def gs(gcs_client: Any, recorder: GcsRecorder) -> GCSStore:
    return GCSStore(gcs_client, chunk_size=SMALL, resumable_threshold=SMALL, read_chunk_size=SMALL)


@pytest.fixture(scope="module")
def az(az_client: BlobServiceClient) -> AzureStore:
    return AzureStore(az_client, block_size=SMALL, block_threshold=SMALL, read_chunk_size=SMALL)


@pytest.fixture(scope="module", autouse=True)
def configured(gs: GCSStore, az: AzureStore) -> Iterator[None]:
    configure_store("gs", gs)
    configure_store("az", az)
    yield
    configure_store("gs", None)
    configure_store("az", None)


@pytest.fixture(params=["gs", "az"])
def store(request: pytest.FixtureRequest, gs: GCSStore, az: AzureStore) -> tuple[Any, str]:
    """(store, base URI with a fresh prefix) for each backend."""
    run = secrets.token_hex(4)
    if request.param == "gs":
        return gs, f"gs://{BUCKET}/t-{run}/"
    return az, f"az://{CONTAINER}/t-{run}/"


@pytest.fixture
def big_file(tmp_path: Path) -> Path:
    path = tmp_path / "big.mp4"
    path.write_bytes(os.urandom(4 * SMALL + 13))
    return path


# --------------------------------------------------------------------------- devstack


@pytest.mark.parametrize("name", ["fake_gcs", "azurite"])
def test_servers_listen_on_loopback_only(name: str, request: pytest.FixtureRequest) -> None:
    server = request.getfixturevalue(name)
    listening = [
        c.laddr for c in psutil.Process(server.pid).net_connections(kind="inet") if c.status == "LISTEN"
    ]
    assert listening
    assert all(addr.ip == "127.0.0.1" for addr in listening), listening


def test_server_stops_by_pid(tmp_path: Path) -> None:
    gcs = start_fake_gcs(log_path=tmp_path / "gcs.log")
    azure = start_azurite(tmp_path / "azurite")
    assert gcs.is_running()
    assert azure.is_running()
    gcs.stop()
    azure.stop()
    assert not gcs.is_running()
    assert not azure.is_running()
    assert not psutil.pid_exists(gcs.pid) or psutil.Process(gcs.pid).status() == psutil.STATUS_ZOMBIE


def test_fake_gcs_preloads_buckets_and_uses_a_filesystem_root(tmp_path: Path) -> None:
    (tmp_path / "data" / "landing" / "drop").mkdir(parents=True)
    (tmp_path / "data" / "landing" / "drop" / "a.mp4").write_bytes(b"preloaded")
    with start_fake_gcs(preload_dir=tmp_path / "data", filesystem_root=tmp_path / "fs") as server:
        store = GCSStore(server.client())
        assert [o.uri for o in store.list("gs://landing/")] == ["gs://landing/drop/a.mp4"]
        assert store.read_bytes("gs://landing/drop/a.mp4") == b"preloaded"
        store.put_bytes(b"on disk", "gs://landing/new.txt")
        assert (tmp_path / "fs" / "landing" / "new.txt").read_bytes() == b"on disk"


# --------------------------------------------------------------------------- object round trips


def test_put_head_get_open_read_round_trip(store: tuple[Any, str], big_file: Path, tmp_path: Path) -> None:
    obj_store, base = store
    uri = base + "media/source.mp4"
    data = big_file.read_bytes()
    put_info = obj_store.put(big_file, uri)
    head = obj_store.head(uri)
    assert head.size == put_info.size == len(data)
    assert head.etag
    assert head.etag == put_info.etag
    assert head.last_modified is not None
    assert obj_store.exists(uri)
    assert not obj_store.exists(uri + ".nope")

    got = obj_store.get(uri, tmp_path / "out" / "copy.mp4")
    assert got.read_bytes() == data
    assert not [p for p in got.parent.iterdir() if p.name.endswith(".vam-tmp")]
    with obj_store.open_read(uri) as stream:
        chunks = list(iter(lambda: stream.read(64 * KIB), b""))
    assert b"".join(chunks) == data
    assert len(chunks) == len(data) // (64 * KIB) + 1
    assert obj_store.read_bytes(uri) == data
    assert sha256_object(uri) == sha256_file(big_file)

    obj_store.put_bytes(b"replaced", uri)  # an overwrite replaces the whole object
    assert obj_store.read_bytes(uri) == b"replaced"
    assert obj_store.head(uri).etag != head.etag


def test_gcs_upload_is_resumable_and_chunked(gs: GCSStore, recorder: GcsRecorder, big_file: Path) -> None:
    uri = f"gs://{BUCKET}/chunked/{secrets.token_hex(4)}.mp4"
    recorder.clear()
    gs.put(big_file, uri)
    starts = recorder.matching("POST", "uploadType=resumable")
    chunk_puts = recorder.matching("PUT", "upload_id=")
    assert len(starts) == 1
    assert len(chunk_puts) == 5  # 4 x 256 KiB + 13 bytes, each request one chunk
    assert max(len(body) for _, _, body in chunk_puts) <= SMALL

    recorder.clear()
    with gs.open_read(uri) as stream:
        assert stream.read() == big_file.read_bytes()
    ranged = [r for r in recorder.matching("GET", "alt=media")]
    assert len(ranged) == 5  # ranged GETs of read_chunk_size, never the whole object at once


def test_azure_upload_is_block_upload(az: AzureStore, az_client: BlobServiceClient, big_file: Path) -> None:
    uri = f"az://{CONTAINER}/blocks/{secrets.token_hex(4)}.mp4"
    az.put(big_file, uri)
    blob = az_client.get_blob_client(CONTAINER, uri.split("/", 3)[3])
    committed, uncommitted = blob.get_block_list("all")
    assert len(committed) == 5
    assert not uncommitted
    assert max(block.size for block in committed) <= SMALL


def test_content_types(store: tuple[Any, str], gcs_client: Any, az_client: BlobServiceClient) -> None:
    obj_store, base = store
    guessed, given = base + "meta/info.json", base + "meta/master.m3u8"
    obj_store.put_bytes(b"{}", guessed)
    obj_store.put_bytes(b"#EXTM3U\n", given, content_type="application/vnd.apple.mpegurl")

    def content_type(uri: str) -> str:
        scheme, bucket, key = storage.parse_uri(uri)
        if scheme == "gs":
            return str(gcs_client.bucket(bucket).get_blob(key).content_type)
        return str(az_client.get_blob_client(bucket, key).get_blob_properties().content_settings.content_type)

    assert content_type(guessed) == "application/json"
    assert content_type(given) == "application/vnd.apple.mpegurl"
    obj_store.copy(given, base + "meta/copy.m3u8")
    assert content_type(base + "meta/copy.m3u8") == "application/vnd.apple.mpegurl"


# --------------------------------------------------------------------------- listing


def _create_many(store_name: str, gcs_client: Any, az_client: BlobServiceClient, keys: list[str]) -> None:
    if store_name == "gs":
        bucket = gcs_client.bucket(BUCKET)

        def create(key: str) -> None:
            bucket.blob(key).upload_from_string(b"", content_type="application/octet-stream")
    else:
        container = az_client.get_container_client(CONTAINER)

        def create(key: str) -> None:
            container.upload_blob(key, b"", overwrite=True)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(create, keys))


@pytest.mark.parametrize("store_name", ["gs", "az"])
def test_list_pages_over_1200_keys_sorted_with_folder_prefixes(
    store_name: str,
    gcs_client: Any,
    az_client: BlobServiceClient,
    recorder: GcsRecorder,
    az_responses: list[Any],
) -> None:
    run = f"list-{secrets.token_hex(4)}"
    keys = [f"{run}/many/{i:05d}.ts" for i in range(1200)] + [f"{run}/many/sub/deep.ts"]
    others = [f"{run}/many-not/x.ts", f"{run}/manyx.ts", f"{run}/many/dir/"]  # "dir/": a folder marker
    _create_many(store_name, gcs_client, az_client, keys + others)
    scheme, bucket = ("gs", BUCKET) if store_name == "gs" else ("az", CONTAINER)
    if store_name == "gs":
        obj_store: Any = GCSStore(gcs_client, page_size=500)
    else:
        obj_store = AzureStore(az_client, page_size=500)

    recorder.clear()
    az_responses.clear()
    listed = list(obj_store.list(f"{scheme}://{bucket}/{run}/many/"))
    assert [o.uri for o in listed] == [f"{scheme}://{bucket}/{k}" for k in sorted(keys)]
    assert all(o.size == 0 and o.etag for o in listed)
    if store_name == "gs":
        list_requests = recorder.matching("GET", f"/b/{BUCKET}/o?")
    else:
        list_requests = [r for r in az_responses if "comp=list" in r.http_request.url]
    assert len(list_requests) == 3  # 1201 keys in pages of 500

    without_slash = [o.uri for o in obj_store.list(f"{scheme}://{bucket}/{run}/many")]
    assert len(without_slash) == len(keys) + 2  # "many-not/x.ts" and "manyx.ts" match a bare prefix
    assert without_slash == sorted(without_slash)
    assert list(obj_store.list(f"{scheme}://{bucket}/{run}/nothing-here/")) == []

    head = obj_store.head(listed[0].uri)
    assert (head.size, head.etag) == (listed[0].size, listed[0].etag)


# --------------------------------------------------------------------------- errors, delete


def test_missing_objects_and_buckets_raise_storage_error(store: tuple[Any, str], tmp_path: Path) -> None:
    obj_store, base = store
    missing = base + "no/such.mp4"
    for call in (
        lambda: obj_store.head(missing),
        lambda: obj_store.read_bytes(missing),
        lambda: obj_store.open_read(missing),
        lambda: obj_store.get(missing, tmp_path / "x"),
        lambda: obj_store.copy(missing, base + "dst.mp4"),
    ):
        with pytest.raises(StorageError, match=f"no object at {missing}"):
            call()
    assert not (tmp_path / "x").exists()

    scheme = obj_store.scheme
    ghost = f"{scheme}://no-such-bucket-{secrets.token_hex(3)}/a.mp4"
    word = "bucket" if scheme == "gs" else "container"
    with pytest.raises(StorageError, match=f"{word} 'no-such-bucket-.*' does not exist"):
        obj_store.head(ghost)
    with pytest.raises(StorageError, match=f"{word} 'no-such-bucket-.*' does not exist"):
        obj_store.put_bytes(b"x", ghost)
    with pytest.raises(StorageError, match=f"{word} 'no-such-bucket-.*' does not exist"):
        list(obj_store.list(ghost.rsplit("/", 1)[0] + "/"))
    with pytest.raises(StorageError, match="not a file"):
        obj_store.put(tmp_path / "absent.mp4", base + "a.mp4")
    with pytest.raises(StorageError, match="does not end with '/'"):
        obj_store.head(base)


def test_delete_is_idempotent(store: tuple[Any, str]) -> None:
    obj_store, base = store
    uri = base + "gone.bin"
    obj_store.put_bytes(b"bye", uri)
    obj_store.delete(uri)
    obj_store.delete(uri)
    obj_store.delete(base + "never-existed.bin")
    assert not obj_store.exists(uri)
    with pytest.raises(StorageError, match="not an object"):
        obj_store.delete(f"{obj_store.scheme}://{BUCKET if obj_store.scheme == 'gs' else CONTAINER}")


# --------------------------------------------------------------------------- copy, storage classes


def test_copy_is_server_side_and_exact(
    store: tuple[Any, str], big_file: Path, recorder: GcsRecorder, az_client: BlobServiceClient
) -> None:
    obj_store, base = store
    src, dst = base + "src.mp4", base + "copies/dst.mp4"
    obj_store.put(big_file, src)
    recorder.clear()
    info = obj_store.copy(src, dst)
    assert info.uri == dst
    assert info.size == big_file.stat().st_size
    assert sha256_object(dst) == sha256_file(big_file)
    if obj_store.scheme == "gs":
        assert recorder.matching("POST", "/rewriteTo/")
        assert not recorder.matching("PUT", "upload")
    else:
        copy = az_client.get_blob_client(CONTAINER, dst.split("/", 3)[3]).get_blob_properties().copy
        assert copy.status == "success"
        assert copy.source
        assert copy.source.endswith("/src.mp4")
    same = obj_store.copy(src, src)  # nothing to change: a no-op
    assert same.etag == obj_store.head(src).etag


def test_gcs_storage_class_sent_on_put_and_copy(gs: GCSStore, recorder: GcsRecorder, big_file: Path) -> None:
    base = f"gs://{BUCKET}/classes-{secrets.token_hex(4)}/"
    recorder.clear()
    small = big_file.parent / "small.json"
    small.write_bytes(b'{"a": 1}')
    info = gs.put(small, base + "small.json", storage_class="nearline")
    (upload,) = recorder.matching("POST", "uploadType=multipart")
    assert b'"storageClass": "NEARLINE"' in upload[2]
    assert info.storage_class == "NEARLINE"  # fake-gcs-server keeps the class given at upload

    recorder.clear()
    gs.put(big_file, base + "big.mp4", storage_class="COLDLINE")
    (start,) = recorder.matching("POST", "uploadType=resumable")
    assert json.loads(start[2])["storageClass"] == "COLDLINE"

    recorder.clear()
    gs.copy(base + "small.json", base + "archived.json", storage_class="ARCHIVE")
    (rewrite,) = recorder.matching("POST", "/rewriteTo/")
    body = json.loads(rewrite[2])
    # fake-gcs-server ignores class changes on rewrite: check what was asked, metadata carried over
    assert body["storageClass"] == "ARCHIVE"
    assert body["contentType"] == "application/json"

    recorder.clear()
    gs.copy(base + "small.json", base + "small.json", storage_class="STANDARD")  # in-place change
    (rewrite,) = recorder.matching("POST", "/rewriteTo/")
    assert json.loads(rewrite[2])["storageClass"] == "STANDARD"
    with pytest.raises(StorageError, match="unknown GCS storage class"):
        gs.copy(base + "small.json", base + "y", storage_class="GLACIER")


def test_azure_access_tiers(az: AzureStore, big_file: Path) -> None:
    base = f"az://{CONTAINER}/tiers-{secrets.token_hex(4)}/"
    assert az.put(big_file, base + "cool.mp4", storage_class="cool").storage_class == "Cool"
    assert az.put_bytes(b"x", base + "hot.bin").storage_class == "Hot"
    assert az.copy(base + "cool.mp4", base + "cold.mp4", storage_class="Cold").storage_class == "Cold"
    assert az.head(base + "cold.mp4").storage_class == "Cold"
    assert sha256_object(base + "cold.mp4") == sha256_file(big_file)
    listed = {o.uri: o.storage_class for o in az.list(base)}
    assert listed == {base + "cold.mp4": "Cold", base + "cool.mp4": "Cool", base + "hot.bin": "Hot"}

    archived = az.copy(base + "cool.mp4", base + "cool.mp4", storage_class="Archive")  # in place
    assert archived.storage_class == "Archive"
    with pytest.raises(StorageError, match="Archive tier; rehydrate"):
        az.read_bytes(base + "cool.mp4")
    with pytest.raises(StorageError, match="unknown Azure access tier"):
        az.put(big_file, base + "x.mp4", storage_class="GLACIER")


# --------------------------------------------------------------------------- across stores


def test_copy_verified_across_gs_az_and_file(big_file: Path, tmp_path: Path) -> None:
    run = secrets.token_hex(4)
    expected = sha256_file(big_file)
    gs_uri = f"gs://{BUCKET}/x-{run}/a.mp4"
    az_uri = f"az://{CONTAINER}/x-{run}/a.mp4"
    file_uri = (tmp_path / "back" / "a.mp4").as_uri()

    copy_verified(storage.to_uri(big_file), gs_uri)  # file -> gs
    info = copy_verified(gs_uri, az_uri, storage_class="Cool")  # gs -> az
    assert info.size == big_file.stat().st_size
    assert info.storage_class == "Cool"
    copy_verified(az_uri, file_uri)  # az -> file
    assert sha256_file(tmp_path / "back" / "a.mp4") == expected
    copy_verified(az_uri, f"gs://{BUCKET}/x-{run}/b.mp4")  # az -> gs
    assert {sha256_object(u) for u in (gs_uri, az_uri, f"gs://{BUCKET}/x-{run}/b.mp4")} == {expected}


def test_default_stores_come_from_the_environment(
    fake_gcs: FakeGcsServer,
    azurite: AzuriteServer,
    gs: GCSStore,
    az: AzureStore,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {**fake_gcs.env(), **azurite.env()}.items():
        monkeypatch.setenv(key, value)
    configure_store("gs", None)
    configure_store("az", None)
    try:
        gs_default, az_default = store_for("gs://b/k"), store_for("az://c/k")
        assert isinstance(gs_default, GCSStore)
        assert isinstance(az_default, AzureStore)
        uri = f"gs://{BUCKET}/env-{secrets.token_hex(3)}.txt"
        gs_default.put_bytes(b"from env", uri)
        copy_verified(uri, f"az://{CONTAINER}/env.txt")
        assert az_default.read_bytes(f"az://{CONTAINER}/env.txt") == b"from env"
    finally:
        configure_store("gs", None)
        configure_store("az", None)
        monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
        with pytest.raises(StorageError, match="AZURE_STORAGE_CONNECTION_STRING"):
            store_for("az://c/k")
        configure_store("gs", gs)
        configure_store("az", az)


def test_configure_store_refuses_unknown_schemes(gs: GCSStore) -> None:
    with pytest.raises(StorageError, match="unknown URI scheme"):
        configure_store("nope", gs)


def test_content_is_never_held_whole_for_big_reads(store: tuple[Any, str], big_file: Path) -> None:
    obj_store, base = store
    uri = base + "stream.mp4"
    obj_store.put(big_file, uri)
    digest = hashlib.sha256()
    with obj_store.open_read(uri) as stream:
        first = stream.read(10)
        assert len(first) == 10
        digest.update(first)
        while chunk := stream.read(100 * KIB):
            assert len(chunk) <= 100 * KIB
            digest.update(chunk)
    assert digest.hexdigest() == sha256_file(big_file)

"""FTPStore against real pyftpdlib servers on loopback: plain FTP, explicit FTPS with a certificate
made at test time, and an old-style server without MLSD/MLST."""

from __future__ import annotations

import ftplib
import hashlib
import os
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

import vam.storage as storage
import vam.storage.ftp as ftp_module
from vam.devstack.ftp import FTPDevServer, start_ftp_server
from vam.errors import StorageError
from vam.storage.ftp import FTPStore, parse_ftp_uri, redact_uri

pytestmark = pytest.mark.integration

PASSWORD = "s3cr3t-" + secrets.token_hex(4)  # searched for in error messages


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPDevServer]:
    srv = start_ftp_server(tmp_path_factory.mktemp("ftp-root"), user="partner", password=PASSWORD)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPDevServer]:
    srv = start_ftp_server(
        tmp_path_factory.mktemp("ftps-root"),
        user="partner",
        password=PASSWORD,
        tls=True,
        cert_dir=tmp_path_factory.mktemp("ftps-cert"),
    )
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def old_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FTPDevServer]:
    srv = start_ftp_server(tmp_path_factory.mktemp("ftp-old-root"), user="old", password=PASSWORD, mlsd=False)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture
def store(server: FTPDevServer) -> Iterator[FTPStore]:
    st = FTPStore(timeout=10)
    st.add_credentials(server.host, server.port, server.user, server.password)
    yield st
    st.close()


@pytest.fixture
def case(server: FTPDevServer) -> str:
    """A fresh folder name in the server's root for one test."""
    return "case-" + secrets.token_hex(4)


def _write(path: Path, data: bytes, mtime: float | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- URIs


def test_parse_and_redact() -> None:
    loc = parse_ftp_uri("ftps://us%40er:p%3Aw@Host.Example:2121/drop/a b.mp4")
    assert (loc.scheme, loc.user, loc.password, loc.host, loc.port, loc.key) == (
        "ftps",
        "us@er",
        "p:w",
        "host.example",
        2121,
        "drop/a b.mp4",
    )
    assert "p:w" not in repr(loc)
    assert "p%3Aw" not in repr(loc)
    assert parse_ftp_uri("ftp://h//srv/x").key == "/srv/x"
    assert parse_ftp_uri("ftp://h").port == 21
    assert redact_uri("ftp://u:pw@h:21/a/b") == "ftp://u:***@h:21/a/b"
    assert redact_uri("ftp://u@h/a") == "ftp://u@h/a"
    with pytest.raises(StorageError, match="CR or LF"):
        parse_ftp_uri("ftp://h/a\r\nDELE b")
    with pytest.raises(StorageError, match="bad port"):
        parse_ftp_uri("ftp://h:x/a")


def test_store_for_serves_ftp_and_ftps() -> None:
    assert storage.store_for("ftp://h/a") is storage.store_for("ftps://h/a") is ftp_module.default_store()


# --------------------------------------------------------------------------- listing and head


def test_list_nested_drop_recursive_sorted(server: FTPDevServer, store: FTPStore, case: str) -> None:
    root = server.root / case
    stamp = datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC).timestamp()
    files = {
        "drop/b.mp4": b"b" * 10,
        "drop/a.mp4": b"a" * 3,
        "drop/sub/c.mov": b"c" * 1000,
        "drop/sub/deeper/d.txt": b"d",
        "drop-other/x.mp4": b"x" * 7,
    }
    for key, data in files.items():
        _write(root / key, data, stamp)
    _write(root / "drop" / ".a.mp4.0123456789ab.vam-tmp", b"partial")  # our own temp files are skipped
    (root / "drop" / "empty-dir").mkdir()

    listed = list(store.list(server.uri(f"{case}/drop/")))
    assert [o.uri for o in listed] == [
        server.uri(f"{case}/{k}")
        for k in ("drop/a.mp4", "drop/b.mp4", "drop/sub/c.mov", "drop/sub/deeper/d.txt")
    ]
    for obj in listed:
        key = obj.uri.split(f"/{case}/", 1)[1]
        assert obj.size == len(files[key])
        assert obj.last_modified == datetime(2026, 11, 30, 12, 34, 56, tzinfo=UTC)
        assert obj.etag == f"{obj.size}-20261130123456"

    # A prefix that is not a folder matches names, like S3 prefixes: sorted by key ("-" < "/").
    by_name = [o.uri for o in store.list(server.uri(f"{case}/drop"))]
    assert by_name == sorted(by_name)
    assert by_name[0] == server.uri(f"{case}/drop-other/x.mp4")
    assert len(by_name) == 5
    assert [o.uri for o in store.list(server.uri(f"{case}/drop/sub/c"))] == [
        server.uri(f"{case}/drop/sub/c.mov")
    ]
    assert list(store.list(server.uri(f"{case}/no-such-folder/"))) == []


def test_head_and_missing_object_names_uri_without_password(
    server: FTPDevServer, store: FTPStore, case: str
) -> None:
    stamp = datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC).timestamp()
    _write(server.root / case / "clip.mp4", b"0123456789", stamp)
    info = store.head(server.uri(f"{case}/clip.mp4"))
    assert info.size == 10
    assert info.etag == "10-20261201080001"
    assert info.last_modified == datetime(2026, 12, 1, 8, 0, 1, tzinfo=UTC)
    assert store.exists(server.uri(f"{case}/clip.mp4"))
    assert store.stat(server.uri(f"{case}/nope.mp4")) is None

    missing = server.uri(f"{case}/nope.mp4", credentials=True)
    for call in (store.head, store.read_bytes, lambda u: store.get(u, server.root.parent / "x")):
        with pytest.raises(StorageError) as err:
            call(missing)
        assert "no object at" in str(err.value)
        assert f"partner:***@127.0.0.1:{server.port}/{case}/nope.mp4" in str(err.value)
        assert PASSWORD not in str(err.value)
    assert not store.exists(missing)
    assert not store.exists(server.uri(f"{case}/"))
    with pytest.raises(StorageError, match="login refused"):  # a wrong password is not "missing"
        store.exists(f"ftp://partner:wrong@{server.host}:{server.port}/{case}/clip.mp4")
    with pytest.raises(StorageError, match="no object"):
        store.head(server.uri(case))  # a directory is not an object
    with pytest.raises(StorageError, match="no object"):
        store.head(server.uri(f"{case}/"))


def test_wrong_password_is_a_storage_error_without_the_password(
    server: FTPDevServer, store: FTPStore
) -> None:
    # the registered (right) credentials are pooled first: a wrong URI password must still fail
    _write(server.root / "pw.txt", b"x")
    assert store.head(server.uri("pw.txt")).size == 1
    bad = f"ftp://partner:wrong-{PASSWORD}@{server.host}:{server.port}/pw.txt"
    with pytest.raises(StorageError) as err:
        store.head(bad)
    message = str(err.value)
    assert "login refused" in message
    assert "530" in message
    assert f"cannot read ftp://partner:***@127.0.0.1:{server.port}/pw.txt" in message
    assert PASSWORD not in message
    with pytest.raises(StorageError, match="login refused"):
        list(FTPStore(timeout=5).list(f"ftp://{server.host}:{server.port}/"))  # anonymous: refused


def test_env_credentials(server: FTPDevServer, monkeypatch: pytest.MonkeyPatch, case: str) -> None:
    _write(server.root / case / "env.bin", b"env")
    monkeypatch.setenv("VAM_FTP_USER", server.user)
    monkeypatch.setenv("VAM_FTP_PASSWORD", server.password)
    st = FTPStore(timeout=5)
    try:
        assert st.read_bytes(server.uri(f"{case}/env.bin")) == b"env"
        # a user in the URI takes the env password when it is the env user
        uri = f"ftp://{server.user}@{server.host}:{server.port}/{case}/env.bin"
        assert st.head(uri).size == 3
    finally:
        st.close()


# --------------------------------------------------------------------------- transfers


def test_get_and_open_read_stream_5mb(
    server: FTPDevServer, store: FTPStore, case: str, tmp_path: Path
) -> None:
    data = os.urandom(5 * 1024 * 1024)
    _write(server.root / case / "big" / "clip.mp4", data)
    uri = server.uri(f"{case}/big/clip.mp4")

    dest = store.get(uri, tmp_path / "out" / "clip.mp4")
    assert _sha(dest.read_bytes()) == _sha(data)
    assert [p.name for p in dest.parent.iterdir()] == ["clip.mp4"]  # no temp file left

    digest = hashlib.sha256()
    with store.open_read(uri) as stream:
        while chunk := stream.read(1024 * 1024):
            digest.update(chunk)
    assert digest.hexdigest() == _sha(data)

    with store.open_read(uri) as stream:  # closed early: the connection is dropped, not reused
        assert stream.read(1000) == data[:1000]
    assert store.read_bytes(uri)[-10:] == data[-10:]


def test_put_put_bytes_delete_copy(server: FTPDevServer, store: FTPStore, case: str, tmp_path: Path) -> None:
    uri = server.uri(f"{case}/new/deep/manifest.json")  # directories are created
    info = store.put_bytes(b'{"a": 1}', uri)
    assert info.size == 8
    assert info.last_modified is not None
    assert (server.root / case / "new" / "deep" / "manifest.json").read_bytes() == b'{"a": 1}'

    src = _write(tmp_path / "src.bin", os.urandom(300_000))
    put_info = store.put(src, uri)  # replaces
    assert put_info.size == 300_000
    assert (server.root / case / "new" / "deep" / "manifest.json").read_bytes() == src.read_bytes()

    copied = store.copy(uri, server.uri(f"{case}/copies/manifest.json"))
    assert copied.size == 300_000
    assert (server.root / case / "copies" / "manifest.json").read_bytes() == src.read_bytes()
    assert store.copy(uri, uri).size == 300_000  # onto itself: nothing to do

    leftovers = [p.name for p in (server.root / case).rglob("*") if p.name.endswith(".vam-tmp")]
    assert leftovers == []
    store.delete(uri)
    assert not (server.root / case / "new" / "deep" / "manifest.json").exists()
    store.delete(uri)  # deleting a missing object is not an error
    assert [o.uri for o in store.list(server.uri(f"{case}/"))] == [server.uri(f"{case}/copies/manifest.json")]
    with pytest.raises(StorageError, match="not a file"):
        store.put(tmp_path / "missing", uri)


def test_copy_verified_ftp_to_file_and_back(server: FTPDevServer, case: str, tmp_path: Path) -> None:
    data = os.urandom(1_500_000)
    _write(server.root / case / "clip.mp4", data)
    ftp_module.add_credentials(server.host, server.port, server.user, server.password)
    try:
        dst = storage.to_uri(tmp_path / "landing" / "clip.mp4")
        info = storage.copy_verified(server.uri(f"{case}/clip.mp4"), dst)
        assert info.size == len(data)
        assert _sha((tmp_path / "landing" / "clip.mp4").read_bytes()) == _sha(data)
        assert storage.sha256_object(server.uri(f"{case}/clip.mp4")) == _sha(data)
        back = storage.copy_verified(dst, server.uri(f"{case}/back/clip.mp4"))
        assert back.size == len(data)
        assert (server.root / case / "back" / "clip.mp4").read_bytes() == data
    finally:
        ftp_module.default_store().remove_credentials(server.host, server.port)
        ftp_module.default_store().close()


def test_growing_file_shows_growing_size(server: FTPDevServer, store: FTPStore, case: str) -> None:
    """A partner's slow upload, one chunk at a time: each head sees a larger size and a new etag;
    while the upload pauses, the size is stable although the file is not complete."""
    (server.root / case).mkdir()
    chunk, chunks = b"v" * 65536, 4
    sent, go_on = threading.Semaphore(0), threading.Semaphore(0)

    def slow_upload() -> None:
        client = ftplib.FTP()
        client.connect(server.host, server.port, timeout=10)
        client.login(server.user, server.password)
        client.voidcmd("TYPE I")
        with client.transfercmd(f"STOR {case}/incoming.mp4") as conn:
            for _ in range(chunks):
                conn.sendall(chunk)
                sent.release()
                go_on.acquire(timeout=10)  # paused until the test has looked
        client.voidresp()
        client.quit()

    uri = server.uri(f"{case}/incoming.mp4")
    writer = threading.Thread(target=slow_upload)
    writer.start()
    seen = []
    try:
        for i in range(chunks - 1):
            assert sent.acquire(timeout=10)
            deadline = time.monotonic() + 5
            while (info := store.stat(uri)) is None or info.size <= i * len(chunk):
                assert time.monotonic() < deadline, f"the size did not grow past chunk {i}"
                time.sleep(0.02)
            seen.append(info)
            if i == 0:  # paused: two polls agree, though the upload is not finished
                time.sleep(0.1)
                assert store.head(uri).size == info.size
            go_on.release()
        assert sent.acquire(timeout=10)
        go_on.release()
    finally:
        writer.join(10)
    sizes = [info.size for info in seen]
    assert sizes == sorted(set(sizes)), sizes  # strictly growing
    assert len({info.etag for info in seen}) == len(seen)
    assert store.head(uri).size == chunks * len(chunk)
    assert server.received[-1].endswith(f"{case}/incoming.mp4")  # the server's own completion hook


def test_reconnects_after_the_server_restarts(tmp_path: Path) -> None:
    first = start_ftp_server(tmp_path / "root", user="u", password=PASSWORD)
    st = FTPStore(timeout=5, check_idle_after=60)  # the pooled connection is reused without NOOP
    st.add_credentials(first.host, first.port, "u", PASSWORD)
    second = None
    try:
        _write(tmp_path / "root" / "a.txt", b"abc")
        assert st.head(first.uri("a.txt")).size == 3
        first.stop()
        second = start_ftp_server(tmp_path / "root", user="u", password=PASSWORD, port=first.port)
        assert st.read_bytes(first.uri("a.txt")) == b"abc"  # the dead connection is replaced
    finally:
        st.close()
        first.stop()
        if second is not None:
            second.stop()


def test_connections_are_pooled_and_reused(server: FTPDevServer, store: FTPStore, case: str) -> None:
    _write(server.root / case / "a.txt", b"a")
    uri = server.uri(f"{case}/a.txt")
    store.head(uri)
    before = server.connections
    for _ in range(10):
        assert store.head(uri).size == 1
        assert store.read_bytes(uri) == b"a"
    assert list(store.list(server.uri(f"{case}/")))
    assert server.connections == before  # all on the one pooled connection
    with store.open_read(uri) as first, store.open_read(uri) as second:  # two at once: two connections
        assert first.read() == second.read() == b"a"
    assert server.connections == before + 1


def test_broken_download_resumes_where_it_stopped(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """The server goes away mid-transfer; the download resumes with REST on a new connection."""
    data = os.urandom(1_500_000)
    _write(tmp_path / "root" / "clip.mp4", data)
    limit = 200_000  # bytes/s after a first burst: the first server needs seconds for the whole file
    first = start_ftp_server(tmp_path / "root", user="u", password=PASSWORD, send_limit=limit)
    servers = [first]
    st = FTPStore(timeout=5, retries=5)
    st.add_credentials(first.host, first.port, "u", PASSWORD)

    def restart() -> None:  # once the first bytes have landed, while the server throttles
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not any(
            p.stat().st_size > 0 for p in tmp_path.glob(".out.mp4.*.vam-tmp")
        ):
            time.sleep(0.01)
        first.stop()
        servers.append(start_ftp_server(tmp_path / "root", user="u", password=PASSWORD, port=first.port))

    restarter = threading.Thread(target=restart)
    try:
        with caplog.at_level("INFO", logger="vam.storage.ftp"):
            restarter.start()
            dest = st.get(first.uri("clip.mp4"), tmp_path / "out.mp4")
        assert _sha(dest.read_bytes()) == _sha(data)
        resumed = [r.getMessage() for r in caplog.records if "resuming" in r.getMessage()]
        assert resumed, "the download did not resume"
        assert 0 < int(resumed[0].rsplit(" ", 1)[1]) < len(data), resumed
    finally:
        restarter.join(10)
        st.close()
        for srv in servers:
            srv.stop()


# --------------------------------------------------------------------------- FTPS and old servers


def test_ftps_round_trip_with_the_test_ca(tls_server: FTPDevServer, tmp_path: Path) -> None:
    assert tls_server.ca_file is not None
    st = FTPStore(timeout=10)
    st.add_credentials(tls_server.host, tls_server.port, tls_server.user, tls_server.password)
    uri = tls_server.uri("secure/clip.bin")
    data = os.urandom(700_000)
    try:
        with pytest.raises(StorageError, match="certificate") as err:  # not trusted yet
            st.put_bytes(data, uri)
        assert PASSWORD not in str(err.value)

        st.add_credentials(
            tls_server.host, tls_server.port, tls_server.user, tls_server.password, ca_file=tls_server.ca_file
        )
        assert st.put_bytes(data, uri).size == len(data)
        assert (tls_server.root / "secure" / "clip.bin").read_bytes() == data
        assert [o.uri for o in st.list(tls_server.uri("secure/"))] == [uri]
        assert _sha(st.get(uri, tmp_path / "c.bin").read_bytes()) == _sha(data)
        with st.open_read(uri) as stream:
            assert _sha(stream.read()) == _sha(data)
        st.delete(uri)
        assert not st.exists(uri)
    finally:
        st.close()


def test_ftps_ca_file_from_env_and_plain_ftp_refused(
    tls_server: FTPDevServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tls_server.root / "env-ca.txt", b"tls")
    monkeypatch.setenv("VAM_FTP_CA_FILE", str(tls_server.ca_file))
    st = FTPStore(timeout=10)
    try:
        assert st.read_bytes(tls_server.uri("env-ca.txt", credentials=True)) == b"tls"
        plain = tls_server.uri("env-ca.txt", credentials=True).replace("ftps://", "ftp://")
        with pytest.raises(StorageError) as err:  # the server requires TLS: plain login refused
            st.head(plain)
        assert PASSWORD not in str(err.value)
        # a registration with tls=True upgrades ftp:// URIs of that host to explicit TLS
        st.add_credentials(tls_server.host, tls_server.port, tls_server.user, tls_server.password, tls=True)
        assert st.head(tls_server.uri("env-ca.txt").replace("ftps://", "ftp://")).size == 3
    finally:
        st.close()


def test_server_without_mlsd_lists_with_nlst_size_mdtm(old_server: FTPDevServer, tmp_path: Path) -> None:
    stamp = datetime(2026, 10, 1, 0, 0, 0, tzinfo=UTC).timestamp()
    for key in ("drop/a.mp4", "drop/sub/b.mp4", "drop/sub/c d.mp4"):
        _write(old_server.root / key, key.encode(), stamp)
    st = FTPStore(timeout=5)
    st.add_credentials(old_server.host, None, old_server.user, old_server.password)  # any port
    try:
        listed = list(st.list(old_server.uri("drop/")))
        assert [o.uri for o in listed] == [
            old_server.uri(k) for k in ("drop/a.mp4", "drop/sub/b.mp4", "drop/sub/c d.mp4")
        ]
        assert all(o.last_modified == datetime(2026, 10, 1, tzinfo=UTC) for o in listed)
        assert [o.size for o in listed] == [10, 14, 16]
        info = st.head(old_server.uri("drop/sub/c d.mp4"))
        assert (info.size, info.etag) == (16, "16-20261001000000")
        assert st.stat(old_server.uri("drop/sub")) is None  # a directory
        st.put_bytes(b"new", old_server.uri("drop/new.txt"))
        assert st.read_bytes(old_server.uri("drop/new.txt")) == b"new"
    finally:
        st.close()

"""The tus store on file:// (no server): state beside data, offsets, checksums, locks, expiry."""

from __future__ import annotations

import base64
import hashlib
import threading
import time

import pytest

from vam.ingest.tus import TusError, TusStore, parse_checksum, parse_metadata, safe_filename
from vam.upload_client import MIB, FileRange, _ranges


@pytest.fixture
def store(tmp_path):
    return TusStore((tmp_path / "uploads").as_uri(), (tmp_path / "landing").as_uri(), expiration_seconds=60)


def _write(store, upload, data, offset=None, checksum=None):
    w = store.writer(upload, upload.offset if offset is None else offset, checksum)
    w.write(data)
    return w.commit()


def test_metadata_and_checksum_headers():
    b64 = base64.b64encode("Été.mp4".encode()).decode()
    assert parse_metadata(f"filename {b64},flag") == {"filename": "Été.mp4", "flag": ""}
    with pytest.raises(TusError) as err:
        parse_metadata("a !!!")
    assert err.value.status == 400
    digest = hashlib.sha256(b"x").digest()
    assert parse_checksum("sha256 " + base64.b64encode(digest).decode()) == ("sha256", digest)
    with pytest.raises(TusError):
        parse_checksum("crc32 AAAA")
    assert safe_filename("../../etc/passwd", "d") == "passwd"
    assert safe_filename("", "d") == "d"


def test_state_is_kept_beside_the_data_and_any_store_resumes(store, tmp_path):
    up = store.create(10, {"filename": "a.mp4"})
    _write(store, up, b"hello")
    assert (tmp_path / "uploads" / f"{up.id}.info").is_file()
    assert (tmp_path / "uploads" / f"{up.id}.part").read_bytes() == b"hello"
    other = TusStore((tmp_path / "uploads").as_uri(), (tmp_path / "landing").as_uri())  # another process
    again = other.load(up.id)
    assert again.offset == 5
    with pytest.raises(TusError) as err:
        other.writer(again, 3)
    assert err.value.status == 409
    _write(other, again, b"world")
    assert again.complete
    landed = other.land(again)
    assert landed.endswith(f"/{up.id}/a.mp4")
    assert (tmp_path / "landing" / up.id / "a.mp4").read_bytes() == b"helloworld"


def test_bytes_past_the_recorded_offset_are_dropped(store, tmp_path):
    up = store.create(None)
    _write(store, up, b"abc")
    with (tmp_path / "uploads" / f"{up.id}.part").open("ab") as f:
        f.write(b"garbage of a request that died")
    _write(store, up, b"def")
    assert (tmp_path / "uploads" / f"{up.id}.part").read_bytes() == b"abcdef"


def test_a_checksum_mismatch_discards_the_chunk(store, tmp_path):
    up = store.create(6)
    bad = ("sha1", hashlib.sha1(b"nope").digest())
    with pytest.raises(TusError) as err:
        _write(store, up, b"abc", checksum=bad)
    assert err.value.status == 460
    assert store.load(up.id).offset == 0
    assert (tmp_path / "uploads" / f"{up.id}.part").read_bytes() == b""
    _write(store, up, b"abc", checksum=("sha1", hashlib.sha1(b"abc").digest()))
    assert store.load(up.id).offset == 3


def test_limits(tmp_path):
    store = TusStore((tmp_path / "u").as_uri(), (tmp_path / "l").as_uri(), max_bytes=10)
    with pytest.raises(TusError) as err:
        store.create(11)
    assert err.value.status == 413
    up = store.create(None)
    w = store.writer(up, 0)
    with pytest.raises(TusError) as err:
        w.write(b"x" * 11)
    assert err.value.status == 413
    w.abort()
    store.set_length(up, 4)
    with pytest.raises(TusError):
        store.set_length(up, 5)


def test_one_request_at_a_time(store):
    up = store.create(5)
    held = threading.Event()
    release = threading.Event()

    def hold():
        with store.lock(up.id):
            held.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(5)
    with pytest.raises(TusError) as err, store.lock(up.id, timeout=0.2):
        pass
    assert err.value.status == 423
    release.set()
    t.join()
    with store.lock(up.id, timeout=1):
        pass


def test_terminated_and_expired_uploads(store, tmp_path):
    up = store.create(5)
    store.terminate(up)
    with pytest.raises(TusError) as err:
        store.load(up.id)
    assert err.value.status == 410
    old = TusStore((tmp_path / "uploads").as_uri(), (tmp_path / "landing").as_uri(), expiration_seconds=1)
    stale = old.create(5)
    time.sleep(1.1)
    with pytest.raises(TusError) as err:
        store.load(stale.id)
    assert err.value.status == 410
    counts = store.cleanup(now=time.time() + 120)
    assert counts == {"expired": 1, "tombstones": 1, "orphans": 0}
    with pytest.raises(TusError) as err:
        store.load(stale.id)
    assert err.value.status == 404


def test_client_ranges_and_file_windows(tmp_path):
    assert _ranges(23 * MIB, 3, 5 * MIB) == [(0, 10 * MIB), (10 * MIB, 10 * MIB), (20 * MIB, 3 * MIB)]
    assert all(n >= 5 * MIB for _, n in _ranges(12 * MIB, 8, MIB)[:-1])
    path = tmp_path / "f"
    path.write_bytes(bytes(range(100)))
    window = FileRange(path, 10, 20)
    assert window.seek(0, 2) == 20
    window.seek(5)
    assert window.read(100) == bytes(range(15, 30))
    window.close()

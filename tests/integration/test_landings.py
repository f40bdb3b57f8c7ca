"""Several landing places at once, and objects still being written never ingested half-way."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from vam import storage
from vam.errors import VamError
from vam.ingest.landings import Landing, is_candidate, parse_landings
from vam.runtime import Runtime
from vam.settings import load_settings
from vam.steps import ingest

pytestmark = pytest.mark.integration


def test_landings_setting_is_validated():
    assert [p.uri for p in parse_landings("", "file:///in")] == ["file:///in/"]
    places = parse_landings(
        json.dumps([{"uri": "ftp://h/drop", "marker": ".done"}, {"uri": "gs://b/in/"}]), ""
    )
    assert [(p.uri, p.marker, p.window_s) for p in places] == [
        ("ftp://h/drop/", ".done", 0.0),
        ("gs://b/in/", None, 0),
    ]
    assert Landing.from_dict({"uri": "ftp://h/d/"}).window_s == 60  # in-place writers: a window by default
    with pytest.raises(VamError, match=r"landings\[0\]: unknown keys colour"):
        parse_landings(json.dumps([{"uri": "s3://b/", "colour": "red"}]), "")
    with pytest.raises(VamError, match="stable_window_s"):
        parse_landings(json.dumps([{"uri": "s3://b/", "stable_window_s": -1}]), "")
    assert not is_candidate("ftp://h/drop/clip.mp4.done", ".done")
    assert not is_candidate("ftp://h/drop/clip.mp4~")
    assert not is_candidate("ftp://h/drop/clip.mp4.filepart")


def _runtime(monkeypatch, places: list[dict]) -> Runtime:
    monkeypatch.setenv("VAM_LANDINGS", json.dumps(places))
    return Runtime(load_settings())


def test_several_landing_places_with_their_own_options(vam_home, monkeypatch, tmp_path):
    a, b = tmp_path / "partner-a", tmp_path / "partner-b"
    for folder in (a, b):
        folder.mkdir()
    rt = _runtime(
        monkeypatch,
        [
            {"uri": storage.to_uri(a), "profile": "multicodec", "tags": {"campaign": "spring"}},
            {"uri": storage.to_uri(b)},
        ],
    )
    (a / "one.mp4").write_bytes(b"bytes of one")
    (b / "two.mp4").write_bytes(b"bytes of two")
    places = ingest.landings(rt)
    assert [p["uri"] for p in places] == [storage.to_uri(a) + "/", storage.to_uri(b) + "/"]
    found = [ingest.discover(rt, place) for place in places]
    assert [[Path(f["source_uri"]).name for f in group] for group in found] == [["one.mp4"], ["two.mp4"]]
    runs = ingest.trigger_args(found)
    assert runs[0]["conf"]["profile"] == "multicodec"
    assert runs[0]["conf"]["tags"] == {"campaign": "spring"}
    assert runs[0]["conf"]["landing"] == places[0]["uri"]
    assert runs[1]["conf"]["profile"] == ""


def _slow_writer(path: Path, bursts: int, pause: float, done: threading.Event) -> None:
    with path.open("ab") as out:
        for n in range(bursts):
            out.write(bytes([n]) * 4096)
            out.flush()
            time.sleep(pause)
    done.set()


def test_a_slow_writer_is_not_ingested_until_stable(vam_home, monkeypatch, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    rt = _runtime(monkeypatch, [{"uri": storage.to_uri(drop), "stable_window_s": 1.5, "stable_polls": 2}])
    place = ingest.landings(rt)[0]
    done = threading.Event()
    writer = threading.Thread(target=_slow_writer, args=(drop / "big.mp4", 6, 0.5, done))
    writer.start()
    while not done.is_set():  # pauses (0.5 s) shorter than the window: never taken while written
        assert ingest.discover(rt, place) == []
        time.sleep(0.3)
    writer.join()
    deadline = time.monotonic() + 10
    found: list = []
    while not found and time.monotonic() < deadline:
        found = ingest.discover(rt, place)
        time.sleep(0.3)
    assert [Path(f["source_uri"]).name for f in found] == ["big.mp4"]
    assert found[0]["sha256"] == storage.sha256_file(drop / "big.mp4")
    assert found[0]["size_bytes"] == 6 * 4096


def test_with_a_marker_nothing_is_taken_before_the_marker(vam_home, monkeypatch, tmp_path):
    drop = tmp_path / "drop"
    drop.mkdir()
    rt = _runtime(monkeypatch, [{"uri": storage.to_uri(drop), "marker": ".done"}])
    place = ingest.landings(rt)[0]
    (drop / "clip.mp4").write_bytes(b"first half")
    time.sleep(1.2)  # a long pause: without the marker convention this could look complete
    assert ingest.discover(rt, place) == []
    with (drop / "clip.mp4").open("ab") as out:
        out.write(b" and second half")
    assert ingest.discover(rt, place) == []
    (drop / "clip.mp4.done").write_bytes(b"")
    found = ingest.discover(rt, place)
    assert [Path(f["source_uri"]).name for f in found] == ["clip.mp4"]
    assert found[0]["size_bytes"] == len(b"first half and second half")


@pytest.fixture
def ftp_drop(tmp_path):
    """A partner's FTP server (pyftpdlib on 127.0.0.1) with credentials registered the way an
    Airflow connection registers them."""
    from vam.devstack.ftp import start_ftp_server
    from vam.storage import ftp

    server = start_ftp_server(tmp_path / "ftp-root")
    (server.root / "drop").mkdir()
    ftp.add_credentials(server.host, server.port, server.user, server.password)
    yield server
    ftp.default_store().remove_credentials(server.host, server.port)
    server.stop()


class _SlowFile:
    """A file-like source for STOR that sends ``bursts`` blocks with a pause before each."""

    def __init__(self, bursts: int, pause: float) -> None:
        self.left, self.pause = bursts, pause

    def read(self, _size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        time.sleep(self.pause)
        self.left -= 1
        return bytes([self.left]) * 8192


def _partner_uploads(server, name: str, bursts: int, pause: float, done: threading.Event) -> None:
    import ftplib

    with ftplib.FTP() as conn:
        conn.connect(server.host, server.port)
        conn.login(server.user, server.password)
        conn.storbinary(f"STOR drop/{name}", _SlowFile(bursts, pause), blocksize=8192)
    done.set()


@pytest.mark.parametrize("marker", [None, ".done"], ids=["stable-window", "marker"])
def test_a_slow_ftp_upload_is_not_ingested_until_complete(vam_home, monkeypatch, ftp_drop, marker):
    place_options = {"uri": ftp_drop.uri("drop/"), "stable_window_s": 2, "stable_polls": 2}
    if marker:
        place_options["marker"] = marker
    rt = _runtime(monkeypatch, [place_options])
    place = ingest.landings(rt)[0]
    done = threading.Event()
    writer = threading.Thread(target=_partner_uploads, args=(ftp_drop, "show.mp4", 8, 0.6, done))
    writer.start()
    while not done.is_set():  # pauses (0.6 s) shorter than the window: never taken while written
        assert ingest.discover(rt, place) == []
        time.sleep(0.4)
    writer.join()
    if marker:  # complete, but the partner has not said so yet
        time.sleep(2.5)
        assert ingest.discover(rt, place) == []
        (ftp_drop.root / "drop" / f"show.mp4{marker}").write_bytes(b"")
    deadline = time.monotonic() + 15
    found: list = []
    while not found and time.monotonic() < deadline:
        found = ingest.discover(rt, place)
        time.sleep(0.5)
    assert [f["source_uri"].rsplit("/", 1)[1] for f in found] == ["show.mp4"]
    assert found[0]["size_bytes"] == 8 * 8192
    assert found[0]["sha256"] == storage.sha256_file(ftp_drop.root / "drop" / "show.mp4")
    assert ftp_drop.password not in found[0]["source_uri"]  # credentials never land in the catalog
    assert (ftp_drop.root / "drop" / "show.mp4").exists()  # the partner's file is never deleted

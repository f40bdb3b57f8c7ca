"""Azurite's blob service on 127.0.0.1 as the Azure Blob store of development and tests. Development
servers only: nothing in production imports this package.

Azurite comes from the npm registry; ``make install`` (scripts/install_node_tools.sh) installs the
pinned version under ``.venv/node``. It runs with ``--loose --skipApiVersionCheck`` (the Python SDK
may speak a newer API version than Azurite knows) and its data in a directory of ours. Clients
use the well-known development account through ``AZURE_STORAGE_CONNECTION_STRING`` (see
``AzuriteServer.env``) or ``AzuriteServer.client()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vam.devstack._process import alive, log_tail, spawn, terminate
from vam.devstack.seaweed import LOOPBACK, free_port
from vam.errors import StorageError

log = logging.getLogger(__name__)

# Azurite's well-known development account (public, documented by Microsoft: not a secret).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
AZURITE_VERSION = "3.35.0"  # the version scripts/install_node_tools.sh installs
LOG_FILE = "azurite.log"


def connection_string(blob_endpoint: str) -> str:
    """The connection string of the development account at ``blob_endpoint``
    (``http://127.0.0.1:PORT/devstoreaccount1``)."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint={blob_endpoint};"
    )


def find_azurite_blob() -> str:
    """The ``azurite-blob`` launcher: ``$VAM_AZURITE_BLOB``, else the one `make install` put under
    ``<venv>/node``, else one on PATH."""
    override = os.environ.get("VAM_AZURITE_BLOB")
    candidates = [Path(override)] if override else []
    candidates.append(Path(sys.prefix) / "node" / "node_modules" / ".bin" / "azurite-blob")
    candidates.append(
        Path(__file__).resolve().parents[3] / ".venv" / "node" / "node_modules" / ".bin" / "azurite-blob"
    )
    for path in candidates:
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    on_path = shutil.which("azurite-blob")
    if on_path:
        return on_path
    raise StorageError(
        "azurite-blob not found: run `make install` (it runs scripts/install_node_tools.sh, which "
        f"installs azurite@{AZURITE_VERSION} from npm under .venv/node), or set VAM_AZURITE_BLOB"
    )


def _answers(port: int) -> bool:
    """Whether Azurite answers HTTP on ``port`` (any status: an anonymous request gets 4xx)."""
    try:
        with socket.create_connection((LOOPBACK, port), timeout=1) as sock:
            sock.sendall(f"GET /{ACCOUNT_NAME}?comp=list HTTP/1.1\r\nHost: {LOOPBACK}\r\n\r\n".encode())
            return sock.recv(16).startswith(b"HTTP/")
    except OSError:
        return False


@dataclass
class AzuriteServer:
    """A running Azurite blob service: its blob endpoint, port, PID and data directory."""

    data_dir: Path
    blob_endpoint: str
    port: int
    pid: int
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def connection_string(self) -> str:
        return connection_string(self.blob_endpoint)

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def env(self) -> dict[str, str]:
        """The environment that points vam's default az:// client here."""
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def client(self) -> Any:
        """An azure.storage.blob.BlobServiceClient for the development account."""
        from vam.storage.az import make_azure_client

        return make_azure_client(connection_string=self.connection_string)

    def ensure_containers(self, names: Iterable[str]) -> None:
        """Create the containers that do not exist yet."""
        from azure.core.exceptions import ResourceExistsError

        client = self.client()
        for name in names:
            with contextlib.suppress(ResourceExistsError):
                client.create_container(name)
                log.info("created container %s on %s", name, self.blob_endpoint)

    def is_running(self) -> bool:
        return alive(self.pid, self._process)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server (by PID), wait up to ``timeout`` s, then SIGKILL."""
        if not self.is_running():
            return
        terminate(self.pid, self._process, timeout, "azurite-blob")
        log.info("stopped azurite-blob (pid %s) at %s", self.pid, self.blob_endpoint)

    def __enter__(self) -> AzuriteServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_azurite(data_dir: Path, *, port: int | None = None, timeout: float = 30.0) -> AzuriteServer:
    """Start Azurite's blob service on 127.0.0.1:``port`` (a free port when None) with its data in
    ``data_dir`` and wait until it answers."""
    data_dir = Path(data_dir).expanduser().resolve()
    data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        server = _launch(data_dir, port if port is not None else free_port(), timeout)
        if server is not None:
            return server
        log.warning(
            "azurite-blob exited early (attempt %s of %s); retrying on another port", attempt, attempts
        )
    raise StorageError(f"azurite-blob could not start in {data_dir} after {attempts} attempts")


def _launch(data_dir: Path, port: int, timeout: float) -> AzuriteServer | None:
    argv = [
        find_azurite_blob(),
        "--blobHost",
        LOOPBACK,
        "--blobPort",
        str(port),
        "--location",
        str(data_dir),
        "--silent",
        "--skipApiVersionCheck",
        "--loose",
    ]
    log_path = data_dir / LOG_FILE
    started = time.monotonic()
    process = spawn(argv, log_path, cwd=data_dir)
    server = AzuriteServer(
        data_dir=data_dir,
        blob_endpoint=f"http://{LOOPBACK}:{port}/{ACCOUNT_NAME}",
        port=port,
        pid=process.pid,
        _process=process,
    )
    deadline = started + timeout
    while not _answers(port):
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path)
            if "EADDRINUSE" in tail:
                return None
            raise StorageError(f"azurite-blob exited with {code} before answering:\n{tail}")
        if time.monotonic() > deadline:
            server.stop()
            raise StorageError(
                f"azurite-blob on port {port} did not answer in {timeout:.0f} s:\n{log_tail(log_path)}"
            )
        time.sleep(0.1)
    server.startup_seconds = time.monotonic() - started
    log.info(
        "Azurite blob service up at %s in %.2f s (pid %s)",
        server.blob_endpoint,
        server.startup_seconds,
        process.pid,
    )
    return server

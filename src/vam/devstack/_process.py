"""Development servers as child processes: started in their own session with a log file, checked,
and stopped by PID (SIGTERM to the group, then SIGKILL). Shared by SeaweedFS, fake-gcs-server and
Azurite."""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)


def spawn(argv: list[str], log_path: Path, *, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    """Start ``argv`` in a new session, its output appended to ``log_path`` after a header line."""
    log.info("starting %s", shlex.join(argv))
    with log_path.open("ab") as log_file:
        log_file.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {shlex.join(argv)}\n".encode())
        log_file.flush()
        return subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            start_new_session=True,
        )


def log_tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines the latest launch wrote to a server's log, for error messages."""
    try:
        text = path.read_text(errors="replace").rpartition("\n=== ")[2]
        return "\n".join(text.splitlines()[-lines:])
    except OSError:
        return "(no log)"


def alive(pid: int, process: subprocess.Popen[bytes] | None = None) -> bool:
    """Whether ``pid`` (our child ``process`` when we have it) still runs; a zombie does not."""
    if process is not None:
        return process.poll() is None
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait up to ``timeout`` s for ``pid`` to exit; True when it did."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False


def signal_group(pid: int, sig: int) -> None:
    """Signal the process group ``pid`` leads (servers start in their own session), else ``pid``."""
    try:
        if os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        pass


def terminate(pid: int, process: subprocess.Popen[bytes] | None, timeout: float, name: str) -> None:
    """SIGTERM the server's group, wait up to ``timeout`` s, then SIGKILL it."""
    signal_group(pid, signal.SIGTERM)
    if process is not None:
        try:
            process.wait(timeout)
            return
        except subprocess.TimeoutExpired:
            pass
    elif wait_gone(pid, timeout):
        return
    log.warning("%s (pid %s) ignored SIGTERM for %.0f s; sending SIGKILL", name, pid, timeout)
    signal_group(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(5)
    else:
        wait_gone(pid, 5)

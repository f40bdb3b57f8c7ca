"""The one place that runs ffmpeg and ffprobe.

Commands are argv lists (never a shell string), logged with :func:`shlex.join`, started in their
own process group so that a timeout, an interrupt or :func:`kill_running` (called from an
operator's ``on_kill``) stops ffmpeg and anything it spawned. ffmpeg's progress lines go to the log,
throttled; a non-zero exit raises :class:`~vam.errors.ToolError` carrying the last lines of stderr.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import queue
import re
import shlex
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from typing import IO, Any

from vam.errors import ToolError, VamError

log = logging.getLogger(__name__)

TAIL_LINES = 50
PROGRESS_LOG_INTERVAL = 2.0  # seconds between two progress lines in the log
KILL_GRACE_SECONDS = 5.0  # between SIGTERM and SIGKILL

_FRAME_RE = re.compile(r"\bframe=\s*\d")
_TIME_RE = re.compile(r"\btime=\s*-?[\d:.]+")
_RATE_RE = re.compile(r"\b(?:speed|bitrate)=")

_running: set[subprocess.Popen[str]] = set()
_running_lock = threading.Lock()


_configured: dict[str, str] = {"ffmpeg": "", "ffprobe": ""}
_configured_lock = threading.Lock()


def configure(*, ffmpeg: str | None = None, ffprobe: str | None = None) -> None:
    """Set the ffmpeg and ffprobe binaries for this process (``None`` or ``""``: the default).

    Called once at the edge (CLI, operator, service) from the settings; the media modules never
    read settings themselves. Each call sets both: a binary left out goes back to its default.
    """
    with _configured_lock:
        _configured["ffmpeg"] = ffmpeg or ""
        _configured["ffprobe"] = ffprobe or ""


def ffmpeg_path() -> str:
    """The ffmpeg binary: the configured one (:func:`configure`), else the one in the imageio-ffmpeg wheel."""
    with _configured_lock:
        configured = _configured["ffmpeg"]
    if configured:
        return configured
    try:
        import imageio_ffmpeg
    except ImportError:
        raise VamError(
            "no ffmpeg: set VAM_FFMPEG to an ffmpeg binary or run `make install` (installs imageio-ffmpeg)"
        ) from None
    try:
        return str(imageio_ffmpeg.get_ffmpeg_exe())
    except RuntimeError as exc:
        raise VamError(f"no ffmpeg binary in imageio-ffmpeg ({exc}); run `make install`") from None


def ffprobe_path() -> str:
    """The ffprobe binary: the configured one (:func:`configure`), else ``ffprobe`` on PATH."""
    with _configured_lock:
        configured = _configured["ffprobe"]
    if configured:
        return configured
    found = shutil.which("ffprobe")
    if not found:
        raise VamError(
            "ffprobe not found on PATH: run `make install` (installs the ffmpeg package) "
            "or set VAM_FFPROBE to an ffprobe binary"
        )
    return found


def ffmpeg_argv(
    *, threads: int = 0, loglevel: str = "error", overwrite: bool = True, stats: bool = True
) -> list[str]:
    """The start of every ffmpeg command vam runs: the binary and its global options.

    ``[ffmpeg, "-hide_banner", "-nostdin", "-v", loglevel, "-stats", "-y"]``: ``-nostats`` when not
    ``stats`` (a command that reads ``-progress`` instead), ``-n`` when not ``overwrite``; then
    ``-threads N`` when ``threads > 0``, which, placed here, is an input option: the decoder
    threads of the first ``-i`` that follows. ``-stats`` keeps the progress lines :func:`run`
    logs, which ffmpeg prints only at ``-v info`` otherwise.
    """
    argv = [ffmpeg_path(), "-hide_banner", "-nostdin", "-v", loglevel]
    argv += ["-stats" if stats else "-nostats", "-y" if overwrite else "-n"]
    if threads > 0:
        argv += ["-threads", str(int(threads))]
    return argv


def _is_progress(line: str) -> bool:
    """ffmpeg's stats line: ``frame=  97 fps= 28 ... time=00:00:03.88 bitrate=... speed=1.1x``."""
    return bool(_FRAME_RE.search(line) or (_TIME_RE.search(line) and _RATE_RE.search(line)))


def _read_stderr(stream: IO[str], tail: collections.deque[str], name: str, log_progress: bool) -> None:
    """Drain stderr: keep the tail (consecutive progress lines collapsed), log progress, throttled."""
    last_logged = 0.0
    last_was_progress = False
    for raw in stream:  # universal newlines: ffmpeg's "\r"-terminated progress lines split too
        line = raw.rstrip()
        if not line:
            continue
        progress = _is_progress(line)
        if progress and last_was_progress and tail:
            tail[-1] = line
        else:
            tail.append(line)
        last_was_progress = progress
        if progress:
            now = time.monotonic()
            if log_progress and now - last_logged >= PROGRESS_LOG_INTERVAL:
                log.info("%s: %s", name, line)
                last_logged = now
        else:
            log.debug("%s: %s", name, line)


def _read_all(stream: IO[str], chunks: list[str]) -> None:
    chunks.append(stream.read())


def _kill_group(proc: subprocess.Popen[str]) -> None:
    """SIGTERM the process group of ``proc``, then SIGKILL it if it has not exited in time."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=KILL_GRACE_SECONDS)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # also kills children that outlived the leader
    try:
        proc.wait(timeout=KILL_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        log.warning("process group %s did not exit after SIGKILL", proc.pid)


def kill_running() -> int:
    """Kill the process groups of every command started by :func:`run` that is still running.

    Safe to call from another thread or a signal handler context (an operator's ``on_kill``).
    Returns how many were signalled.
    """
    with _running_lock:
        procs = list(_running)
    for proc in procs:
        log.warning("killing process group %s (%s)", proc.pid, proc.args[0] if proc.args else "?")
        _kill_group(proc)
    return len(procs)


def run(
    argv: list[str], *, timeout: float | None = None, log_progress: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and wait for it; raise :class:`ToolError` with the stderr tail on a non-zero exit.

    The returned ``stdout`` is the whole standard output; ``stderr`` is only its last
    ``TAIL_LINES`` lines. On a timeout, ``KeyboardInterrupt`` or ``SystemExit`` the whole process
    group is killed and the exception re-raised (a timeout as :class:`subprocess.TimeoutExpired`).
    """
    if not argv or not all(isinstance(a, str) for a in argv):
        raise TypeError(f"argv must be a non-empty list of str, got {argv!r}")
    argv = list(argv)
    name = os.path.basename(argv[0])
    name = name.split("-", 1)[0] if name.startswith(("ffmpeg-", "ffprobe-")) else name
    log.info("running: %s", shlex.join(argv))
    started = time.monotonic()
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    with _running_lock:
        _running.add(proc)
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    out_chunks: list[str] = []
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # pragma: no cover - both are PIPE above
        raise RuntimeError("subprocess pipes were not created")
    readers = [
        threading.Thread(target=_read_stderr, args=(stderr, tail, name, log_progress), daemon=True),
        threading.Thread(target=_read_all, args=(stdout, out_chunks), daemon=True),
    ]
    for reader in readers:
        reader.start()
    try:
        try:
            returncode = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log.error("%s timed out after %s s; killing its process group", name, timeout)
            _kill_group(proc)
            raise
        except (KeyboardInterrupt, SystemExit):
            log.warning("%s interrupted; killing its process group", name)
            _kill_group(proc)
            raise
    finally:
        with _running_lock:
            _running.discard(proc)
        if proc.poll() is None:  # any other exception: never leave ffmpeg behind
            _kill_group(proc)
        for reader in readers:  # the pipes reach EOF once the whole group has exited
            reader.join(timeout=KILL_GRACE_SECONDS)
        if not any(reader.is_alive() for reader in readers):
            stdout.close()
            stderr.close()
    stderr_tail = "\n".join(tail)
    if returncode != 0:
        raise ToolError(argv, returncode, stderr_tail)
    log.debug("%s finished in %.1f s", name, time.monotonic() - started)
    return subprocess.CompletedProcess(argv, returncode, "".join(out_chunks), stderr_tail)


def run_ffprobe_json(args: list[str], *, timeout: float | None = 120.0) -> dict[str, Any]:
    """Run ``ffprobe -v error -print_format json ARGS`` and return the parsed JSON."""
    argv = [ffprobe_path(), "-v", "error", "-hide_banner", "-print_format", "json", *args]
    result = run(argv, timeout=timeout, log_progress=False)
    try:
        data = json.loads(result.stdout or "{}")
    except json.JSONDecodeError as exc:
        raise ToolError(argv, 0, f"ffprobe printed invalid JSON ({exc}): {result.stdout[:500]}") from None
    if not isinstance(data, dict):
        raise ToolError(argv, 0, f"ffprobe printed JSON that is not an object: {result.stdout[:500]}")
    return data


def stream(argv: list[str], *, chunk_bytes: int, read_ahead: int = 4) -> Iterator[bytes]:
    """Run ``argv`` and yield its standard output in chunks of up to ``chunk_bytes`` (for binary
    pipes such as ``-f rawvideo pipe:1``, which :func:`run` would hold whole as text).

    Same conventions as :func:`run`: the command is logged, runs in its own process group
    (stopped by :func:`kill_running`), is killed if the consumer stops early, and a non-zero exit
    raises :class:`ToolError` with the stderr tail. Up to ``read_ahead`` chunks are read ahead on
    a thread, so ffmpeg keeps decoding while the consumer works.
    """
    log.info("running: %s", shlex.join(argv))
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True
    )
    with _running_lock:
        _running.add(proc)  # type: ignore[arg-type]
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    stdout, stderr = proc.stdout, proc.stderr
    if stdout is None or stderr is None:  # pragma: no cover - both are PIPE above
        raise RuntimeError("subprocess pipes were not created")

    def drain_stderr() -> None:
        for raw in stderr:
            line = raw.decode(errors="replace").rstrip()
            if line:
                tail.append(line)

    chunks: queue.Queue[bytes | BaseException | None] = queue.Queue(maxsize=read_ahead)
    stop = threading.Event()

    def put(item: bytes | BaseException | None) -> bool:
        while not stop.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def read_stdout() -> None:
        try:
            while data := stdout.read(chunk_bytes):
                if not put(data):
                    while stdout.read(1 << 16):  # stopped: drain, so that ffmpeg is not stuck writing
                        pass
                    return
            put(None)
        except BaseException as exc:  # handed to the consumer
            put(exc)

    readers = [
        threading.Thread(target=drain_stderr, daemon=True, name="tool-stderr"),
        threading.Thread(target=read_stdout, daemon=True, name="tool-stdout"),
    ]
    for reader in readers:
        reader.start()
    finished = False
    try:
        while (item := chunks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
        returncode = proc.wait()
        finished = True
        readers[0].join(timeout=KILL_GRACE_SECONDS)
        if returncode != 0:
            raise ToolError(argv, returncode, "\n".join(tail))
    finally:
        stop.set()
        if not finished:
            _kill_group(proc)  # type: ignore[arg-type]
        with _running_lock:
            _running.discard(proc)  # type: ignore[arg-type]
        for reader in readers:
            reader.join(timeout=KILL_GRACE_SECONDS)
        stdout.close()
        stderr.close()

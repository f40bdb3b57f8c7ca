"""A task stopped by Airflow (SIGTERM) takes its ffmpeg process group down with it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from vam.orchestration.env import PLUGINS_FOLDER

pytestmark = pytest.mark.integration

CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, sys.argv[1])
    from vam.orchestration.failures import kill_media_on_sigterm
    from vam.media import tools

    kill_media_on_sigterm()
    print("ready", flush=True)
    tools.run([tools.ffmpeg_path(), "-nostdin", "-f", "lavfi", "-i", "testsrc2=size=320x240:rate=25",
               "-t", "600", "-f", "null", "-"])
    """
)


def _ffmpeg_children(pid: int) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["pid", "ppid", "name"]):
        if proc.info["ppid"] == pid and "ffmpeg" in (proc.info["name"] or ""):
            found.append(proc)
    return found


def test_sigterm_kills_ffmpeg(tmp_path):
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(PLUGINS_FOLDER)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stdout.readline().strip() == "ready"
    deadline = time.monotonic() + 20
    while not (ffmpegs := _ffmpeg_children(child.pid)):
        assert time.monotonic() < deadline, "ffmpeg did not start"
        time.sleep(0.1)
    os.kill(child.pid, 15)
    child.wait(timeout=20)
    assert child.returncode != 0
    gone, alive = psutil.wait_procs(ffmpegs, timeout=10)
    assert not alive, f"ffmpeg left running: {[p.pid for p in alive]}"

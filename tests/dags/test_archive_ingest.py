"""Bulk archive ingest (vam_archive_ingest, run with `vam archive ingest`): exact report counts,
and a run killed half-way then started again processes every file exactly once."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vam import storage
from vam.catalog import open_catalog

pytestmark = [pytest.mark.integration, pytest.mark.slow]

UNIQUE = 10


@pytest.fixture
def archive(vam_home, clips, tmp_path, monkeypatch):
    """30 files: 10 clips, a copy of each in a nested folder (duplicates), 5 bad files, a sidecar, an
    upload in progress and a text file (not a video), spread over folders."""
    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    root = tmp_path / "archive"
    patterns = ["testsrc", "testsrc2", "smptebars", "rgbtestsrc", "yuvtestsrc", "pal75bars", "mandelbrot"]
    for n in range(UNIQUE):
        clip = clips.make(width=160, height=90, seconds=1, fps=20 + n, pattern=patterns[n % len(patterns)])
        first = root / f"{2019 + n % 3}" / f"clip-{n:02d}.mp4"
        copy = root / "copies" / f"{2019 + n % 3}" / "nested" / f"clip-{n:02d}-copy.mov"
        for path in (first, copy):
            path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(clip, path)
    bad = root / "bad"
    bad.mkdir()
    (bad / "zeros.mp4").write_bytes(b"\0" * 1000)  # not b"": the empty file is one asset per catalog
    for n in range(3):
        (bad / f"garbage-{n}.mp4").write_bytes(os.urandom(2048 + n))
    good = clips.make(width=160, height=90, seconds=1, fps=17, pattern="testsrc2")
    (bad / "cut.mp4").write_bytes(good.read_bytes()[: good.stat().st_size // 3])
    (root / "2019" / "clip-00.json").write_text("{}")  # a sidecar: read with its video, not a source
    (root / "2019" / "upload.mp4.part").write_bytes(b"in progress")
    (root / "notes.txt").write_text("not a video")
    return root


def archive_ingest(root: Path, *args: str) -> subprocess.Popen:
    """`vam archive ingest` in its own process group; its log goes to a file (a pipe nobody reads
    while it runs would fill up and stop it)."""
    log = (root.parent / f"archive-{time.monotonic_ns()}.log").open("w")
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "vam"), "archive", "ingest", storage.to_uri(root), "--json",
         "--batch-size", "4", *args],
        stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True,
    )  # fmt: skip


def ready_assets() -> dict[str, list[dict]]:
    with open_catalog(os.environ["VAM_CATALOG_DSN"]) as cat, cat.conn.cursor() as cur:
        cur.execute("SELECT asset_id FROM assets WHERE status = 'ready'")
        ids = [r[0] for r in cur.fetchall()]
        return {asset_id: cat.events(asset_id) for asset_id in ids}


def test_report_counts_and_a_killed_run_resumed_processes_every_file_once(archive):
    dry = archive_ingest(archive, "--dry-run")
    out, _ = dry.communicate(timeout=300)
    assert dry.returncode == 0, out
    report = json.loads(out)["report"]
    assert json.loads(out)["selected"] == 2 * UNIQUE + 5 + 1  # notes.txt is a candidate; .part/.json not
    assert report["counts"]["pending"] == 2 * UNIQUE + 5 + 1
    assert ready_assets() == {}

    first = archive_ingest(archive)
    deadline = time.monotonic() + 120
    while len(ready_assets()) < 4 and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.5)
    assert first.poll() is None, "the first run ended before it could be killed half-way"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    done_before = ready_assets()
    killed_at = time.time()
    assert 4 <= len(done_before) < UNIQUE

    second = archive_ingest(archive)
    out, _ = second.communicate(timeout=600)
    assert second.returncode == 0, out
    report = json.loads(out)["report"]
    assert report["counts"] == {
        "ingested": UNIQUE, "duplicate": UNIQUE, "rejected": 6, "failed": 0, "pending": 0,
    }  # fmt: skip
    assert report["bytes"]["duplicate"] == report["bytes"]["ingested"]
    csv = storage.store_for(report["csv_uri"]).read_bytes(report["csv_uri"]).decode()
    assert csv.count("\n") == 2 * UNIQUE + 6 + 1  # the keys and a header
    assert "Archive ingest" in storage.store_for(report["html_uri"]).read_bytes(report["html_uri"]).decode()

    after = ready_assets()
    assert len(after) == UNIQUE
    for asset_id, events in after.items():
        readies = [e for e in events if e["to_status"] == "ready"]
        assert len(readies) == 1, (asset_id, [e["to_status"] for e in events])
        if asset_id in done_before:  # finished by the killed run: the second one never touched it
            assert all(e["at"].timestamp() < killed_at for e in events if e["to_status"]), asset_id

"""Bulk archive ingest: a prefix of thousands (or millions) of files, in batches, resumable, with a
report.

:func:`plan_archive` lists the prefix page by page (the store pages; keys stream to a local file,
never all held in memory), keeps the candidates the filters select (glob, modified since/until),
and writes them as batches of JSON lines: the keys not finished yet (new, or registered by a run
that was killed before their outcome), at most :data:`MAX_BATCHES` batches. :func:`ingest_batch`
processes one batch in this process (:func:`vam.steps.pipeline.process_source`: duplicates are
answered from the catalog). :func:`report` reads every selected key's outcome back from the
catalog, so a run killed half-way and started again reports the whole archive, and writes CSV and
HTML next to the outputs (``{processed}/_archive/{job}/``).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
import logging
import math
import re
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any

from vam import storage
from vam.catalog import TERMINAL_STATUSES
from vam.errors import VamError
from vam.ingest.landings import is_candidate
from vam.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BATCHES = 1000  # mapped tasks stay under Airflow's max_map_length (1024 by default)
OUTCOMES = ("ingested", "duplicate", "rejected", "failed", "pending")


def _job_uri(rt: Runtime, job: str, *parts: str) -> str:
    return rt.output_uri("_archive", re.sub(r"[^\w.@-]", "_", job), *parts)


def _when(value: str | dt.datetime | None) -> dt.datetime | None:
    if value in (None, ""):
        return None
    when = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)


def plan_archive(
    rt: Runtime,
    prefix: str,
    *,
    job: str,
    glob: str | None = None,
    modified_since: str | None = None,
    modified_until: str | None = None,
    batch_size: int = 25,
) -> dict[str, Any]:
    """List ``prefix`` and write the batches of job ``job``. Returns ``{"job", "keys_uri",
    "batches": [uri], "selected", "to_process", "listed"}``."""
    prefix = prefix if prefix.endswith("/") else prefix + "/"
    since, until = _when(modified_since), _when(modified_until)
    listed = selected = to_process = 0
    with tempfile.TemporaryDirectory(prefix="vam-archive-") as tmp:
        keys_path, todo_path = Path(tmp) / "keys.jsonl", Path(tmp) / "todo.jsonl"
        with keys_path.open("w") as keys, todo_path.open("w") as todo_file, rt.catalog() as cat:
            for obj in storage.store_for(prefix).list(prefix):
                listed += 1
                rel = obj.uri[len(prefix) :]
                if not is_candidate(obj.uri) or (glob and not fnmatch.fnmatchcase(rel, glob)):
                    continue
                if (since and obj.last_modified and obj.last_modified < since) or (
                    until and obj.last_modified and obj.last_modified > until
                ):
                    continue
                selected += 1
                row = {"uri": obj.uri, "key": rel, "size_bytes": obj.size, "etag": obj.etag}
                keys.write(json.dumps(row) + "\n")
                asset_id = cat.known_source(obj.uri, obj.etag, obj.size)
                if asset_id is None or cat.get_asset(asset_id)["status"] not in TERMINAL_STATUSES:
                    todo_file.write(json.dumps(row) + "\n")
                    to_process += 1
        keys_uri = _job_uri(rt, job, "keys.jsonl")
        storage.store_for(keys_uri).put(keys_path, keys_uri, content_type="application/x-ndjson")
        size = max(batch_size, math.ceil(to_process / MAX_BATCHES))
        batches = []
        with todo_path.open() as rows:
            chunk: list[str] = []
            for line in [*rows, None]:
                if line is not None:
                    chunk.append(line)
                if chunk and (line is None or len(chunk) >= size):
                    uri = _job_uri(rt, job, "batches", f"batch-{len(batches) + 1:05d}.jsonl")
                    storage.store_for(uri).put_bytes("".join(chunk).encode(), uri)
                    batches.append(uri)
                    chunk = []
    log.info(
        "archive %s: %d objects listed, %d selected, %d to process in %d batches",
        prefix, listed, selected, to_process, len(batches),
    )  # fmt: skip
    return {
        "job": job,
        "prefix": prefix,
        "keys_uri": keys_uri,
        "batches": batches,
        "listed": listed,
        "selected": selected,
        "to_process": to_process,
    }


def ingest_batch(
    rt: Runtime,
    batch_uri: str,
    *,
    job: str,
    profile: str | None = None,
    tags: dict[str, Any] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Process every source of one batch (none with ``dry_run``). Returns counts per status."""
    from vam.steps.pipeline import process_source

    counts: dict[str, int] = {}
    for line in storage.store_for(batch_uri).read_bytes(batch_uri).decode().splitlines():
        row = json.loads(line)
        if dry_run:
            counts["dry_run"] = counts.get("dry_run", 0) + 1
            continue
        try:
            done = process_source(rt, row["uri"], profile=profile, tags=tags, run_id=f"archive:{job}")
            status = done["status"]
        except Exception as exc:  # one bad object never stops the batch: the report shows it
            log.warning("archive %s: %s could not be registered: %s", job, row["uri"], exc)
            status = "error"
        counts[status] = counts.get(status, 0) + 1
    log.info("archive %s: batch %s: %s", job, PurePosixPath(batch_uri).name, counts)
    return counts


def report(rt: Runtime, keys_uri: str | None = None, *, job: str) -> dict[str, Any]:
    """The outcome of every selected key, read back from the catalog: a CSV of the keys and an
    HTML report (counts and bytes per outcome, per extension and per source folder). Returns
    ``{"counts": {outcome: n}, "bytes": {outcome: n}, "csv_uri", "html_uri"}``."""
    import pandas as pd

    keys_uri = keys_uri or _job_uri(rt, job, "keys.jsonl")
    if not storage.store_for(keys_uri).exists(keys_uri):
        raise VamError(f"nothing to report for archive job {job}: its plan step listed nothing (see its log)")
    rows = []
    with rt.catalog() as cat:
        for line in storage.store_for(keys_uri).read_bytes(keys_uri).decode().splitlines():
            row = json.loads(line)
            asset_id = cat.known_source(row["uri"], row["etag"], row["size_bytes"])
            outcome, reason, duplicate_of = "pending", None, None
            if asset_id is not None:
                asset = cat.get_asset(asset_id)
                if asset["source_uri"] != row["uri"]:
                    outcome, duplicate_of = "duplicate", asset_id
                elif asset["status"] == "ready":
                    outcome = "ingested"
                elif asset["status"] in ("rejected", "failed"):
                    outcome, reason = asset["status"], asset["reason"]
            key = PurePosixPath(row["key"])
            rows.append(
                {
                    "key": row["key"],
                    "folder": str(key.parent) if str(key.parent) != "." else "",
                    "extension": key.suffix.lower() or "(none)",
                    "size_bytes": row["size_bytes"] or 0,
                    "outcome": outcome,
                    "asset_id": asset_id,
                    "duplicate_of": duplicate_of,
                    "reason": reason,
                }
            )
    frame = pd.DataFrame(rows, columns=["key", "folder", "extension", "size_bytes", "outcome", "asset_id",
                                        "duplicate_of", "reason"])  # fmt: skip
    by_outcome = frame.groupby("outcome")["size_bytes"].agg(["count", "sum"]).reindex(OUTCOMES, fill_value=0)
    by_extension = frame.pivot_table(
        index="extension", columns="outcome", values="size_bytes", aggfunc="count", fill_value=0
    )
    by_folder = frame.pivot_table(
        index="folder", columns="outcome", values="size_bytes", aggfunc="count", fill_value=0
    )
    csv_uri, html_uri = _job_uri(rt, job, "report.csv"), _job_uri(rt, job, "report.html")
    storage.store_for(csv_uri).put_bytes(frame.to_csv(index=False).encode(), csv_uri, content_type="text/csv")
    html = (
        f"<!doctype html><meta charset='utf-8'><title>vam archive ingest {job}</title>"
        f"<h1>Archive ingest {job}</h1><p>{len(frame)} objects selected</p>"
        f"<h2>By outcome</h2>{by_outcome.rename(columns={'count': 'objects', 'sum': 'bytes'}).to_html()}"
        f"<h2>By extension</h2>{by_extension.to_html()}<h2>By source folder</h2>{by_folder.to_html()}"
        f"<h2>Objects</h2>{frame.to_html(index=False, na_rep='')}"
    )
    storage.store_for(html_uri).put_bytes(html.encode(), html_uri, content_type="text/html")
    counts = {k: int(v) for k, v in by_outcome["count"].items()}
    sizes = {k: int(v) for k, v in by_outcome["sum"].items()}
    log.info("archive %s report: %s (bytes %s); %s", job, counts, sizes, html_uri)
    for reason, n in frame[frame.outcome.isin(["rejected", "failed"])].groupby("reason").size().items():
        log.info("  %d x %s", n, reason)
    return {"counts": counts, "bytes": sizes, "csv_uri": csv_uri, "html_uri": html_uri}

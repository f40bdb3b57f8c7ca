"""The lifecycle steps: plan, move (stage -> verify -> commit -> delete), holds and restores.

The one place that joins the planner and the verified mover (``vam.lifecycle``) to the catalog.
The CLI (``vam lifecycle plan|run``, ``vam hold``, ``vam release``, ``vam restore``) and the
``vam_lifecycle`` DAG's operators call these functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from vam import storage
from vam.errors import LegalHoldError, StorageError, VamError
from vam.lifecycle import archive
from vam.lifecycle.mover import Entry, Mover
from vam.lifecycle.planner import EXECUTED, OBJECT_COLUMNS, summarize
from vam.lifecycle.policy import Policy, load_policy
from vam.lifecycle.prices import Prices, load_prices
from vam.runtime import Runtime

if TYPE_CHECKING:
    import pandas as pd

    from vam.catalog import Catalog

log = logging.getLogger(__name__)

DEFAULT_THREADS = 8


class CatalogLedger:
    """The mover's :class:`~vam.lifecycle.mover.Ledger` over one catalog session."""

    def __init__(self, cat: Catalog) -> None:
        self.cat = cat

    def held(self, asset_id: str) -> bool:
        return self.cat.is_held(asset_id)

    def begin(self, entries: list[Entry]) -> None:
        self.cat.journal_begin([dataclasses.asdict(e) for e in entries])

    def commit(self, entries: list[Entry], detail: dict[str, Any]) -> None:
        self.cat.journal_commit(entries[0].asset_id, [dataclasses.asdict(e) for e in entries], detail)

    def finish(self, entries: list[Entry]) -> None:
        self.cat.journal_finish([e.src_uri for e in entries])

    def pending(self) -> list[Entry]:
        names = {f.name for f in dataclasses.fields(Entry)}
        return [Entry(**{k: v for k, v in row.items() if k in names}) for row in self.cat.journal_pending()]

    def referenced(self, uris: list[str]) -> set[str]:
        return self.cat.referenced_uris(uris)


def policy_for(rt: Runtime, name_or_file: str | None = None) -> Policy:
    """The policy by name or file, with ``${processed_uri}``/``${home}``/... from the settings."""
    s = rt.settings
    variables = {
        "processed_uri": s.processed_uri,
        "landing_uri": s.landing_uri,
        "quarantine_uri": s.quarantine_uri,
        "home": s.home,
    }
    return load_policy(name_or_file, variables)


def parse_now(now: str | dt.datetime | None) -> dt.datetime:
    """``--now``: an ISO 8601 time (a date alone is midnight UTC); None: the current time."""
    if now is None:
        return dt.datetime.now(dt.UTC)
    if isinstance(now, dt.datetime):
        value = now
    else:
        try:
            value = dt.datetime.fromisoformat(str(now).replace("Z", "+00:00"))
        except ValueError:
            raise VamError(
                f"--now {now!r} is not an ISO 8601 time, e.g. 2027-01-31 or 2027-01-31T12:00Z"
            ) from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def objects_frame(rt: Runtime, asset_id: str | None = None) -> pd.DataFrame:
    import pandas as pd

    with rt.catalog() as cat:
        rows = cat.lifecycle_objects(asset_id)
    return pd.DataFrame(rows, columns=list(OBJECT_COLUMNS))


def make_plan(rt: Runtime, policy: Policy, prices: Prices, now: dt.datetime) -> pd.DataFrame:
    from vam.lifecycle.planner import plan as plan_objects

    return plan_objects(objects_frame(rt), policy, prices, now)


def _records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso")) if len(df) else []


def write_plan(rt: Runtime, df: pd.DataFrame, key: str, summary: dict[str, Any]) -> dict[str, str]:
    """Keep the plan next to the outputs as CSV and HTML; returns their URIs."""
    base = storage.uri_join(rt.settings.processed_uri, "_lifecycle", "plans", key)
    csv_uri, html_uri = storage.uri_join(base, "plan.csv"), storage.uri_join(base, "plan.html")
    csv = df.to_csv(index=False).encode()
    table = df.to_html(index=False, border=0, na_rep="", float_format=lambda v: f"{v:.6f}")
    html = (
        "<!doctype html><meta charset='utf-8'><title>vam lifecycle plan</title>"
        "<style>body{font-family:sans-serif}td,th{padding:2px 8px;font-size:12px}</style>"
        f"<h1>Lifecycle plan {key}</h1><pre>{json.dumps(summary, indent=2, default=str)}</pre>{table}"
    ).encode()
    storage.store_for(csv_uri).put_bytes(csv, csv_uri, content_type="text/csv")
    storage.store_for(html_uri).put_bytes(html, html_uri, content_type="text/html")
    return {"plan_csv": csv_uri, "plan_html": html_uri}


def plan(
    rt: Runtime,
    policy: str | None = None,
    now: str | dt.datetime | None = None,
    *,
    key: str | None = None,
    write: bool = True,
    include_rows: bool = True,
) -> dict[str, Any]:
    """Plan the policy at ``now``: the summary (counts, bytes, money), the plan's rows and, with
    ``write``, the URIs of the plan kept as CSV and HTML."""
    pol, prices, when = policy_for(rt, policy), load_prices(), parse_now(now)
    df = make_plan(rt, pol, prices, when)
    summary = summarize(df)
    key = key or f"{when.strftime('%Y%m%dT%H%M%SZ')}-{rt.run_id}"
    result: dict[str, Any] = {"policy": pol.key, "now": when.isoformat(), "summary": summary}
    if write:
        result.update(write_plan(rt, df, key, summary))
    if include_rows:
        result["plan"] = _records(df)
    return result


def _group_detail(rows: list[dict[str, Any]], policy: str | None) -> dict[str, Any]:
    rules = sorted({str(r.get("rule")) for r in rows})
    tiers = sorted({f"{r.get('tier')}->{r.get('dst_tier') or 'deleted'}" for r in rows})
    return {"policy": policy, "rules": rules, "tiers": tiers}


def execute(
    rt: Runtime, rows: list[dict[str, Any]], *, policy: str | None = None, threads: int = DEFAULT_THREADS
) -> dict[str, Any]:
    """Run the executed plan rows (move, delete), one group per asset; a failing group (held, a bad
    copy) is reported and the others go on."""
    rows = [r for r in rows if r.get("action") in EXECUTED]
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by_asset.setdefault(r["asset_id"], []).append(r)
    out: dict[str, Any] = {"moved": 0, "deleted": 0, "bytes": 0, "errors": {}, "assets": 0}
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat), threads=threads) as mover:
        for asset_id, group in by_asset.items():
            try:
                res = mover.run_group(asset_id, group, _group_detail(group, policy))
            except (LegalHoldError, StorageError) as exc:
                log.error("lifecycle: asset %s not moved: %s", asset_id, exc)
                out["errors"][asset_id] = str(exc)
                continue
            out["moved"] += res.moved
            out["deleted"] += res.deleted
            out["bytes"] += res.bytes
            out["assets"] += 1
            if any(r.get("rule") == "restore-expired" for r in group):
                _restore_expired(cat, asset_id)
            days = next((r.get("restore_days") for r in group if r.get("restore_days")), None)
            if days:
                cat.set_restore(
                    asset_id, "restored", days=int(days), restored_from=_common_tier(group),
                    expires_at=dt.datetime.now(dt.UTC) + dt.timedelta(days=int(days)),
                    detail={"by": "rule"},
                )  # fmt: skip
    return out


def _restore_expired(cat: Catalog, asset_id: str) -> None:
    state = cat.restore_state(asset_id)
    if state and state["state"] == "restored":
        cat.set_restore(asset_id, "expired", days=state["days"], expires_at=state["expires_at"])


def _common_tier(rows: list[dict[str, Any]]) -> str | None:
    tiers = Counter(r.get("tier") for r in rows if r.get("tier"))
    return tiers.most_common(1)[0][0] if tiers else None


def recover(rt: Runtime) -> dict[str, int]:
    """Finish or undo the moves a crashed run left in the journal."""
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat)) as mover:
        return mover.recover()


def run(
    rt: Runtime,
    policy: str | None = None,
    now: str | dt.datetime | None = None,
    *,
    dry_run: bool = False,
    threads: int = DEFAULT_THREADS,
) -> dict[str, Any]:
    """Recover, poll restores, plan, then (unless ``dry_run``) execute the plan. Returns the plan's
    summary and URIs plus what was done."""
    recovered = {"finished": 0, "undone": 0} if dry_run else recover(rt)
    restored = [] if dry_run else poll_restores(rt, policy, now)
    pol, prices, when = policy_for(rt, policy), load_prices(), parse_now(now)
    df = make_plan(rt, pol, prices, when)
    summary = summarize(df)
    key = f"{when.strftime('%Y%m%dT%H%M%SZ')}-{rt.run_id}"
    result: dict[str, Any] = {"policy": pol.key, "now": when.isoformat(), "summary": summary}
    result.update(write_plan(rt, df, key, summary))
    result.update({"dry_run": dry_run, "recovered": recovered, "restores_completed": restored})
    if not dry_run:
        result["executed"] = execute(rt, _records(df), policy=pol.key, threads=threads)
    return result


# -- the DAG's phases: one batch of plan rows each; every phase is idempotent -------------------------


def _groups(entries: list[dict[str, Any]]) -> dict[str, list[Entry]]:
    groups: dict[str, list[Entry]] = {}
    for e in entries:
        groups.setdefault(e["group_id"], []).append(Entry(**e))
    return groups


def stage_batch(
    rt: Runtime, rows: list[dict[str, Any]], key: str, threads: int = DEFAULT_THREADS
) -> dict[str, Any]:
    """Journal and copy one batch (an asset's rows stay together); returns the staged entries and
    the assets refused (held) or failed."""
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        if r.get("action") in EXECUTED:
            by_asset.setdefault(r["asset_id"], []).append(r)
    staged: list[dict[str, Any]] = []
    errors: dict[str, str] = {}
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat), threads=threads) as mover:
        for asset_id, group in by_asset.items():
            try:
                entries = mover.stage(asset_id, group, group_id=f"{key}:{asset_id}")
            except (LegalHoldError, StorageError) as exc:
                errors[asset_id] = str(exc)
                continue
            size = sum(int(r.get("bytes") or 0) for r in group)
            staged += [
                {**dataclasses.asdict(e), "bytes": size, "rules": _group_detail(group, None)["rules"]}
                for e in entries
            ]
    return {"entries": staged, "errors": errors}


def verify_batch(rt: Runtime, staged: dict[str, Any], threads: int = DEFAULT_THREADS) -> dict[str, Any]:
    """Verify every staged copy; a group with a bad copy is undone and reported."""
    names = {f.name for f in dataclasses.fields(Entry)}
    kept: list[dict[str, Any]] = []
    errors = dict(staged.get("errors") or {})
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat), threads=threads) as mover:
        for group in _group_rows(staged["entries"]).values():
            try:
                mover.verify([Entry(**{k: v for k, v in e.items() if k in names}) for e in group])
            except StorageError as exc:
                errors[group[0]["asset_id"]] = str(exc)
                continue
            kept += group
    return {"entries": kept, "errors": errors}


def commit_batch(rt: Runtime, verified: dict[str, Any], policy: str | None = None) -> dict[str, Any]:
    """Point the catalog at the verified copies, one transaction per asset."""
    names = {f.name for f in dataclasses.fields(Entry)}
    kept: list[dict[str, Any]] = []
    errors = dict(verified.get("errors") or {})
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat)) as mover:
        for group in _group_rows(verified["entries"]).values():
            entries = [Entry(**{k: v for k, v in e.items() if k in names}) for e in group]
            try:
                mover.commit(
                    entries,
                    {"policy": policy, "rules": group[0].get("rules"), "bytes": group[0].get("bytes")},
                )
            except (LegalHoldError, VamError) as exc:
                mover.undo(entries)
                errors[group[0]["asset_id"]] = str(exc)
                continue
            kept += group
    return {"entries": kept, "errors": errors}


def delete_batch(rt: Runtime, committed: dict[str, Any]) -> dict[str, Any]:
    """Delete the old copies of committed groups and clear their journal."""
    names = {f.name for f in dataclasses.fields(Entry)}
    moved = deleted = size = 0
    with rt.catalog(actor="lifecycle") as cat, Mover(CatalogLedger(cat)) as mover:
        for group in _group_rows(committed["entries"]).values():
            entries = [Entry(**{k: v for k, v in e.items() if k in names}) for e in group]
            mover.delete(entries)
            moved += sum(1 for e in entries if e.action == "move")
            deleted += sum(1 for e in entries if e.action == "delete")
            size += int(group[0].get("bytes") or 0)
    errors = committed.get("errors") or {}
    return {"moved": moved, "deleted": deleted, "bytes": size, "errors": errors}


def _group_rows(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    groups: dict[str, list[dict[str, Any]]] = {}
    for e in entries:
        groups.setdefault(e["group_id"], []).append(e)
    return groups


# -- legal hold --------------------------------------------------------------------------------------


def hold(rt: Runtime, asset_id: str, reason: str, *, actor: str = "cli") -> dict[str, Any]:
    with rt.catalog(actor=actor) as cat:
        row = cat.set_hold(asset_id, reason)
    log.info("asset %s is under legal hold: %s", asset_id, reason)
    return {"asset_id": asset_id, "legal_hold": True, "reason": row["hold_reason"], "held_at": row["held_at"]}


def release(rt: Runtime, asset_id: str, *, actor: str = "cli") -> dict[str, Any]:
    with rt.catalog(actor=actor) as cat:
        return cat.release_hold(asset_id)


# -- restore -----------------------------------------------------------------------------------------


def _restore_rows(rt: Runtime, pol: Policy, asset_id: str) -> list[dict[str, Any]]:
    """Move rows bringing every object of the asset outside the hot tier back to it."""
    from vam.lifecycle.planner import retier

    if not pol.hot_tier:
        raise VamError(f"policy {pol.key} names no hot_tier: it cannot restore")
    return _records(retier(objects_frame(rt, asset_id), pol, load_prices(), pol.hot_tier, rule="restore"))


def restore(
    rt: Runtime,
    asset_id: str,
    *,
    days: int = 7,
    policy: str | None = None,
    now: str | dt.datetime | None = None,
    actor: str = "cli",
) -> dict[str, Any]:
    """Bring a temporary hot copy of a cold asset back for ``days``. Objects in a class readable at
    once are moved to the hot tier now (state ``restored``); where the class needs a restore request
    first (S3 Glacier Flexible Retrieval, Deep Archive), the request is made and the asset is
    ``restoring`` until :func:`poll_restores` sees every object readable."""
    if days < 1:
        raise VamError("--days must be at least 1")
    pol = policy_for(rt, policy)
    with rt.catalog(actor=actor) as cat:
        cat.get_asset(asset_id)
        if cat.is_held(asset_id):
            raise LegalHoldError(f"asset {asset_id} is under legal hold: it is not moved, restores included")
    rows = _restore_rows(rt, pol, asset_id)
    if not rows:
        return {
            "asset_id": asset_id,
            "state": "hot",
            "objects": 0,
            "note": f"already in the {pol.hot_tier} tier",
        }
    origin = _common_tier(rows)
    archived = [r for r in rows if archive.needs_restore(r["uri"], r["storage_class"])]
    if archived:
        for r in archived:
            archive.request_restore(r["uri"], days)
        with rt.catalog(actor=actor) as cat:
            cat.set_restore(
                asset_id, "restoring", days=days, restored_from=origin,
                detail={"archived": len(archived), "objects": len(rows)},
            )  # fmt: skip
        return {"asset_id": asset_id, "state": "restoring", "objects": len(rows), "archived": len(archived)}
    return _finish_restore(rt, pol, asset_id, rows, days, origin, parse_now(now), actor)


def _finish_restore(
    rt: Runtime,
    pol: Policy,
    asset_id: str,
    rows: list[dict[str, Any]],
    days: int,
    origin: str | None,
    now: dt.datetime,
    actor: str,
) -> dict[str, Any]:
    done = execute(rt, rows, policy=pol.key)
    if done["errors"]:
        raise VamError(f"restore of asset {asset_id} failed: {done['errors'][asset_id]}")
    expires = now + dt.timedelta(days=days)
    with rt.catalog(actor=actor) as cat:
        cat.set_restore(asset_id, "restored", days=days, restored_from=origin, expires_at=expires)
    return {
        "asset_id": asset_id,
        "state": "restored",
        "objects": len(rows),
        "expires_at": expires.isoformat(),
        "restored_from": origin,
    }


def poll_restores(
    rt: Runtime, policy: str | None = None, now: str | dt.datetime | None = None
) -> list[dict[str, Any]]:
    """Finish every restore whose archived objects have all become readable."""
    pol = policy_for(rt, policy)
    with rt.catalog(actor="lifecycle") as cat:
        pending = cat.restores(["restoring"])
    finished = []
    for r in pending:
        rows = _restore_rows(rt, pol, r["asset_id"])
        waiting = [
            x["uri"]
            for x in rows
            if archive.needs_restore(x["uri"], x["storage_class"]) and not archive.restore_ready(x["uri"])
        ]
        if waiting:
            log.info("asset %s: %d object(s) still being restored", r["asset_id"], len(waiting))
            continue
        finished.append(
            _finish_restore(
                rt, pol, r["asset_id"], rows, r["days"], r["restored_from"], parse_now(now), "lifecycle"
            )
        )
    return finished


# -- the DAG: batches kept as JSON next to the plan, so XComs carry only their URIs -----------------

MAX_BATCHES = 256  # mapped tasks per phase: well under Airflow's max_map_length (1,024)


def _read_json(uri: str) -> Any:
    return json.loads(storage.store_for(uri).read_bytes(uri))


def _write_json(uri: str, data: Any) -> str:
    storage.store_for(uri).put_bytes(
        json.dumps(data, default=str).encode(), uri, content_type="application/json"
    )
    return uri


def plan_batches(
    rt: Runtime,
    policy: str | None = None,
    now: str | dt.datetime | None = None,
    *,
    key: str,
    dry_run: bool = False,
    max_batches: int = MAX_BATCHES,
) -> dict[str, Any]:
    """The DAG's plan task: recover what a crashed run left, finish restores that became readable,
    plan, keep the plan (CSV, HTML) and write the executed rows as at most ``max_batches`` batches
    (an asset's rows in one batch). ``dry_run``: plan only, no batches."""
    from vam.lifecycle.planner import batches

    recovered = {"finished": 0, "undone": 0} if dry_run else recover(rt)
    restored = [] if dry_run else poll_restores(rt, policy, now)
    pol, prices, when = policy_for(rt, policy), load_prices(), parse_now(now)
    df = make_plan(rt, pol, prices, when)
    summary = summarize(df)
    result: dict[str, Any] = {
        "policy": pol.key,
        "now": when.isoformat(),
        "summary": summary,
        "dry_run": dry_run,
    }
    result.update(write_plan(rt, df, key, summary))
    result.update({"recovered": recovered, "restores_completed": len(restored), "batches": []})
    if dry_run:
        return result
    base = result["plan_csv"].rsplit("/", 1)[0]
    for i, rows in enumerate(batches(df, max_batches)):
        payload = {"policy": pol.key, "key": key, "rows": json.loads(json.dumps(rows, default=str))}
        result["batches"].append(_write_json(storage.uri_join(base, "batches", f"{i:04d}.json"), payload))
    return result


def _phase_uri(uri: str, phase: str) -> str:
    head, name = uri.rsplit("/", 1)
    return f"{head}/{name.split('.', 1)[0]}.{phase}.json"


def move_batch(rt: Runtime, batch_uri: str, threads: int = DEFAULT_THREADS) -> str:
    """The DAG's move task: journal and copy one batch (held assets refused). Returns its result's URI."""
    batch = _read_json(batch_uri)
    staged = stage_batch(rt, batch["rows"], batch["key"], threads=threads)
    return _write_json(_phase_uri(batch_uri, "copied"), {**staged, "policy": batch["policy"]})


def verify_batch_uri(rt: Runtime, uri: str, threads: int = DEFAULT_THREADS) -> str:
    staged = _read_json(uri)
    return _write_json(
        _phase_uri(uri, "verified"), {**verify_batch(rt, staged, threads), "policy": staged["policy"]}
    )


def commit_batch_uri(rt: Runtime, uri: str) -> str:
    verified = _read_json(uri)
    done = commit_batch(rt, verified, verified.get("policy"))
    return _write_json(_phase_uri(uri, "committed"), {**done, "policy": verified["policy"]})


def delete_batch_uri(rt: Runtime, uri: str) -> dict[str, Any]:
    done = delete_batch(rt, _read_json(uri))
    _write_json(_phase_uri(uri, "deleted"), done)
    return {k: v for k, v in done.items() if k != "errors"} | {"errors": len(done["errors"])}


def report(rt: Runtime, key: str) -> dict[str, Any]:
    """What a DAG run did: the totals of its batches' delete results, and the assets not moved (with
    why: held since the plan, a copy that did not verify); those are logged as errors."""
    base = storage.uri_join(rt.settings.processed_uri, "_lifecycle", "plans", key, "batches/")
    totals: dict[str, Any] = {"moved": 0, "deleted": 0, "bytes": 0, "errors": {}}
    for info in storage.store_for(base).list(base):
        if info.uri.endswith(".deleted.json"):
            done = _read_json(info.uri)
            for k in ("moved", "deleted", "bytes"):
                totals[k] += done[k]
            totals["errors"].update(done["errors"])
    for asset_id, why in totals["errors"].items():
        log.error("lifecycle: asset %s was not moved: %s", asset_id, why)
    return totals

"""The verified mover: copy -> verify -> catalog -> delete, every step idempotent.

A move group is the executed plan rows of one asset (its package moves as a unit). For a group the
mover (1) refuses a held asset, (2) journals the intent, (3) copies each object to its new URI,
(4) verifies the copy's SHA-256 against the one recorded when the object was written (a truncated or
corrupt copy is deleted and the original is kept), (5) commits: one catalog transaction re-points
every reference and marks the journal committed (the ledger refuses a held asset again here, under
the row lock), (6) deletes the old copies and (7) clears the journal. :meth:`Mover.recover` finishes
or undoes whatever a crash left: a committed group gets its old copies deleted, an uncommitted one
its new copies (the catalog still points at the old ones, which were never touched).

The mover never imports the catalog: the step layer hands it a :class:`Ledger`.

Fault points: :func:`fault` is called at every step boundary. It does nothing unless a crash harness
installed a hook with :func:`set_fault_hook` (tests only); the hook may raise :class:`InjectedCrash`
(a BaseException, so nothing on the way catches it) to stop the mover there.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Protocol

from vam import storage
from vam.errors import ChecksumMismatch, LegalHoldError, StorageError

log = logging.getLogger(__name__)

_fault_hook: Callable[..., None] | None = None

FAULT_POINTS = (
    "start", "journaled", "copied", "verified", "committed", "deleted_one", "deleted", "finished",
)  # fmt: skip


class InjectedCrash(BaseException):  # noqa: N818 - a crash, not an error
    """Raised by a crash harness's fault hook to stop the mover at a fault point."""


def set_fault_hook(hook: Callable[..., None] | None) -> None:
    """Install (or with None remove) the crash harness's hook, called with the fault point's name
    and keyword details (``uri`` of the object concerned where there is one)."""
    global _fault_hook
    _fault_hook = hook


def fault(point: str, **info: Any) -> None:
    """A step boundary: a no-op unless a crash harness installed a hook."""
    if _fault_hook is not None:
        _fault_hook(point, **info)


@dataclass(frozen=True)
class Entry:
    """One object of a move group: ``dst_uri`` None for a delete."""

    src_uri: str
    asset_id: str
    group_id: str
    action: str  # move | delete
    state: str = "copying"  # copying | committed
    dst_uri: str | None = None
    sha256: str | None = None
    dst_tier: str | None = None
    dst_class: str | None = None
    size: int | None = None  # bytes, when the plan knew them (lets an S3 copy skip its HEADs)


class Ledger(Protocol):
    """What the mover needs from the catalog (implemented by the step layer)."""

    def held(self, asset_id: str) -> bool: ...

    def begin(self, entries: list[Entry]) -> None:
        """Journal the group (state 'copying')."""

    def commit(self, entries: list[Entry], detail: dict[str, Any]) -> None:
        """In one transaction: refuse a held asset (LegalHoldError), re-point or drop the catalog rows,
        mark the journal 'committed', write the audit event."""

    def finish(self, entries: list[Entry]) -> None:
        """Drop the group's journal rows."""

    def pending(self) -> list[Entry]:
        """Every journal row left by a run that did not finish."""

    def referenced(self, uris: list[str]) -> set[str]:
        """Which of ``uris`` the catalog points at (never to be deleted)."""


@dataclass
class GroupResult:
    asset_id: str
    moved: int = 0
    deleted: int = 0
    bytes: int = 0
    error: str | None = None


class Mover:
    """Executes move groups through a :class:`Ledger`; ``threads`` objects are copied at once."""

    def __init__(self, ledger: Ledger, *, threads: int = 8) -> None:
        self.ledger = ledger
        self.threads = max(1, threads)
        self._pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> Mover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _map(self, fn: Callable[[Any], Any], items: list[Any]) -> list[Any]:
        """``fn`` over ``items`` on the threads; every call has ended when this returns or raises (so
        an undo after a failed copy never races a copy still being written)."""
        if self.threads == 1 or len(items) <= 1:
            return [fn(i) for i in items]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="vam-mover")
        futures = [self._pool.submit(fn, i) for i in items]
        wait(futures)
        return [f.result() for f in futures]

    # -- one group ---------------------------------------------------------------------------------

    def run_group(
        self, asset_id: str, rows: list[dict[str, Any]], detail: dict[str, Any] | None = None
    ) -> GroupResult:
        """Move and delete the plan rows of one asset, or raise; never leaves the catalog pointing
        at a copy that does not exist or verify."""
        entries = self.stage(asset_id, rows)
        entries = self.verify(entries)
        self.commit(entries, {**(detail or {}), "bytes": sum(int(r.get("bytes") or 0) for r in rows)})
        self.delete(entries)
        moved = sum(1 for e in entries if e.action == "move")
        size = sum(int(r.get("bytes") or 0) for r in rows)
        return GroupResult(asset_id, moved=moved, deleted=len(entries) - moved, bytes=size)

    # The four phases of a group (the DAG runs them as separate tasks; each is idempotent).

    def stage(self, asset_id: str, rows: list[dict[str, Any]], group_id: str | None = None) -> list[Entry]:
        """Refuse a held asset, journal the group, copy every object of a move to its new URI."""
        fault("start")
        if self.ledger.held(asset_id):
            raise LegalHoldError(
                f"asset {asset_id} is under legal hold: the mover refuses to move or delete it "
                "(vam release ASSET lifts the hold)"
            )
        group_id = group_id or uuid.uuid4().hex[:16]
        entries = [
            Entry(
                src_uri=r["uri"],
                asset_id=asset_id,
                group_id=group_id,
                action=r["action"],
                dst_uri=r.get("dst_uri") if r["action"] == "move" else None,
                sha256=r.get("sha256") or None,
                dst_tier=r.get("dst_tier"),
                dst_class=r.get("dst_class"),
                size=int(r["bytes"]) if r.get("bytes") is not None else None,
            )
            for r in rows
        ]
        self.ledger.begin(entries)
        fault("journaled")
        moves = [e for e in entries if e.action == "move"]
        try:
            copied = {e.src_uri: e for e in self._map(self._copy, moves)}
        except StorageError:
            self.undo(entries)
            raise
        return [copied.get(e.src_uri, e) for e in entries]

    def verify(self, entries: list[Entry]) -> list[Entry]:
        """Every copy's SHA-256 against the one recorded when the object was written; a copy that
        does not match is deleted, the group undone (originals untouched) and ChecksumMismatch raised."""
        try:
            self._map(self._verify, [e for e in entries if e.action == "move"])
        except ChecksumMismatch:
            self.undo(entries)
            raise
        fault("verified")
        return entries

    def commit(self, entries: list[Entry], detail: dict[str, Any] | None = None) -> None:
        """The catalog now points at the verified copies (one transaction for the group)."""
        if entries:
            self.ledger.commit(entries, {**(detail or {}), "objects": len(entries)})
        fault("committed")

    def delete(self, entries: list[Entry]) -> None:
        """Delete the old copies (never one the catalog points at) and clear the journal."""
        self._delete_old(entries)
        fault("deleted")
        self.ledger.finish(entries)
        fault("finished")

    def _copy(self, e: Entry) -> Entry:
        """Copy ``e.src_uri`` to ``e.dst_uri`` in the destination class; returns the entry with the
        SHA-256 the copy must have (hashed from the untouched original when none was recorded)."""
        if e.dst_uri is None:
            raise StorageError(f"move of {e.src_uri} has no destination URI")
        expected = e.sha256 or storage.sha256_object(e.src_uri)
        src_store, dst_store = storage.store_for(e.src_uri), storage.store_for(e.dst_uri)
        if src_store is dst_store and not _s3_single_copy(dst_store, e):
            dst_store.copy(e.src_uri, e.dst_uri, storage_class=e.dst_class)
        elif src_store is not dst_store:
            storage.transfer(e.src_uri, e.dst_uri, storage_class=e.dst_class)
        fault("copied", uri=e.dst_uri)
        return Entry(**{**e.__dict__, "sha256": expected})

    def _verify(self, e: Entry) -> None:
        if e.dst_uri is None or e.sha256 is None:
            raise StorageError(f"move of {e.src_uri} was not staged (no destination or checksum)")
        try:
            actual, _ = storage.hash_object(e.dst_uri)
        except StorageError as exc:
            raise ChecksumMismatch(
                f"the copy of {e.src_uri} at {e.dst_uri} cannot be read back: {exc}"
            ) from exc
        if actual != e.sha256:
            log.error("copy of %s at %s read back as %s, not %s", e.src_uri, e.dst_uri, actual, e.sha256)
            raise ChecksumMismatch(
                f"the copy of {e.src_uri} at {e.dst_uri} has SHA-256 {actual}, not the {e.sha256} recorded "
                "when the object was written: the bad copy was deleted and the original kept; run again"
            )

    def _delete_old(self, entries: list[Entry]) -> None:
        olds = [e.src_uri for e in entries]
        keep = self.ledger.referenced(olds)  # never delete what the catalog points at

        def delete_one(uri: str) -> None:
            storage.store_for(uri).delete(uri)
            fault("deleted_one", uri=uri)

        self._map(delete_one, [u for u in olds if u not in keep])

    def undo(self, entries: list[Entry]) -> None:
        news = [e.dst_uri for e in entries if e.dst_uri]
        keep = self.ledger.referenced(news)
        for uri in news:
            if uri not in keep:
                storage.store_for(uri).delete(uri)
        self.ledger.finish(entries)

    # -- after a crash -----------------------------------------------------------------------------

    def recover(self) -> dict[str, int]:
        """Finish (committed) or undo (not committed) every group a crash left in the journal."""
        groups: dict[str, list[Entry]] = {}
        for e in self.ledger.pending():
            groups.setdefault(e.group_id, []).append(e)
        finished = undone = 0
        for entries in groups.values():
            if all(e.state == "committed" for e in entries):
                self._delete_old(entries)
                self.ledger.finish(entries)
                finished += 1
            else:
                self.undo(entries)
                undone += 1
        if groups:
            log.warning("lifecycle recovery: %d interrupted group(s) finished, %d undone", finished, undone)
        return {"finished": finished, "undone": undone}

    def run_groups(
        self, rows: Iterable[dict[str, Any]], detail: dict[str, Any] | None = None
    ) -> list[GroupResult]:
        """Run every asset's rows as one group; a group that fails (held, bad copy) is reported and the
        others go on."""
        by_asset: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            by_asset.setdefault(r["asset_id"], []).append(r)
        results = []
        for asset_id, group in by_asset.items():
            try:
                results.append(self.run_group(asset_id, group, detail))
            except (LegalHoldError, StorageError) as exc:
                log.error("asset %s: %s", asset_id, exc)
                results.append(GroupResult(asset_id, error=str(exc)))
        return results


_S3_SINGLE_COPY_MAX = 5 * 1024**3


def _s3_single_copy(store: Any, e: Entry) -> bool:
    """One CopyObject request for an S3 object of known size under 5 GiB (the store's own copy reads
    the source's and the copy's metadata first and after: two more requests per object). The copy
    is verified by reading it back in any case. False when this does not apply."""
    client = getattr(store, "client", None)
    if store.scheme != "s3" or client is None or e.size is None or e.size >= _S3_SINGLE_COPY_MAX:
        return False
    from botocore.exceptions import BotoCoreError, ClientError

    from vam.storage.s3 import split_s3_uri

    src_bucket, src_key = split_s3_uri(e.src_uri)
    dst_bucket, dst_key = split_s3_uri(e.dst_uri or "")
    if (src_bucket, src_key) == (dst_bucket, dst_key):
        return False  # an in-place class change: the store's copy knows how (MetadataDirective=REPLACE)
    args: dict[str, Any] = {
        "Bucket": dst_bucket,
        "Key": dst_key,
        "CopySource": {"Bucket": src_bucket, "Key": src_key},
    }
    if e.dst_class:
        args["StorageClass"] = e.dst_class
    try:
        client.copy_object(**args)
    except (ClientError, BotoCoreError) as exc:
        raise StorageError(f"cannot copy {e.src_uri} to {e.dst_uri}: {exc}") from exc
    return True

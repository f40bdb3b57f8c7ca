"""Soft delete, undelete and purge (vam delete / undelete / purge) on real storage and the catalog:
deleted assets leave search, holds beat deletion, purged objects and rows go, audit events stay, and
a purge interrupted between the catalog and storage is finished by the next one."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path

import pytest

from vam import storage
from vam.catalog.search import search
from vam.cli import main
from vam.errors import CatalogError, LegalHoldError
from vam.runtime import Runtime
from vam.steps.retention import delete_asset, purge, undelete_asset
from vam.storage.file import file_uri_to_path

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("logging_restored")]

DAY = dt.timedelta(days=1)


def make_asset(cat, uri: str, data: bytes, *, title: str, derived: bytes | None = None, out: str = ""):
    """A ready asset whose source is the object at ``uri`` (written here), with a derived output and a
    segment under ``out`` when given: catalog rows as the pipeline writes them."""
    storage.store_for(uri).put_bytes(data, uri)
    sha = hashlib.sha256(data).hexdigest()
    asset_id, _ = cat.register_asset(sha256=sha, source_uri=uri, size_bytes=len(data), title=title)
    cat.record_object(uri, asset_id=asset_id, kind="source", size_bytes=len(data), sha256=sha)
    if derived is not None:
        crop = storage.uri_join(out, asset_id, "crop.mp4")
        storage.store_for(crop).put_bytes(derived, crop)
        dsha = hashlib.sha256(derived).hexdigest()
        row = {"uri": crop, "size_bytes": len(derived), "sha256": dsha}
        cat.upsert_derived(asset_id, "social-9x16", "social_crop", {}, row)
        cat.record_object(crop, asset_id=asset_id, kind="derived", size_bytes=len(derived), sha256=dsha)
        seg = storage.uri_join(out, asset_id, "pkg", "seg-1.m4s")
        storage.store_for(seg).put_bytes(b"segment of " + asset_id.encode(), seg)
        cat.record_object(seg, asset_id=asset_id, kind="segment", size_bytes=11 + len(asset_id))
    cat.set_status(asset_id, "ready")
    cat.refresh_search_document(asset_id)
    return asset_id


def exists(uri: str) -> bool:
    return storage.store_for(uri).exists(uri)


def _db_now(cat) -> dt.datetime:
    with cat.conn, cat.conn.cursor() as cur:
        cur.execute("SELECT now()")
        return cur.fetchone()[0]


def test_delete_hides_undelete_restores_purge_removes_and_events_outlive(rt, vam_home, capsys):
    out = rt.settings.processed_uri
    land = (vam_home / "landing").as_uri()
    with rt.catalog() as cat:
        song = f"{land}/whale-song.mp4"
        aid = make_asset(cat, song, os.urandom(3000), title="whale song", derived=b"crop" * 50, out=out)
        objects = [o["uri"] for o in cat.objects(aid)]
        assert len(objects) == 3
        assert [h["asset_id"] for h in search(cat, "whale")] == [aid]

        gone = delete_asset(rt, aid, reason="licence ended")
        assert gone["purge_after"] - gone["deleted_at"] == 7 * DAY  # the default grace period
        assert search(cat, "whale") == []
        assert aid not in {h["asset_id"] for h in search(cat, "")}  # browsing leaves it out too
        assert main(["show", aid, "--json"]) == 0
        shown = json.loads(capsys.readouterr().out)
        assert shown["deleted"]["reason"] == "licence ended"
        assert shown["deleted"]["purge_after"].startswith(gone["purge_after"].date().isoformat())
        assert main(["show", aid]) == 0
        assert "DELETED" in capsys.readouterr().out

        assert purge(rt)["purged"] == []  # not due: nothing happens
        assert all(exists(u) for u in objects)

        undelete_asset(rt, aid)
        assert [h["asset_id"] for h in search(cat, "whale")] == [aid]
        with pytest.raises(CatalogError, match="not deleted"):
            undelete_asset(rt, aid)

        assert main(["delete", aid, "--grace-days", "2"]) == 0
        capsys.readouterr()
        now = _db_now(cat)
        with pytest.raises(CatalogError, match="grace period ended"):
            undelete_asset(rt, aid, now=now + 3 * DAY)
        assert purge(rt, now=now + DAY)["purged"] == []
        done = purge(rt, now=now + 3 * DAY)
        assert done["purged"] == [aid]
        assert done["objects"]["deleted"] == 3
        assert not any(exists(u) for u in objects)
        with pytest.raises(CatalogError, match="no asset"):
            cat.get_asset(aid)
        assert cat.objects(aid) == []
        events = [e["kind"] for e in cat.events(aid)]  # no foreign key: the audit log outlives the asset
        assert [k for k in events if k in ("deleted", "undeleted", "purged")] == [
            "deleted", "undeleted", "deleted", "purged",
        ]  # fmt: skip
        purged = cat.last_event(aid, "purged")["detail"]
        assert purged["objects"] == 3
        assert purged["title"] == "whale song"
        assert main(["undelete", aid]) == 1  # purged: a clear error
        assert "no asset" in capsys.readouterr().err


def test_a_held_asset_is_never_deleted_nor_purged(rt, vam_home):
    land = (vam_home / "landing").as_uri()
    with rt.catalog() as cat:
        aid = make_asset(cat, f"{land}/court-case.mp4", os.urandom(2000), title="evidence")
        cat.set_hold(aid, "case 42")
        with pytest.raises(LegalHoldError, match="legal hold"):
            delete_asset(rt, aid)
        cat.release_hold(aid)
        delete_asset(rt, aid, grace_days=1)
        cat.set_hold(aid, "case 43")  # a hold placed during the grace period wins over the purge
        now = _db_now(cat)
        done = purge(rt, now=now + 2 * DAY)
        assert done["purged"] == []
        assert done["refused"][0]["asset_id"] == aid
        assert "legal hold" in done["refused"][0]["reason"]
        assert exists(f"{land}/court-case.mp4")
        assert cat.get_asset(aid)["deleted_at"] is not None
        cat.release_hold(aid)
        assert purge(rt, now=now + 2 * DAY)["purged"] == [aid]
        assert not exists(f"{land}/court-case.mp4")
        kinds = [e["kind"] for e in cat.events(aid)]
        assert kinds[kinds.index("deleted") :] == ["deleted", "hold", "purge_refused", "release", "purged"]


def test_interrupted_purge_on_s3_is_finished_by_the_next_run(rt, s3):
    bucket = s3.buckets["landing"]
    data = os.urandom(5000)
    with rt.catalog() as cat:
        aid = make_asset(cat, f"s3://{bucket}/drop/clip.mp4", data, title="s3 clip")
        # the same bytes dropped again under another key: one asset, two keys in storage
        again = f"s3://{bucket}/drop/again/clip.mp4"
        storage.store_for(again).put_bytes(data, again)
        etag = storage.store_for(again).head(again).etag
        cat.register_asset(
            sha256=hashlib.sha256(data).hexdigest(), source_uri=again, size_bytes=5000, etag=etag
        )
        other = f"s3://{bucket}/drop/overwritten.mp4"  # seen with these bytes, then overwritten
        storage.store_for(other).put_bytes(data, other)
        old_etag = storage.store_for(other).head(other).etag
        cat.register_asset(
            sha256=hashlib.sha256(data).hexdigest(), source_uri=other, size_bytes=5000, etag=old_etag
        )
        storage.store_for(other).put_bytes(b"somebody else's video", other)

        delete_asset(rt, aid, grace_days=0)
        now = _db_now(cat) + dt.timedelta(seconds=1)
        # the purge dies after its catalog transaction, before storage deleted anything
        targets = cat.purge_targets(aid)
        assert {t["uri"] for t in targets} == {f"s3://{bucket}/drop/clip.mp4", again, other}
        present = []
        for t in targets:
            info = storage.store_for(t["uri"]).head(t["uri"])
            if t["kind"] == "source_key" and t["etag"] and info.etag != t["etag"]:
                continue
            present.append({"uri": t["uri"], "size_bytes": info.size, "etag": info.etag})
        cat.purge_asset(aid, present, now=now)
        assert {r["uri"] for r in cat.pending_deletes()} == {f"s3://{bucket}/drop/clip.mp4", again}
        assert exists(again)

        done = purge(rt, now=now)
        assert done["objects"]["deleted"] == 2
        assert cat.pending_deletes() == []
        assert not exists(f"s3://{bucket}/drop/clip.mp4")
        assert not exists(again)
        assert storage.store_for(other).read_bytes(other) == b"somebody else's video"  # not ours: kept


def test_a_queued_object_that_changed_or_is_referenced_again_is_kept(rt, vam_home):
    land = (vam_home / "landing").as_uri()
    with rt.catalog() as cat:
        a = make_asset(cat, f"{land}/a.mp4", os.urandom(1000), title="a")
        delete_asset(rt, a, grace_days=0)
        now = _db_now(cat) + dt.timedelta(seconds=1)
        cat.purge_asset(a, [{"uri": f"{land}/a.mp4", "size_bytes": 1000, "etag": None}], now=now)
        # before the queue is drained the same key is ingested again with new bytes
        b = make_asset(cat, f"{land}/a.mp4", os.urandom(1200), title="a, new version")
        purge(rt, now=now)
        assert exists(f"{land}/a.mp4")
        assert cat.get_asset(b)["status"] == "ready"
        assert cat.last_event(a, "object_kept")["detail"]["why"] == "referenced"


def test_the_same_bytes_dropped_again_after_the_delete_survive_the_purge(rt, vam_home):
    land = (vam_home / "landing").as_uri()
    data = os.urandom(1500)
    with rt.catalog() as cat:
        aid = make_asset(cat, f"{land}/first.mp4", data, title="first")
        delete_asset(rt, aid, grace_days=0)
        again = f"{land}/changed-my-mind.mp4"  # re-uploaded during the grace period
        storage.store_for(again).put_bytes(data, again)
        cat.register_asset(sha256=hashlib.sha256(data).hexdigest(), source_uri=again, size_bytes=1500)
        now = _db_now(cat) + dt.timedelta(seconds=1)
    assert purge(rt, now=now)["purged"] == [aid]
    assert not exists(f"{land}/first.mp4")
    assert exists(again)
    with rt.catalog() as cat:
        assert cat.known_source(again, None, 1500) is None  # the next landing poll ingests it anew


@pytest.mark.slow
def test_delete_and_purge_a_processed_asset_end_to_end(rt, clips, monkeypatch, tmp_path, capsys):
    import vam

    monkeypatch.setenv("VAM_ENRICHMENT", "false")
    src = tmp_path / "delete-me.mp4"
    src.write_bytes(clips.make(width=160, height=90, seconds=1).read_bytes())
    out = vam.process(str(src))
    assert out["status"] == "ready", out
    aid = out["asset_id"]
    rt = Runtime.from_env()
    with rt.catalog() as cat:
        uris = [o["uri"] for o in cat.objects(aid)]
    assert {"source", "rendition", "segment", "manifest"} <= {o["kind"] for o in vam.show(aid)["objects"]}
    assert all(exists(u) for u in uris)
    assert main(["delete", aid, "--reason", "test", "--json"]) == 0
    purge_after = json.loads(capsys.readouterr().out)["purge_after"]
    later = (dt.datetime.fromisoformat(purge_after) + dt.timedelta(minutes=1)).isoformat()
    assert main(["purge", "--now", later, "--json"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["purged"] == [aid]
    assert done["objects"]["deleted"] > len(uris)  # stored objects, plus outputs only rows name (vmaf logs)
    assert not any(exists(u) for u in uris)
    assert not src.exists()  # the source is one of the asset's objects
    leftovers = [p for p in Path(file_uri_to_path(rt.settings.processed_uri)).rglob("*") if p.is_file()]
    assert [p for p in leftovers if aid in str(p)] == []
    assert not (Path(file_uri_to_path(rt.settings.processed_uri)) / aid).exists()  # no empty folders
    assert main(["show", aid]) == 1
    with rt.catalog() as cat:
        assert cat.last_event(aid, "purged")["detail"]["objects"] == done["objects"]["deleted"]

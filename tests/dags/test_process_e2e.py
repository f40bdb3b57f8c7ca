"""End to end through Airflow: a video dropped in an S3 bucket becomes a ready, quality-checked
HLS + DASH ladder in the catalog (ingest DAG -> processing DAG, both with ``dag.test()``)."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET

import pytest

from vam import storage
from vam.catalog import asset_id_for
from vam.media import tools
from vam.orchestration.runner import load_dag
from vam.runtime import Runtime
from vam.steps.show import summary as asset_summary

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture
def s3_vam(s3, vam_home, monkeypatch):
    b = s3.buckets
    monkeypatch.setenv("VAM_LANDING_URI", f"s3://{b['landing']}/incoming/")
    monkeypatch.setenv("VAM_PROCESSED_URI", f"s3://{b['processed']}")
    monkeypatch.setenv("VAM_QUARANTINE_URI", f"s3://{b['quarantine']}")
    return s3


def _decoded_frames(path_or_url: str) -> int:
    out = subprocess.run(
        [tools.ffmpeg_path(), "-nostdin", "-v", "error", "-i", path_or_url, "-map", "0:v:0",
         "-f", "null", "-", "-progress", "pipe:1"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return int(re.findall(r"^frame=(\d+)", out.stdout, re.M)[-1])


def test_s3_drop_to_ready_asset(s3_vam, airflow_db, clips, tmp_path):
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    clip = clips.make(width=854, height=480, seconds=3)
    landing = storage.uri_join(f"s3://{s3_vam.buckets['landing']}/incoming/", "show/episode-1.mp4")
    storage.store_for(landing).put(clip, landing)
    # an upload still in progress is not picked up
    storage.store_for(landing).put_bytes(b"partial", landing + ".part")

    ingest = load_dag("vam_ingest")
    run = ingest.test()
    assert run.state == "success"
    asset_id = asset_id_for(storage.sha256_file(clip))
    with create_session() as session:
        triggered = session.query(DagRun).filter(DagRun.dag_id == "vam_process").all()
        confs = {r.run_id: r.conf for r in triggered}
    assert confs[f"asset__{asset_id}"]["source_uri"] == landing
    assert confs[f"asset__{asset_id}"]["landing"] == f"s3://{s3_vam.buckets['landing']}/incoming/"
    assert not any(".part" in str(c) for c in confs.values())

    process = load_dag("vam_process")
    run = process.test(run_conf=confs[f"asset__{asset_id}"])
    assert run.state == "success"

    rt = Runtime.from_env()
    summary = asset_summary(rt, asset_id)
    assert summary["status"] == "ready", summary
    assert summary["landing"] == f"s3://{s3_vam.buckets['landing']}/incoming/"  # where it came from
    assert summary["source"]["width"] == 854
    assert summary["source"]["height"] == 480
    assert [r["name"] for r in summary["renditions"]] == ["480p", "360p"]
    for r in summary["renditions"]:
        assert r["vmaf"]
        assert r["ssim"]
        assert r["psnr"]
        assert r["uri"].startswith(f"s3://{s3_vam.buckets['processed']}/{asset_id}/default@")
    with rt.catalog() as cat:
        statuses = [e["to_status"] for e in cat.events(asset_id) if e["kind"] == "status"]
        assert statuses[-2:] == ["processing", "ready"]
        assert {o["kind"] for o in cat.objects(asset_id)} >= {"source", "rendition", "segment", "manifest"}

    # The published HLS master lists every rendition; its segments decode to the source's frames.
    local = tmp_path / "pub"
    prefix = summary["hls"].rsplit("/hls/", 1)[0]
    for obj in storage.store_for(prefix).list(prefix + "/"):
        rel = obj.uri[len(prefix) + 1 :]
        storage.store_for(obj.uri).get(obj.uri, local / rel)
    master = (local / "hls" / "master.m3u8").read_text()
    assert master.count("#EXT-X-STREAM-INF") == 2
    assert "RESOLUTION=854x480" in master
    assert "RESOLUTION=640x360" in master
    assert "_staging" not in "".join(o.uri for o in storage.store_for(prefix).list(prefix + "/"))
    variant = re.search(r"^(?!#)(\S+\.m3u8)$", master, re.M).group(1)
    assert _decoded_frames(str(local / "hls" / variant)) == summary["source"]["frame_count"]
    mpd = ET.parse(local / "dash" / "manifest.mpd").getroot()
    ns = {"d": "urn:mpeg:dash:schema:mpd:2011"}
    assert len(mpd.findall(".//d:AdaptationSet[@contentType='video']/d:Representation", ns)) == 2

    # Dropping the same bytes under another key is a duplicate, not a second asset.
    again = storage.uri_join(f"s3://{s3_vam.buckets['landing']}/incoming/", "copy-of-episode-1.mp4")
    storage.store_for(again).put(clip, again)
    assert ingest.test().state == "success"
    with create_session() as session:
        runs = session.query(DagRun).filter(DagRun.dag_id == "vam_process").count()
    assert runs == len(triggered) + 1  # only the dag.test run above, nothing new triggered
    with rt.catalog() as cat:
        assert any(
            e["kind"] == "duplicate" and e["detail"]["source_uri"] == again for e in cat.events(asset_id)
        )

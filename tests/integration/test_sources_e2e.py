"""Every kind of source through the whole pipeline (``vam.process``, what `vam process` runs), with
credentials from Airflow connections the way a deployment defines them (``AIRFLOW_CONN_*``)."""

from __future__ import annotations

import json

import pytest

import vam
from vam import storage

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(autouse=True)
def quick(vam_home, airflow_db, monkeypatch):
    monkeypatch.setenv("VAM_ENRICHMENT", "false")


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    from vam.devstack.azurite import start_azurite

    server = start_azurite(tmp_path_factory.mktemp("azurite"))
    server.ensure_containers(["partner"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fake_gcs():
    from vam.devstack.gcs import start_fake_gcs

    server = start_fake_gcs()
    server.ensure_buckets(["vam-in"])
    yield server
    server.stop()


def _drop(uri: str, clip) -> str:
    storage.store_for(uri).put(clip, uri)
    return uri


def test_an_azure_blob_with_the_wasb_default_connection(azurite, clips, monkeypatch):
    from vam.orchestration.connections import runtime

    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    monkeypatch.setenv(
        "AIRFLOW_CONN_WASB_DEFAULT",
        json.dumps({"conn_type": "wasb", "extra": {"connection_string": azurite.connection_string}}),
    )
    runtime()  # what every operator does first: clients from the connections
    uri = _drop(
        "az://partner/drop/ad spot.mp4", clips.make(width=160, height=90, seconds=1, pattern="smptebars")
    )
    out = vam.process(uri)
    assert out["status"] == "ready", out["reason"]
    assert out["source_uri"] == uri
    assert storage.store_for(uri).head(uri).size > 0  # the partner's blob is still there


def test_a_gcs_object_with_the_emulator(fake_gcs, clips, monkeypatch):
    for key, value in fake_gcs.env().items():
        monkeypatch.setenv(key, value)
    storage.configure_store("gs", None)  # the default client, built from the environment
    uri = _drop(
        "gs://vam-in/2024/promo.mp4", clips.make(width=160, height=90, seconds=1, pattern="rgbtestsrc")
    )
    out = vam.process(uri)
    assert out["status"] == "ready", out["reason"]
    assert out["source"]["duration"] == pytest.approx(1, abs=0.1)
    storage.configure_store("gs", None)


def test_an_ftp_file_with_the_ftp_default_connection(tmp_path, clips, monkeypatch):
    from vam.devstack.ftp import start_ftp_server
    from vam.orchestration.connections import runtime
    from vam.storage import ftp

    server = start_ftp_server(tmp_path / "ftp")
    try:
        (server.root / "drop").mkdir()
        clip = clips.make(width=160, height=90, seconds=1, pattern="yuvtestsrc")
        (server.root / "drop" / "cut.mp4").write_bytes(clip.read_bytes())
        monkeypatch.setenv(
            "AIRFLOW_CONN_FTP_DEFAULT",
            json.dumps(
                {"conn_type": "ftp", "host": server.host, "port": server.port, "login": server.user,
                 "password": server.password}
            ),
        )  # fmt: skip
        runtime()
        out = vam.process(server.uri("drop/cut.mp4"))
        assert out["status"] == "ready", out["reason"]
        assert server.password not in json.dumps(out)
    finally:
        ftp.default_store().remove_credentials(server.host, server.port)
        server.stop()

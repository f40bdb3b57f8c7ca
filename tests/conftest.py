"""Shared fixtures: real servers on 127.0.0.1 and an isolated vam + Airflow environment.

The session gets its own VAM_HOME and AIRFLOW_HOME (SQLite metadata DB) in a temp dir, a fresh
catalog database on the machine's PostgreSQL (or the embedded one), and, for tests that ask,
a SeaweedFS server with its own credentials. Nothing listens on other than 127.0.0.1.
"""

from __future__ import annotations

import os
import secrets
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

import pytest

TESTS_DIR = Path(__file__).resolve().parent
SESSION_DIR = Path(tempfile.mkdtemp(prefix="vam-tests-"))

# Before anything imports Airflow or reads vam's settings.
os.environ["VAM_HOME"] = str(SESSION_DIR / "home")
os.environ["AIRFLOW_HOME"] = str(SESSION_DIR / "airflow")
for _key in [
    k for k in os.environ if k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "VAM_")) and k != "VAM_HOME"
]:
    del os.environ[_key]
os.environ["HF_HUB_OFFLINE"] = "1"
sys.path.insert(0, str(TESTS_DIR))  # tests/ is not a package: helpers are imported as plain modules

from vam.orchestration import env as airflow_env  # noqa: E402
from vam.settings import load_settings  # noqa: E402

airflow_env.configure(load_settings(), retries=0)

pytest_plugins = ["own_catalog"]  # module_catalog, rt, logging_restored


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def catalog_dsn() -> str:
    """A fresh, migrated catalog database for this session; dropped at the end."""
    from vam.catalog.db import connect, migrate
    from vam.catalog.dsn import create_database, drop_database
    from vam.devstack import ensure_catalog

    base = ensure_catalog(load_settings())
    name = f"vam_test_{uuid.uuid4().hex[:10]}"
    dsn = create_database(base, name)
    os.environ["VAM_CATALOG_DSN"] = dsn
    conn = connect(dsn)
    migrate(conn)
    conn.close()
    yield dsn
    os.environ.pop("VAM_CATALOG_DSN", None)
    drop_database(base, name)


@pytest.fixture(scope="session")
def seaweed():
    """A SeaweedFS S3 server on 127.0.0.1 with generated credentials; stopped at the end."""
    from vam.devstack import start_seaweedfs

    access, secret = "test" + secrets.token_hex(4), secrets.token_hex(16)
    server = start_seaweedfs(SESSION_DIR / "seaweed", access_key=access, secret_key=secret)
    server.access_key, server.secret_key = access, secret
    yield server
    server.stop()


@pytest.fixture
def s3(seaweed, monkeypatch):
    """vam configured to use the SeaweedFS server: returns a boto3 client and fresh bucket names."""
    from vam import storage
    from vam.storage.s3 import make_s3_client

    monkeypatch.setenv("VAM_S3_ENDPOINT_URL", seaweed.endpoint_url)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", seaweed.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", seaweed.secret_key)
    client = make_s3_client(
        seaweed.endpoint_url, access_key=seaweed.access_key, secret_key=seaweed.secret_key
    )
    storage.configure(s3_client=client)
    suffix = uuid.uuid4().hex[:8]
    buckets = {k: f"vam-{k}-{suffix}" for k in ("landing", "processed", "quarantine")}
    seaweed.ensure_buckets(list(buckets.values()))
    client.buckets = buckets
    yield client
    storage.configure(s3_client=None)


@pytest.fixture
def vam_home(tmp_path, monkeypatch, catalog_dsn):
    """vam settings pointing at a per-test data dir (file:// objects) and the session catalog."""
    home = tmp_path / "vam"
    monkeypatch.setenv("VAM_HOME", str(home))
    monkeypatch.setenv("VAM_CATALOG_DSN", catalog_dsn)
    return home


@pytest.fixture(scope="session")
def airflow_db():
    """A migrated Airflow metadata DB (SQLite in the session dir)."""
    airflow_env.ensure_metadata_db()
    return os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]


@pytest.fixture(scope="session")
def clips():
    """Generated test clips, made once per session (see clipfactory.py)."""
    from clipfactory import ClipFactory

    return ClipFactory(SESSION_DIR / "clips")

"""docker-compose.yaml and the Dockerfile against the process topology that runs for real here
(``VAM_EXECUTOR=celery make run``, tests/integration/test_celery.py): the same services and commands,
the same queues, the same Airflow and vam settings. There is no Docker engine on this machine: the file
is validated with ``docker-compose config`` (Debian's docker-compose; the test is skipped when it is
missing) and parsed with PyYAML.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from vam.orchestration import topology

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
SECRETS = {
    "POSTGRES_PASSWORD": "pg-secret",
    "VAM_S3_ACCESS_KEY": "s3-key",
    "VAM_S3_SECRET_KEY": "s3-secret",
    "AIRFLOW_JWT_SECRET": "jwt-secret",
    "_AIRFLOW_WWW_USER_PASSWORD": "admin-secret",
}


def _local_stack():
    spec = importlib.util.spec_from_file_location("local_stack", ROOT / "scripts" / "local_stack.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _command(service: dict) -> list[str]:
    cmd = service.get("command", [])
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def _option(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def resolved(tmp_path_factory) -> dict:
    """The file as ``docker-compose config`` resolves it (anchors, merges, variables from .env)."""
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/install_system.sh installs Debian's)")
    out = tmp_path_factory.mktemp("compose") / "config.yaml"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VAM_", "POSTGRES"))}
    with open(out, "wb") as fh:
        proc = subprocess.run(
            [binary, "-f", str(COMPOSE), "config"], env={**env, **SECRETS}, stdout=fh,
            stderr=subprocess.PIPE, cwd=ROOT, timeout=60, check=False,
        )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    return yaml.safe_load(out.read_text())


def test_compose_config_validates_and_requires_the_secrets():
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose is not installed (scripts/install_system.sh installs Debian's)")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VAM_", "POSTGRES"))}
    missing = {k: v for k, v in SECRETS.items() if k != "POSTGRES_PASSWORD"}
    proc = subprocess.run(
        [binary, "-f", str(COMPOSE), "config"], env={**env, **missing}, capture_output=True,
        cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert b"set POSTGRES_PASSWORD in .env" in proc.stderr


def test_services_in_the_official_shape(resolved):
    services = resolved["services"]
    expected = {
        "postgres", "redis", "seaweedfs", "airflow-init", "airflow-apiserver", "airflow-scheduler",
        "airflow-dag-processor", "airflow-triggerer", "airflow-worker", "airflow-worker-enrich",
        "vam-serve", "flower",
    }  # fmt: skip
    assert set(services) == expected
    assert "pg_isready" in services["postgres"]["healthcheck"]["test"]
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]
    assert services["flower"]["profiles"] == ["flower"]
    assert _command(services["flower"]) == ["celery", "flower"]
    init = " ".join(_command(services["airflow-init"]))
    assert services["airflow-init"]["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    for step in ("simple_auth_manager_passwords.json", "connections add aws_default"):
        assert step in init
    # every pool a DAG names is created by the init service (and by the local stack)
    used = set()
    for dag_file in (ROOT / "dags").glob("*.py"):
        used |= set(re.findall(r'pool="([\w-]+)"', dag_file.read_text()))
    assert used >= {"transcode", "archive", "lifecycle"}
    local_stack = (ROOT / "scripts" / "local_stack.py").read_text()
    for pool in sorted(used):
        assert f"pools set {pool} " in init, pool
        assert f'"{pool}"' in local_stack, pool
    assert "scripts/compose_init.py" in init
    assert (ROOT / "scripts" / "compose_init.py").is_file()
    assert _command(services["vam-serve"])[:1] == ["serve"]
    # the secrets come from .env, never from the file
    text = COMPOSE.read_text()
    for value in SECRETS.values():
        assert value not in text


def test_airflow_commands_match_the_local_stack(resolved):
    services = resolved["services"]
    local = _local_stack()
    for name, argv in local.AIRFLOW_SERVICES.items():
        service = services["airflow-apiserver" if name == "api-server" else f"airflow-{name}"]
        assert _command(service)[0] == argv[0]


def test_worker_queues_match_the_topology(resolved):
    services = resolved["services"]
    worker = _command(services["airflow-worker"])
    assert worker[:2] == ["celery", "worker"]
    assert (
        _option(worker, "--queues").split(",") == topology.worker_queues() == ["media", "enrich", "default"]
    )
    local = topology.local_workers(2, 1)
    assert {w.queues for w in local} == {tuple(topology.worker_queues())}
    argv = local[0].argv("airflow", "/tmp/w.pid")
    assert _option(argv, "--queues") == _option(worker, "--queues")
    gpu = _command(services["airflow-worker-enrich"])
    assert _option(gpu, "--queues") == topology.queue_for("enrich")
    assert services["airflow-worker-enrich"]["profiles"] == ["gpu"]
    for name in ("airflow-worker", "airflow-worker-enrich"):
        assert services[name]["environment"]["DUMB_INIT_SETSID"] == "0"


def test_environment_matches_the_local_celery_stack(resolved):
    local = _local_stack()
    celery_env = topology.celery_airflow_env(broker_url="redis://x/0", result_backend="db+postgresql://x")
    for name, service in resolved["services"].items():
        if not name.startswith(("airflow-", "vam-", "flower")):
            continue
        env = service["environment"]
        for key, value in celery_env.items():
            if key == "AIRFLOW__CELERY__BROKER_URL":
                assert re.fullmatch(r"redis://:?@?redis:6379/\d+", env[key]), env[key]
            elif key == "AIRFLOW__CELERY__RESULT_BACKEND":
                assert env[key].startswith("db+postgresql://airflow:pg-secret@postgres/")
            else:
                assert env[key] == value, (name, key)
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "jwt-secret"
        for key in ("AIRFLOW__CORE__LOAD_EXAMPLES", "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"):
            assert env[key] == "False"
        buckets = {env[k].removeprefix("s3://").rstrip("/") for k in ("VAM_LANDING_URI", "VAM_PROCESSED_URI")}
        buckets.add(env["VAM_QUARANTINE_URI"].removeprefix("s3://"))
        assert buckets == set(local.BUCKETS.values())
        assert env["VAM_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
        assert "dbname=vam" in env["VAM_CATALOG_DSN"]


def test_dockerfile_extends_the_official_image_and_installs_nothing_at_start(resolved):
    text = (ROOT / "Dockerfile").read_text()
    requirements = (ROOT / "requirements.txt").read_text()
    airflow = re.search(r"^apache-airflow==([\d.]+)$", requirements, re.M).group(1)
    assert re.search(r"^ARG AIRFLOW_VERSION=" + re.escape(airflow) + "$", text, re.M)
    assert "FROM apache/airflow:${AIRFLOW_VERSION}-python3.11" in text
    assert re.search(r"apt-get install -y --no-install-recommends ffmpeg", text)
    assert "-r /opt/vam/requirements.txt" in text
    assert "pip install --no-cache-dir --no-deps -e /opt/vam" in text
    for service in resolved["services"].values():
        env = service.get("environment") or {}
        assert not env.get("_PIP_ADDITIONAL_REQUIREMENTS")  # nothing installed when a container starts

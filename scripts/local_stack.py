#!/usr/bin/env python3
"""The local vam stack on 127.0.0.1: catalog PostgreSQL, SeaweedFS (S3) and Airflow 3.

    start   start what is not running yet (safe to run again), drop the sample clip into the
            landing bucket and wait until it is processed; prints the UI address, login and the
            sample's HLS and DASH URLs
    stop    stop everything `start` started (by the PIDs it recorded)
    clean   stop, then delete the stack's data: .vam/ and its catalog and Airflow databases
    env     print the environment (shell `export` lines) the stack's processes run with

VAM_EXECUTOR=celery runs the CeleryExecutor instead of the LocalExecutor: the machine's Redis as the
broker (VAM_CELERY_BROKER_URL), results in the Airflow database, and VAM_CELERY_WORKERS (2) worker
processes named worker1, worker2, ... on the queues media, enrich and default, VAM_CELERY_CONCURRENCY
(1) task slots each (see vam.orchestration.local_celery). VAM_RUN_SAMPLE=false starts the stack without
dropping the sample; VAM_AIRFLOW_DB names the Airflow database (vam_airflow).

State lives in .vam/ at the repository root: pids/, logs/, seaweed/, airflow/, stack.env.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psycopg2
import psycopg2.extensions

ROOT = Path(__file__).resolve().parents[1]
HOME = Path(os.environ.get("VAM_HOME", ROOT / ".vam")).resolve()
BIN = Path(sys.executable).parent
API_PORT = int(os.environ.get("VAM_AIRFLOW_PORT", "8080"))
S3_PORT = int(os.environ.get("VAM_S3_PORT", "8333"))
BUCKETS = {"landing": "vam-landing", "processed": "vam-processed", "quarantine": "vam-quarantine"}
AIRFLOW_SERVICES = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--port", str(API_PORT)],
    "scheduler": ["scheduler", "--skip-serve-logs"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer", "--skip-serve-logs"],
}
SAMPLE_KEY = "samples/vam-sample-720p.mp4"
# VAM_EXECUTOR=celery: CeleryExecutor with Redis and worker processes (vam.orchestration.local_celery)
EXECUTOR = os.environ.get("VAM_EXECUTOR", "local").strip().lower()
AIRFLOW_DB = os.environ.get("VAM_AIRFLOW_DB", "vam_airflow")


def log(msg: str) -> None:
    print(f"[vam stack] {msg}", flush=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _pidfile(name: str) -> Path:
    return HOME / "pids" / f"{name}.pid"


def _running(name: str) -> int | None:
    path = _pidfile(name)
    if path.exists():
        pid = int(path.read_text().strip() or 0)
        if pid and _alive(pid):
            return pid
        path.unlink()
    return None


def _sqlalchemy_url(dsn: str) -> str:
    p = psycopg2.extensions.parse_dsn(dsn)
    auth = p.get("user", "")
    if p.get("password"):
        auth += ":" + p["password"]
    host = p.get("host", "127.0.0.1")
    if host.startswith("/"):  # unix socket directory (the embedded server)
        return f"postgresql+psycopg2://{auth}@/{p['dbname']}?host={host}&port={p.get('port', 5432)}"
    return f"postgresql+psycopg2://{auth}@{host}:{p.get('port', 5432)}/{p['dbname']}"


def _admin_password(airflow_home: Path) -> str:
    path = airflow_home / "simple_auth_manager_passwords.json.generated"
    if not path.exists():
        path.write_text(json.dumps({"admin": secrets.token_urlsafe(12)}))
        path.chmod(0o600)
    return json.loads(path.read_text())["admin"]


def build_env(catalog_dsn: str, s3_endpoint: str, creds: dict[str, str]) -> dict[str, str]:
    airflow_home = HOME / "airflow"
    airflow_home.mkdir(parents=True, exist_ok=True)
    from vam.catalog.dsn import create_database, with_dbname
    from vam.orchestration.env import jwt_secret

    airflow_db = create_database(with_dbname(catalog_dsn, "postgres"), AIRFLOW_DB)
    conn = {
        "conn_type": "aws",
        "login": creds["access_key"],
        "password": creds["secret_key"],
        "extra": {"endpoint_url": s3_endpoint, "region_name": "us-east-1"},
    }
    env = {
        "VAM_HOME": str(HOME),
        "VAM_CATALOG_DSN": catalog_dsn,
        "VAM_S3_ENDPOINT_URL": s3_endpoint,
        "VAM_LANDING_URI": f"s3://{BUCKETS['landing']}/",
        "VAM_PROCESSED_URI": f"s3://{BUCKETS['processed']}",
        "VAM_QUARANTINE_URI": f"s3://{BUCKETS['quarantine']}",
        "VAM_INGEST_INTERVAL_SECONDS": os.environ.get("VAM_INGEST_INTERVAL_SECONDS", "20"),
        "AWS_ACCESS_KEY_ID": creds["access_key"],
        "AWS_SECRET_ACCESS_KEY": creds["secret_key"],
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{API_PORT}/execution/",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _sqlalchemy_url(airflow_db),
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(API_PORT),
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{API_PORT}",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt_secret(airflow_home),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(conn),
        "PYTHONPATH": str(ROOT / "plugins"),
    }
    if EXECUTOR == "celery":
        from vam.orchestration import local_celery

        env.update(local_celery.airflow_env(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"]))
    return env


def _airflow(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [str(BIN / "airflow"), *args], env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL
    )


def _spawn(name: str, argv: list[str], env: dict[str, str]) -> None:
    pid = _running(name)
    if pid:
        log(f"{name} already running (pid {pid})")
        return
    logs = HOME / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    out = open(logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(
        argv, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True, cwd=ROOT,
    )  # fmt: skip
    _pidfile(name).write_text(str(proc.pid))
    log(f"started {name} (pid {proc.pid}, log {logs / (name + '.log')})")


def _wait_http(url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s: see {HOME / 'logs'}")


def _start_celery_workers(env: dict[str, str]) -> None:
    from vam.orchestration import local_celery

    for worker in local_celery.workers():
        pid_file = str(HOME / "airflow" / f"worker-{worker.name}.pid")  # its own (not airflow-worker.pid)
        argv = worker.argv(str(BIN / "airflow"), pid_file)
        _spawn(f"celery-{worker.name}", argv, {**env, "VAM_WORKER_NAME": worker.name})


def _worker_names() -> list[str]:
    return sorted(p.stem for p in (HOME / "pids").glob("celery-*.pid"))


def start() -> int:
    if EXECUTOR not in ("local", "celery"):
        raise SystemExit(f"VAM_EXECUTOR={EXECUTOR!r} is not supported: use local (the default) or celery")
    (HOME / "pids").mkdir(parents=True, exist_ok=True)
    os.environ["VAM_HOME"] = str(HOME)
    from vam import devstack, storage
    from vam.settings import load_settings

    catalog_dsn = devstack.ensure_catalog(load_settings())
    log(f"catalog: {catalog_dsn}")
    access_key, secret_key, _ = devstack.load_or_create_credentials(HOME)
    creds = {"access_key": access_key, "secret_key": secret_key}
    server = devstack.start_seaweedfs(
        HOME / "seaweed",
        s3_port=S3_PORT,
        access_key=creds["access_key"],
        secret_key=creds["secret_key"],
        public_read_buckets=[BUCKETS["processed"]],
    )
    server.ensure_buckets(list(BUCKETS.values()))
    log(f"SeaweedFS S3: {server.endpoint_url} (pid {server.pid}), buckets {', '.join(BUCKETS.values())}")
    env = build_env(catalog_dsn, server.endpoint_url, creds)
    (HOME / "stack.env").write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in env.items()))
    _airflow(env, "db", "migrate")
    _airflow(
        env,
        "pools",
        "set",
        "transcode",
        str(os.cpu_count() or 2),
        "vam transcode/quality slots (one per core)",
    )
    _airflow(
        env,
        "pools",
        "set",
        "archive",
        "1",
        "vam archive ingest batches (bulk work never starves live ingest)",
    )
    _airflow(env, "pools", "set", "lifecycle", "2", "vam_lifecycle move batches (storage moves)")
    password = _admin_password(Path(env["AIRFLOW_HOME"]))
    if EXECUTOR == "celery":
        from vam.orchestration import local_celery

        local_celery.check_broker(env["AIRFLOW__CELERY__BROKER_URL"])
        log(f"CeleryExecutor, broker {local_celery.redacted(env['AIRFLOW__CELERY__BROKER_URL'])}")
        _start_celery_workers(env)
    for name, args in AIRFLOW_SERVICES.items():
        _spawn(name, [str(BIN / "airflow"), *args], env)
    _wait_http(f"http://127.0.0.1:{API_PORT}/api/v2/monitor/health", 180)
    log(f"Airflow UI: http://127.0.0.1:{API_PORT}  login: admin / {password}")
    if os.environ.get("VAM_RUN_SAMPLE", "true").strip().lower() in ("0", "false", "no", "off"):
        log("VAM_RUN_SAMPLE is off: no sample dropped; stop everything with: make stop")
        return 0

    # Drop the sample into the landing bucket; the ingest DAG picks it up on its next poll.
    os.environ.update(env)
    from vam.runtime import Runtime

    Runtime.from_env()  # the stack's settings down to the storage layer (S3 endpoint)
    sample = HOME / "sample" / "vam-sample-720p.mp4"
    if not sample.exists():
        from vam.media.sample import make_sample

        make_sample(sample, seconds=12, width=1280, height=720)
    landing = storage.uri_join(env["VAM_LANDING_URI"], SAMPLE_KEY)
    storage.store_for(landing).put(sample, landing, content_type="video/mp4")
    sha = storage.sha256_file(sample)
    log(f"dropped {landing}; waiting for the ingest DAG (every {env['VAM_INGEST_INTERVAL_SECONDS']} s)")
    return _wait_ready(sha, server.endpoint_url, timeout=float(os.environ.get("VAM_RUN_TIMEOUT", "900")))


def _wait_ready(sha: str, endpoint: str, timeout: float) -> int:
    from vam.catalog.repo import asset_id_for
    from vam.errors import CatalogError
    from vam.runtime import Runtime
    from vam.steps.show import summary

    rt = Runtime.from_env()
    asset_id = asset_id_for(sha)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            result = summary(rt, asset_id)
        except CatalogError:
            result = {"status": "waiting for ingest"}
        if result["status"] != last:
            log(f"sample asset {asset_id}: {result['status']}")
            last = result["status"]
        if result["status"] in ("ready", "rejected", "failed"):
            break
        time.sleep(3)
    else:
        log(f"the sample is not processed after {timeout:.0f} s; the stack keeps running: see the Airflow UI")
        return 1
    if result["status"] != "ready":
        log(f"sample {result['status']}: {result['reason']}")
        return 1

    def http(uri: str) -> str:
        return uri.replace("s3://", endpoint.rstrip("/") + "/", 1)

    log(f"HLS:  {http(result['hls'])}")
    log(f"DASH: {http(result['dash'])}")
    log("drop more videos with: source .vam/stack.env && .venv/bin/vam drop FILE")
    log("stop everything with: make stop")
    return 0


def _stop_all(names: list[str], timeout: float = 15.0) -> None:
    """SIGTERM each process group at once, wait up to ``timeout`` for all, SIGKILL what is left."""
    pids = {name: pid for name in names if (pid := _running(name)) is not None}
    for name, pid in pids.items():
        log(f"stopping {name} (pid {pid})")
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while any(_alive(pid) for pid in pids.values()) and time.monotonic() < deadline:
        time.sleep(0.5)
    for name, pid in pids.items():
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
        _pidfile(name).unlink(missing_ok=True)


def stop() -> int:
    _stop_all(_worker_names())  # Celery workers first (a warm shutdown finishes their tasks)
    _stop_all(list(reversed(list(AIRFLOW_SERVICES))))
    from vam import devstack

    if (HOME / "seaweed").exists():
        devstack.stop_from_pidfile(HOME / "seaweed")
        log("stopped SeaweedFS")
    return 0


def clean() -> int:
    stop()
    from vam import devstack
    from vam.catalog.dsn import drop_database, with_dbname
    from vam.settings import load_settings

    os.environ["VAM_HOME"] = str(HOME)
    catalog_dsn = os.environ.get("VAM_CATALOG_DSN") or devstack.ensure_catalog(load_settings())
    admin = with_dbname(catalog_dsn, "postgres")
    for name in (psycopg2.extensions.parse_dsn(catalog_dsn)["dbname"], AIRFLOW_DB):
        drop_database(admin, name)
        log(f"dropped database {name}")
    if (HOME / "pgdata").exists():
        devstack.stop_embedded_catalog(HOME / "pgdata")
    import shutil

    shutil.rmtree(HOME, ignore_errors=True)
    log(f"deleted {HOME}")
    return 0


def main() -> int:
    command = sys.argv[1] if len(sys.argv) > 1 else "start"
    if command == "start":
        return start()
    if command == "stop":
        return stop()
    if command == "clean":
        return clean()
    if command == "env":
        print((HOME / "stack.env").read_text(), end="")
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main())

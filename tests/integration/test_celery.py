"""The CeleryExecutor topology for real: ``VAM_EXECUTOR=celery scripts/local_stack.py start`` on free
loopback ports (Airflow api-server, scheduler, dag-processor, triggerer, two Celery workers with one
task slot each, the machine's Redis as the broker with a database number of this test's own, results
in PostgreSQL, SeaweedFS for S3).

One asset through ``vam_process`` (triggered with ``airflow dags trigger``): its two transcode tasks
start on both workers (one task slot per worker, and each encode lasts many seconds against the
seconds of the other tasks, so it is not luck), and the tasks go to their queues. The worker encoding
the 360p rendition is killed with SIGKILL (its whole process tree, as if its machine died) in the
middle of the encode: the scheduler notices the missing heartbeat (20 s here), the task is retried on
the other worker, the asset ends ready, and there is exactly one object per rendition.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg2
import pytest
import yaml

from vam.catalog.dsn import drop_database, with_dbname

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
REDIS = ("127.0.0.1", 6379)
PROFILE = "celerytest"


def _free_port() -> int:
    """A free port below the ephemeral range (SeaweedFS takes its other ports from that range)."""
    for _ in range(100):
        port = 20000 + uuid.uuid4().int % 12000
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port in 20000-32000")


def _redis_db() -> int:
    """A Redis database number nobody uses (empty), or a skip when no Redis answers."""
    import redis

    try:
        redis.Redis(*REDIS, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        pytest.skip(f"the CeleryExecutor test needs Redis on {REDIS[0]}:{REDIS[1]} ({exc})")
    for db in sorted(range(1, 16), key=lambda _: uuid.uuid4().int):
        if redis.Redis(*REDIS, db=db).dbsize() == 0:
            return db
    pytest.skip("every Redis database 1-15 holds keys: none is free for the CeleryExecutor test")


def _slow_profile(directory: Path) -> None:
    """Two rungs (360p, 240p) encoded with x264 preset placebo: an encode of a 640x360 clip lasts
    seconds, long against the other tasks, so both workers are busy with one at the same time."""
    directory.mkdir(parents=True, exist_ok=True)
    default = ROOT / "include" / "encoding_profiles" / "default.yaml"
    (directory / "default.yaml").write_text(default.read_text())
    profile = yaml.safe_load(default.read_text())
    rung = next(r for r in profile["rungs"] if r["name"] == "360p")
    profile.update(name=PROFILE, version=1)
    profile["rungs"] = [
        {**rung, "preset": "placebo"},
        {**rung, "name": "240p", "height": 240, "video_bitrate_kbps": 400, "preset": "placebo"},
    ]
    (directory / f"{PROFILE}.yaml").write_text(yaml.safe_dump(profile))


@pytest.fixture(scope="module")
def celery_stack(catalog_dsn, tmp_path_factory):
    import redis

    db = _redis_db()
    home = tmp_path_factory.mktemp("celery") / "vam"
    airflow_db = f"vam_airflow_celery_{uuid.uuid4().hex[:8]}"
    profiles = home.parent / "profiles"
    _slow_profile(profiles)
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "VAM_"))}
    env = {
        **clean,
        "VAM_HOME": str(home),
        "VAM_CATALOG_DSN": catalog_dsn,
        "VAM_AIRFLOW_PORT": str(_free_port()),
        "VAM_S3_PORT": str(_free_port()),
        "VAM_AIRFLOW_DB": airflow_db,
        "VAM_EXECUTOR": "celery",
        "VAM_CELERY_BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{db}",
        "VAM_CELERY_WORKERS": "2",
        "VAM_CELERY_CONCURRENCY": "1",
        "VAM_TASK_HEARTBEAT_TIMEOUT": "20",
        "VAM_RUN_SAMPLE": "false",
        "VAM_ENRICHMENT": "false",
        "VAM_INGEST_INTERVAL_SECONDS": "3600",
        "VAM_PROFILES_DIR": str(profiles),
        "VAM_PROFILE": PROFILE,
        "VAM_ENCODE_GROUPING": "rendition",  # one transcode task per rendition
        "VAM_FFMPEG_THREADS": "1",
        "VAM_TASK_RETRIES": "2",
        "VAM_TASK_RETRY_DELAY_SECONDS": "5",
    }
    home.mkdir(parents=True)
    stack = [str(VENV_BIN / "python"), str(ROOT / "scripts" / "local_stack.py")]
    log = home.parent / "stack.log"
    try:
        with open(log, "ab") as out:
            started = subprocess.run(
                [*stack, "start"], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=300, check=False
            )
        assert started.returncode == 0, f"the stack did not start: {log.read_text()[-3000:]}"
        lines = (home / "stack.env").read_text().splitlines()
        stack_env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        stack_env = {k: shlex.split(v)[0] if v else "" for k, v in stack_env.items()}
        yield {
            "env": {**env, **stack_env},
            "home": home,
            "airflow_dsn": with_dbname(catalog_dsn, airflow_db),
            "catalog_dsn": catalog_dsn,
        }
    finally:
        with open(log, "ab") as out:
            subprocess.run([*stack, "stop"], env=env, stdout=out, stderr=subprocess.STDOUT, timeout=180)
        drop_database(with_dbname(catalog_dsn, "postgres"), airflow_db)
        redis.Redis(*REDIS, db=db).flushdb()


def _query(dsn: str, sql: str, *args: object) -> list[tuple]:
    conn = psycopg2.connect(dsn)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchall()
    finally:
        conn.close()


def _trigger(stack: dict, source: Path, run_id: str) -> None:
    deadline = time.monotonic() + 120
    while not _query(stack["airflow_dsn"], "SELECT 1 FROM dag WHERE dag_id = 'vam_process'"):
        assert time.monotonic() < deadline, "the dag-processor did not parse vam_process within 120 s"
        time.sleep(2)
    conf = json.dumps({"source_uri": str(source)})
    with open(stack["home"].parent / "trigger.log", "ab") as out:
        subprocess.run(
            [str(VENV_BIN / "airflow"), "dags", "trigger", "vam_process", "--run-id", run_id, "--conf", conf],
            env=stack["env"], stdout=out, stderr=subprocess.STDOUT, check=True, timeout=120,
        )  # fmt: skip


def _wait_run(stack: dict, run_id: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = _query(stack["airflow_dsn"], "SELECT state FROM dag_run WHERE run_id = %s", run_id)
        if rows and rows[0][0] in ("success", "failed"):
            return rows[0][0]
        time.sleep(2)
    pytest.fail(f"run {run_id} did not finish within {timeout:.0f} s: see {stack['home'] / 'logs'}")


def _task_instances(stack: dict, run_id: str, task_id: str) -> dict[str, tuple]:
    """rendition name -> (state, hostname, try_number, queue) of a mapped task's instances."""
    rows = _query(
        stack["airflow_dsn"],
        "SELECT rendered_map_index, state, hostname, try_number, queue FROM task_instance"
        " WHERE dag_id = 'vam_process' AND run_id = %s AND task_id = %s",
        run_id,
        task_id,
    )
    return {r[0]: r[1:] for r in rows}


def _asset(stack: dict, source: Path) -> tuple[str, str]:
    from vam.catalog.repo import asset_id_for
    from vam.storage import sha256_file

    asset_id = asset_id_for(sha256_file(source))
    rows = _query(stack["catalog_dsn"], "SELECT status FROM assets WHERE asset_id = %s", asset_id)
    return asset_id, rows[0][0] if rows else "missing"


def _kill_tree(pid: int) -> None:
    """SIGKILL a process and every descendant at once (its machine is gone)."""
    import psutil

    root = psutil.Process(pid)
    for proc in [root, *root.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.send_signal(signal.SIGKILL)


def test_transcodes_spread_over_both_workers_and_survive_a_killed_worker(celery_stack, clips):
    stack = celery_stack
    # bytes of its own (other tests process the 640x360 25 fps clip in the session catalog), and
    # moving content, so that the placebo-preset encodes last many seconds
    source = clips.make(width=640, height=360, seconds=2.0, fps=24)
    _trigger(stack, source, "celery")
    # the 360p encode has been running for a few seconds (ffmpeg is at work): its worker dies
    deadline = time.monotonic() + 240
    while True:
        assert time.monotonic() < deadline, "the 360p transcode never ran"
        running = _query(
            stack["airflow_dsn"],
            "SELECT hostname, now() - start_date FROM task_instance WHERE run_id = %s AND task_id ="
            " 'transcode' AND rendered_map_index = '360p' AND state = 'running' AND hostname <> ''",
            "celery",
        )
        if running and running[0][1].total_seconds() > 3:
            break
        time.sleep(0.5)
    victim = running[0][0].split("@")[0]
    survivor = ({"worker1", "worker2"} - {victim}).pop()
    _kill_tree(int((stack["home"] / "pids" / f"celery-{victim}.pid").read_text()))

    assert _wait_run(stack, "celery", 420) == "success"
    asset_id, status = _asset(stack, source)
    assert status == "ready"
    transcodes = _task_instances(stack, "celery", "transcode")
    assert set(transcodes) == {"360p", "240p"}
    assert {queue for *_, queue in transcodes.values()} == {"media"}
    # the first tries: one rendition on each worker (one task slot each, encodes of many seconds)
    state, hostname, try_number, _ = transcodes["240p"]
    assert (state, try_number) == ("success", 1)
    assert {hostname.split("@")[0], victim} == {"worker1", "worker2"}
    # the killed try: failed by the scheduler when its heartbeat stopped, retried on the other worker
    history = _query(
        stack["airflow_dsn"],
        "SELECT hostname, state FROM task_instance_history WHERE run_id = %s AND task_id = 'transcode'"
        " AND rendered_map_index = '360p' AND try_number = 1",
        "celery",
    )
    assert [(h.split("@")[0], s) for h, s in history] == [(victim, "failed")]
    state, hostname, try_number, _ = transcodes["360p"]
    assert (state, try_number, hostname.split("@")[0]) == ("success", 2, survivor)
    queues = dict(
        _query(
            stack["airflow_dsn"],
            "SELECT task_id, queue FROM task_instance WHERE run_id = %s AND map_index = -1",
            "celery",
        )
    )
    assert queues["transcript"] == queues["scenes"] == "enrich"
    assert queues["probe"] == queues["package"] == "media"
    assert queues["register"] == queues["publish"] == "default"

    # exactly one object per rendition, in the catalog and in the bucket
    renditions = _query(
        stack["catalog_dsn"], "SELECT name, uri FROM renditions WHERE asset_id = %s ORDER BY name", asset_id
    )
    assert [name for name, _ in renditions] == ["240p", "360p"]
    objects = _query(
        stack["catalog_dsn"],
        "SELECT uri FROM stored_objects WHERE asset_id = %s AND kind = 'rendition' ORDER BY uri",
        asset_id,
    )
    assert sorted(uri for _, uri in renditions) == [uri for (uri,) in objects]
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=stack["env"]["VAM_S3_ENDPOINT_URL"],
        aws_access_key_id=stack["env"]["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=stack["env"]["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    bucket, _, prefix = renditions[0][1].removeprefix("s3://").partition("/")
    folder = prefix.rsplit("/", 1)[0] + "/"
    listed = s3.list_objects_v2(Bucket=bucket, Prefix=folder).get("Contents", [])
    assert sorted(f"s3://{bucket}/{o['Key']}" for o in listed) == [uri for (uri,) in objects]
    uploads = s3.list_multipart_uploads(Bucket=bucket, Prefix=f"{asset_id}/").get("Uploads", [])
    assert uploads == []

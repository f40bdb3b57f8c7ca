"""The development stack's CeleryExecutor (``VAM_EXECUTOR=celery make run``): Redis broker, result backend in
the Airflow database on PostgreSQL, and the worker processes of :mod:`vam.orchestration.topology`.

Environment (read by ``scripts/local_stack.py``):

- ``VAM_CELERY_BROKER_URL``: the broker (default ``redis://127.0.0.1:6379/0``, the machine's Redis);
- ``VAM_CELERY_WORKERS``: how many worker processes (default 2, named worker1, worker2, ...);
- ``VAM_CELERY_CONCURRENCY``: task slots per worker (default 1);
- ``VAM_TASK_HEARTBEAT_TIMEOUT``: seconds after which the scheduler fails (and retries) a task whose
  worker stopped answering (default: Airflow's 300).
"""

from __future__ import annotations

import os
import urllib.parse

from vam.errors import VamError
from vam.orchestration.topology import Worker, celery_airflow_env, local_workers

DEFAULT_BROKER_URL = "redis://127.0.0.1:6379/0"


class BrokerUnavailable(VamError):
    """The Celery broker (Redis) does not answer."""


def broker_url() -> str:
    return os.environ.get("VAM_CELERY_BROKER_URL") or DEFAULT_BROKER_URL


def check_broker(url: str, timeout: float = 3.0) -> None:
    """Raise :class:`BrokerUnavailable` unless the Redis at ``url`` answers PING."""
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout).ping()
    except redis.RedisError as exc:
        raise BrokerUnavailable(
            f"the Celery broker {url} does not answer ({exc}); start Redis (apt-get install redis-server) "
            "or point VAM_CELERY_BROKER_URL at one"
        ) from exc


def result_backend(sqlalchemy_url: str) -> str:
    """Celery's database result backend on the Airflow metadata DB (``db+postgresql://...``)."""
    scheme, rest = sqlalchemy_url.split("://", 1)
    if not scheme.startswith("postgresql"):
        raise VamError(f"the Celery result backend needs a PostgreSQL Airflow database, not {scheme}://")
    return f"db+postgresql://{rest}"


def airflow_env(sqlalchemy_url: str) -> dict[str, str]:
    """The AIRFLOW__* settings that turn the local stack into a CeleryExecutor deployment."""
    timeout = int(os.environ.get("VAM_TASK_HEARTBEAT_TIMEOUT") or 0)
    return celery_airflow_env(
        broker_url=broker_url(), result_backend=result_backend(sqlalchemy_url), heartbeat_timeout=timeout
    )


def workers() -> list[Worker]:
    count = int(os.environ.get("VAM_CELERY_WORKERS") or 2)
    concurrency = int(os.environ.get("VAM_CELERY_CONCURRENCY") or 1)
    return local_workers(count, concurrency)


def redacted(url: str) -> str:
    """``url`` without its password (for logs)."""
    parts = urllib.parse.urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    return url

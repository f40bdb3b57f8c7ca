"""Where vam's tasks run: the Celery queues by role, the worker processes, and the Airflow settings of a
CeleryExecutor deployment.

One source of truth for the two ways vam scales out: ``VAM_EXECUTOR=celery make run`` (the workers as
local processes, ``scripts/local_stack.py``) and ``docker-compose.yaml`` (the same workers as
containers; ``tests/integration/test_deploy.py`` checks the file against this module).

Roles and queues:

- ``media``: ffmpeg-heavy tasks (transcode, quality, packaging, derived crops) -> queue ``media``;
- ``enrich``: model tasks (transcript, scenes, labels, moderation) -> queue ``enrich`` (a GPU worker
  can take this queue alone);
- ``default``: everything else -> Airflow's ``[operators] default_queue`` (``default``).

An operator's role is its class attribute ``queue_role``; the queue name of a role can be changed with
the settings ``media_queue`` / ``enrich_queue`` (``VAM_MEDIA_QUEUE``, ``VAM_ENRICH_QUEUE``); an explicit
``queue=`` on the task wins. The LocalExecutor ignores queues.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

DEFAULT_QUEUE = "default"  # Airflow's [operators] default_queue
ROLES = ("media", "enrich", "default")


@functools.cache
def role_queues() -> dict[str, str]:
    """The queue of each role, from the settings (read once per process: parse time is cheap)."""
    from vam.settings import load_settings

    s = load_settings()
    return {"media": s.media_queue, "enrich": s.enrich_queue, "default": DEFAULT_QUEUE}


def queue_for(role: str) -> str:
    """The queue of ``role`` (one of :data:`ROLES`)."""
    queues = role_queues()
    if role not in queues:
        from vam.errors import VamError

        raise VamError(f"unknown queue role {role!r}: use one of {', '.join(ROLES)}")
    return queues[role]


def worker_queues() -> list[str]:
    """The queues a general-purpose worker consumes: every role's (``media,enrich,default``)."""
    queues = role_queues()
    return [queues[r] for r in ROLES]


@dataclass(frozen=True)
class Worker:
    """One ``airflow celery worker`` process (a container replica in docker-compose.yaml)."""

    name: str  # its --celery-hostname is ``NAME@%h``; its task instances' hostname is ``NAME@host``
    queues: tuple[str, ...]
    concurrency: int

    def argv(self, airflow: str, pid_file: str) -> list[str]:
        """The command line of this worker (``airflow`` the airflow executable)."""
        return [
            airflow, "celery", "worker",
            "--celery-hostname", f"{self.name}@%h",
            "--queues", ",".join(self.queues),
            "--concurrency", str(self.concurrency),
            "--pid", pid_file,
            "--skip-serve-logs",  # several workers on one machine: the API server reads the log files
        ]  # fmt: skip


def local_workers(count: int = 2, concurrency: int = 1) -> list[Worker]:
    """The local Celery topology: ``count`` workers on every queue, ``concurrency`` task slots each."""
    return [Worker(f"worker{i + 1}", tuple(worker_queues()), concurrency) for i in range(count)]


def celery_airflow_env(*, broker_url: str, result_backend: str, heartbeat_timeout: int = 0) -> dict[str, str]:
    """The AIRFLOW__* settings of a CeleryExecutor deployment (besides the metadata DB and API URLs).
    ``heartbeat_timeout`` > 0: the scheduler declares a task whose worker vanished failed (and retries
    it) after this many seconds instead of Airflow's 300."""
    env = {
        "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
        "AIRFLOW__CELERY__BROKER_URL": broker_url,
        "AIRFLOW__CELERY__RESULT_BACKEND": result_backend,
        "AIRFLOW__CELERY__WORKER_PREFETCH_MULTIPLIER": "1",  # a busy worker does not hoard tasks
        "AIRFLOW__CELERY__TASK_ACKS_LATE": "True",  # a task of a dead worker is not lost
        "AIRFLOW__OPERATORS__DEFAULT_QUEUE": DEFAULT_QUEUE,
        # each task instance records the worker it ran on (WORKER@host), not only the machine
        "AIRFLOW__CORE__HOSTNAME_CALLABLE": "vam.orchestration.topology.task_hostname",
    }
    if heartbeat_timeout > 0:
        env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT"] = str(heartbeat_timeout)
        env["AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL"] = "5"
    return env


def task_hostname() -> str:
    """``[core] hostname_callable`` of a Celery deployment: ``VAM_WORKER_NAME@fqdn`` inside a worker
    (the worker's name is in its environment), the plain FQDN elsewhere."""
    import os
    import socket

    fqdn = socket.getfqdn()
    name = os.environ.get("VAM_WORKER_NAME")
    return f"{name}@{fqdn}" if name else fqdn

"""The one package of vam that talks to Airflow.

- :mod:`~vam.orchestration.env`: Airflow settings for running vam's DAGs in this process, and the
  metadata database (safe to initialise from several processes at once);
- :mod:`~vam.orchestration.connections`: Airflow connections -> storage clients -> a
  :class:`~vam.runtime.Runtime`;
- :mod:`~vam.orchestration.failures`: how a step's exception becomes a task outcome (permanent
  failures are not retried; every failure is recorded against the asset), and SIGTERM stopping
  media processes;
- :mod:`~vam.orchestration.runner`: running a DAG in this process (``vam process``);
- :mod:`~vam.orchestration.topology`: Celery queues by task role, worker processes, the CeleryExecutor's
  Airflow settings (one source for ``VAM_EXECUTOR=celery make run`` and docker-compose.yaml);
- :mod:`~vam.orchestration.local_celery`: the development stack's CeleryExecutor (Redis, workers).

``plugins/operators/`` (the operator library) and the high-level calls / CLI use it; nothing else
under ``src/vam`` imports it or Airflow, so the core stays usable without Airflow.
"""

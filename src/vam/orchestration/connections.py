"""Airflow connections -> storage clients -> the runtime of a task.

S3 credentials come from the Airflow connection named by the operator's ``aws_conn_id`` (default
``aws_default``; ``endpoint_url`` in its extra for S3-compatible stores) when it exists, else from
vam's settings and the standard ``AWS_*`` variables. Never from code.
"""

from __future__ import annotations

import logging
import threading

from vam.runtime import Runtime

log = logging.getLogger(__name__)

_lock = threading.Lock()
_cache: dict[tuple, Runtime] = {}


def runtime(*, aws_conn_id: str | None = None) -> Runtime:
    """The runtime for the current settings, with S3 configured from the Airflow connection
    ``aws_conn_id`` (default: the ``aws_conn_id`` setting) when it is defined. Built once per
    process, settings and connection (tasks may share a process)."""
    from vam import storage
    from vam.settings import load_settings

    settings = load_settings()
    conn_id = aws_conn_id or settings.aws_conn_id
    key = (settings, conn_id)
    with _lock:
        rt = _cache.get(key)
        if rt is None:
            rt = Runtime(settings)
            client = s3_client_from_connection(conn_id)
            storage.configure(s3_client=client)
            _cache.clear()  # one configuration of the storage clients at a time
            _cache[key] = rt
        return rt


def s3_client_from_connection(conn_id: str):
    """A boto3 S3 client built by the Amazon provider's S3Hook from connection ``conn_id``, or None
    when no such connection exists."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        log.info("no Airflow connection %r: S3 settings come from VAM_* / AWS_* variables", conn_id)
        return None
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    log.info("S3 client from Airflow connection %r", conn_id)
    return S3Hook(aws_conn_id=conn_id).get_conn()

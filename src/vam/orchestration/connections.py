"""Airflow connections -> storage clients -> the runtime of a task.

Credentials come from Airflow connections when they exist, else from the standard variables of
each client; never from code:

- S3: the connection named by the operator's ``aws_conn_id`` (default ``aws_default``;
  ``endpoint_url`` in its extra for S3-compatible stores), else ``VAM_S3_*`` / ``AWS_*``;
- FTP/FTPS: ``ftp_conn_id`` (default ``ftp_default``: host, port, login, password; extra
  ``{"tls": true}`` for explicit FTPS), else the URI's user, ``VAM_FTP_USER`` / ``VAM_FTP_PASSWORD``;
- GCS: ``gcp_conn_id`` (default ``google_cloud_default``: extra ``keyfile_dict`` or ``key_path``),
  else Application Default Credentials (``STORAGE_EMULATOR_HOST`` honoured);
- Azure Blob: ``azure_conn_id`` (default ``wasb_default``: extra ``connection_string``, or login =
  account name and password = key), else ``AZURE_STORAGE_CONNECTION_STRING``.
"""

from __future__ import annotations

import json
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
            _configure_other_stores(settings)
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


def _connection(conn_id: str):
    """The Airflow connection ``conn_id``, or None when it is not defined."""
    from airflow.sdk import BaseHook
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return BaseHook.get_connection(conn_id)
    except AirflowNotFoundException:
        return None


def _configure_other_stores(settings) -> None:
    """FTP, GCS and Azure clients from their Airflow connections, when those exist."""
    conn = _connection(settings.ftp_conn_id)
    if conn is not None and conn.host:
        from vam.storage import ftp

        extra = conn.extra_dejson or {}
        tls = extra.get("tls")
        ftp.add_credentials(
            conn.host,
            conn.port,
            conn.login or "anonymous",
            conn.password or "",
            tls=None if tls is None else bool(tls),
        )
        log.info("FTP credentials for %s from Airflow connection %r", conn.host, settings.ftp_conn_id)
    conn = _connection(settings.gcp_conn_id)
    if conn is not None:
        from vam.storage import configure_store
        from vam.storage.gs import GCSStore, make_gcs_client

        extra = conn.extra_dejson or {}
        info = extra.get("keyfile_dict") or extra.get("extra__google_cloud_platform__keyfile_dict")
        path = extra.get("key_path") or extra.get("extra__google_cloud_platform__key_path")
        credentials = None
        if info or path:
            from google.oauth2 import service_account

            credentials = (
                service_account.Credentials.from_service_account_info(
                    json.loads(info) if isinstance(info, str) else info
                )
                if info
                else service_account.Credentials.from_service_account_file(path)
            )
        project = extra.get("project") or extra.get("extra__google_cloud_platform__project") or None
        configure_store("gs", GCSStore(make_gcs_client(project=project, credentials=credentials)))
        log.info("GCS client from Airflow connection %r", settings.gcp_conn_id)
    conn = _connection(settings.azure_conn_id)
    if conn is not None:
        from vam.storage import configure_store
        from vam.storage.az import AzureStore, make_azure_client

        extra = conn.extra_dejson or {}
        connection_string = extra.get("connection_string")
        if connection_string:
            client = make_azure_client(connection_string=connection_string)
        else:
            account_url = conn.host or f"https://{conn.login}.blob.core.windows.net"
            credential = {"account_name": conn.login, "account_key": conn.password} if conn.password else None
            client = make_azure_client(account_url=account_url, credential=credential)
        configure_store("az", AzureStore(client))
        log.info("Azure Blob client from Airflow connection %r", settings.azure_conn_id)

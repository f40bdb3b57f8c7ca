"""Running a vam pipeline step inside an Airflow task.

Storage clients come from Airflow connections when they exist (``aws_default`` or the
connection named by VAM_AWS_CONN_ID), else from vam's settings (VAM_S3_ENDPOINT_URL and the
standard AWS variables). Every failure is recorded against the asset (the last one becomes its
reason if the run ends without it ready); a :class:`~vam.errors.PermanentFailure` (rejected
source, invalid metadata, failed quality gate) fails the task without retries, anything else
is re-raised so Airflow retries it.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

_runtime = None


def runtime():  # -> vam.pipeline.Runtime
    """The vam runtime for the current settings, with S3 configured from the Airflow connection
    if one is defined. Built once per process and settings (tasks may share a process)."""
    global _runtime
    from vam.settings import load_settings

    settings = load_settings()
    if _runtime is None or _runtime.settings != settings:
        from vam import storage
        from vam.pipeline import Runtime

        rt = Runtime(settings)
        client = _s3_client_from_connection(settings.aws_conn_id)
        if client is not None:
            storage.configure(s3_client=client)
        _runtime = rt
    return _runtime


def _s3_client_from_connection(conn_id: str):
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


def run_step(step: str, asset_id: str | None, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Call ``fn(runtime, *args, **kwargs)`` with vam's failure semantics (see module doc)."""
    from airflow.sdk.exceptions import AirflowFailException

    from vam.errors import PermanentFailure

    rt = runtime()
    _kill_media_on_sigterm()
    try:
        return fn(rt, *args, **kwargs)
    except PermanentFailure as exc:  # retrying cannot help: fail now, with the reason
        _record(rt, asset_id, step, exc)
        raise AirflowFailException(str(exc)) from exc
    except Exception as exc:
        _record(rt, asset_id, step, exc)
        raise


def _record(rt: Any, asset_id: str | None, step: str, exc: BaseException) -> None:
    if not asset_id:
        return
    from vam.pipeline import record_failure

    try:
        record_failure(rt, asset_id, step, exc)
    except Exception:  # the catalog may be what failed; the task error matters more
        log.exception("could not record the failure of %s in the catalog", step)


def _kill_media_on_sigterm() -> None:
    """Airflow stops a task with SIGTERM (then SIGKILL). ffmpeg runs in its own process group, so
    chain a handler that kills it first; the step then fails with ffmpeg's exit status."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "_vam_kills_media", False):
        return

    def handler(signum: int, frame: Any) -> None:
        from vam.media.tools import kill_running

        log.warning("SIGTERM: stopping the media processes of this task")
        kill_running()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody else handles it: terminate as before
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    handler._vam_kills_media = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, handler)

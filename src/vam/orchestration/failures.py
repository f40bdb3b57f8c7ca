"""How a step's outcome becomes a task's outcome.

Every failure is recorded against the asset (the last one becomes its reason if the run ends
without it ready). A :class:`~vam.errors.PermanentFailure` (rejected source, invalid metadata,
failed quality gate) fails the task without retries; anything else is re-raised so Airflow retries
it. Airflow stops a task with SIGTERM: the media processes it started are stopped first.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable
from typing import Any

from vam.runtime import Runtime

log = logging.getLogger(__name__)


def run_step(
    rt: Runtime, step: str, asset_id: str | None, fn: Callable[..., Any], *args: Any, **kwargs: Any
) -> Any:
    """Call ``fn(rt, *args, **kwargs)`` with vam's failure semantics (see the module doc)."""
    from airflow.sdk.exceptions import AirflowFailException

    from vam.errors import PermanentFailure

    kill_media_on_sigterm()
    try:
        return fn(rt, *args, **kwargs)
    except PermanentFailure as exc:  # retrying cannot help: fail now, with the reason
        _record(rt, asset_id, step, exc)
        raise AirflowFailException(str(exc)) from exc
    except Exception as exc:
        _record(rt, asset_id, step, exc)
        raise


def _record(rt: Runtime, asset_id: str | None, step: str, exc: BaseException) -> None:
    if not asset_id:
        return
    from vam.steps.finalize import record_failure

    try:
        record_failure(rt, asset_id, step, exc)
    except Exception:  # the catalog may be what failed; the task error matters more
        log.exception("could not record the failure of %s in the catalog", step)


def kill_media() -> int:
    """Stop every media process (ffmpeg, ffprobe) this process started; for ``on_kill``."""
    from vam.media.tools import kill_running

    return kill_running()


def kill_media_on_sigterm() -> None:
    """Airflow stops a task with SIGTERM (then SIGKILL). ffmpeg runs in its own process group, so
    chain a handler that kills it first; the step then fails with ffmpeg's exit status."""
    if threading.current_thread() is not threading.main_thread():
        return
    previous = signal.getsignal(signal.SIGTERM)
    if getattr(previous, "_vam_kills_media", False):
        return

    def handler(signum: int, frame: Any) -> None:
        log.warning("SIGTERM: stopping the media processes of this task")
        kill_media()
        if callable(previous):
            previous(signum, frame)
        elif previous == signal.SIG_DFL:  # nobody else handles it: terminate as before
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)

    handler._vam_kills_media = True  # type: ignore[attr-defined]
    signal.signal(signal.SIGTERM, handler)

"""The base of vam's operators: a runtime per task, vam's failure semantics, ``on_kill``."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from vam.runtime import Runtime


class VamOperator(BaseOperator):
    """Runs one step of :mod:`vam.steps` (subclasses say which in ``execute``)."""

    ui_color = "#dbeafe"
    step: str = ""  # the name a failure is recorded under (default: the task id)
    # the Celery queue by role (media, enrich, default; vam.orchestration.topology): an explicit
    # ``queue=`` (argument or default_args) wins; the LocalExecutor ignores queues
    queue_role: str = "default"

    def __init__(self, *, aws_conn_id: str = "aws_default", **kwargs: Any) -> None:
        super().__init__(**_with_role_queue(self.queue_role, kwargs))
        self.aws_conn_id = aws_conn_id

    @classmethod
    def partial(cls, **kwargs: Any) -> Any:  # type: ignore[override]
        """As BaseOperator.partial, with the role's queue (a mapped task is not built by __init__)."""
        from airflow.sdk.definitions._internal.contextmanager import DagContext

        dag = kwargs.get("dag") or DagContext.get_current()
        if dag is not None and "queue" in (dag.default_args or {}):
            return super().partial(**kwargs)
        return super().partial(**_with_role_queue(cls.queue_role, kwargs))

    def runtime(self, context: Context) -> Runtime:
        """vam's runtime for this task: settings, clients from the connections, and a work-dir name
        of this task instance's own."""
        from vam.orchestration.connections import runtime

        ti = context["ti"]
        tag = f"{context['run_id']}-{ti.task_id}-{ti.map_index}"
        return dataclasses.replace(runtime(aws_conn_id=self.aws_conn_id), run_id=re.sub(r"[^\w.-]", "_", tag))

    def call(
        self, context: Context, asset_id: str | None, fn: Callable[..., Any], *args: Any, **kw: Any
    ) -> Any:
        """``fn(runtime, *args, **kw)`` with vam's failure semantics (see vam.orchestration.failures)."""
        from vam.orchestration.failures import run_step

        return run_step(self.runtime(context), self.step or self.task_id, asset_id, fn, *args, **kw)

    def on_kill(self) -> None:
        from vam.orchestration.failures import kill_media

        kill_media()


def _with_role_queue(role: str, kwargs: dict[str, Any]) -> dict[str, Any]:
    if role == "default" or "queue" in kwargs or "queue" in (kwargs.get("default_args") or {}):
        return kwargs
    from vam.orchestration.topology import queue_for

    return {**kwargs, "queue": queue_for(role)}


def require(value: Any, what: str) -> Any:
    """``value``, or a task failure (not retried) that says what is missing."""
    if value in (None, "", [], {}):
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException(f"{what} is required")
    return value

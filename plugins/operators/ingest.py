"""Ingest operators: register a source, find new sources under a landing URI, wait for them.

Example::

    from operators.ingest import VamDiscoverOperator, VamLandingSensor, VamRegisterOperator

    wait = VamLandingSensor(task_id="wait", landing_uri="s3://partner-drop/in/", deferrable=True)
    found = VamDiscoverOperator(task_id="discover", landing_uri="s3://partner-drop/in/")
    wait >> found
    asset = VamRegisterOperator(task_id="register", source_uri="{{ params.source_uri }}")
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from operators._base import VamOperator, require

if TYPE_CHECKING:
    from airflow.sdk import Context


class VamRegisterOperator(VamOperator):
    """Hash a source (``s3://``, ``file://`` or a local path), create or find its asset, hold it for
    this run (a second run of the same bytes waits for the first), and validate the metadata that
    came with it (sidecar file, ``tags``): invalid metadata rejects the asset at once.

    Returns ``{"asset_id", "source_uri", "sha256", "size_bytes", "created", "process", "status"}``,
    each key also its own XCom, so later tasks take ``register.output["asset_id"]``. When the
    catalog already has the answer (the bytes are ready with this ``profile``, or rejected, or
    another run just processed them) and ``force`` is off, the rest of the run is skipped: its
    outcome is the catalog's."""

    template_fields = ("source_uri", "title", "tags", "profile", "force", "landing")

    def __init__(
        self,
        *,
        source_uri: str,
        title: str | None = None,
        tags: dict | None = None,
        profile: str | None = None,
        force: bool | str = False,
        landing: str | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("multiple_outputs", True)
        super().__init__(**kwargs)
        self.landing = landing
        self.source_uri = source_uri
        self.title = title
        self.tags = tags
        self.profile = profile
        self.force = force

    def execute(self, context: Context) -> dict:
        from airflow.sdk.exceptions import AirflowSkipException

        from vam.steps.register import register

        source = require(self.source_uri, "source_uri (an s3://, file:// URI or a local path)")
        result = self.call(
            context,
            None,
            register,
            source,
            title=self.title or None,
            tags=self.tags or None,
            profile=self.profile or None,
            force=str(self.force).lower() in ("true", "1", "yes"),
            run_id=context["run_id"],
            landing=self.landing or None,
        )
        if not result["process"]:
            ti = context["ti"]
            for key, value in result.items():
                ti.xcom_push(key=key, value=value)
            ti.xcom_push(key="return_value", value=result)
            if result.get("rejected_now"):
                from airflow.sdk.exceptions import AirflowFailException

                raise AirflowFailException(f"asset {result['asset_id']} rejected: {result['reason']}")
            raise AirflowSkipException(
                f"asset {result['asset_id']} is already {result['status']}: the catalog answers"
                " (conf force re-runs it)"
            )
        return result


class VamLandingsOperator(VamOperator):
    """The configured landing places (setting ``landings``, else ``landing_uri``), one dict each:
    map :class:`VamDiscoverOperator` over them."""

    template_fields = ()

    def execute(self, context: Context) -> list[dict]:
        from vam.steps.ingest import landings

        return self.call(context, None, landings)


class VamDiscoverOperator(VamOperator):
    """The new, complete sources under one landing place (``landing``: a dict from
    :class:`VamLandingsOperator`, or a URI; default: the ``landing_uri`` setting), one per new
    asset: ``[{"asset_id", "source_uri", "sha256", "size_bytes", "landing", "profile", "tags"}]``.
    Objects still being written (no marker yet, or not stable across the window) wait for a later
    poll; known bytes under a new key are recorded as a duplicate of their asset."""

    template_fields = ("landing",)

    def __init__(self, *, landing: dict | str | None = None, limit: int = 100, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.landing = landing
        self.limit = limit

    def execute(self, context: Context) -> list[dict]:
        from vam.steps.ingest import discover

        return self.call(context, None, discover, self.landing or None, limit=self.limit)


class VamProcessingRunsOperator(VamOperator):
    """Arguments of one ``vam_process`` run per new asset (for ``TriggerDagRunOperator.partial(...)
    .expand_kwargs(...)``) from what the discover tasks of every landing place found; the run id
    is derived from the asset id, so overlapping polls never start one asset twice."""

    template_fields = ("found",)

    def __init__(self, *, found: list, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.found = found

    def execute(self, context: Context) -> list[dict]:
        from vam.steps.ingest import trigger_args

        return trigger_args(list(self.found or []))


class VamLandingSensor(BaseSensorOperator):
    """Waits until objects vam has not seen appear under ``landing_uri`` (default: every configured
    landing place); returns them (``[{"uri", "size_bytes", "etag"}]``). With ``deferrable=True``
    the wait happens in the triggerer (:class:`operators.triggers.VamLandingTrigger`) and holds no
    worker slot."""

    template_fields = ("landing_uri",)
    ui_color = "#dbeafe"

    def __init__(
        self,
        *,
        landing_uri: str | None = None,
        aws_conn_id: str = "aws_default",
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.landing_uri = landing_uri
        self.aws_conn_id = aws_conn_id
        self.deferrable = deferrable

    def _landings(self) -> list[str]:
        from vam.orchestration.connections import runtime
        from vam.steps.ingest import landings

        if self.landing_uri:
            return [self.landing_uri]
        return [item["uri"] for item in landings(runtime(aws_conn_id=self.aws_conn_id))]

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        from operators.triggers import VamLandingTrigger

        found = self.poke(context)
        if found.is_done:
            return found.xcom_value
        self.defer(
            trigger=VamLandingTrigger(
                landing_uris=self._landings(), aws_conn_id=self.aws_conn_id, poll_interval=self.poke_interval
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def poke(self, context: Context) -> PokeReturnValue:
        from vam.orchestration.connections import runtime
        from vam.steps.ingest import unseen_objects

        rt = runtime(aws_conn_id=self.aws_conn_id)
        found = [obj for uri in self._landings() for obj in unseen_objects(rt, uri)]
        return PokeReturnValue(is_done=bool(found), xcom_value=found)

    def execute_complete(self, context: Context, event: dict[str, Any]) -> list[dict]:
        if event.get("status") != "found":
            from airflow.sdk.exceptions import AirflowException

            raise AirflowException(f"waiting for {self.landing_uri} failed: {event.get('message')}")
        return event["objects"]


class VamArchivePlanOperator(VamOperator):
    """Bulk archive ingest, first step: list ``prefix`` page by page, select with ``glob`` and the
    modification window, and write batches of the keys not finished yet. Returns the batch URIs
    (map :class:`VamArchiveBatchOperator` over them); the XCom ``summary`` holds ``{"job",
    "keys_uri", "selected", "to_process", "listed"}``."""

    template_fields = ("prefix", "glob", "modified_since", "modified_until", "batch_size")

    def __init__(
        self,
        *,
        prefix: str,
        glob: str | None = None,
        modified_since: str | None = None,
        modified_until: str | None = None,
        batch_size: int | str = 25,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        self.glob = glob
        self.modified_since = modified_since
        self.modified_until = modified_until
        self.batch_size = batch_size

    def execute(self, context: Context) -> list[str]:
        from vam.steps.archive import plan_archive

        planned = self.call(
            context,
            None,
            plan_archive,
            require(self.prefix, "prefix (the archive's URI prefix)"),
            job=context["run_id"],
            glob=self.glob or None,
            modified_since=self.modified_since or None,
            modified_until=self.modified_until or None,
            batch_size=int(self.batch_size or 25),
        )
        context["ti"].xcom_push(key="summary", value={k: v for k, v in planned.items() if k != "batches"})
        return planned["batches"]


class VamArchiveBatchOperator(VamOperator):
    """Process every source of one archive batch in this task (duplicates answered from the
    catalog, one bad file never stops the batch); ``dry_run`` processes nothing. Use with
    ``pool="archive"`` so bulk work never starves live ingest."""

    template_fields = ("batch", "profile", "tags", "dry_run")

    def __init__(
        self,
        *,
        batch: str,
        profile: str | None = None,
        tags: dict | None = None,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch = batch
        self.profile = profile
        self.tags = tags
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict:
        from vam.steps.archive import ingest_batch

        return self.call(
            context,
            None,
            ingest_batch,
            self.batch,
            job=context["run_id"],
            profile=self.profile or None,
            tags=self.tags or None,
            dry_run=str(self.dry_run).lower() in ("true", "1", "yes"),
        )


class VamArchiveReportOperator(VamOperator):
    """The archive ingest's report: every selected key's outcome from the catalog (ingested,
    duplicate of which asset, rejected or failed with the reason, pending), counts and bytes per
    outcome, extension and folder, as CSV and HTML next to the outputs; a summary in the log.
    ``keys_uri`` defaults to the keys this run's plan selected."""

    template_fields = ("keys_uri",)

    def __init__(self, *, keys_uri: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.keys_uri = keys_uri

    def execute(self, context: Context) -> dict:
        from vam.steps.archive import report

        return self.call(context, None, report, self.keys_uri or None, job=context["run_id"])

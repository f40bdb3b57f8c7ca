"""Triggers of vam's deferrable operators (run by Airflow's triggerer)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent


class VamLandingTrigger(BaseTrigger):
    """Fires when objects that vam has not seen appear under one of ``landing_uris`` (same rules as
    the ingest DAG: in-progress uploads, sidecars, markers and hidden files are not sources). Polls
    every ``poll_interval`` seconds; the listing runs in a thread, so the triggerer's loop never
    blocks."""

    def __init__(
        self, *, landing_uris: list[str], aws_conn_id: str = "aws_default", poll_interval: float = 30.0
    ):
        super().__init__()
        self.landing_uris = list(landing_uris)
        self.aws_conn_id = aws_conn_id
        self.poll_interval = poll_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "landing_uris": self.landing_uris,
                "aws_conn_id": self.aws_conn_id,
                "poll_interval": self.poll_interval,
            },
        )

    def _unseen(self) -> list[dict[str, Any]]:
        from vam.orchestration.connections import runtime
        from vam.steps.ingest import unseen_objects

        rt = runtime(aws_conn_id=self.aws_conn_id)
        return [obj for uri in self.landing_uris for obj in unseen_objects(rt, uri)]

    async def run(self) -> AsyncIterator[TriggerEvent]:
        while True:
            try:
                found = await asyncio.to_thread(self._unseen)
            except Exception as exc:  # a listing error ends the wait with the reason
                yield TriggerEvent({"status": "error", "message": f"{type(exc).__name__}: {exc}"})
                return
            if found:
                self.log.info("%d new object(s) under %s", len(found), ", ".join(self.landing_uris))
                yield TriggerEvent({"status": "found", "objects": found})
                return
            await asyncio.sleep(self.poll_interval)

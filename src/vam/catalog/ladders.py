"""Catalog rows of the per-title ladder analysis: trial points per candidate size, the chosen ladder.

Mixed into :class:`vam.catalog.repo.Catalog`; tables from ``sql/009_ladder_analysis.sql``.
"""

from __future__ import annotations

from typing import Any

from vam.catalog.enrichment import _json


class LadderRows:
    """Per-title analysis rows (needs the host's ``_tx``)."""

    def upsert_ladder_trial(
        self,
        asset_id: str,
        profile: str,
        candidate: str,
        *,
        height: int,
        samples: list[dict[str, Any]],
        points: list[dict[str, Any]],
        seconds: float | None = None,
    ) -> None:
        """The trial points of one candidate size (re-runs overwrite them)."""
        with self._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "INSERT INTO ladder_trials (asset_id, profile, candidate, height, samples, points, seconds)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (asset_id, profile, candidate) DO UPDATE SET height = EXCLUDED.height,"
                " samples = EXCLUDED.samples, points = EXCLUDED.points, seconds = EXCLUDED.seconds,"
                " updated_at = now()",
                (asset_id, profile, candidate, height, _json(samples), _json(points), seconds),
            )

    def ladder_trials(self, asset_id: str, profile: str) -> list[dict[str, Any]]:
        """The trial rows of an asset's profile, largest size first."""
        with self._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "SELECT candidate, height, samples, points, seconds FROM ladder_trials"
                " WHERE asset_id = %s AND profile = %s ORDER BY height DESC",
                (asset_id, profile),
            )
            return [dict(row) for row in cur.fetchall()]

    def clear_ladder_trials(self, asset_id: str, profile: str, keep: list[str]) -> None:
        """Forget trial rows of sizes this run did not try (a re-run with another source size)."""
        with self._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "DELETE FROM ladder_trials WHERE asset_id = %s AND profile = %s AND NOT candidate = ANY(%s)",
                (asset_id, profile, list(keep)),
            )

    def set_ladder_analysis(
        self, asset_id: str, profile: str, analysis: dict[str, Any], chart_uri: str | None
    ) -> None:
        """The chosen ladder and why (re-runs overwrite it)."""
        with self._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "INSERT INTO ladder_analyses (asset_id, profile, analysis, chart_uri) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (asset_id, profile) DO UPDATE SET analysis = EXCLUDED.analysis,"
                " chart_uri = EXCLUDED.chart_uri, updated_at = now()",
                (asset_id, profile, _json(analysis), chart_uri),
            )

    def ladder_analysis(self, asset_id: str, profile: str | None) -> dict[str, Any] | None:
        """The chosen ladder of an asset's profile with its chart URI, or None (a fixed ladder)."""
        if not profile:
            return None
        with self._tx() as cur:  # type: ignore[attr-defined]
            cur.execute(
                "SELECT analysis, chart_uri FROM ladder_analyses WHERE asset_id = %s AND profile = %s",
                (asset_id, profile),
            )
            row = cur.fetchone()
        if row is None:
            return None
        return {**row["analysis"], "chart_uri": row["chart_uri"]}

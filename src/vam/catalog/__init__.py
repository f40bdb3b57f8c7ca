"""The PostgreSQL catalog: assets, renditions, quality metrics, stored objects, enrichment and the
audit log. :class:`Catalog` is its one public API; :func:`vam.catalog.dsn.resolve_dsn` finds the
database."""

from __future__ import annotations

from vam.catalog.repo import STATUSES, TERMINAL_STATUSES, Catalog, asset_id_for, open_catalog

__all__ = ["STATUSES", "TERMINAL_STATUSES", "Catalog", "asset_id_for", "open_catalog"]

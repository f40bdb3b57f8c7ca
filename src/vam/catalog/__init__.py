"""The PostgreSQL catalog: assets, renditions, quality metrics, stored objects and the audit log."""

from __future__ import annotations

from vam.catalog.repo import TERMINAL_STATUSES, Catalog, open_catalog

__all__ = ["TERMINAL_STATUSES", "Catalog", "open_catalog"]

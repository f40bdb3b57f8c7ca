"""Search the catalog: full text over titles, tags, labels and transcripts, or semantic search over
transcript segments with the model that embedded them."""

from __future__ import annotations

from typing import Any

from vam.runtime import Runtime


def search(
    rt: Runtime,
    query: str,
    *,
    mode: str = "text",
    filters: Any = None,
    limit: int = 20,
    min_score: float | None = None,
) -> list[dict[str, Any]]:
    """Hits ``{asset_id, title, status, score, matches: [{start, end, text}]}``, best first
    (``filters``: a :class:`vam.catalog.search.SearchFilters`)."""
    from vam.catalog.search import search as search_catalog

    embed = None
    if mode == "semantic":
        from vam.enrich.embeddings import embed
    with rt.catalog() as cat:
        return search_catalog(
            cat, query, mode=mode, filters=filters, limit=limit, min_score=min_score, embed=embed
        )

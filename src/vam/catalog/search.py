"""Search the catalog: full-text over title, tags, labels and transcripts, or semantic over transcripts.

Text mode parses the query with ``websearch_to_tsquery('english', ...)`` (words, "quoted phrases",
``or``, ``-word``), matches it against each asset's weighted search document (title A, tags and
labels B, transcript C) and ranks with ``ts_rank_cd`` normalised to [0, 1). A hit's ``matches`` are
its transcript segments that match the query, in time order, so a player can jump to them; when no
single segment holds the whole query (its words are spread over several), the segments holding any
of its words are given instead. An empty query lists the assets the filters select, newest first.

Semantic mode embeds the query with the caller's ``embed`` (the model that embedded the segments) and
compares it (cosine) with every transcript segment embedding of the assets the filters select,
computed in numpy: an asset scores its best segment, and its matches are its best segments above
a floor, best first. This is a brute-force scan; see bench/README_search.md for what it costs.

Hits: ``{"asset_id", "title", "score", "status", "matches": [{"start", "end", "text", ...}]}``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg2.extras import Json

from vam.catalog.enrichment import EMBEDDING_DIM
from vam.catalog.repo import STATUSES, Catalog
from vam.errors import VamError

log = logging.getLogger(__name__)

MODES = ("text", "semantic")
MATCHES_PER_ASSET = 5
SEMANTIC_MIN_SCORE = 0.25  # cosine below this is not a match (sentence-embedding scale)
MAX_LIMIT = 1000
_FETCH_ROWS = 5000  # segment embeddings fetched per round trip in semantic mode
_ROW_WORDS = 5 + 2 * EMBEDDING_DIM  # array_send of a 1-D real[]: 5 header words, then (length, value) pairs


class SearchError(VamError):
    """A search request that cannot be run (unknown mode, bad filter)."""


@dataclass(frozen=True)
class SearchFilters:
    """Restrictions on the assets a search may return; None means no restriction.

    Duration (seconds), height (display height, pixels) and codec (video codec, e.g. h264) come
    from the probed source. ``tags`` maps a tag key to a value the asset must have: for a list tag
    (product_ids, tags, countries) the asset's list must contain the value (or all values of a
    list); give values in their stored form (country codes upper case, free tags lower case).
    ``labels``: the asset has every one of these visual labels. ``flagged``: moderation flag set
    (True) or not set (False, which includes assets not moderated yet).
    """

    min_duration: float | None = None
    max_duration: float | None = None
    min_height: int | None = None
    max_height: int | None = None
    codec: str | None = None
    status: str | Sequence[str] | None = None
    tags: dict[str, Any] | None = None
    labels: Sequence[str] | None = None
    flagged: bool | None = None
    include_deleted: bool = False  # soft-deleted assets (vam delete) are left out unless this is set

    def sql(self) -> tuple[list[str], dict[str, Any]]:
        """WHERE conditions over ``assets a`` and their parameters (values are always bound)."""
        where: list[str] = [] if self.include_deleted else ["a.deleted_at IS NULL"]
        params: dict[str, Any] = {}
        ranges = (
            ("min_duration", "a.duration_s >= %(f_min_duration)s"),
            ("max_duration", "a.duration_s <= %(f_max_duration)s"),
            ("min_height", "a.video_height >= %(f_min_height)s"),
            ("max_height", "a.video_height <= %(f_max_height)s"),
        )
        for name, condition in ranges:
            value = getattr(self, name)
            if value is not None:
                if isinstance(value, bool) or not isinstance(value, int | float):
                    raise SearchError(f"filter {name} must be a number, got {value!r}")
                where.append(condition)
                params[f"f_{name}"] = value
        if self.codec:
            where.append("a.video_codec = %(f_codec)s")
            params["f_codec"] = self.codec.strip().lower()
        if self.status:
            statuses = [self.status] if isinstance(self.status, str) else list(self.status)
            unknown = sorted(set(statuses) - set(STATUSES))
            if unknown:
                raise SearchError(f"unknown status {', '.join(unknown)}; one of {', '.join(STATUSES)}")
            where.append("a.status = ANY(%(f_status)s)")
            params["f_status"] = statuses
        for i, (key, value) in enumerate(sorted((self.tags or {}).items())):
            if not isinstance(key, str) or value is None:
                raise SearchError(f"tag filter {key!r}: give a key and a value")
            if isinstance(value, list | tuple):
                where.append(f"a.tags @> %(f_tag{i})s")
                params[f"f_tag{i}"] = Json({key: list(value)})
            else:  # the key holds this value, or a list containing it
                where.append(f"(a.tags @> %(f_tag{i})s OR a.tags @> %(f_tag{i}_in)s)")
                params[f"f_tag{i}"] = Json({key: value})
                params[f"f_tag{i}_in"] = Json({key: [value]})
        if self.labels:
            labels = sorted({str(label) for label in self.labels})
            where.append(
                "a.asset_id IN (SELECT l.asset_id FROM asset_labels l WHERE l.label = ANY(%(f_labels)s)"
                " GROUP BY l.asset_id HAVING count(*) = %(f_n_labels)s)"
            )
            params["f_labels"] = labels
            params["f_n_labels"] = len(labels)
        if self.flagged is not None:
            where.append("a.moderation_flagged" if self.flagged else "a.moderation_flagged IS NOT TRUE")
        return where, params


def search(
    cat: Catalog,
    query: str,
    *,
    mode: str = "text",
    filters: SearchFilters | None = None,
    limit: int = 20,
    min_score: float | None = None,
    embed: Callable[[list[str]], Any] | None = None,
) -> list[dict[str, Any]]:
    """The assets matching ``query``, best first (see the module docstring for the two modes).

    ``min_score`` drops hits (and, in semantic mode, matches) scoring below it; in semantic mode it
    defaults to :data:`SEMANTIC_MIN_SCORE`. Semantic mode needs ``embed``, the function that
    embedded the transcript segments (texts -> array of shape (n, 384)), to embed the query.
    """
    if mode not in MODES:
        raise SearchError(f"unknown search mode {mode!r}; one of {', '.join(MODES)}")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise SearchError(f"limit must be an integer from 1 to {MAX_LIMIT}, got {limit!r}")
    query = (query or "").strip()
    where, params = (filters or SearchFilters()).sql()
    if mode == "semantic":
        if not query:
            raise SearchError("semantic search needs a query")
        if embed is None:
            raise SearchError("semantic search needs the embedding function of the transcripts (embed=)")
        floor = SEMANTIC_MIN_SCORE if min_score is None else min_score
        return _semantic(cat, _embed_query(query, embed), where, params, limit, floor)
    if not query:
        return _browse(cat, where, params, limit)
    return _text(cat, query, where, params, limit, min_score or 0.0)


def _where(conditions: list[str]) -> str:
    # Only the fixed condition strings built by SearchFilters.sql() are joined here; values are bound.
    return "".join(f" AND {c}" for c in conditions)


def _browse(cat: Catalog, where: list[str], params: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    with cat._tx() as cur:
        cur.execute(
            "SELECT a.asset_id, a.title, a.status FROM assets a WHERE true"
            + _where(where)
            + " ORDER BY a.created_at DESC, a.asset_id LIMIT %(limit)s",
            {**params, "limit": limit},
        )
        rows = cur.fetchall()
    return [{**_hit(r), "score": 0.0, "matches": []} for r in rows]


def _hit(row: dict[str, Any]) -> dict[str, Any]:
    return {"asset_id": row["asset_id"], "title": row["title"], "status": row["status"]}


def _text(
    cat: Catalog, query: str, where: list[str], params: dict[str, Any], limit: int, min_score: float
) -> list[dict[str, Any]]:
    params = {**params, "query": query, "limit": limit, "min_score": min_score}
    rank = "ts_rank_cd(d.document, websearch_to_tsquery('english', %(query)s), 32)"
    # No condition on the rank unless asked: one the planner cannot estimate spoils the join order.
    conditions = [*where, f"{rank} >= %(min_score)s"] if min_score > 0 else where
    with cat._tx() as cur:
        cur.execute(
            f"SELECT a.asset_id, a.title, a.status, {rank} AS score"
            " FROM search_documents d JOIN assets a ON a.asset_id = d.asset_id"
            " WHERE d.document @@ websearch_to_tsquery('english', %(query)s)"
            + _where(conditions)
            + " ORDER BY score DESC, a.asset_id LIMIT %(limit)s",
            params,
        )
        rows = cur.fetchall()
        if not rows:
            return []
        ids = [r["asset_id"] for r in rows]
        cur.execute(
            "WITH q AS (SELECT websearch_to_tsquery('english', %(query)s) AS query),"
            " words AS (SELECT tsvector_to_array(to_tsvector('simple', querytree(query))) AS lexemes FROM q),"
            " seg AS ("
            "  SELECT s.asset_id, s.seq, s.start_s, s.end_s, s.text, s.tsv @@ q.query AS exact,"
            "   row_number() OVER (PARTITION BY s.asset_id, s.tsv @@ q.query ORDER BY s.start_s, s.seq) AS n"
            "  FROM transcript_segments s, q, words"
            "  WHERE s.asset_id = ANY(%(ids)s)"
            "   AND (s.tsv @@ q.query OR tsvector_to_array(s.tsv) && words.lexemes))"
            " SELECT seg.asset_id, seg.start_s, seg.end_s, seg.text, seg.exact,"
            "  ts_headline('english', seg.text, q.query, 'HighlightAll=true') AS highlight"
            " FROM seg, q WHERE seg.n <= %(per_asset)s"
            " ORDER BY seg.asset_id, seg.exact DESC, seg.start_s, seg.seq",
            {"query": query, "ids": ids, "per_asset": MATCHES_PER_ASSET},
        )
        segments = cur.fetchall()
    matches: dict[str, list[dict[str, Any]]] = {}
    exact: dict[str, bool] = {}
    for s in segments:
        if s["asset_id"] in exact and exact[s["asset_id"]] and not s["exact"]:
            continue  # whole-query segments found: the partial ones are not needed
        exact.setdefault(s["asset_id"], s["exact"])
        matches.setdefault(s["asset_id"], []).append(
            {"start": s["start_s"], "end": s["end_s"], "text": s["text"], "highlight": s["highlight"]}
        )
    return [
        {**_hit(r), "score": round(float(r["score"]), 6), "matches": matches.get(r["asset_id"], [])}
        for r in rows
    ]


def _embed_query(query: str, embed: Callable[[list[str]], Any]) -> np.ndarray:
    vector = np.asarray(embed([query]), dtype=np.float32).reshape(-1)
    if vector.shape != (EMBEDDING_DIM,):
        raise SearchError(f"the embedding model returned shape {vector.shape}, expected ({EMBEDDING_DIM},)")
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise SearchError(f"the embedding of {query!r} is zero or not finite")
    return vector / norm


def _decode_embeddings(blobs: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """Rows of ``array_send(real[])`` -> (matrix (n, 384) float32, indexes of the rows used)."""
    size = _ROW_WORDS * 4
    keep = [i for i, b in enumerate(blobs) if len(b) == size]
    if len(keep) != len(blobs):
        log.warning(
            "skipped %d segment embeddings that are not %d plain floats",
            len(blobs) - len(keep),
            EMBEDDING_DIM,
        )
    if not keep:
        return np.empty((0, EMBEDDING_DIM), np.float32), np.empty(0, np.int64)
    buffer = b"".join(bytes(blobs[i]) for i in keep)
    words = np.frombuffer(buffer, dtype=">f4").reshape(len(keep), _ROW_WORDS)
    return words[:, 6::2].astype(np.float32), np.asarray(keep, dtype=np.int64)


def _semantic(
    cat: Catalog, vector: np.ndarray, where: list[str], params: dict[str, Any], limit: int, floor: float
) -> list[dict[str, Any]]:
    candidates: dict[str, list[tuple[float, int]]] = {}
    with cat._tx() as cur, cat.conn.cursor(name="vam_semantic_search") as segs:
        segs.itersize = _FETCH_ROWS
        segs.execute(
            "SELECT s.asset_id, s.seq, array_send(s.embedding) FROM transcript_segments s"
            " JOIN assets a ON a.asset_id = s.asset_id WHERE s.embedding IS NOT NULL" + _where(where),
            params,
        )
        while rows := segs.fetchmany(_FETCH_ROWS):
            matrix, used = _decode_embeddings([r[2] for r in rows])
            if not len(used):
                continue
            norms = np.linalg.norm(matrix, axis=1)
            scores = (matrix @ vector) / np.where(norms > 0, norms, 1.0)
            for j in np.flatnonzero(scores >= floor):
                asset_id, seq = rows[used[j]][0], rows[used[j]][1]
                candidates.setdefault(asset_id, []).append((float(scores[j]), seq))
        ranked = sorted(candidates.items(), key=lambda kv: (-max(kv[1])[0], kv[0]))[:limit]
        if not ranked:
            return []
        best = {aid: sorted(hits, reverse=True)[:MATCHES_PER_ASSET] for aid, hits in ranked}
        pairs = [(aid, seq, score) for aid, hits in best.items() for score, seq in hits]
        cur.execute(
            "SELECT s.asset_id, s.seq, s.start_s, s.end_s, s.text FROM transcript_segments s"
            " JOIN unnest(%s::text[], %s::integer[]) AS p (asset_id, seq)"
            " ON s.asset_id = p.asset_id AND s.seq = p.seq",
            ([p[0] for p in pairs], [p[1] for p in pairs]),
        )
        texts = {(r["asset_id"], r["seq"]): r for r in cur.fetchall()}
        cur.execute(
            "SELECT asset_id, title, status FROM assets WHERE asset_id = ANY(%s)",
            ([aid for aid, _ in ranked],),
        )
        assets = {r["asset_id"]: r for r in cur.fetchall()}
    hits = []
    for asset_id, _ in ranked:
        matches = []
        for score, seq in best[asset_id]:
            seg = texts.get((asset_id, seq))
            if seg is not None:
                matches.append(
                    {
                        "start": seg["start_s"],
                        "end": seg["end_s"],
                        "text": seg["text"],
                        "score": round(score, 6),
                    }
                )
        if asset_id in assets and matches:
            hits.append({**_hit(assets[asset_id]), "score": matches[0]["score"], "matches": matches})
    return hits

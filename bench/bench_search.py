"""Search benchmark: latency of ``vam.catalog.search`` over a synthetic catalog of 100,000 assets.

Run as ``.venv/bin/python bench/bench_search.py [--assets 100000] [--reps 30] [--semantic-assets 10000]``.
It creates a fresh database on the catalog's PostgreSQL (the machine's, or the embedded one),
applies the real migrations, and loads with COPY:

- ``--assets`` assets with source metadata (duration, height, codec), a status, tags (campaign,
  free tags, product ids), 1-3 visual labels and a moderation flag on ~2% of them;
- a transcript per asset of 2-6 segments of 12-30 words drawn from a ~400-word English word list
  with Zipf-like frequencies (word timestamps are not stored: they are not searched), with a rare
  word ("zeppelin", ~0.05% of assets) and a phrase ("climate change", ~1%) planted;
- the search documents, built by the same ``refresh_search_documents`` SQL function the pipeline
  uses, then ANALYZE.

Then it times each query ``--reps`` times after one warm-up run and prints p50/p95/max in
milliseconds with the hit count, and the database size. Semantic mode is a brute-force scan of
segment embeddings (no pgvector here), so it is timed over the first ``--semantic-assets`` assets
only (random unit vectors stand in for the model's embeddings, and the query is embedded by a
stub, so the figure is the catalog side: fetching and scoring the embeddings; the model's own
time per query is printed apart when ``--real-embed`` is given and the model is installed).
The database is dropped at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg2

from vam import devstack
from vam.catalog import Catalog
from vam.catalog.db import connect, migrate
from vam.catalog.dsn import create_database, drop_database
from vam.catalog.search import SearchFilters, search
from vam.settings import load_settings

_WORDS_TEXT = """
the people time year way day man thing woman life child world school state family student group
country problem hand part place case week company system program question work government number
night point home water room mother area money story fact month lot right study book eye job word
business issue side kind head house service friend father power hour game line end member law
car city community name president team minute idea kid body information back parent face others
level office door health person art war history party result change morning reason research girl
guy moment air teacher force education foot boy age policy music market sense nation plan
college interest death experience effect class control care field development role effort rate
heart drug show leader light voice wife police mind price report decision son view relationship
town road arm difference value building action model season society tax director position player
record paper space ground form event official matter center couple site project activity star
table need court oil situation cost industry figure street image phone data picture practice
piece land product doctor wall patient worker news test movie north love support technology step
baby computer type attention film tree source organization hair window evidence population site
camera bank river mountain ocean island forest garden kitchen bridge station airport hotel
restaurant market beach desert valley village harbor castle tower stadium museum library
hospital factory farm lake weather storm rain snow wind sun moon summer winter spring autumn
coffee dinner breakfast lunch recipe bread cheese chicken fish fruit vegetable salad soup wine
beer sugar salt pepper chocolate football basketball tennis golf soccer baseball hockey race
match coach goal score fan ticket budget election vote senator congress campaign debate economy
inflation bank stock trade export energy solar battery engine electric vehicle truck train plane
ship bicycle traffic highway software hardware network internet website email password screen
keyboard robot satellite rocket launch mission planet galaxy telescope science experiment
laboratory chemistry physics biology guitar piano drum song concert album singer band dance
theater stage actor director episode
"""
WORDS = _WORDS_TEXT.split()
_ACTIONS_TEXT = """
say get make go know take see come think look want give use find tell ask work seem feel try
leave call keep let begin help talk turn start show hear play run move like live believe hold
bring happen write provide sit stand lose pay meet include continue set learn lead understand
watch follow stop create speak read allow add spend grow open walk win offer remember consider
appear buy wait serve die send expect build stay fall cut reach kill remain suggest raise pass
sell require report decide pull
"""
ACTIONS = _ACTIONS_TEXT.split()
RARE_WORD = "zeppelin"
PHRASE = ["climate", "change"]
LABELS = [
    "dog", "cat", "car", "person", "tree", "sky", "beach", "mountain", "building", "road", "boat",
    "bicycle", "horse", "bird", "flower", "food", "computer", "phone", "guitar", "stage",
]  # fmt: skip
FREE_TAGS = [f"tag{i:02d}" for i in range(40)]
CAMPAIGNS = [f"campaign-{i:02d}" for i in range(50)]
HEIGHTS = [360, 480, 720, 1080, 2160]
CODECS = ["h264", "hevc", "av1"]
STATUSES = ["ready"] * 18 + ["failed", "rejected"]


def _copy(cur: Any, table: str, columns: list[str], rows: list[tuple]) -> None:
    """COPY rows (text format) into table."""

    def field(value: Any) -> str:
        if value is None:
            return r"\N"
        text = (
            value
            if isinstance(value, str)
            else json.dumps(value)
            if isinstance(value, dict | list)
            else str(value)
        )
        return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    buf = io.StringIO()
    for row in rows:
        buf.write("\t".join(field(v) for v in row))
        buf.write("\n")
    buf.seek(0)
    cur.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buf)


def _sentence(rng: np.random.Generator, weights: np.ndarray, n: int) -> list[str]:
    words = [WORDS[i] for i in rng.choice(len(WORDS), size=n, p=weights)]
    for k in range(3, n, 7):  # sprinkle verbs so it reads less like a word salad
        words[k] = ACTIONS[int(rng.integers(len(ACTIONS)))]
    return words


def build(conn: Any, n_assets: int, seed: int, batch: int = 10_000) -> dict[str, float]:
    rng = np.random.default_rng(seed)
    ranks = np.arange(1, len(WORDS) + 1)
    weights = 1.0 / ranks**0.9
    weights /= weights.sum()
    stats = {"segments": 0, "rare_assets": 0, "phrase_assets": 0}
    with conn, conn.cursor() as cur:
        cur.execute("SET session_replication_role = replica")  # bulk load: no per-row triggers
        for start in range(0, n_assets, batch):
            ids = range(start, min(start + batch, n_assets))
            assets, transcripts, segments, labels = [], [], [], []
            for i in ids:
                asset_id = f"{i:016x}"
                title = " ".join(_sentence(rng, weights, int(rng.integers(2, 5)))).capitalize() + ".mp4"
                meta = {
                    "duration": round(float(rng.lognormal(4.5, 1.0)), 2),
                    "height": HEIGHTS[int(rng.integers(len(HEIGHTS)))],
                    "video_codec": CODECS[int(rng.integers(len(CODECS)))],
                }
                tags: dict[str, Any] = {
                    "campaign": CAMPAIGNS[int(rng.integers(len(CAMPAIGNS)))],
                    "tags": sorted({FREE_TAGS[int(t)] for t in rng.integers(len(FREE_TAGS), size=3)}),
                }
                if rng.random() < 0.3:
                    tags["product_ids"] = [f"SKU-{int(rng.integers(1, 5000))}"]
                flagged = bool(rng.random() < 0.02)
                assets.append(
                    (
                        asset_id,
                        f"{i:064x}",
                        f"s3://bench/{asset_id}.mp4",
                        title,
                        STATUSES[int(rng.integers(len(STATUSES)))],
                        meta,
                        tags,
                        flagged,
                        0.9 if flagged else 0.05,
                    )
                )
                t, texts = 0.0, []
                for seq in range(int(rng.integers(2, 7))):
                    words = _sentence(rng, weights, int(rng.integers(12, 31)))
                    if rng.random() < 0.0001 * 2.5:
                        words[int(rng.integers(len(words)))] = RARE_WORD
                    if rng.random() < 0.0025:
                        k = int(rng.integers(len(words) - 1))
                        words[k : k + 2] = PHRASE
                    text = " ".join(words).capitalize() + "."
                    end = t + len(words) * 0.4
                    segments.append((asset_id, seq, round(t, 2), round(end, 2), text))
                    texts.append(text)
                    t = end + 0.3
                full = " ".join(texts)
                stats["rare_assets"] += RARE_WORD in full
                stats["phrase_assets"] += " ".join(PHRASE) in full
                transcripts.append((asset_id, "en", "synthetic", full))
                for label in {
                    LABELS[int(k)] for k in rng.integers(len(LABELS), size=int(rng.integers(1, 4)))
                }:
                    labels.append((asset_id, label, round(float(rng.uniform(0.3, 0.99)), 3), "{0}"))
            _copy(
                cur,
                "assets",
                [
                    "asset_id", "content_sha256", "source_uri", "title", "status", "source_meta", "tags",
                    "moderation_flagged", "moderation_score",
                ],
                assets,
            )  # fmt: skip
            _copy(cur, "transcripts", ["asset_id", "language", "model", "text"], transcripts)
            _copy(cur, "transcript_segments", ["asset_id", "seq", "start_s", "end_s", "text"], segments)
            _copy(cur, "asset_labels", ["asset_id", "label", "score", "scenes"], labels)
            stats["segments"] += len(segments)
            print(f"  loaded {min(start + batch, n_assets):,} assets", file=sys.stderr, flush=True)
        cur.execute("SET session_replication_role = origin")
    for start in range(0, n_assets, batch):
        with conn, conn.cursor() as cur:
            cur.execute(
                "SELECT refresh_search_documents(array_agg(asset_id)) FROM assets"
                " WHERE asset_id >= %s AND asset_id < %s",
                (f"{start:016x}", f"{start + batch:016x}"),
            )
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE")
    conn.autocommit = False
    return stats


def add_embeddings(conn: Any, n_assets: int) -> int:
    """Random unit vectors for the segments of the first n_assets assets (stand-ins for the model's)."""
    with conn, conn.cursor() as cur:
        cur.execute(
            "CREATE FUNCTION pg_temp.random_vector(integer) RETURNS real[] LANGUAGE sql VOLATILE AS"
            " $$ SELECT array_agg((random() - 0.5)::real) FROM generate_series(1, 384) $$"
        )
        cur.execute(
            "UPDATE transcript_segments SET embedding = pg_temp.random_vector(seq) WHERE asset_id < %s",
            (f"{n_assets:016x}",),
        )
        count = cur.rowcount
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("VACUUM ANALYZE transcript_segments")
    conn.autocommit = False
    return count


def timed(fn: Callable[[], list], reps: int) -> dict[str, float]:
    hits = fn()  # warm-up (plans, caches)
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    arr = np.asarray(times)
    return {
        "p50": float(np.percentile(arr, 50)),
        "p95": float(np.percentile(arr, 95)),
        "max": float(arr.max()),
        "hits": len(hits),
    }


def sizes(conn: Any) -> dict[str, int]:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT pg_database_size(current_database())")
        out = {"database": cur.fetchone()[0]}
        for table in ("assets", "transcripts", "transcript_segments", "search_documents", "asset_labels"):
            cur.execute("SELECT pg_total_relation_size(%s::regclass)", (table,))
            out[table] = cur.fetchone()[0]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--assets", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=30)
    parser.add_argument("--semantic-assets", type=int, default=10_000)
    parser.add_argument("--semantic-reps", type=int, default=10)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--real-embed", action="store_true", help="also time the real embedding model per query"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (its DSN is printed)")
    args = parser.parse_args(argv)

    admin = devstack.ensure_catalog(load_settings())
    name = f"vam_bench_search_{uuid.uuid4().hex[:8]}"
    dsn = create_database(admin, name)
    print(f"database {name}", file=sys.stderr)
    try:
        conn = connect(dsn)
        migrate(conn)
        started = time.perf_counter()
        stats = build(conn, args.assets, args.seed)
        build_s = time.perf_counter() - started
        cat = Catalog(conn)
        queries: list[tuple[str, str, SearchFilters | None]] = [
            ("common word", "people", None),
            ("mid-frequency word", "river", None),
            ("rare word", RARE_WORD, None),
            ("phrase", '"climate change"', None),
            ("two words (AND)", "budget election", None),
            ("or / exclusion", "guitar or piano -concert", None),
            ("no hits", "xylophonist", None),
            (
                "common + height/codec/status",
                "people",
                SearchFilters(min_height=1080, codec="h264", status="ready"),
            ),
            ("common + duration", "people", SearchFilters(min_duration=60, max_duration=300)),
            ("mid + tag", "river", SearchFilters(tags={"campaign": "campaign-07"})),
            ("common + label", "people", SearchFilters(labels=["dog", "car"])),
            ("list tag, no text", "", SearchFilters(tags={"tags": "tag05"}, flagged=True)),
        ]
        text_results = []
        for label, query, filters in queries:
            result = timed(lambda q=query, f=filters: search(cat, q, filters=f), args.reps)
            text_results.append((label, query, filters, result))
            print(f"  {label}: p50 {result['p50']:.1f} ms", file=sys.stderr, flush=True)

        started = time.perf_counter()
        n_sem = min(args.semantic_assets, args.assets)
        n_vectors = add_embeddings(conn, n_sem)
        embed_build_s = time.perf_counter() - started
        from vam.enrich.embeddings import embed as real_embed

        model_ms = None
        if args.real_embed:
            try:
                real_embed(["warm up"])
                t0 = time.perf_counter()
                for _ in range(10):
                    real_embed(["electric vehicle launch"])
                model_ms = (time.perf_counter() - t0) / 10 * 1000
            except Exception as exc:  # the model is optional here
                print(f"  real embedding model unavailable: {exc}", file=sys.stderr)
        rng = np.random.default_rng(1)

        def stub_embed(texts: list[str]) -> np.ndarray:
            """A random unit vector per text: times the scan, not the model (measured above)."""
            v = rng.standard_normal((len(texts), 384))
            return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)

        sem_results = []
        for label, filters, floor in (
            ("semantic, no filter", None, 0.0),
            ("semantic, height >= 1080", SearchFilters(min_height=1080), 0.0),
            ("semantic, campaign tag", SearchFilters(tags={"campaign": "campaign-07"}), 0.0),
        ):
            result = timed(
                lambda f=filters, m=floor: search(
                    cat, "x", mode="semantic", filters=f, min_score=m, embed=stub_embed
                ),
                args.semantic_reps,
            )
            sem_results.append((label, result))
            print(f"  {label}: p50 {result['p50']:.1f} ms", file=sys.stderr, flush=True)
        size = sizes(conn)
        conn.close()
    finally:
        if args.keep:
            print(f"kept: {dsn}", file=sys.stderr)
        else:
            drop_database(admin, name)

    with psycopg2.connect(admin) as c, c.cursor() as cur:
        cur.execute("SHOW server_version")
        version = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        shared_buffers = cur.fetchone()[0]
    c.close()
    mb = 1024 * 1024
    print(f"# vam search benchmark: {args.assets:,} assets, {stats['segments']:,} transcript segments")
    print(
        f"PostgreSQL {version} (shared_buffers {shared_buffers}); build (COPY + search documents + VACUUM "
        f"ANALYZE) {build_s:.0f} s; rare word in {stats['rare_assets']} assets, phrase in "
        f"{stats['phrase_assets']}"
    )
    print(
        "sizes: "
        + ", ".join(f"{k} {v / mb:,.0f} MB" for k, v in size.items())
        + f" (embeddings on {n_vectors:,} segments)"
    )
    print(f"\n## text mode, {args.reps} runs each after a warm-up (ms)")
    print(f"{'query':<32} {'text':<28} {'hits':>5} {'p50':>8} {'p95':>8} {'max':>8}")
    for label, query, _filters, r in text_results:
        print(f"{label:<32} {query!r:<28} {r['hits']:>5} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}")
    print(
        f"\n## semantic mode over the first {n_sem:,} assets ({n_vectors:,} segment embeddings; "
        f"{args.semantic_reps} runs each, query embedding stubbed; added in {embed_build_s:.0f} s)"
    )
    print(f"{'query':<32} {'hits':>5} {'p50':>8} {'p95':>8} {'max':>8}")
    for label, r in sem_results:
        print(f"{label:<32} {r['hits']:>5} {r['p50']:>8.1f} {r['p95']:>8.1f} {r['max']:>8.1f}")
    if model_ms is not None:
        print(f"real query embedding (all-MiniLM-L6-v2, CPU): {model_ms:.1f} ms per query")
    return 0


if __name__ == "__main__":
    sys.exit(main())

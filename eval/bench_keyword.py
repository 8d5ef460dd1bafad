"""Keyword search in PostgreSQL at 10k / 100k / 1M synthetic chunks (issue 17): p50/p95 of a
search with a customer's access filter, the time to load and to (re)build the index, and the memory
of a process that only searches (an API replica), which must stay flat as the corpus grows.

    python -m eval.bench_keyword --sizes 10000,100000 [--database-url postgresql://...]
    nice python -m eval.bench_keyword --sizes 1000000 --keep    # ~25 min on 2 loaded cores; keeps the schema
    python -m eval.bench_keyword --reuse bench_1a2b3c4d         # searches a kept schema again, no build

Each size gets a fresh schema in the database (dropped afterwards unless --keep). The chunks are
written by COPY, then the keyword index is built from them as opening such a database does. Text is
synthetic but shaped like support content: words drawn from a Zipf distribution over the words of docs/ plus generated
product words, ~150 words per chunk; 60% public pages, 20% customer pages, 20% tickets of 200
customer organisations. Searches run in a separate process that has loaded nothing else, so its
resident memory is what a replica pays for keyword search.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
ORGS = 200


def vocabulary(rng: np.random.Generator, size: int = 60_000) -> list[str]:
    words = sorted({w.lower() for p in (ROOT / "docs").glob("*.md")
                    for w in re.findall(r"[A-Za-z]{3,}", p.read_text(encoding="utf-8"))})
    syllables = ["ka", "lo", "mi", "tra", "ven", "dor", "sel", "qui", "zu", "pha", "rin", "tok", "bel", "ox"]
    while len(words) < size:
        words.append("".join(rng.choice(syllables, size=int(rng.integers(2, 5)))))
    rng.shuffle(words)  # the docs words and made-up product words share the Zipf ranks
    return words


def zipf_words(rng: np.random.Generator, vocab: list[str], n: int) -> list[str]:
    ranks = np.minimum(rng.zipf(1.1, size=n), len(vocab)) - 1
    return [vocab[int(r)] for r in ranks]


def load(url: str, n: int, seed: int = 7) -> tuple[float, float, float]:
    """Chunks written in bulk (as a database from an earlier version holds them), then the keyword index
    built from them (what opening such a database does), then 1,000 more documents through the ingest
    write path (chunks and keyword rows in one transaction). Seconds of each."""
    from assistant import db, fts
    from assistant.db import create_engine
    from assistant.store import DocumentRecord, IndexStore
    from assistant.types import Chunk

    rng = np.random.default_rng(seed)
    vocab = vocabulary(rng)
    engine = create_engine(url)
    db.init_db(engine)
    now = datetime.now(UTC)

    words = np.array(vocab, dtype=object)

    def texts(n: int) -> list[str]:  # vectorized: a million chunks' words are drawn in minutes, not hours
        sizes = rng.integers(80, 220, size=n)
        drawn = words[np.minimum(rng.zipf(1.1, size=int(sizes.sum())), len(vocab)) - 1]
        return [" ".join(w) for w in np.split(drawn, np.cumsum(sizes)[:-1])]

    def access(n: int) -> list[tuple[str, str]]:
        kind, org = rng.random(n), rng.integers(ORGS, size=n)
        return [("public", "") if k < 0.6 else ("customer", "") if k < 0.8 else ("customer", f"org{o}")
                for k, o in zip(kind, org, strict=True)]

    def chunks(lo: int, hi: int) -> list[Chunk]:
        return [Chunk(id=f"c{i}", source="bench", doc_id=f"doc{i}", ordinal=0, text=text,
                      search_text=f"doc{i}\n\n{text}", content_hash=str(i), audience=audience, org=org,
                      meta={"title": f"doc{i}", "url": "u", "heading": ""})
                for i, text, (audience, org) in zip(range(lo, hi), texts(hi - lo), access(hi - lo), strict=True)]

    started = time.perf_counter()
    columns = ("id", "source", "doc_id", "ordinal", "content_hash", "audience", "org", "text", "search_text", "meta")
    for lo in range(0, n, 20_000):  # COPY: how the rows got there is not what is measured
        rows = chunks(lo, min(n, lo + 20_000))
        with engine.begin() as conn:
            raw: Any = conn.connection.driver_connection
            with raw.cursor() as cur, cur.copy(f"COPY chunks ({', '.join(columns)}) FROM STDIN") as copy:
                for c in rows:
                    copy.write_row((*(getattr(c, name) for name in columns[:-1]), json.dumps(c.meta)))
    bulk = time.perf_counter() - started
    started = time.perf_counter()
    fts.ensure_index(engine)
    build = time.perf_counter() - started
    store = IndexStore(engine)
    items = chunks(n, n + 1000)
    started = time.perf_counter()
    for lo in range(0, len(items), 100):  # the ingest pipeline's flushes hold a few hundred chunks
        store.save_documents([(DocumentRecord(source="bench", doc_id=c.doc_id, title=c.doc_id, url="u",
                                              content_hash=c.content_hash, audience=c.audience, updated_at=now), [c])
                              for c in items[lo : lo + 100]])
    ingest = time.perf_counter() - started
    engine.dispose()
    return bulk, build, ingest


def search_only(url: str, queries: int, seed: int = 11) -> dict[str, float]:
    """Run in its own process: open the index, search with customers' filters, report latency and RSS."""
    from assistant.access import access_filter
    from assistant.db import create_engine
    from assistant.index.database import DatabaseKeywordIndex
    from assistant.keys import Identity
    from assistant.store import IndexStore
    from eval.bench_util import percentile

    rng = np.random.default_rng(seed)
    vocab = vocabulary(np.random.default_rng(7))
    index = DatabaseKeywordIndex(IndexStore(create_engine(url)))
    times, found = [], 0
    for i in range(queries + 20):
        words = zipf_words(rng, vocab, int(rng.integers(2, 6)))
        where = access_filter(Identity(role="customer", org=f"org{int(rng.integers(ORGS))}", tier="paid"))
        t = time.perf_counter()
        hits = index.search(" ".join(words), 50, where)
        if i >= 20:  # the first searches warm the connection pool and caches
            times.append((time.perf_counter() - t) * 1000)
            found += bool(hits)
    rss = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return {"p50_ms": percentile(times, 0.5), "p95_ms": percentile(times, 0.95), "rss_mb": rss / 1024,
            "answered": found / queries}


def compare(index_dir: Path, queries_path: Path, database_url: str, limit: int) -> None:
    """Search latency of the two keyword indexes over one `eval run` index, interleaved query by query so
    both see the same machine load: the keyword search alone and the whole hybrid search (k=10)."""
    from assistant.index.database import DatabaseKeywordIndex
    from assistant.index.keyword import KeywordIndex, KeywordSearch
    from assistant.services import Services
    from assistant.settings import Settings
    from eval.beir import load_queries
    from eval.bench_util import percentile

    settings = Settings(data_dir=index_dir, database_url=database_url, chroma_collection="eval",  # type: ignore[call-arg]
                        _env_file=None)
    svc = Services(settings)
    indexes: dict[str, KeywordSearch] = {"bm25s": KeywordIndex(settings.keyword_path, svc.store),
                                         "database": DatabaseKeywordIndex(svc.store)}
    indexes["bm25s"].ensure_fresh()
    retriever = svc.retriever
    questions = [q.question for q in load_queries(queries_path)][:limit]
    times: dict[str, list[float]] = {f"{name} {what}": [] for name in indexes for what in ("keyword", "hybrid")}
    for i, question in enumerate(questions):
        retriever.search(question, k=10)  # untimed: caches the title/heading vectors, or the first index pays
        for name, index in indexes.items():
            t = time.perf_counter()
            index.search(question, settings.retrieval_candidates)
            keyword = (time.perf_counter() - t) * 1000
            retriever.keywords = index
            t = time.perf_counter()
            retriever.search(question, k=10)
            if i >= 5:  # warm-up
                times[f"{name} keyword"].append(keyword)
                times[f"{name} hybrid"].append((time.perf_counter() - t) * 1000)
    store = "PostgreSQL" if database_url else "SQLite"
    print(f"| {store}: search | p50 ms | p95 ms |\n|---|---|---|")
    for name, values in times.items():
        print(f"| {name} | {percentile(values, 0.5):.1f} | {percentile(values, 0.95):.1f} |")


def replica(url: str, queries: int) -> dict[str, float]:
    """The searches, in a process of their own (an API replica's view): latency and resident memory."""
    out = subprocess.run([sys.executable, "-m", "eval.bench_keyword", "--search-only", url, "--queries", str(queries)],
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def with_schema(url: str, schema: str) -> str:
    return f"{url}?options=-csearch_path%3D{schema}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="10000,100000", help="comma-separated chunk counts, e.g. 10000,100000,1000000")
    ap.add_argument("--database-url", default=PG_URL)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--keep", action="store_true", help="keep each size's schema (printed) instead of dropping it")
    ap.add_argument("--reuse", metavar="SCHEMAS", help="comma-separated schemas kept by --keep: search them again")
    ap.add_argument("--search-only", help=argparse.SUPPRESS)  # the replica process: its database URL
    ap.add_argument("--compare", type=Path, metavar="INDEX_DIR",
                    help="instead: search latency of bm25s vs the database over an `eval run` index folder "
                         "(its store: --store-url if given, else the folder's SQLite)")
    ap.add_argument("--store-url", default="", help="with --compare: the run's --database-url")
    ap.add_argument("--compare-queries", type=Path,
                    default=ROOT.parent / "shared/eval-data/beir-scifact/queries.jsonl")
    args = ap.parse_args()
    if args.compare:
        compare(args.compare, args.compare_queries, args.store_url, args.queries)
        return
    if args.search_only:
        print(json.dumps(search_only(args.search_only, args.queries)))
        return

    import psycopg

    base = args.database_url.replace("postgresql+psycopg://", "postgresql://")
    if args.reuse:  # searches again over schemas kept by an earlier --keep run: no load, no build
        print("| schema | chunks | p50 ms | p95 ms | replica RSS MB | queries with hits |\n|---|---|---|---|---|---|")
        for schema in args.reuse.split(","):
            with psycopg.connect(base, autocommit=True) as conn:
                n = conn.execute(f'SELECT count(*) FROM "{schema}".chunks_fts').fetchone()[0]  # type: ignore[index]
            r = replica(with_schema(base, schema), args.queries)
            print(f"| {schema} | {n:,} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['rss_mb']:.0f} | "
                  f"{r['answered']:.0%} |", flush=True)
        return
    print("| chunks | bulk load s | keyword index build s | ingest 1,000 docs s | p50 ms | p95 ms "
          "| replica RSS MB | queries with hits |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (int(s) for s in args.sizes.split(",")):
        schema = f"bench_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(base, autocommit=True) as conn:
            conn.execute(f'CREATE SCHEMA "{schema}"')
        try:
            url = with_schema(base, schema)
            bulk, build, ingest = load(url, n)
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'VACUUM ANALYZE "{schema}".chunks_fts')
            r = replica(url, args.queries)
            print(f"| {n:,} | {bulk:.1f} | {build:.1f} | {ingest:.1f} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | "
                  f"{r['rss_mb']:.0f} | {r['answered']:.0%} |", flush=True)
        finally:
            if args.keep:
                print(f"kept schema {schema}", flush=True)
            else:
                with psycopg.connect(base, autocommit=True) as conn:
                    conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


if __name__ == "__main__":
    main()

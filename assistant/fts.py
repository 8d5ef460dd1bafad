"""The keyword index inside the database: written by the same transaction as the chunks it indexes.

Chunks are tokenized here, in Python, with the project's tokenizer (`assistant.tokens`: bm25s's word
pattern, English stopwords, Snowball stemming, joined ticket keys) and the engine indexes those
tokens as they are, so the database matches exactly the words the in-process bm25s index matches:

- SQLite: an FTS5 table `chunks_fts(terms, chunk_id UNINDEXED)`; its rowid is a hash of the chunk
  id, so a chunk's row is found again without a scan. Ranked by FTS5's own bm25().
- PostgreSQL: a table `chunks_fts` holding each chunk's tokens as a tsvector (lexeme -> one position
  per occurrence, so the term frequency survives), its token count and the filter fields, with a GIN
  index; `keyword_terms` keeps each term's document frequency plus the corpus size ("#docs") and
  total length ("#length"), so BM25 is computed in the query from statistics kept in the database.

Nothing here lives in the process: a commit is visible to every process at once.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db
from assistant.tokens import tokenize

# Bump when tokenization or the layout changes: databases indexed under another format are re-indexed
# at start (`ensure_index`).
FORMAT = 1
FORMAT_KEY = "keyword_fts_format"
DOCS, LENGTH = "#docs", "#length"  # reserved keyword_terms rows: tokens are \w\w+, never start with '#'
MAX_TF = 256  # PostgreSQL keeps at most 256 positions per lexeme


@dataclass(frozen=True)
class Terms:
    """One chunk as the keyword index holds it."""

    id: str
    source: str
    doc_id: str
    audience: str
    org: str
    tokens: list[str]


def terms_of(rows: Sequence[tuple[str, str, str, str, str, str]]) -> list[Terms]:
    """(id, search_text, source, doc_id, audience, org) rows -> their tokens, tokenized in one batch."""
    tokens = tokenize([r[1] for r in rows]) if rows else []
    return [Terms(r[0], r[2], r[3], r[4], r[5] or "", t) for r, t in zip(rows, tokens, strict=True)]


def rowid(chunk_id: str) -> int:
    """A stable signed 63-bit FTS5 rowid for a chunk id (a collision needs ~3e9 chunks to be likely)."""
    return int.from_bytes(hashlib.blake2b(chunk_id.encode(), digest_size=8).digest(), "big") >> 1


def tsvector_literal(tokens: list[str]) -> str:
    """'lexeme':1,2,3 ... with one position per occurrence: cardinality(positions) is the term frequency."""
    parts = []
    for term, n in Counter(tokens).items():
        quoted = term.replace("\\", "\\\\").replace("'", "''")
        parts.append(f"'{quoted}':{_POSITIONS[min(n, MAX_TF)]}")
    return " ".join(parts)


# "1", "1,2", "1,2,3" ...: the positions of a term seen n times, joined once instead of per term per chunk
_POSITIONS = ["", *(",".join(str(i) for i in range(1, n + 1)) for n in range(1, MAX_TF + 1))]


# -- schema ------------------------------------------------------------------------------------
_SQLITE_DDL = ("CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(terms, chunk_id UNINDEXED, "
               "tokenize = \"unicode61 remove_diacritics 0 tokenchars '_'\")",)
_PG_DDL = (
    "CREATE TABLE IF NOT EXISTS chunks_fts (id VARCHAR(64) PRIMARY KEY, source VARCHAR(200) NOT NULL, "
    "doc_id VARCHAR(1000) NOT NULL, audience VARCHAR(20) NOT NULL, org VARCHAR(200) NOT NULL DEFAULT '', "
    "length INTEGER NOT NULL, terms TSVECTOR NOT NULL)",
    "CREATE INDEX IF NOT EXISTS ix_chunks_fts_terms ON chunks_fts USING gin (terms)",
    # No index on the filter columns: the access filter always lets public chunks through (most of a
    # corpus), so it never narrows a search; an org index only tempted the planner into reading every
    # org='' entry to AND it with the GIN matches (15 ms at 100k chunks).
    "DROP INDEX IF EXISTS ix_chunks_fts_org",
    "CREATE TABLE IF NOT EXISTS keyword_terms (term TEXT PRIMARY KEY, df BIGINT NOT NULL)",
)


def is_postgres(engine_or_conn: Engine | sa.Connection) -> bool:
    return engine_or_conn.dialect.name == "postgresql"


def ensure_index(engine: Engine) -> int:
    """Create the keyword tables, and fill them from `chunks` when this database was indexed by an
    earlier version (or under another FORMAT). Returns the number of chunks (re)indexed; 0 normally.

    Runs when a store opens (every process start), so a database made by an earlier version is
    searchable by keyword as soon as it is opened; an existing, current index costs one lookup."""
    with engine.begin() as conn:
        if is_postgres(conn):
            # Replicas starting together; per schema, so databases in other schemas (tests, benchmarks) never wait.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(74170017, hashtext(current_schema()))"))
        for ddl in _PG_DDL if is_postgres(conn) else _SQLITE_DDL:
            conn.execute(sa.text(ddl))
        current = conn.execute(sa.select(db.state.c.value).where(db.state.c.key == FORMAT_KEY)).scalar_one_or_none()
        if current == str(FORMAT):
            return 0
        return _reindex_all(conn)


def forget(engine: Engine) -> None:
    """The index is not kept (another keyword index is chosen): drop its "current" marker so that
    choosing it again re-indexes every chunk instead of trusting rows that stopped being written."""
    with engine.connect() as conn:
        marked = sa.inspect(conn).has_table("state") and conn.execute(
            sa.select(db.state.c.key).where(db.state.c.key == FORMAT_KEY)).first() is not None
    if marked:
        with engine.begin() as conn:
            conn.execute(db.state.delete().where(db.state.c.key == FORMAT_KEY))


def _reindex_all(conn: sa.Connection, batch: int = 2000) -> int:
    pg = is_postgres(conn)
    if pg:
        # A bulk load: rows by COPY with the GIN index dropped and built once at the end (maintaining it
        # row by row made 100k chunks take 12 minutes), term statistics counted here and written once.
        # Searches of other processes wait for this transaction (it holds the table); it runs once per
        # database (first choice of the index, or a new FORMAT).
        conn.execute(sa.text("TRUNCATE chunks_fts, keyword_terms"))
        conn.execute(sa.text("DROP INDEX IF EXISTS ix_chunks_fts_terms"))
    else:
        conn.execute(sa.text("DELETE FROM chunks_fts"))
    df: Counter[str] = Counter()
    c = db.chunks.c
    done, last = 0, ""
    while True:  # pages by id: a million chunks never sit in memory at once
        q = sa.select(c.id, c.search_text, c.source, c.doc_id, c.audience, c.org).where(c.id > last)
        rows = [tuple(r) for r in conn.execute(q.order_by(c.id).limit(batch))]
        if not rows:
            break
        items = terms_of(rows)  # type: ignore[arg-type]
        if pg:
            _copy_rows(conn, items)
            df.update(_df(items))
        else:
            add(conn, items)
        done, last = done + len(rows), rows[-1][0]
    if pg:
        _copy_df(conn, df)
        conn.execute(sa.text("SET LOCAL maintenance_work_mem = '256MB'"))
        conn.execute(sa.text(_PG_DDL[1]))
        conn.execute(sa.text("ANALYZE chunks_fts"))
    conn.execute(db.state.delete().where(db.state.c.key == FORMAT_KEY))
    conn.execute(db.state.insert(), {"key": FORMAT_KEY, "value": str(FORMAT)})
    return done


def _copy_rows(conn: sa.Connection, items: list[Terms]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy(  # type: ignore[union-attr]
            "COPY chunks_fts (id, source, doc_id, audience, org, length, terms) FROM STDIN") as copy:
        for t in items:
            copy.write_row((t.id, t.source, t.doc_id, t.audience, t.org, len(t.tokens), tsvector_literal(t.tokens)))


def _copy_df(conn: sa.Connection, df: Counter[str]) -> None:
    raw = conn.connection.driver_connection
    with raw.cursor() as cur, cur.copy("COPY keyword_terms (term, df) FROM STDIN") as copy:  # type: ignore[union-attr]
        for term, n in df.items():
            copy.write_row((term, n))


def _df(items: list[Terms]) -> Counter[str]:
    """Document frequency of each term, plus the corpus size and total length rows."""
    df: Counter[str] = Counter()
    for t in items:
        df.update(set(t.tokens))
    df[DOCS], df[LENGTH] = len(items), sum(len(t.tokens) for t in items)
    return df


# -- writes: called inside the transaction that writes the chunks --------------------------------
def add(conn: sa.Connection, items: Iterable[Terms]) -> None:
    items = list(items)
    if not items:
        return
    if not is_postgres(conn):
        conn.execute(sa.text("INSERT INTO chunks_fts (rowid, terms, chunk_id) VALUES (:rowid, :terms, :id)"),
                     [{"rowid": rowid(t.id), "terms": " ".join(t.tokens), "id": t.id} for t in items])
        return
    conn.execute(sa.text(
        "INSERT INTO chunks_fts (id, source, doc_id, audience, org, length, terms) "
        "VALUES (:id, :source, :doc_id, :audience, :org, :length, CAST(:terms AS tsvector))"),
        [{"id": t.id, "source": t.source, "doc_id": t.doc_id, "audience": t.audience, "org": t.org,
          "length": len(t.tokens), "terms": tsvector_literal(t.tokens)} for t in items])
    _add_df(conn, _df(items))


def remove(conn: sa.Connection, chunk_ids: Sequence[str]) -> None:
    if not chunk_ids:
        return
    if not is_postgres(conn):
        conn.execute(sa.text("DELETE FROM chunks_fts WHERE rowid = :rowid"), [{"rowid": rowid(i)} for i in chunk_ids])
        return
    ids = list(chunk_ids)
    gone: Counter[str] = Counter()
    for term, n in conn.execute(sa.text(
            "SELECT u.lexeme, count(*) FROM chunks_fts f, unnest(f.terms) AS u "
            "WHERE f.id = ANY(:ids) GROUP BY u.lexeme"), {"ids": ids}):
        gone[term] = -int(n)
    docs, length = conn.execute(sa.text(
        "SELECT count(*), coalesce(sum(length), 0) FROM chunks_fts WHERE id = ANY(:ids)"), {"ids": ids}).one()
    if not docs:
        return
    gone[DOCS], gone[LENGTH] = -int(docs), -int(length)
    conn.execute(sa.text("DELETE FROM chunks_fts WHERE id = ANY(:ids)"), {"ids": ids})
    _add_df(conn, gone)


def _add_df(conn: sa.Connection, delta: Counter[str]) -> None:
    # One statement, rows in term order: concurrent ingests lock shared terms in the same order
    # (no deadlock). Terms whose count reaches 0 stay as rows with df 0; the query ignores them.
    terms = sorted(t for t, n in delta.items() if n)
    conn.execute(sa.text(
        "INSERT INTO keyword_terms (term, df) "
        "SELECT t, n FROM unnest(CAST(:terms AS text[]), CAST(:dfs AS bigint[])) AS d(t, n) ORDER BY t "
        "ON CONFLICT (term) DO UPDATE SET df = keyword_terms.df + EXCLUDED.df"),
        {"terms": terms, "dfs": [delta[t] for t in terms]})

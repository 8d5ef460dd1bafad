"""Keyword search inside the database engine, queried per request: SQLite FTS5 or PostgreSQL
full-text search over the tables `assistant.fts` keeps in step with `chunks`.

The same interface as the in-process bm25s index (`search(query, k, where)`), with the access
filter inside the SQL query, so top-k is never silently short and an API replica holds no index
state: what one process commits, every process finds on its next query.
"""

from __future__ import annotations

import math
from typing import Any

import sqlalchemy as sa

from assistant import db, fts
from assistant.errors import RetrievalError
from assistant.store import IndexStore
from assistant.tokens import tokenize
from assistant.types import Where

FILTER_FIELDS = ("source", "audience", "doc_id", "org")
# bm25s's defaults and its Lucene variant (no (k1 + 1) factor), so PostgreSQL scores as the in-process
# index does.
K1, B = 1.5, 0.75
# Candidates are capped so a search costs about the same at 10k and at 1M chunks (each candidate's
# BM25 is computed from its tsvector, ~10 us a row). First the chunks holding the rarest query terms,
# as long as these hold at most CANDIDATE_BUDGET chunks together: exact whenever the k-th score beats
# what the other terms alone could add (MaxScore). Otherwise those plus the chunks holding the other
# terms; when these are many, at most FILL chunks holding all of them and FILL holding any, taken in
# table order: approximate, but only for queries whose remaining terms are all common (1M chunks:
# thousands of chunks each), where a chunk's score depends little on which of them it holds.
CANDIDATE_BUDGET = 1000
FILL = 500
# Terms in more than this share of the chunks never generate candidates (still scored): their posting
# lists are the longest to read and a chunk holding only them scores little (idf below log 5 = 1.6).
COMMON = 0.2

_PG_SCORE = """
WITH q(term, idf) AS (SELECT * FROM unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[]))),
cand AS ({candidates})
SELECT cand.id, sum(q.idf * u.tf / (u.tf + :k1 * (1 - :b + :b * cand.length / :avgdl))) AS score
FROM cand
-- cand.terms holds the query's lexemes only (setweight + ts_filter, in C): unnest reads a few, not all.
CROSS JOIN LATERAL (SELECT t.lexeme, cardinality(t.positions) AS tf FROM unnest(cand.terms) AS t) AS u
JOIN q ON q.term = u.lexeme
GROUP BY cand.id ORDER BY score DESC, cand.id LIMIT :k
"""
# One branch of the candidates: chunks matching `cond` that the access filter allows. The branches'
# conditions exclude each other, so no chunk is scored twice.
_PG_BRANCH = ("(SELECT f.id, f.length, ts_filter(setweight(f.terms, 'A', CAST(:terms AS text[])), '{{a}}') AS terms "
              "FROM chunks_fts f WHERE {cond} AND {where}{limit})")


def filter_sql(where: Where | None, columns: dict[str, sa.ColumnElement[Any]]) -> sa.ColumnElement[bool]:
    """The access filter as SQL over `columns` (the semantics of `assistant.access.allows`)."""
    if not where:
        return sa.true()
    parts: list[sa.ColumnElement[bool]] = []
    for key, value in where.items():
        if key == "$or":
            if value:
                parts.append(sa.or_(*(filter_sql(w, columns) for w in value)))
            continue
        if key not in columns:
            raise ValueError(f"keyword index cannot filter on {key!r}")
        values = [value] if isinstance(value, str) else list(value)
        parts.append(columns[key].in_(values) if values else sa.false())
    return sa.and_(sa.true(), *parts)


def filter_pg(where: Where | None, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The same filter as PostgreSQL text over chunks_fts `f`: column names come from FILTER_FIELDS
    only, every value is a bound parameter (never interpolated)."""
    if not where:
        return "TRUE", params
    parts: list[str] = []
    for key, value in where.items():
        if key == "$or":
            if value:
                parts.append("(" + " OR ".join(filter_pg(w, params)[0] for w in value) + ")")
            continue
        if key not in FILTER_FIELDS:
            raise ValueError(f"keyword index cannot filter on {key!r}")
        name = f"w{len(params)}"
        params[name] = [value] if isinstance(value, str) else list(value)
        parts.append(f"f.{key} = ANY(:{name})")
    return "(" + " AND ".join(parts or ["TRUE"]) + ")", params


class DatabaseKeywordIndex:
    """BM25 keyword search run by the database: FTS5's bm25() on SQLite, BM25 from the term
    statistics in `keyword_terms` over the GIN candidates on PostgreSQL."""

    def __init__(self, store: IndexStore) -> None:
        self.store = store
        self.engine = store.engine

    # The in-process index's freshness hooks: nothing to refresh, the database is the index.
    def ensure_fresh(self) -> None:
        return None

    def rebuild(self) -> None:
        fts.ensure_index(self.engine)

    def search(self, query: str, k: int, where: Where | None = None) -> list[tuple[str, float]]:
        """Top-k (chunk id, BM25 score), best first; only chunks `where` allows are ranked."""
        terms = list(dict.fromkeys(tokenize([query])[0]))
        if not terms or k <= 0:
            return []
        try:
            with self.engine.connect() as conn:
                if fts.is_postgres(conn):
                    return self._search_pg(conn, terms, k, where)
                return self._search_sqlite(conn, terms, k, where)
        except sa.exc.OperationalError as exc:
            raise RetrievalError(f"keyword search in the database failed: {exc.orig}") from exc

    def _search_sqlite(self, conn: sa.Connection, terms: list[str], k: int,
                       where: Where | None) -> list[tuple[str, float]]:
        c = db.chunks.c
        match = " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)
        score: sa.ColumnElement[float] = sa.literal_column("bm25(chunks_fts)")
        f = sa.table("chunks_fts", sa.column("chunk_id"))
        q = (sa.select(c.id, score.label("score"))
             .select_from(f.join(db.chunks, c.id == f.c.chunk_id))
             .where(sa.literal_column("chunks_fts").op("MATCH")(match))
             .where(filter_sql(where, {name: c[name] for name in FILTER_FIELDS}))
             .order_by(score, c.id).limit(k))
        # FTS5's bm25() is lower-is-better (negative); flipped so higher is better, as bm25s.
        return [(row.id, -float(row.score)) for row in conn.execute(q)]

    def _search_pg(self, conn: sa.Connection, terms: list[str], k: int,
                   where: Where | None) -> list[tuple[str, float]]:
        stats: dict[str, int] = dict(conn.execute(sa.text("SELECT term, df FROM keyword_terms WHERE term = ANY(:t)"),
                                  {"t": [*terms, fts.DOCS, fts.LENGTH]}).tuples().all())
        n = int(stats.pop(fts.DOCS, 0) or 0)
        length = int(stats.pop(fts.LENGTH, 0) or 0)
        known = [t for t in terms if stats.get(t, 0) > 0]
        if n <= 0 or not known:
            return []
        idf = {t: math.log(1 + (n - stats[t] + 0.5) / (stats[t] + 0.5)) for t in known}
        rarest = sorted(known, key=lambda t: (stats[t], t))
        essential: list[str] = []
        for t in rarest:
            if sum(stats[e] for e in essential) + stats[t] > CANDIDATE_BUDGET:
                break
            essential.append(t)
        rest = rarest[len(essential):]
        where_sql, params = filter_pg(where, {})
        params.update({"terms": known, "idfs": [idf[t] for t in known], "k1": K1, "b": B,
                       "avgdl": max(length / n, 1e-9), "k": k, "fill": FILL})
        conn.execute(sa.text("SET LOCAL jit = off"))  # compiling costs more than these plans run

        def run(branches: list[tuple[str, bool]]) -> list[tuple[str, float]]:
            sql = _PG_SCORE.format(candidates=" UNION ALL ".join(
                _PG_BRANCH.format(cond=cond, where=where_sql, limit=" LIMIT :fill" if capped else "")
                for cond, capped in branches))
            return [(row.id, float(row.score)) for row in conn.execute(sa.text(sql), params)]

        # A chunk with none of the essential terms scores below the sum of the other terms' idf (each
        # term adds idf * tf / (tf + ...) < idf): when the k-th hit already beats that, nothing is missed.
        # Chunks holding only essential terms score below the sum of theirs: when that sum cannot beat
        # the bound, the exact pass cannot succeed and is skipped.
        bound = sum(idf[t] for t in rest)
        if essential:
            params["ess"] = _any(essential)
        hits: list[tuple[str, float]] = []
        branches = [("f.terms @@ CAST(:ess AS tsquery)", False)] if essential else []
        if essential and (not rest or sum(idf[t] for t in essential) > bound):
            hits, branches = run(branches), []
            if not rest or (len(hits) == k and hits[-1][1] >= bound):
                return hits
        outside = " AND NOT f.terms @@ CAST(:ess AS tsquery)" if essential else ""

        def more(extra: list[tuple[str, bool]]) -> list[tuple[str, float]]:
            # Every chunk's score counts all query terms and the branches exclude each other, so the top
            # k of the essential chunks (first pass) merged with the top k of the others is the top k.
            return sorted([*hits, *run(branches + extra)], key=lambda h: (-h[1], h[0]))[:k]

        if sum(stats[t] for t in rest) <= 2 * FILL:  # the other terms' chunks are few: all of them, exact
            params["any"] = _any(rest)
            return more([("f.terms @@ CAST(:any AS tsquery)" + outside, False)])
        spread = [t for t in rest if stats[t] <= COMMON * n] or rest[:1]
        params["any"], params["all"] = _any(spread), " & ".join(_quote(t) for t in spread)
        extra = []
        if len(spread) > 1:
            extra.append(("f.terms @@ CAST(:all AS tsquery)" + outside, True))
            outside += " AND NOT f.terms @@ CAST(:all AS tsquery)"
        extra.append(("f.terms @@ CAST(:any AS tsquery)" + outside, True))
        return more(extra)

    def __len__(self) -> int:
        return self.store.count_chunks()


def _any(terms: list[str]) -> str:
    return " | ".join(_quote(t) for t in terms)


def _quote(term: str) -> str:
    return "'" + term.replace("\\", "\\\\").replace("'", "''") + "'"

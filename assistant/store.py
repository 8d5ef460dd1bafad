"""What is indexed, kept in the database: documents, chunks, ingestion runs, index generation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from assistant import db, fts, schema
from assistant.types import Chunk

# Sources whose documents are resolved questions (a ticket, an issue, an answered discussion): similar-ticket
# search and golden eval sets draw from these.
TICKET_KINDS = ("jira", "github")


def utcnow() -> datetime:
    return datetime.now(UTC)


def lease_free(claimed_until: sa.ColumnElement[Any], now: datetime) -> sa.ColumnElement[bool]:
    """A row no worker holds: never claimed, or its lease ran out (the outboxes' shared lease rule)."""
    return sa.or_(claimed_until.is_(None), claimed_until < now)


@dataclass
class DocumentRecord:
    source: str
    doc_id: str
    title: str
    url: str
    content_hash: str
    audience: str
    updated_at: datetime | None
    chunk_count: int = 0
    meta: dict[str, Any] | None = None


class IndexStore:
    def __init__(self, engine: Engine, *, migrate: bool = True, keyword_index: bool = True) -> None:
        """migrate: bring the schema to the newest revision now (under the migration lock); False: refuse
        a schema that is not the newest, naming `answerdesk db upgrade` (SchemaError).
        keyword_index: keep the database keyword index (assistant/fts.py) in step with every chunk
        write. Off (ANSWERDESK_KEYWORD_INDEX=bm25s) chunk writes skip it, and its "current" marker is
        dropped, so choosing the database index later re-indexes from the chunks on open."""
        self.engine = engine
        self.keyword_index = keyword_index
        schema.prepare(engine, auto=migrate)
        if keyword_index:
            fts.ensure_index(engine)  # raw-SQL tables Alembic does not manage (db.UNMANAGED_TABLE_PREFIXES)
        else:
            fts.forget(engine)

    # -- documents -------------------------------------------------------------------------
    def document_hashes(self, source: str) -> dict[str, str]:
        q = sa.select(db.documents.c.doc_id, db.documents.c.content_hash).where(
            db.documents.c.source == source
        )
        with self.engine.connect() as conn:
            return {row.doc_id: row.content_hash for row in conn.execute(q)}

    def documents(self, source: str | None = None) -> Iterator[DocumentRecord]:
        q = sa.select(db.documents).order_by(db.documents.c.source, db.documents.c.doc_id)
        if source is not None:
            q = q.where(db.documents.c.source == source)
        with self.engine.connect() as conn:
            for row in conn.execute(q):
                yield DocumentRecord(
                    source=row.source, doc_id=row.doc_id, title=row.title, url=row.url,
                    content_hash=row.content_hash, audience=row.audience, updated_at=row.updated_at,
                    chunk_count=row.chunk_count, meta=row.meta,
                )

    def chunk_hashes(self, source: str, doc_id: str) -> dict[str, str]:
        c = db.chunks.c
        q = sa.select(c.id, c.content_hash).where(c.source == source, c.doc_id == doc_id)
        with self.engine.connect() as conn:
            return {row.id: row.content_hash for row in conn.execute(q)}

    def save_documents(self, items: Iterable[tuple[DocumentRecord, list[Chunk]]],
                       sentence_vectors: dict[str, bytes] | None = None,
                       field_vectors: dict[str, bytes] | None = None) -> None:
        """Replace each document's chunks and record it, all in one transaction.

        sentence_vectors: chunk id -> the blob of `assistant.answering.sentences`; field_vectors:
        chunk id -> its title + heading vector (float16 bytes). Chunks not in them are stored without."""
        now = utcnow()
        blobs = sentence_vectors or {}
        fields = field_vectors or {}
        items = list(items)
        # Tokenized before the transaction opens: it holds the write lock only for the writes.
        terms = fts.terms_of([(ch.id, ch.search_text, ch.source, ch.doc_id, ch.audience, ch.org)
                              for _doc, doc_chunks in items for ch in doc_chunks]) if self.keyword_index else []
        with self.engine.begin() as conn:
            for doc, doc_chunks in items:
                self._delete(conn, doc.source, doc.doc_id)
                conn.execute(
                    db.documents.insert(),
                    {**doc.__dict__, "chunk_count": len(doc_chunks), "indexed_at": now},
                )
                if doc_chunks:
                    conn.execute(db.chunks.insert(), [
                        {**_chunk_row(ch), "sentence_vectors": blobs.get(ch.id), "field_vector": fields.get(ch.id)}
                        for ch in doc_chunks])
            if terms:
                fts.add(conn, terms)
            self._bump_generation(conn)

    def delete_documents(self, source: str, doc_ids: Iterable[str]) -> None:
        with self.engine.begin() as conn:
            for doc_id in doc_ids:
                self._delete(conn, source, doc_id)
            self._bump_generation(conn)

    def chunk_ids(self, source: str, doc_ids: Iterable[str]) -> list[str]:
        ids = list(doc_ids)
        out: list[str] = []
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(db.chunks.c.id).where(
                    db.chunks.c.source == source, db.chunks.c.doc_id.in_(ids[i : i + 500])
                )
                out.extend(conn.execute(q).scalars())
        return out

    def _delete(self, conn: sa.Connection, source: str, doc_id: str) -> None:
        c = db.chunks.c
        if self.keyword_index:
            fts.remove(conn, list(conn.execute(sa.select(c.id).where(c.source == source, c.doc_id == doc_id))
                                  .scalars()))
        conn.execute(
            db.chunks.delete().where(db.chunks.c.source == source, db.chunks.c.doc_id == doc_id)
        )
        conn.execute(
            db.documents.delete().where(
                db.documents.c.source == source, db.documents.c.doc_id == doc_id
            )
        )

    # -- chunks ----------------------------------------------------------------------------
    def get_chunks(self, ids: list[str]) -> dict[str, Chunk]:
        return self.candidates(ids)[0]

    def candidates(self, ids: list[str]) -> tuple[dict[str, Chunk], dict[str, bytes]]:
        """Retrieval's candidate chunks and the field vectors stored for them, in one read.
        Not the sentence vectors: retrieval reads ~100 candidate rows per question and the answerer
        needs vectors for five of them (`sentence_vectors`)."""
        out: dict[str, Chunk] = {}
        fields: dict[str, bytes] = {}
        columns = [c for c in db.chunks.c if c.name != "sentence_vectors"]
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                q = sa.select(*columns).where(db.chunks.c.id.in_(ids[i : i + 500]))
                for row in conn.execute(q):
                    out[row.id] = _row_chunk(row)
                    if row.field_vector is not None:
                        fields[row.id] = bytes(row.field_vector)
        return out, fields

    def sentence_vectors(self, ids: list[str]) -> dict[str, bytes]:
        """Chunk id -> its stored sentence vectors blob, for the ids that have one."""
        c = db.chunks.c
        out: dict[str, bytes] = {}
        with self.engine.connect() as conn:
            for i in range(0, len(ids), 500):
                rows = conn.execute(sa.select(c.id, c.sentence_vectors).where(
                    c.id.in_(ids[i : i + 500]), c.sentence_vectors.is_not(None)))
                out.update((row.id, bytes(row.sentence_vectors)) for row in rows)
        return out

    def iter_keyword_rows(self, batch: int = 2000) -> Iterator[tuple[str, str, dict[str, str]]]:
        """(id, search_text, filter fields) of every chunk, streamed in a stable order."""
        c = db.chunks.c
        q = sa.select(c.id, c.search_text, c.source, c.audience, c.doc_id, c.org).order_by(c.id)
        with self.engine.connect() as conn:
            result = conn.execution_options(yield_per=batch).execute(q)
            for row in result:
                yield row.id, row.search_text, {"source": row.source, "audience": row.audience,
                                                "doc_id": row.doc_id, "org": row.org or ""}

    def count_chunks(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(db.chunks)).scalar_one())

    def audience_counts(self) -> list[tuple[str, str, int]]:
        """(audience, org, chunks) over the index: how many chunks an access filter keeps out."""
        c = db.chunks.c
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(c.audience, c.org, sa.func.count()).group_by(c.audience, c.org))
            return [(row[0], row[1] or "", int(row[2])) for row in rows]

    # -- generation: bumped by every write, so other processes can tell their cache is stale --
    def generation(self) -> int:
        with self.engine.connect() as conn:
            value = conn.execute(
                sa.select(db.state.c.value).where(db.state.c.key == "index_generation")
            ).scalar_one_or_none()
        return int(value) if value is not None else 0

    def _bump_generation(self, conn: sa.Connection) -> None:
        updated = conn.execute(
            db.state.update()
            .where(db.state.c.key == "index_generation")
            .values(value=sa.cast(sa.cast(db.state.c.value, sa.Integer) + 1, sa.Text))
        )
        if updated.rowcount == 0:
            conn.execute(db.state.insert(), {"key": "index_generation", "value": "1"})

    # -- runs and status -------------------------------------------------------------------
    def start_run(self, source: str, kind: str, location: str) -> int:
        with self.engine.begin() as conn:
            result = conn.execute(
                db.ingest_runs.insert().values(
                    source=source, kind=kind, location=location, started_at=utcnow(),
                    status="running", stats={},
                )
            )
            return int(result.inserted_primary_key[0])  # type: ignore[index]

    def finish_run(self, run_id: int, status: str, stats: dict[str, Any], error: str | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                db.ingest_runs.update()
                .where(db.ingest_runs.c.id == run_id)
                .values(finished_at=utcnow(), status=status, stats=stats, error=error)
            )

    def sources_of_kind(self, *kinds: str) -> list[str]:
        """Sources that some run ingested as one of `kinds` (e.g. TICKET_KINDS: the resolved-ticket sources)."""
        r = db.ingest_runs.c
        with self.engine.connect() as conn:
            return sorted(conn.execute(sa.select(r.source).where(r.kind.in_(kinds)).distinct()).scalars())

    def document_meta(self, source: str, doc_id: str) -> dict[str, Any]:
        d = db.documents.c
        with self.engine.connect() as conn:
            meta = conn.execute(sa.select(d.meta).where(d.source == source, d.doc_id == doc_id)).scalar_one_or_none()
        return dict(meta or {})

    def last_success(self, source: str) -> datetime | None:
        """When the last run of `source` that finished cleanly started: an incremental connector
        asks for changes since then (start, not end, so edits made during that run are not missed)."""
        r = db.ingest_runs.c
        q = sa.select(sa.func.max(r.started_at)).where(r.source == source, r.status == "ok")
        with self.engine.connect() as conn:
            return conn.execute(q).scalar_one_or_none()  # type: ignore[no-any-return]

    def status(self) -> list[dict[str, Any]]:
        d, c, r = db.documents.c, db.chunks.c, db.ingest_runs.c
        with self.engine.connect() as conn:
            docs: dict[str, int] = dict(conn.execute(sa.select(d.source, sa.func.count()).group_by(d.source)).all())
            nchunks: dict[str, int] = dict(conn.execute(sa.select(c.source, sa.func.count()).group_by(c.source)).all())
            last_id = sa.select(sa.func.max(r.id)).group_by(r.source).scalar_subquery()
            runs = {row.source: row for row in conn.execute(sa.select(db.ingest_runs).where(r.id.in_(last_id)))}
        out = []
        for source in sorted(set(docs) | set(runs)):
            run = runs.get(source)
            out.append({
                "source": source,
                "documents": int(docs.get(source, 0)),
                "chunks": int(nchunks.get(source, 0)),
                "last_run": None if run is None else {
                    "kind": run.kind, "location": run.location, "status": run.status,
                    "started_at": run.started_at, "finished_at": run.finished_at,
                    "stats": run.stats, "error": run.error,
                },
            })
        return out


def _chunk_row(ch: Chunk) -> dict[str, Any]:
    return {
        "id": ch.id, "source": ch.source, "doc_id": ch.doc_id, "ordinal": ch.ordinal,
        "content_hash": ch.content_hash, "audience": ch.audience, "org": ch.org, "text": ch.text,
        "search_text": ch.search_text, "meta": ch.meta,
    }


def _row_chunk(row: Any) -> Chunk:
    return Chunk(
        id=row.id, source=row.source, doc_id=row.doc_id, ordinal=row.ordinal, text=row.text,
        search_text=row.search_text, content_hash=row.content_hash, audience=row.audience,
        meta=dict(row.meta), org=row.org or "",
    )

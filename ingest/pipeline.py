"""The ingestion pipeline: listed documents -> parse -> chunk -> diff by hash -> embed -> upsert/delete.

Idempotent by stable ids and content hashes: an unchanged document is not parsed, an unchanged
chunk is not embedded, a moved chunk reuses its vector, a vanished document is deleted.
Vectors are written before the database rows that record them, so a crash mid-run leaves at
worst vectors the database does not know yet, which the next run overwrites: never the reverse.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from assistant.answering import sentences
from assistant.services import Services
from assistant.store import DocumentRecord
from assistant.types import Chunk
from ingest.chunking import chunk_document
from ingest.model import DocumentRef, SourceDocument
from ingest.parsers import ParseError


@dataclass
class IngestStats:
    seen: int = 0
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    failed: int = 0
    chunks_embedded: int = 0
    chunks_reused: int = 0
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)  # stage -> seconds, for benchmarks
    failures: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the source decided or left out, for the operator

    def summary(self) -> str:
        return (
            f"documents seen {self.seen} / added {self.added} / updated {self.updated} / "
            f"deleted {self.deleted} / unchanged {self.unchanged}"
            + (f" / failed {self.failed}" if self.failed else "")
            + f"; chunks embedded {self.chunks_embedded}; {self.seconds:.1f} s"
            + "".join(f"; {note}" for note in self.notes)
        )


@contextmanager
def timed(stats: IngestStats, stage: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        stats.timings[stage] = stats.timings.get(stage, 0.0) + time.perf_counter() - started


def vector_metadata(ch: Chunk) -> dict[str, Any]:
    return {
        "source": ch.source, "doc_id": ch.doc_id, "audience": ch.audience, "org": ch.org,
        "title": ch.title, "url": ch.url, "content_hash": ch.content_hash,
    }


@dataclass
class _Pending:
    record: DocumentRecord
    chunks: list[Chunk]
    embed: list[Chunk]  # chunks whose text is new: need the model
    reuse: dict[str, np.ndarray]  # chunk id -> vector of an identical chunk that moved
    keep: list[Chunk]  # unchanged chunks: metadata refresh only
    stale: list[str]  # old chunk ids gone from the document
    blobs: dict[str, bytes]  # chunk id -> sentence vectors carried over from the old row


class Ingestor:
    def __init__(
        self,
        services: Services,
        source: str,
        flush_chunks: int = 512,
        on_document: Callable[[str], None] | None = None,
    ) -> None:
        self.s = services
        self.source = source
        self.flush_chunks = flush_chunks
        self.on_document = on_document or (lambda _label: None)
        self.chunk_size = services.settings.chunk_size
        self.overlap = services.settings.chunk_overlap

    def run(self, refs: Iterable[DocumentRef], kind: str, location: str, complete: bool = True,
            removed: Iterable[str] | None = None, notes: Iterable[str] = ()) -> IngestStats:
        """Sync the source with `refs`.

        complete: refs list every document of the source, so stored documents missing from it
        are deleted. Otherwise (an incremental listing of changes) only the ids in `removed`
        are deleted. notes: the source's own remarks, shown in the summary and kept with the run."""
        started = time.perf_counter()
        stats = IngestStats(notes=list(notes))
        store = self.s.store
        run_id = store.start_run(self.source, kind, location)
        try:
            known = store.document_hashes(self.source)
            seen: set[str] = set()
            pending: list[_Pending] = []
            for ref in refs:
                stats.seen += 1
                seen.add(ref.doc_id)
                if known.get(ref.doc_id) == ref.content_hash:
                    stats.unchanged += 1
                else:
                    with timed(stats, "parse"):
                        item = self._prepare(ref, stats)
                    if item is not None:
                        pending.append(item)
                        stats.added += ref.doc_id not in known
                        stats.updated += ref.doc_id in known
                if sum(self._model_work(p) for p in pending) >= self.flush_chunks:
                    self._flush(pending, stats)
                self.on_document(ref.label or ref.doc_id)
            self._flush(pending, stats)
            gone = sorted(set(known) - seen) if complete else sorted(set(removed or ()) & set(known))
            stats.deleted = self._delete(gone)
            if stats.added or stats.updated or stats.deleted:
                with timed(stats, "keyword_index"):
                    self.s.keywords.rebuild()
        except BaseException as exc:
            stats.seconds = time.perf_counter() - started
            store.finish_run(run_id, "failed", _stats_dict(stats), f"{type(exc).__name__}: {exc}")
            raise
        stats.seconds = time.perf_counter() - started
        status = "partial" if stats.failed else "ok"
        error = "; ".join(f"{label}: {msg}" for label, msg in stats.failures[:20]) or None
        store.finish_run(run_id, status, _stats_dict(stats), error)
        return stats

    def _delete(self, doc_ids: list[str]) -> int:
        if doc_ids:
            self.s.vectors.delete(self.s.store.chunk_ids(self.source, doc_ids))
            self.s.store.delete_documents(self.source, doc_ids)
        return len(doc_ids)

    def _prepare(self, ref: DocumentRef, stats: IngestStats) -> _Pending | None:
        try:
            doc = ref.load()
            chunks = chunk_document(doc, self.source, self.chunk_size, self.overlap)
        except (ParseError, ValueError, OSError) as exc:
            stats.failed += 1
            stats.failures.append((ref.label or ref.doc_id, str(exc)))
            return None
        old = self.s.store.chunk_hashes(self.source, ref.doc_id)
        by_hash = {h: cid for cid, h in old.items()}
        embed, keep, moved = [], [], {}
        for ch in chunks:
            if old.get(ch.id) == ch.content_hash:
                keep.append(ch)
            elif ch.content_hash in by_hash:
                moved[ch.id] = by_hash[ch.content_hash]
            else:
                embed.append(ch)
        reuse: dict[str, np.ndarray] = {}
        if moved:
            vectors = self.s.vectors.get_vectors(sorted(set(moved.values())))
            reuse = {cid: vectors[src] for cid, src in moved.items() if src in vectors}
            embed += [ch for ch in chunks if ch.id in moved and ch.id not in reuse]
        new_ids = {ch.id for ch in chunks}
        # The document's rows are rewritten whole: unchanged and moved chunks keep their sentence
        # vectors (read back here), only new text is embedded.
        old_blobs = self.s.store.sentence_vectors([ch.id for ch in keep] + sorted(set(moved.values())))
        blobs = {ch.id: old_blobs[ch.id] for ch in keep if ch.id in old_blobs}
        blobs.update((cid, old_blobs[src]) for cid, src in moved.items() if src in old_blobs)
        # A blob from before the answerer's splitting changed (table rows became quotable units)
        # has another row count: the answerer would ignore it and embed that chunk per question.
        by_id = {ch.id: ch for ch in chunks}
        row_bytes = 2 * self.s.embedder.dimension
        blobs = {cid: blob for cid, blob in blobs.items()
                 if len(blob) == len(sentences.sentence_texts(by_id[cid])) * row_bytes}
        return _Pending(
            record=_record(doc, ref, self.source),
            chunks=chunks, embed=embed, reuse=reuse, keep=keep,
            stale=[cid for cid in old if cid not in new_ids], blobs=blobs,
        )

    def _model_work(self, item: _Pending) -> int:
        """Chunk texts to embed, plus chunks still needing sentence vectors (about a chunk's worth of
        text each): a re-sync after an upgrade has no new chunks but all their sentences to embed."""
        sentence_work = sum(ch.id not in item.blobs for ch in item.chunks) if self.s.settings.sentence_vectors else 0
        return len(item.embed) + sentence_work

    def _flush(self, pending: list[_Pending], stats: IngestStats) -> None:
        if not pending:
            return
        embed = [ch for p in pending for ch in p.embed]
        blobs = {cid: blob for p in pending for cid, blob in p.blobs.items()}
        # Sentence vectors for every chunk that has none yet (new text, or rows from before they
        # were stored), embedded in the same model call as the chunks: one length-sorted batch.
        needs = [ch for p in pending for ch in p.chunks if ch.id not in blobs]
        if not self.s.settings.sentence_vectors:
            needs = []  # answers embed their sources' sentences per question instead (cached)
        texts = [sentences.sentence_texts(ch) for ch in needs]
        with timed(stats, "embed"):
            # Each distinct text once: the pieces of a long section share its heading (SciFact: 8,647
            # headings, 5,181 distinct), and overlapping pieces can share a sentence.
            flat = list(dict.fromkeys([ch.search_text for ch in embed] + [t for group in texts for t in group]))
            row_of = {t: i for i, t in enumerate(flat)}
            all_rows = self.s.embedder.embed(flat, kind="document")
        vectors = all_rows[[row_of[ch.search_text] for ch in embed]]
        for ch, group in zip(needs, texts, strict=True):
            blobs[ch.id] = sentences.encode(all_rows[[row_of[t] for t in group]])
        chunk_by_id = {ch.id: ch for p in pending for ch in p.chunks}
        reused = [(cid, vec) for p in pending for cid, vec in p.reuse.items()]
        ids = [ch.id for ch in embed] + [cid for cid, _ in reused]
        with timed(stats, "vector_store"):
            if ids:
                all_vectors = np.vstack([vectors] + [vec[None, :] for _, vec in reused]) if reused else vectors
                self.s.vectors.upsert(ids, all_vectors, [vector_metadata(chunk_by_id[i]) for i in ids])
            keep = [ch for p in pending for ch in p.keep]
            if keep:
                self.s.vectors.update_metadata([ch.id for ch in keep], [vector_metadata(ch) for ch in keep])
            stale = [cid for p in pending for cid in p.stale]
            if stale:
                self.s.vectors.delete(stale)
        with timed(stats, "database"):
            dim = self.s.embedder.dimension
            fields = {cid: sentences.first_row(blob, dim) for cid, blob in blobs.items()}
            self.s.store.save_documents(((p.record, p.chunks) for p in pending), blobs, fields)
        stats.chunks_embedded += len(embed)
        stats.chunks_reused += len(reused)
        pending.clear()


def _record(doc: SourceDocument, ref: DocumentRef, source: str) -> DocumentRecord:
    return DocumentRecord(
        source=source, doc_id=doc.doc_id, title=doc.title, url=doc.url,
        content_hash=ref.content_hash, audience=doc.audience, updated_at=doc.updated_at,
        meta=doc.meta or None,
    )


def _stats_dict(stats: IngestStats) -> dict[str, Any]:
    d = asdict(stats)
    d["failures"] = [list(f) for f in stats.failures[:50]]
    return d

"""Chat at the speed of search (issue 16): sentence vectors stored at ingest, query embeddings of
concurrent requests batched, caches bounded by bytes. Real model, real Chroma, real SQLite."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from assistant.answering import sentences
from assistant.answering.extractive import ExtractiveAnswerer
from assistant.answering.types import Source
from assistant.bytecache import ByteLRU
from assistant.embeddings import Kind, QueryBatcher, SentenceTransformerEmbedder
from assistant.services import Services
from tests.conftest import fresh_services, index_docs

QUESTIONS = ["How do I create an API key?", "Which answerer runs without an LLM?",
             "How is a Confluence space ingested?", "What happens when confidence is low?",
             "confluence ingest fails with 410 gone"]  # answered from table rows: their vectors are stored too


class Counting:
    """The real embedder, with a record of every call: (kind, number of texts)."""

    def __init__(self, inner: SentenceTransformerEmbedder) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self.calls: list[tuple[str, int]] = []

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        self.calls.append((kind, len(texts)))
        return self.inner.embed(texts, kind)


def sources_for(services: Services, question: str) -> list[Source]:
    return [Source(n, hit) for n, hit in enumerate(services.retriever.search(question, k=5), 1)]


def test_ingest_stores_sentence_vectors_the_answerer_would_compute(docs_services: Services,
                                                                   embedder: SentenceTransformerEmbedder) -> None:
    store = docs_services.store
    ids = store.chunk_ids("answerdesk-docs", [d.doc_id for d in store.documents()])
    chunks = store.get_chunks(ids)
    blobs = store.sentence_vectors(ids)
    assert chunks and set(blobs) == set(chunks)  # every chunk has them
    chunk = max(chunks.values(), key=lambda c: len(sentences.sentence_texts(c)))
    texts = sentences.sentence_texts(chunk)
    stored = sentences.decode(blobs[chunk.id], len(texts), embedder.dimension)
    assert stored is not None and len(blobs[chunk.id]) == len(texts) * embedder.dimension * 2  # float16
    fresh = embedder.embed(texts, kind="document")
    # bfloat16 on CPUs that have it: vectors are unit length to about 0.3%, and rounding depends on the
    # batch a text was embedded in; another sentence's vector would be far below this
    assert np.min(np.sum(stored * fresh, axis=1)) > 0.99
    assert sentences.decode(blobs[chunk.id], len(texts) + 1, embedder.dimension) is None  # a misfit is ignored


def test_a_question_costs_one_query_embedding_and_answers_the_same(docs_services: Services,
                                                                   embedder: SentenceTransformerEmbedder) -> None:
    counting = Counting(embedder)
    with_stored = ExtractiveAnswerer(counting, stored=docs_services.store.sentence_vectors)
    embedding_here = ExtractiveAnswerer(embedder)
    for question in QUESTIONS:
        sources = sources_for(docs_services, question)
        counting.calls.clear()
        answer = "".join(with_stored.stream(question, sources, []))
        assert counting.calls == [("query", 1)]
        assert answer and answer == "".join(embedding_here.stream(question, sources, []))


def test_chat_makes_no_document_embedding_per_question(docs_services: Services,
                                                       embedder: SentenceTransformerEmbedder) -> None:
    counting = Counting(embedder)
    batcher = QueryBatcher(counting)
    svc = Services(docs_services.settings, embedder=batcher)
    answer = svc.assistant.respond("How do I rotate an API key?")
    assert answer.citations and answer.checks.sentences > 0
    # The retriever and the answerer both embed the question: one model call. The title/heading
    # vectors of the candidate documents were stored at ingest: nothing else reaches the model.
    assert counting.calls == [("query", 1)]
    for question in QUESTIONS:  # distinct questions find other pages: still only their own embedding
        counting.calls.clear()
        svc.assistant.respond(question)
        assert counting.calls == [("query", 1)]
    counting.calls.clear()
    svc.assistant.respond("How do I rotate an API key?")  # asked again: the vector is cached
    assert counting.calls == []


def test_stored_field_vectors_are_the_embedded_titles(docs_services: Services,
                                                      embedder: SentenceTransformerEmbedder) -> None:
    store = docs_services.store
    chunks, stored = store.candidates(store.chunk_ids("answerdesk-docs", [d.doc_id for d in store.documents()]))
    assert chunks and set(stored) == set(chunks)
    some = list({chunks[cid].heading_text: cid for cid in sorted(chunks)}.values())[:20]  # distinct headings
    fresh = embedder.embed([chunks[cid].heading_text for cid in some], kind="document")
    kept = np.vstack([np.frombuffer(stored[cid], dtype=np.float16).astype(np.float32) for cid in some])
    assert np.min(np.sum(kept * fresh, axis=1)) > 0.99  # its own title's vector (bf16 batch rounding aside)
    assert list(np.argmax(kept @ fresh.T, axis=1)) == list(range(len(some)))  # closest to no other title


def test_concurrent_queries_are_embedded_in_few_batches(embedder: SentenceTransformerEmbedder) -> None:
    counting = Counting(embedder)
    batcher = QueryBatcher(counting, window=0.02)
    questions = [f"question number {i} about API keys and webhooks" for i in range(16)]
    results: dict[str, np.ndarray] = {}
    start = threading.Barrier(16)

    def ask(q: str) -> None:
        start.wait()
        results[q] = batcher.embed([q], kind="query")[0]

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert batcher.batches == len(counting.calls) <= 4  # 16 questions, a handful of model calls
    direct = embedder.embed(questions, kind="query")
    # > 0.99, not 0.999: bfloat16 rounding depends on the batch (see above); the others are far below
    assert all(float(results[q] @ direct[i]) > 0.99 for i, q in enumerate(questions))
    counting.calls.clear()
    again = batcher.embed([questions[3], questions[3]], kind="query")
    assert counting.calls == [] and again.shape == (2, embedder.dimension)  # asked again: from the cache
    assert batcher.embed(["a document"], kind="document").shape == (1, embedder.dimension)
    assert counting.calls == [("document", 1)]  # documents pass straight through


def test_a_failing_model_fails_the_waiting_requests_not_the_worker(embedder: SentenceTransformerEmbedder) -> None:
    class Flaky(Counting):
        def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
            if any("boom" in t for t in texts):
                raise RuntimeError("model fell over")
            return super().embed(texts, kind)

    batcher = QueryBatcher(Flaky(embedder))
    with pytest.raises(RuntimeError, match="fell over"):
        batcher.embed(["boom"], kind="query")
    assert batcher.embed(["still here?"], kind="query").shape == (1, embedder.dimension)


def test_byte_cache_stays_within_its_budget() -> None:
    cache: ByteLRU[str, np.ndarray] = ByteLRU(10_000, lambda v: v.nbytes)
    for i in range(100):
        cache.put(f"k{i}", np.zeros(384, dtype=np.float32))  # 1,536 bytes each
    assert cache.bytes <= 10_000 and len(cache) == 6
    assert cache.get("k99") is not None and cache.get("k0") is None
    cache.put("huge", np.zeros(10_000, dtype=np.float32))  # over the whole budget: not kept
    assert cache.get("huge") is None and len(cache) == 6


def test_sentence_vectors_can_be_left_out_of_ingest(tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    """ANSWERDESK_SENTENCE_VECTORS=false: ingestion embeds only the chunks (one text each), and answers
    still come, their sources' sentences embedded per question instead."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "keys.md").write_text("# API keys\n\nCreate a key with `answerdesk keys create`. Keys are shown once. "
                                  "Revoke a key with `answerdesk keys revoke`.\n")
    counting = Counting(embedder)
    svc = fresh_services(tmp_path, counting, sentence_vectors=False)  # type: ignore[arg-type]
    index_docs(svc, docs)
    ids = svc.store.chunk_ids("answerdesk-docs", [d.doc_id for d in svc.store.documents()])
    assert ids and svc.store.sentence_vectors(ids) == {}
    assert sum(n for kind, n in counting.calls if kind == "document") == len(ids)  # no sentence texts
    answer = svc.assistant.respond("How do I revoke an API key?")
    assert answer.citations and "revoke" in answer.answer


def test_a_changed_page_refreshes_sentence_vectors_stored_before_table_rows_counted(
        tmp_path: Path, embedder: SentenceTransformerEmbedder) -> None:
    """Blobs stored before table rows became quotable have fewer rows: the answerer ignores them and
    embeds the chunk per question. When the page is next re-indexed, its unchanged sections get
    vectors that fit again instead of keeping the old ones."""
    import sqlalchemy as sa

    from assistant import db

    docs = tmp_path / "docs"
    docs.mkdir()
    page = docs / "api.md"
    table = "## Error codes\n\n| Status | When |\n|---|---|\n| 413 | the request body is too large |\n"
    page.write_text("# API\n\n## Keys\n\nCreate a key with `answerdesk keys create`.\n\n" + table)
    svc = fresh_services(tmp_path, embedder)
    index_docs(svc, docs)
    chunks = svc.store.get_chunks(svc.store.chunk_ids("answerdesk-docs", ["api.md"]))
    errors = next(c for c in chunks.values() if "413" in c.text)
    blob = svc.store.sentence_vectors([errors.id])[errors.id]
    old = blob[: 2 * embedder.dimension]  # the heading only: as stored when rows were not quotable
    with svc.store.engine.begin() as conn:
        conn.execute(sa.update(db.chunks).where(db.chunks.c.id == errors.id).values(sentence_vectors=old))
    page.write_text(page.read_text().replace("Create a key", "Create an API key"))  # another section changes
    index_docs(svc, docs)
    stored = svc.store.sentence_vectors([errors.id])[errors.id]
    assert len(stored) == len(sentences.sentence_texts(errors)) * 2 * embedder.dimension == len(blob)

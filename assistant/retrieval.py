"""Hybrid retrieval at document level: dense (Chroma) and keyword (BM25) chunk candidates are
reduced to documents first, then fused by weighted z-scores, with the title and heading path
counting as a field of their own.

Why documents and not chunks: fusing chunks lets one long page crowd the top with its sections
and lets a page that both retrievers find through *different* sections lose to a page only one
of them found. Reducing each list to documents (a document scores its best chunk) before fusing
fixes both; the best section of each document is kept for the citation.

Why z-scores and not reciprocal ranks: ranks throw away how far ahead the first document is, and
that gap is what the confidence model reads. Per-query z-scoring puts cosine and BM25 on one
scale without per-corpus calibration. The weights were chosen on train/dev splits only
(docs/evaluation.md); `answerdesk eval calibrate` can relearn the dense weight for a deployment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from assistant.access import allows
from assistant.bytecache import ByteLRU
from assistant.embeddings import Embedder
from assistant.index.keyword import KeywordSearch, tokenize
from assistant.index.vector import VectorIndex
from assistant.store import IndexStore
from assistant.types import Chunk, Hit, Where

Mode = Literal["hybrid", "dense", "keyword"]
# A ticket or issue named in the query ("SUP-2", "owner/repo#12") is a lookup: that document goes first.
# Embeddings cannot tell SUP-1 from SUP-2, so fusion alone can tie the two.
IDENTIFIER = re.compile(r"\b[A-Z][A-Z0-9_]+-\d+\b|\b[\w.-]+/[\w.-]+#\d+\b")
DocKey = tuple[str, str]  # (source, doc_id): doc ids are only unique within a source


@dataclass(frozen=True)
class Fusion:
    """Weights of the per-query z-scored evidence. Keyword = 1 - dense; the field weights add on top."""

    dense: float = 0.6
    field_dense: float = 0.1
    field_keyword: float = 0.1

    @property
    def keyword(self) -> float:
        return 1.0 - self.dense


def record_fields(chunk: Chunk) -> dict[str, str]:
    """The fields a filter may name, as the database holds them."""
    return {"source": chunk.source, "audience": chunk.audience, "doc_id": chunk.doc_id, "org": chunk.org}


def named_by(title: str, identifiers: set[str]) -> bool:
    return title.split(":", 1)[0].strip().lower() in identifiers


def zscores(scores: dict[str, float] | dict[DocKey, float]) -> dict:  # type: ignore[type-arg]
    """Per-query standardisation; one candidate (or all equal) scores 0."""
    if not scores:
        return {}
    vals = list(scores.values())
    mean = math.fsum(vals) / len(vals)
    # Not statistics.pstdev: it sums exact fractions, a third of the ranking's time per question.
    sd = math.sqrt(math.fsum((v - mean) ** 2 for v in vals) / len(vals))
    return {k: (v - mean) / sd if sd > 1e-9 else 0.0 for k, v in scores.items()}


# Title + heading words by text: tokenizing ~50 candidates' field texts per question cost more than
# the keyword search itself, and a corpus has few distinct ones.
_FIELD_TERMS: ByteLRU[str, frozenset[str]] = ByteLRU(16 << 20, lambda ws: 250 + sum(60 + len(w) for w in ws))


def term_share(query_terms: set[str], text: str) -> float:
    if not query_terms:
        return 0.0
    words = _FIELD_TERMS.get(text)
    if words is None:
        words = frozenset(tokenize([text])[0])
        _FIELD_TERMS.put(text, words)
    return len(query_terms & words) / len(query_terms)


@dataclass
class DocEvidence:
    """One document's evidence before fusion: its best chunk per retriever and overall."""

    key: DocKey
    dense: float | None = None  # best chunk cosine
    keyword: float | None = None  # best chunk BM25
    best_chunk: str = ""


def reduce_to_documents(dense: list[tuple[str, float]], sparse: list[tuple[str, float]],
                        doc_of: dict[str, DocKey], weights: Fusion) -> dict[DocKey, DocEvidence]:
    """Each retriever's chunk list -> documents scored by their best chunk; the document's best
    section is its chunk with the highest chunk-level fused z-score (missing from a list = that
    list's minimum)."""
    zd = zscores({c: s for c, s in dense if c in doc_of})
    zk = zscores({c: s for c, s in sparse if c in doc_of})
    floor_d, floor_k = min(zd.values(), default=0.0), min(zk.values(), default=0.0)
    docs: dict[DocKey, DocEvidence] = {}
    best: dict[DocKey, float] = {}
    for chunk_id, score in dense:
        if chunk_id in doc_of:
            ev = docs.setdefault(doc_of[chunk_id], DocEvidence(doc_of[chunk_id]))
            ev.dense = score if ev.dense is None else max(ev.dense, score)
    for chunk_id, score in sparse:
        if chunk_id in doc_of:
            ev = docs.setdefault(doc_of[chunk_id], DocEvidence(doc_of[chunk_id]))
            ev.keyword = score if ev.keyword is None else max(ev.keyword, score)
    for chunk_id in {**zd, **zk}:
        key = doc_of[chunk_id]
        s = weights.dense * zd.get(chunk_id, floor_d) + weights.keyword * zk.get(chunk_id, floor_k)
        if key not in best or s > best[key]:
            best[key], docs[key].best_chunk = s, chunk_id
    return docs


def fuse(docs: dict[DocKey, DocEvidence], field_dense: dict[DocKey, float], field_keyword: dict[DocKey, float],
         weights: Fusion) -> list[tuple[DocKey, float]]:
    """Weighted sum of z-scored document evidence, best first."""
    zd = zscores({k: e.dense for k, e in docs.items() if e.dense is not None})
    zk = zscores({k: e.keyword for k, e in docs.items() if e.keyword is not None})
    zfd, zfk = zscores(field_dense), zscores(field_keyword)
    floor_d, floor_k = min(zd.values(), default=0.0), min(zk.values(), default=0.0)
    fused = {
        k: weights.dense * zd.get(k, floor_d) + weights.keyword * zk.get(k, floor_k)
        + weights.field_dense * zfd.get(k, 0.0) + weights.field_keyword * zfk.get(k, 0.0)
        for k in docs
    }
    return sorted(fused.items(), key=lambda kv: kv[1], reverse=True)


def ranks(values: dict[DocKey, float | None]) -> dict[DocKey, int]:
    order = sorted((k for k, v in values.items() if v is not None), key=lambda k: values[k], reverse=True)  # type: ignore[arg-type, return-value]
    return {k: i for i, k in enumerate(order, 1)}


def rank_documents(query: str, vector: np.ndarray | None, dense: list[tuple[str, float]],
                   sparse: list[tuple[str, float]], chunks: dict[str, Chunk], weights: Fusion,
                   field_vectors: Callable[[Iterable[str]], dict[str, np.ndarray]]) -> list[Hit]:
    """Chunk candidates of both retrievers -> documents, best first, each as its best section."""
    doc_of = {cid: (ch.source, ch.doc_id) for cid, ch in chunks.items()}
    docs = reduce_to_documents(dense, sparse, doc_of, weights)
    # A document's field evidence is its best-matching title + heading path among its candidate
    # sections, not only the best chunk's: a page whose "Rate limits" section was found, but whose
    # best chunk by text is another section, still has a heading that answers "why do i get 429".
    fields: dict[DocKey, set[str]] = {}
    for cid in dict.fromkeys([c for c, _ in dense] + [c for c, _ in sparse]):
        if cid in chunks and doc_of[cid] in docs:
            fields.setdefault(doc_of[cid], set()).add(chunks[cid].heading_text)
    field_dense: dict[DocKey, float] = {}
    field_keyword: dict[DocKey, float] = {}
    if weights.field_dense and vector is not None:
        vecs = field_vectors(t for texts in fields.values() for t in texts)
        field_dense = {key: max(float(vecs[t] @ vector) for t in texts) for key, texts in fields.items()}
    if weights.field_keyword:
        qterms = set(tokenize([query])[0])
        field_keyword = {key: max(term_share(qterms, t) for t in texts) for key, texts in fields.items()}
    ranked = fuse(docs, field_dense, field_keyword, weights)
    dense_rank = ranks({key: ev.dense for key, ev in docs.items()})
    keyword_rank = ranks({key: ev.keyword for key, ev in docs.items()})
    return [Hit(chunk=chunks[docs[key].best_chunk], score=score, dense_score=docs[key].dense,
                keyword_score=docs[key].keyword, dense_rank=dense_rank.get(key),
                keyword_rank=keyword_rank.get(key), field_score=field_dense.get(key))
            for key, score in ranked]


class FieldVectors:
    """Vectors of title + heading strings: stored at ingest with each chunk (`known`), else embedded
    here and cached by bytes. A corpus has as many distinct titles as pages, and distinct questions
    find distinct pages: embedding ~50 candidates' titles per question cost several times the query's
    own embedding, so only rows stored before field vectors existed get here."""

    def __init__(self, embedder: Embedder, cache_bytes: int = 32 << 20) -> None:
        self.embedder = embedder
        self._cache: ByteLRU[str, np.ndarray] = ByteLRU(cache_bytes, lambda v: v.nbytes + 200)

    def get(self, texts: Iterable[str], known: dict[str, bytes] | None = None) -> dict[str, np.ndarray]:
        """known: text -> its stored float16 vector, used as is."""
        texts = list(dict.fromkeys(texts))
        known = known or {}
        out = {t: np.frombuffer(known[t], dtype=np.float16).astype(np.float32) for t in texts if t in known}
        for t in texts:
            if t not in out and (cached := self._cache.get(t)) is not None:
                out[t] = cached
        missing = [t for t in texts if t not in out]
        if missing:
            for t, vec in zip(missing, self.embedder.embed(missing, kind="document"), strict=True):
                out[t] = vec.copy()  # a copy: a row view would keep the whole batch alive
                self._cache.put(t, out[t])
        return out


def only_audience(where: Where) -> bool:
    """Whether a filter names only the audience and org fields (what access control filters on)."""
    return all(all(only_audience(w) for w in value) if key == "$or" else key in ("audience", "org")
               for key, value in where.items())


class Retriever:
    # Chroma applies a metadata filter by reading its own SQLite first: ~10x the cost of the vector
    # search itself (measured on SciFact). When an access filter keeps out at most this many chunks
    # (a docs site with a few internal pages, or none), the top n + kept-out unfiltered matches
    # hold the filtered top n exactly, and the database check below drops the others.
    POSTFILTER_MAX = 200

    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorIndex,
        keywords: KeywordSearch,
        store: IndexStore,
        candidates: int = 50,
        fusion: Fusion | None = None,
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.keywords = keywords
        self.store = store
        self.candidates = candidates
        self.fusion = fusion or Fusion()
        self.fields = FieldVectors(embedder)
        self._counts: tuple[int, list[tuple[str, str, int]]] = (-1, [])

    def kept_out(self, where: Where | None) -> int | None:
        """How many chunks `where` keeps out of the index, or None when it filters on other fields."""
        if not where:
            return 0
        if not only_audience(where):
            return None
        generation = self.store.generation()
        if self._counts[0] != generation:  # recounted after every write to the index
            self._counts = (generation, self.store.audience_counts())
        return sum(n for audience, org, n in self._counts[1]
                   if not allows(where, {"audience": audience, "org": org}))

    def _dense(self, vector: np.ndarray, n: int, where: Where | None) -> tuple[list[tuple[str, float]], bool]:
        """Dense candidates, and whether they still hold chunks `where` keeps out (dropped later)."""
        kept_out = self.kept_out(where)
        if kept_out is not None and kept_out <= self.POSTFILTER_MAX:
            return [(m.id, m.similarity) for m in self.vectors.search(vector, n + kept_out, None)], bool(kept_out)
        return [(m.id, m.similarity) for m in self.vectors.search(vector, n, where)], False

    def search(self, query: str, k: int = 5, where: Where | None = None, mode: Mode = "hybrid") -> list[Hit]:
        """The top k documents, each as its best section (one hit per document)."""
        n = max(k, self.candidates)
        weights = self.fusion
        vector = None
        dense: list[tuple[str, float]] = []
        unfiltered = False
        if mode != "keyword":
            vector = self.embedder.embed([query], kind="query")[0]
            dense, unfiltered = self._dense(vector, n, where)
        sparse = self.keywords.search(query, n, where) if mode != "dense" else []
        if mode != "hybrid":
            weights = Fusion(dense=1.0 if mode == "dense" else 0.0, field_dense=0.0, field_keyword=0.0)

        # A chunk the vector store still returns but the database no longer has was deleted
        # mid-query: it never reaches the ranking, rather than show a ghost. The filter is checked
        # again on the database record: after a crash between the vector upsert and the database
        # write, Chroma's metadata can say "public" for a row whose stored text is still internal.
        fetched, stored = self.store.candidates(list(dict.fromkeys([c for c, _ in dense] + [c for c, _ in sparse])))
        chunks = {cid: chunk for cid, chunk in fetched.items() if allows(where, record_fields(chunk))}
        if dense and unfiltered:  # the filtered top n, as the vector store's own filter would give
            dense = [(cid, score) for cid, score in dense if cid in chunks][:n]
        known = {chunks[cid].heading_text: blob for cid, blob in stored.items() if cid in chunks}
        out = rank_documents(query, vector, dense, sparse, chunks, weights,
                             lambda texts: self.fields.get(texts, known))
        identifiers = {m.lower() for m in IDENTIFIER.findall(query)}
        if identifiers:
            out.sort(key=lambda h: not named_by(h.chunk.title, identifiers))  # stable: the rest keep their order
        return out[:k]

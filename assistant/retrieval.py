"""Hybrid retrieval: dense (Chroma) and keyword (BM25) candidates fused by reciprocal rank.

RRF was chosen over tuned score weights because it needs no per-corpus calibration of two
incomparable score scales; docs/performance.md has the SciFact figures behind the choice.
"""

from __future__ import annotations

import re
from typing import Literal

from assistant.access import allows
from assistant.embeddings import Embedder
from assistant.index.keyword import KeywordIndex
from assistant.index.vector import VectorIndex
from assistant.store import IndexStore
from assistant.types import Chunk, Hit, Where

Mode = Literal["hybrid", "dense", "keyword"]
# A ticket or issue named in the query ("SUP-2", "owner/repo#12") is a lookup: that document goes first.
# Embeddings cannot tell SUP-1 from SUP-2, so fusion alone can tie the two.
IDENTIFIER = re.compile(r"\b[A-Z][A-Z0-9_]+-\d+\b|\b[\w.-]+/[\w.-]+#\d+\b")


def record_fields(chunk: Chunk) -> dict[str, str]:
    """The fields a filter may name, as the database holds them."""
    return {"source": chunk.source, "audience": chunk.audience, "doc_id": chunk.doc_id, "org": chunk.org}


def named_by(title: str, identifiers: set[str]) -> bool:
    return title.split(":", 1)[0].strip().lower() in identifiers


class Retriever:
    def __init__(
        self,
        embedder: Embedder,
        vectors: VectorIndex,
        keywords: KeywordIndex,
        store: IndexStore,
        candidates: int = 50,
        rrf_k: int = 60,
    ) -> None:
        self.embedder = embedder
        self.vectors = vectors
        self.keywords = keywords
        self.store = store
        self.candidates = candidates
        self.rrf_k = rrf_k

    def search(self, query: str, k: int = 5, where: Where | None = None, mode: Mode = "hybrid") -> list[Hit]:
        n = max(k, self.candidates)
        dense = []
        if mode != "keyword":
            vector = self.embedder.embed([query], kind="query")[0]
            dense = self.vectors.search(vector, n, where)
        sparse = self.keywords.search(query, n, where) if mode != "dense" else []

        fused: dict[str, Hit] = {}
        for rank, match in enumerate(dense, 1):
            hit = fused.setdefault(match.id, Hit(chunk=None, score=0.0))  # type: ignore[arg-type]
            hit.dense_score, hit.dense_rank = match.similarity, rank
            hit.score += 1.0 / (self.rrf_k + rank)
        for rank, (chunk_id, score) in enumerate(sparse, 1):
            hit = fused.setdefault(chunk_id, Hit(chunk=None, score=0.0))  # type: ignore[arg-type]
            hit.keyword_score, hit.keyword_rank = score, rank
            hit.score += 1.0 / (self.rrf_k + rank)

        ranked = sorted(fused.items(), key=lambda kv: kv[1].score, reverse=True)
        chunks = self.store.get_chunks([cid for cid, _ in ranked[: k * 2]])
        out: list[Hit] = []
        for cid, hit in ranked[: k * 2]:
            # A chunk the vector store still returns but the database no longer has was deleted
            # mid-query; skip it rather than show a ghost. The filter is checked again on the database
            # record: after a crash between the vector upsert and the database write, Chroma's
            # metadata can say "public" for a row whose stored text is still internal.
            chunk = chunks.get(cid)
            if chunk is not None and allows(where, record_fields(chunk)):
                hit.chunk = chunk
                out.append(hit)
        identifiers = {m.lower() for m in IDENTIFIER.findall(query)}
        if identifiers:
            out.sort(key=lambda h: not named_by(h.chunk.title, identifiers))  # stable: the rest keep their order
        return out[:k]

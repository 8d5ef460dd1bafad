"""Shared value types: what ingestion writes and retrieval returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

AUDIENCES = ("public", "customer", "internal")

# A metadata filter: field -> allowed value(s), all of which must hold; "$or" -> a list of such
# filters of which one must hold. Applied inside both indexes, never afterwards.
Where = dict[str, Any]


@dataclass(frozen=True)
class Chunk:
    id: str
    source: str
    doc_id: str
    ordinal: int
    text: str  # the section text shown to people (snippets, extractive answers)
    search_text: str  # title + heading path + text: what is embedded and keyword-indexed
    content_hash: str
    audience: str
    meta: dict[str, Any] = field(default_factory=dict)  # title, heading, url, updated_at
    org: str = ""  # the customer organisation a ticket belongs to; "" for everything else

    @property
    def title(self) -> str:
        return str(self.meta.get("title", ""))

    @property
    def url(self) -> str:
        return str(self.meta.get("url", ""))

    @property
    def heading(self) -> str:
        return str(self.meta.get("heading", ""))

    @property
    def heading_text(self) -> str:
        """The page title and heading path: the retrieval's title/heading field and the answerer's
        heading, embedded once at ingest for both (row 0 of the stored sentence vectors)."""
        return f"{self.title} — {self.heading}" if self.heading else self.title


@dataclass
class Hit:
    chunk: Chunk
    score: float  # fused score (higher is better)
    dense_score: float | None = None  # cosine similarity, when the dense search found it
    keyword_score: float | None = None  # BM25 score, when the keyword search found it
    dense_rank: int | None = None  # 1-based
    keyword_rank: int | None = None
    field_score: float | None = None  # cosine of the question with the title + heading path

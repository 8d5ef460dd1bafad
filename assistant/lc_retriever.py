"""A LangChain retriever over answerdesk's hybrid index, for LangChain users' own chains.

    from assistant.keys import Identity
    from assistant.lc_retriever import AnswerdeskRetriever
    retriever = AnswerdeskRetriever.from_settings(identity=Identity("community"), k=5)
    docs = retriever.invoke("How do I set the database URL?")

It searches on somebody's behalf, so it must be told whose: `identity` (the same audience x organisation
filter as the API), or an explicit `where`, or `unrestricted=True` for staff-only tools. Without one of
them it refuses to be built, rather than show internal documents and every organisation's tickets.
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, model_validator

from assistant.access import access_filter
from assistant.keys import Identity
from assistant.retrieval import Retriever
from assistant.types import Where


class AnswerdeskRetriever(BaseRetriever):
    """Returns chunks as Documents; metadata carries the deep link, title, heading and scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 5
    identity: Identity | None = None  # whose search this is: what they may see is what it returns
    where: Where | None = None  # or an explicit filter, e.g. {"audience": ["public"], "org": ""}
    unrestricted: bool = False  # or, knowingly, everything (internal documents, every organisation's tickets)

    @model_validator(mode="after")
    def _whose_search(self) -> AnswerdeskRetriever:
        given = sum((self.identity is not None, self.where is not None, self.unrestricted))
        if given != 1:
            raise ValueError("AnswerdeskRetriever needs exactly one of identity=Identity(...) (who is asking), "
                             "where={...} (an explicit filter) or unrestricted=True (staff tools only)")
        if self.where is not None and not self.where:
            raise ValueError("where={} restricts nothing: pass unrestricted=True if that is what you mean")
        return self

    @classmethod
    def from_settings(cls, **kwargs: Any) -> AnswerdeskRetriever:
        from assistant.services import Services
        from assistant.settings import load_settings

        return cls(retriever=Services(load_settings()).retriever, **kwargs)

    def _filter(self) -> Where | None:
        return access_filter(self.identity) if self.identity is not None else self.where

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.retriever.search(query, k=self.k, where=self._filter())
        return [
            Document(
                id=h.chunk.id,
                page_content=h.chunk.text,
                metadata={
                    "title": h.chunk.title, "heading": h.chunk.heading, "url": h.chunk.url,
                    "source": h.chunk.source, "doc_id": h.chunk.doc_id, "audience": h.chunk.audience,
                    "score": h.score, "dense_score": h.dense_score, "keyword_score": h.keyword_score,
                },
            )
            for h in hits
        ]

"""A LangChain retriever over answerdesk's hybrid index, for LangChain users' own chains.

    from assistant.lc_retriever import AnswerdeskRetriever
    docs = AnswerdeskRetriever.from_settings(k=5).invoke("How do I set the database URL?")
"""

from __future__ import annotations

from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict

from assistant.retrieval import Retriever
from assistant.types import Where


class AnswerdeskRetriever(BaseRetriever):
    """Returns chunks as Documents; metadata carries the deep link, title, heading and scores."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Retriever
    k: int = 5
    where: Where | None = None

    @classmethod
    def from_settings(cls, **kwargs: Any) -> AnswerdeskRetriever:
        from assistant.services import Services
        from assistant.settings import load_settings

        return cls(retriever=Services(load_settings()).retriever, **kwargs)

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        hits = self.retriever.search(query, k=self.k, where=self.where)
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

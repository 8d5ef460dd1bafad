"""Builds the index's parts once from settings; the CLI and the API lifespan share this."""

from __future__ import annotations

from functools import cached_property

from assistant.db import create_engine
from assistant.embeddings import Embedder, load_embedder
from assistant.index.keyword import KeywordIndex
from assistant.index.vector import ChromaIndex
from assistant.retrieval import Retriever
from assistant.settings import Settings
from assistant.store import IndexStore


class Services:
    """Lazily built: `answerdesk status` needs the database, not torch or Chroma."""

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        if embedder is not None:
            self.__dict__["embedder"] = embedder

    @cached_property
    def store(self) -> IndexStore:
        if not self.settings.database_url:
            self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        return IndexStore(create_engine(self.settings.sqlalchemy_url))

    @cached_property
    def embedder(self) -> Embedder:
        return load_embedder(self.settings)

    @cached_property
    def vectors(self) -> ChromaIndex:
        s = self.settings
        return ChromaIndex.open(
            s.chroma_url, s.chroma_path, s.chroma_collection, self.embedder.name, self.embedder.dimension
        )

    @cached_property
    def keywords(self) -> KeywordIndex:
        return KeywordIndex(self.settings.keyword_path, self.store)

    @cached_property
    def retriever(self) -> Retriever:
        s = self.settings
        return Retriever(
            self.embedder, self.vectors, self.keywords, self.store, s.retrieval_candidates, s.rrf_k
        )

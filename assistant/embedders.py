"""Picks the embedder from settings: an embedding server, or the model in this process.

Either way it sits behind the query micro-batcher, so concurrent questions share one model call (or
one request to the server). Heavy imports stay inside: `import assistant` loads neither torch nor openai.
"""

from __future__ import annotations

from assistant.embeddings import Embedder, QueryBatcher, SentenceTransformerEmbedder
from assistant.settings import Settings


def load_embedder(settings: Settings) -> QueryBatcher:
    inner: Embedder
    if settings.embedding_url:
        from assistant.embeddings_http import load_server_embedder

        inner = load_server_embedder(settings)
    else:
        inner = SentenceTransformerEmbedder(settings.embedding_model, settings.embedding_dtype,
                                            settings.embedding_batch_size, settings.embedding_device)
    return QueryBatcher(inner)

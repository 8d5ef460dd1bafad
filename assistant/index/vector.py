"""Vector index seam and its Chroma adapter (embedded PersistentClient or a `chroma run` server).

Embeddings are always passed in: Chroma's default embedding function downloads a model,
so the collection is created with none and nothing here sends text for Chroma to embed.

Every request to a Chroma server is bounded in time: a stopped server fails at once, and a paused
or overloaded one fails after `timeout` seconds instead of holding requests (and /readyz) forever.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlparse

import httpx
import numpy as np

from assistant.errors import ConfigError, RetrievalError
from assistant.types import Where

log = logging.getLogger(__name__)
PROBE_SECONDS = 2.0  # a readiness probe or first contact answers within this, or the server counts as down


@dataclass
class VectorMatch:
    id: str
    similarity: float  # cosine similarity, 1 = same direction


class VectorIndex(Protocol):
    def upsert(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None: ...

    def delete(self, ids: list[str]) -> None: ...

    def search(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[VectorMatch]: ...

    def count(self) -> int: ...


def chroma_where(where: Where | None) -> dict[str, Any] | None:
    """Our filter -> Chroma's `where` syntax."""
    if not where:
        return None
    clauses: list[dict[str, Any]] = []
    for key, value in sorted(where.items()):
        if key == "$or":
            alternatives = [c for c in (chroma_where(w) for w in value) if c is not None]
            if len(alternatives) < len(value):
                continue  # an empty alternative allows everything: the "$or" restricts nothing
            clauses.append({"$or": alternatives} if len(alternatives) > 1 else alternatives[0])
            continue
        values = [value] if isinstance(value, str) else list(value)
        clauses.append({key: {"$in": values}} if len(values) != 1 else {key: {"$eq": values[0]}})
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class ChromaIndex:
    # Chroma rejects larger batches (its max_batch_size); stay well under it.
    batch = 1000

    def __init__(self, client: Any, collection: str, model_name: str, dimension: int, server: str = "",
                 probe_timeout: float = PROBE_SECONDS) -> None:
        self._client = client
        self._server, self._probe_timeout = server, probe_timeout  # server: base URL of a `chroma run`
        try:
            self._col = client.get_or_create_collection(
                collection,
                embedding_function=None,
                metadata={"hnsw:space": "cosine", "embedding_model": model_name, "dimension": dimension},
            )
        except Exception as exc:
            raise RetrievalError(f"Cannot open Chroma collection {collection!r}: {exc}") from exc
        meta = self._col.metadata or {}
        if meta.get("embedding_model") not in (None, model_name) or meta.get("dimension") not in (None, dimension):
            raise ConfigError(
                f"Chroma collection {collection!r} holds vectors of model {meta.get('embedding_model')!r} "
                f"({meta.get('dimension')} dims), not {model_name!r}: set ANSWERDESK_CHROMA_COLLECTION to a "
                "new name and re-index, or switch ANSWERDESK_EMBEDDING_MODEL back."
            )

    @classmethod
    def open(cls, chroma_url: str, path: Path, collection: str, model_name: str, dimension: int,
             timeout: float = 15.0) -> ChromaIndex:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        server, probe_timeout = "", min(timeout, PROBE_SECONDS)
        try:
            if chroma_url:
                u = urlparse(chroma_url)
                port = u.port or (443 if u.scheme == "https" else 8000)
                server = f"{u.scheme}://{u.hostname}:{port}"
                # HttpClient() already sends requests, unbounded: make sure the server answers first.
                probe(server, probe_timeout)
                client = chromadb.HttpClient(
                    host=u.hostname or "localhost",
                    port=port,
                    ssl=u.scheme == "https",
                    settings=chroma_settings,
                )
                bound(client, timeout)
            else:
                path.mkdir(parents=True, exist_ok=True)
                client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)
        except RetrievalError:
            raise
        except Exception as exc:
            where = chroma_url or str(path)
            raise RetrievalError(f"Cannot reach Chroma at {where}: {exc}. Check ANSWERDESK_CHROMA_URL.") from exc
        return cls(client, collection, model_name, dimension, server, probe_timeout)

    def upsert(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None:
        for i in range(0, len(ids), self.batch):
            batch = slice(i, i + self.batch)
            self._call(self._col.upsert, ids=ids[batch], embeddings=vectors[batch], metadatas=metadatas[batch])
            self._repair(ids[batch], vectors[batch], metadatas[batch])

    def _repair(self, ids: list[str], vectors: np.ndarray, metadatas: list[dict[str, Any]]) -> None:
        """Embedded Chroma 1.5 sometimes leaves a vector written after queries out of what query() searches
        (get() has it, no query ever returns it: chroma-core/chroma#5367; a new document then cannot be found
        by meaning). A search restricted to the batch's ids lists what is findable; the rest is written again,
        which puts it back. One cheap query per batch when nothing is lost."""
        for _attempt in range(3):
            found = set(self._call(self._col.query, query_embeddings=[vectors[0]], ids=ids, n_results=len(ids),
                                   include=[])["ids"][0])
            lost = [j for j, chunk_id in enumerate(ids) if chunk_id not in found]
            if not lost:
                return
            self._call(self._col.upsert, ids=[ids[j] for j in lost], embeddings=vectors[lost],
                       metadatas=[metadatas[j] for j in lost])
        raise RetrievalError(f"Chroma stored {len(lost)} vector(s) it then could not search, even after writing "
                             "them again; re-run the ingestion, or use a Chroma server (ANSWERDESK_CHROMA_URL).")

    def update_metadata(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        for i in range(0, len(ids), self.batch):
            self._call(self._col.update, ids=ids[i : i + self.batch], metadatas=metadatas[i : i + self.batch])

    def delete(self, ids: list[str]) -> None:
        for i in range(0, len(ids), self.batch):
            self._call(self._col.delete, ids=ids[i : i + self.batch])

    def search(self, vector: np.ndarray, k: int, where: Where | None = None) -> list[VectorMatch]:
        res = self._call(
            self._col.query,
            query_embeddings=[np.asarray(vector, dtype=np.float32)],
            n_results=k,
            where=chroma_where(where),
            include=["distances"],
        )
        ids, dists = res["ids"][0], res["distances"][0]
        return [VectorMatch(i, 1.0 - float(d)) for i, d in zip(ids, dists, strict=True)]

    def get_vectors(self, ids: list[str]) -> dict[str, np.ndarray]:
        res = self._call(self._col.get, ids=ids, include=["embeddings"])
        return {i: np.asarray(v, dtype=np.float32) for i, v in zip(res["ids"], res["embeddings"], strict=True)}

    def count(self) -> int:
        return int(self._call(self._col.count))

    def ping(self) -> None:
        """Raise RetrievalError unless a Chroma server answers within the probe timeout (embedded: no-op).
        For readiness checks, which must answer promptly even when the server hangs."""
        if self._server:
            probe(self._server, self._probe_timeout)

    @staticmethod
    def _call(fn: Any, **kwargs: Any) -> Any:
        try:
            return fn(**kwargs)
        except Exception as exc:  # chromadb raises its own errors, httpx errors, ValueError...
            raise RetrievalError(f"Chroma request failed: {exc}") from exc


def probe(server: str, timeout: float) -> None:
    """GET the server's heartbeat with a short deadline; RetrievalError naming the cause otherwise."""
    try:
        response = httpx.get(f"{server}/api/v2/heartbeat", timeout=timeout)
        response.raise_for_status()
    except httpx.TimeoutException:
        raise RetrievalError(f"Chroma at {server} did not answer within {timeout:g} s") from None
    except httpx.HTTPError as exc:
        raise RetrievalError(f"Cannot reach Chroma at {server} ({type(exc).__name__}). "
                             "Check ANSWERDESK_CHROMA_URL and that the server runs.") from None


def bound(client: Any, timeout: float) -> None:
    """Give the HttpClient's requests a deadline. chromadb 1.5 creates its httpx session with timeout=None and
    offers no setting for it (chroma-core/chroma#5805), so it is set on that session."""
    session = getattr(getattr(client, "_server", None), "_session", None)
    if not isinstance(session, httpx.Client):
        log.warning("cannot set a timeout on this chromadb version's HTTP client: requests to Chroma are unbounded")
        return
    session.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))

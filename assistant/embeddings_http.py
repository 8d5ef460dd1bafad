"""An embedding server behind the Embedder seam: any OpenAI-compatible `/v1/embeddings` endpoint
(text-embeddings-inference, vLLM, Infinity, OpenAI itself), called through the openai SDK.

Why a server: ingestion of a large corpus on a GPU box, and API replicas that stay small because none
of them loads the model. The vectors are L2-normalised here, as the in-process embedder does, so a
collection built either way can be searched by the other when both run the same model.

The model's name (what the Chroma collection is checked against) is ANSWERDESK_EMBEDDING_MODEL when it
is set, otherwise the name the server reports; its dimension is read from a first, one-text request.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

import numpy as np

from assistant.embeddings import Kind, model_label
from assistant.errors import ConfigError, EmbeddingError

if TYPE_CHECKING:
    from assistant.settings import Settings

PROBE_TEXT = "answerdesk embedding probe"
PROBE_SECONDS = 5.0  # first contact and readiness probes: a server that takes longer counts as down


def api_base(url: str) -> str:
    """The openai SDK's base URL from what an operator writes: `http://tei:8080` (-> /v1),
    `http://tei:8080/v1` or the full `http://tei:8080/v1/embeddings`."""
    url = url.strip().rstrip("/")
    url = url.removesuffix("/embeddings")
    return url + "/v1" if urlparse(url).path in ("", "/") else url


class ServerEmbedder:
    """Satisfies the `Embedder` protocol over HTTP. Requests go out in batches of `batch_size` texts,
    `parallel` at a time (enough to keep a server busy while the next request travels; more only
    queues at the server and eats into each request's timeout); each one is bounded by `timeout`
    and retried with exponential backoff by the SDK on connection errors, 408/409/429 and 5xx. A server
    that refuses a batch as too large (413, or 422 as TEI's client batch limit) gets it in halves."""

    dtype = "server"

    def __init__(self, url: str, model: str = "", api_key: str = "", timeout: float = 60.0,
                 max_retries: int = 2, batch_size: int = 64, parallel: int = 2) -> None:
        try:
            import openai
        except ImportError as exc:  # pragma: no cover - a hard dependency
            raise EmbeddingError(f"the openai package is not installed: {exc}") from exc
        self._openai = openai
        self.url = api_base(url)
        # A key is required by the SDK; local servers ignore it, vLLM --api-key / OpenAI check it.
        self._client = openai.OpenAI(base_url=self.url, api_key=api_key or "unused", timeout=timeout,
                                     max_retries=max_retries)
        self.batch_size = batch_size
        self._pool = ThreadPoolExecutor(max(1, parallel), thread_name_prefix="embedding-server")
        self._shrink = threading.Lock()
        requested = model or self._served_model()
        probe, reported = self._request([PROBE_TEXT], requested, timeout=min(timeout, PROBE_SECONDS))
        if model and reported and model_label(reported) != model_label(model):
            raise ConfigError(
                f"The embedding server at {self.url} serves {reported!r}, not {model!r} "
                "(ANSWERDESK_EMBEDDING_MODEL): point ANSWERDESK_EMBEDDING_URL at a server running that model, "
                "or unset ANSWERDESK_EMBEDDING_MODEL to use the server's."
            )
        self._model = requested
        self.name = model_label(model or reported or requested)
        self.dimension = int(probe.shape[1])

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        size = self.batch_size
        batches = [texts[i : i + size] for i in range(0, len(texts), size)]
        rows = list(self._pool.map(self._embed_batch, batches))
        return np.vstack(rows)

    def ping(self) -> None:
        """Raise EmbeddingError unless the server embeds a short text within the probe timeout."""
        self._request([PROBE_TEXT], self._model, timeout=PROBE_SECONDS, retry=False)  # /readyz answers promptly

    def count_tokens(self, text: str) -> int:
        return len(text.split())  # the server owns the tokenizer; words are a close, cheap estimate

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        try:
            return self._request(texts, self._model)[0]
        except _TooLarge:
            with self._shrink:  # later batches go out smaller from the start
                self.batch_size = max(1, min(self.batch_size, len(texts) // 2))
            half = len(texts) // 2
            return np.vstack([self._embed_batch(texts[:half]), self._embed_batch(texts[half:])])

    def _request(self, texts: list[str], model: str, timeout: float | None = None,
                 retry: bool = True) -> tuple[np.ndarray, str]:
        """One POST /embeddings: (normalised float32 rows in input order, the model the server names)."""
        openai = self._openai
        options: dict[str, Any] = {} if timeout is None else {"timeout": timeout}
        client = self._client if retry else self._client.with_options(max_retries=0)
        try:
            # float, not the SDK's default base64: not every compatible server speaks base64.
            response = client.embeddings.create(input=texts, model=model, encoding_format="float", **options)
        except openai.APIStatusError as exc:
            if exc.status_code in (413, 422) and len(texts) > 1:
                raise _TooLarge from None
            if exc.status_code in (413, 422):
                raise EmbeddingError(f"The embedding server at {self.url} refused a text ({exc.status_code}: "
                                     f"{_short(exc.message)}); for a text too long, run TEI with --auto-truncate "
                                     "or lower ANSWERDESK_CHUNK_SIZE.") from None
            raise EmbeddingError(f"The embedding server at {self.url} answered {exc.status_code}: "
                                 f"{_short(exc.message)}. Check ANSWERDESK_EMBEDDING_URL and the server's log."
                                 ) from None
        except openai.APITimeoutError:
            raise EmbeddingError(f"The embedding server at {self.url} did not answer in time; "
                                 "check that it runs, or raise ANSWERDESK_EMBEDDING_TIMEOUT.") from None
        except openai.APIConnectionError:
            raise EmbeddingError(f"Cannot reach the embedding server at {self.url}: check ANSWERDESK_EMBEDDING_URL "
                                 "and that the server runs.") from None
        except openai.OpenAIError as exc:  # a malformed answer the SDK cannot read
            raise EmbeddingError(f"The embedding server at {self.url} gave an unreadable answer: "
                                 f"{_short(str(exc))}") from None
        data = sorted(response.data, key=lambda d: d.index)  # the API allows any order; `index` is the input's
        if len(data) != len(texts):
            raise EmbeddingError(f"The embedding server at {self.url} returned {len(data)} vectors "
                                 f"for {len(texts)} texts.")
        vectors = np.asarray([d.embedding for d in data], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.where(norms == 0, 1.0, norms), str(getattr(response, "model", "") or "")

    def _served_model(self) -> str:
        """The first model GET /models lists (vLLM and Infinity require a served name in each request); a
        server without that route (TEI serves one model and ignores the field) gets a placeholder."""
        try:
            page = self._client.models.list(timeout=PROBE_SECONDS)
            first = next(iter(page.data), None)
            return first.id if first is not None else "default"
        except self._openai.OpenAIError:
            return "default"


class _TooLarge(Exception):
    pass


def _short(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def load_server_embedder(settings: Settings) -> ServerEmbedder:
    s = settings
    # The bundled model's folder is the default of embedding_model: only a name the operator chose is sent.
    model = s.embedding_model if "embedding_model" in s.model_fields_set else ""
    key = s.embedding_api_key.get_secret_value() if s.embedding_api_key else ""
    return ServerEmbedder(s.embedding_url, model=model, api_key=key, timeout=s.embedding_timeout,
                          max_retries=s.embedding_max_retries, batch_size=s.embedding_batch_size)

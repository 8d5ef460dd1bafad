"""A hash embedder: deterministic vectors from token hashes, no model, no download.

Each word is hashed to one of `dimension` coordinates with a sign, and the counts are L2-normalised,
so texts that share words have a positive cosine and unrelated texts about zero. It understands no
meaning (no synonyms, no paraphrases): use it for fast tests of the flow around the embeddings and
for trying the pipeline where the model is not installed, never to judge answer quality.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

from assistant.embeddings import Kind

WORD = re.compile(r"\w+")


class HashEmbedder:
    """Satisfies the `Embedder` protocol; 384 dimensions by default, like all-MiniLM-L6-v2."""

    def __init__(self, dimension: int = 384) -> None:
        self.dimension = dimension
        self.name = f"hash-{dimension}"

    def embed(self, texts: list[str], kind: Kind = "document") -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in WORD.findall(text.lower()):
                # blake2b, not hash(): Python salts str hashes per process, and vectors stored in an
                # index must come out the same in the next process.
                digest = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, digest % self.dimension] += 1.0 if digest >> 63 else -1.0
            norm = float(np.linalg.norm(out[row]))
            if norm:
                out[row] /= norm
            else:  # no words: still a unit vector, so cosine stays defined
                out[row, 0] = 1.0
        return out

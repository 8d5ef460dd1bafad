"""Sentence vectors of a chunk, embedded once at ingest and stored with the chunk.

The extractive answerer ranks a source's quotable units (sentences, list items, table rows) and its heading by
meaning. Embedding them per question cost ~150 ms of model time for five distinct sources, so
ingestion embeds them once, in the batch that embeds the chunk, and stores them as float16 next to
the chunk's row. At question time the only model call left is the question's own embedding.

Layout of the stored blob: a float16 matrix, row 0 the heading (`Source.title`), then one row per
quotable unit in reading order, exactly as `sentence_texts` lists them. The unit splitting is the
answerer's own (`source_units(text, rows=True)` + `quotable`), so the rows line up with what the answerer scores;
a blob whose row count or width does not match (the splitting changed, another model) is ignored
and the answerer embeds that source as before.
"""

from __future__ import annotations

import numpy as np

from assistant.answering.text import Unit, source_units
from assistant.types import Chunk


def quotable(unit: Unit) -> bool:
    """A unit worth ranking on its own: a sentence, list item or table row of a sensible length
    (a row is quoted inside its table, never alone)."""
    return unit.kind in ("sentence", "item", "row") and len(unit.text.split()) >= 3 and len(unit.text) <= 600


def sentence_texts(chunk: Chunk, units: list[Unit] | None = None) -> list[str]:
    """What is embedded for a chunk, in blob row order: its heading, then its quotable units."""
    units = source_units(chunk.text, rows=True) if units is None else units
    return [chunk.heading_text] + [u.text for u in units if quotable(u)]


def encode(vectors: np.ndarray) -> bytes:
    """float16 rows: half the bytes of float32, cosine to the float32 vectors above 0.9999."""
    return np.ascontiguousarray(vectors, dtype=np.float16).tobytes()


def first_row(blob: bytes, dimension: int) -> bytes:
    """The heading's row of a blob (the title + heading vector retrieval reads as the field vector)."""
    return blob[: dimension * 2]


def decode(blob: bytes | None, rows: int, dimension: int) -> np.ndarray | None:
    """The stored rows as float32, or None when there is no blob or it does not fit."""
    if not blob or len(blob) != rows * dimension * 2:
        return None
    return np.frombuffer(blob, dtype=np.float16).reshape(rows, dimension).astype(np.float32)

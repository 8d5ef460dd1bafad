"""The offline default answerer: quotes the source sentences that best answer the question.

It never writes a word of its own: every sentence comes verbatim from a source and is followed
by that source's [n]. Sentences are ranked by meaning (the embedding model) and by the share
of the question's words they contain, then put back in reading order.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator

import numpy as np

from assistant.answering.text import Unit, coverage, source_units, terms
from assistant.answering.types import Source, Turn
from assistant.embeddings import Embedder


class ExtractiveAnswerer:
    name = "extractive"

    def __init__(self, embedder: Embedder, max_units: int = 4, max_chars: int = 900, cache_size: int = 2048) -> None:
        self.embedder = embedder
        self.max_units = max_units
        self.max_chars = max_chars
        self._cache: OrderedDict[str, tuple[list[Unit], np.ndarray]] = OrderedDict()
        self._cache_size = cache_size

    def stream(self, question: str, sources: list[Source], history: list[Turn]) -> Iterator[str]:
        picked = self.select(question, sources)
        for i, (source, unit) in enumerate(picked):
            sep = "" if i == 0 else ("\n\n" if unit.is_code or picked[i - 1][1].is_code else " ")
            yield f"{sep}{unit.text}" if unit.is_code else f"{sep}{unit.text} [{source.n}]"

    def select(self, question: str, sources: list[Source]) -> list[tuple[Source, Unit]]:
        if not sources:
            return []
        qvec = self.embedder.embed([question], kind="query")[0]
        qterms = terms(question)
        scored: list[tuple[float, Source, Unit, np.ndarray]] = []
        for rank, source in enumerate(sources):
            units, vecs = self._units(source)
            for unit, vec in zip(units, vecs, strict=True):
                if unit.is_code:
                    continue
                sim = float(vec @ qvec)
                score = 0.65 * sim + 0.35 * coverage(qterms, terms(unit.text)) - 0.02 * rank
                scored.append((score, source, unit, vec))
        if not scored:
            return []
        scored.sort(key=lambda t: t[0], reverse=True)
        # Relative floor, never empty: even a weak best match is shown, so an unsure answer
        # still shows what was found (confidence, not this floor, decides escalation).
        floor = scored[0][0] * 0.7
        chosen: list[tuple[float, Source, Unit, np.ndarray]] = []
        length = 0
        for item in scored:
            score, _source, unit, vec = item
            if score < floor or len(chosen) >= self.max_units:
                break
            if any(float(vec @ other[3]) > 0.9 for other in chosen):
                continue  # a near-duplicate adds nothing
            if chosen and length + len(unit.text) > self.max_chars:
                continue
            chosen.append(item)
            length += len(unit.text)
        picked = [(s, u) for _, s, u, _ in chosen]
        picked = self._with_code(picked)
        order = {s.n: i for i, s in enumerate(sources)}
        return sorted(picked, key=lambda su: (order[su[0].n], su[1].position))

    def _with_code(self, picked: list[tuple[Source, Unit]]) -> list[tuple[Source, Unit]]:
        """A chosen sentence that introduces a code block ("Run:") brings the block along."""
        out = list(picked)
        for source, unit in picked:
            units, _ = self._units(source)
            nxt = units[unit.position + 1] if unit.position + 1 < len(units) else None
            if nxt is not None and nxt.is_code and unit.text.rstrip().endswith(":"):
                out.append((source, nxt))
        return out

    def _units(self, source: Source) -> tuple[list[Unit], np.ndarray]:
        key = source.hit.chunk.content_hash
        cached = self._cache.get(key)
        if cached is not None:
            self._cache.move_to_end(key)
            return cached
        units = [u for u in source_units(source.text) if u.is_code or len(u.text.split()) >= 3 and len(u.text) <= 600]
        units = [Unit(u.text, i, u.is_code) for i, u in enumerate(units)]
        vecs = (self.embedder.embed([u.text for u in units], kind="document") if units
                else np.zeros((0, self.embedder.dimension), dtype=np.float32))
        self._cache[key] = (units, vecs)
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return units, vecs

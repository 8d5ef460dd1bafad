"""Confidence in [0, 1] from retrieval evidence and citation support.

Signals (each in [0, 1]):
- match: the best cosine similarity between question and a source, scaled from 0.15 (unrelated
  text scores about that with MiniLM) to 0.65 (a clear match);
- coverage: share of the question's content words found in the top sources;
- agreement: dense and keyword search put the same chunk near the top;
- support: share of the answer's sentences supported by the sources they cite.
The weighted sum is scaled down when `match` is low (below 0.5): agreement and support mean little
when nothing is close to the question. The weights are a hand-set prior; `answerdesk eval
calibrate` picks the threshold from data.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistant.answering.citations import Verification
from assistant.answering.text import coverage, terms
from assistant.answering.types import Source

WEIGHTS = {"match": 0.40, "coverage": 0.25, "agreement": 0.15, "support": 0.20}


@dataclass
class Confidence:
    score: float
    signals: dict[str, float]
    reasons: list[str]


def _clip(x: float) -> float:
    return max(0.0, min(1.0, x))


def assess(question: str, sources: list[Source], verification: Verification) -> Confidence:
    if not sources:
        return Confidence(0.0, dict.fromkeys(WEIGHTS, 0.0), ["no_sources"])
    top = max((s.hit.dense_score or 0.0) for s in sources)
    qterms = terms(question)
    found = set().union(*(terms(s.hit.chunk.search_text) for s in sources[:3]))
    both = [s for s in sources[:3] if (s.hit.dense_rank or 99) <= 5 and (s.hit.keyword_rank or 99) <= 5]
    signals = {
        "match": _clip((top - 0.15) / 0.5),
        "coverage": coverage(qterms, found),
        "agreement": 1.0 if both and both[0] is sources[0] else 0.5 if both else 0.0,
        "support": verification.support_ratio if verification.cited else 0.0,
    }
    # Meaning gates the rest: when no source is close to the question, the retrievers agreeing on
    # some page and the answer quoting it faithfully say nothing about whether it answers.
    gate = min(1.0, 0.5 + signals["match"])
    score = _clip(gate * sum(WEIGHTS[k] * v for k, v in signals.items()))
    reasons = []
    if signals["match"] < 0.4:
        reasons.append("weak_match")
    if signals["coverage"] < 0.5:
        reasons.append("question_terms_missing")
    if signals["agreement"] == 0.0:
        reasons.append("retrievers_disagree")
    if not verification.cited:
        reasons.append("no_citations")
    elif verification.unsupported:
        reasons.append("unsupported_sentences")
    return Confidence(round(score, 4), {k: round(v, 4) for k, v in signals.items()}, reasons)

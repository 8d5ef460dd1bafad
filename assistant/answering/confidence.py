"""Confidence: the probability that the answer is right (cites a document that answers the question).

A logistic regression over retrieval evidence, then a two-parameter (Platt) recalibration. The
features come from the ranked documents, never from how the answer was written, so the extractive
and the LLM answerer are judged alike:
- top_cosine: cosine of the question with the first document's best section;
- cosine_margin: how far that cosine is ahead of the second document's;
- gap: the first document's fused score minus the mean of documents 2-5 (a clear winner or a tie);
- score_margin: the first document's fused score minus the second's;
- section_terms: share of the question's content words present in the cited section;
- field_cosine: cosine of the question with the first document's title and heading path;
- agreement: dense and keyword search both rank the first document first;
- top_ranks: log dense rank + log keyword rank of the first document (how far apart they are);
- question_terms: log of the number of content words in the question (short questions are vague);
- sentence_cosine: cosine of the question with the best quotable sentence (or list item, or table
  row) of the first document's sections (a page can match a question's topic without any sentence
  that answers it);
- sentence_margin: how far that sentence is ahead of the best sentence of the other documents;
- source_terms, unknown_terms: share of the question's content words found in any of the sources,
  and log(1 + how many none of them uses) (a product or feature the docs never name, "zendesk",
  is the mark of a question they do not answer).

The default coefficients (confidence_model.json, shipped in the package) were fitted by
`python -m eval.fit_confidence` on the train splits of the three shared sets (SciFact train,
StackFAQ group 0, SemEval dev), each weighing the same, including "unanswerable copies" of each
question asked with its relevant documents removed, so that the model has seen what "the docs do
not say" looks like. It uses four of the features (sentence_cosine, score_margin, source_terms,
question_terms; the others have coefficient 0), chosen by leave-one-set-out AUC.
`answerdesk eval calibrate` refits or recalibrates it from a deployment's own golden set.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from assistant.answering.citations import Verification
from assistant.answering.text import QUESTION_WORDS, coverage, terms
from assistant.answering.types import Source

DEFAULT_MODEL = Path(__file__).resolve().parent / "confidence_model.json"
FEATURES = ("top_cosine", "cosine_margin", "gap", "score_margin", "section_terms", "field_cosine", "agreement",
            "top_ranks", "question_terms", "sentence_cosine", "sentence_margin", "source_terms", "unknown_terms")
# source number -> {quotable sentence: vector}, as the extractive answerer holds them (known_vectors)
SentenceVectors = dict[int, dict[str, np.ndarray]]
MISSING_RANK = 51  # a document one retriever did not return at all ranks below its candidate list


@dataclass
class Confidence:
    score: float
    signals: dict[str, float]
    reasons: list[str]


@dataclass(frozen=True)
class Model:
    """Standardised-feature logistic regression plus Platt scaling of its logit."""

    coef: dict[str, float]
    intercept: float
    mean: dict[str, float]
    scale: dict[str, float]
    platt: tuple[float, float] = (1.0, 0.0)
    meta: dict[str, object] = field(default_factory=dict)

    def logit(self, x: dict[str, float]) -> float:
        return self.intercept + sum(
            c * (x.get(f, 0.0) - self.mean.get(f, 0.0)) / (self.scale.get(f, 1.0) or 1.0) for f, c in self.coef.items())

    def probability(self, x: dict[str, float]) -> float:
        a, b = self.platt
        z = a * self.logit(x) + b
        return 1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z))))

    def to_json(self) -> dict[str, object]:
        return {"features": list(self.coef), "coef": self.coef, "intercept": self.intercept, "mean": self.mean,
                "scale": self.scale, "platt": list(self.platt), "meta": self.meta}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Model:
        platt = data.get("platt") or [1.0, 0.0]
        return cls(coef=dict(data["coef"]), intercept=float(data["intercept"]),  # type: ignore[call-overload, arg-type]
                   mean=dict(data["mean"]), scale=dict(data["scale"]),  # type: ignore[call-overload]
                   platt=(float(platt[0]), float(platt[1])), meta=dict(data.get("meta") or {}))  # type: ignore[index, call-overload]


@lru_cache(maxsize=8)
def load_model(path: Path | None = None) -> Model:
    """The shipped model, or a deployment's (ANSWERDESK_CONFIDENCE_MODEL) written by `eval calibrate`."""
    return Model.from_json(json.loads((path or DEFAULT_MODEL).read_text(encoding="utf-8")))


def features(question: str, sources: list[Source], qvec: np.ndarray | None = None,
             sentences: SentenceVectors | None = None) -> dict[str, float]:
    top = sources[0].hit
    cos = [s.hit.dense_score or 0.0 for s in sources]
    rest = [s.hit.score for s in sources[1:5]]
    qterms = terms(question)
    words = [terms(s.hit.chunk.search_text) for s in sources]  # each source tokenized once
    return {
        "top_cosine": cos[0],
        "cosine_margin": cos[0] - max(cos[1:], default=0.0),
        "gap": top.score - (sum(rest) / len(rest) if rest else 0.0),
        "score_margin": top.score - (sources[1].hit.score if len(sources) > 1 else 0.0),
        "section_terms": coverage(qterms, words[0]),
        "field_cosine": top.field_score or 0.0,
        "agreement": 1.0 if top.dense_rank == 1 and top.keyword_rank == 1 else 0.0,
        "top_ranks": math.log(top.dense_rank or MISSING_RANK) + math.log(top.keyword_rank or MISSING_RANK),
        "question_terms": math.log1p(len(qterms)),
        **sentence_match(sources, qvec, sentences),
        **source_words(qterms - QUESTION_WORDS, set().union(*words)),
    }


def source_words(content: set[str], found: set[str]) -> dict[str, float]:
    """The question's content words against all the sources' words: share found, and log of how
    many no source uses at all (a product the docs never name, or an off-topic question)."""
    return {"source_terms": coverage(content, found) if content else 1.0,
            "unknown_terms": math.log1p(len(content - found))}


def sentence_match(sources: list[Source], qvec: np.ndarray | None,
                   sentences: SentenceVectors | None) -> dict[str, float]:
    """The best sentence of retrieval's first document against the best of the others (0 when
    unknown). Of retrieval's first document, not of the page the answer leads with: judged by the
    page the answer cites first instead, held-out AUC fell (bundled docs 0.90 -> 0.85, SciFact train
    0.77 -> 0.76; eval.fit_confidence, 2026-12-04): when the answerer leads with another page, its
    better sentence is often on the wrong page."""
    if qvec is None or not sentences:
        return {"sentence_cosine": 0.0, "sentence_margin": 0.0}
    first_doc = sources[0].hit.chunk.doc_id
    own, other = 0.0, 0.0
    for source in sources:
        vecs = list(sentences.get(source.n, {}).values())
        best = float(np.max(np.stack(vecs) @ qvec)) if vecs else 0.0
        if source.hit.chunk.doc_id == first_doc:
            own = max(own, best)
        else:
            other = max(other, best)
    return {"sentence_cosine": own, "sentence_margin": own - other}


def assess(question: str, sources: list[Source], verification: Verification, model: Model | None = None,
           qvec: np.ndarray | None = None, sentences: SentenceVectors | None = None) -> Confidence:
    """qvec and sentences: the question's vector and the sources' sentence vectors, for the
    sentence-level signals (left at 0 without them)."""
    if not sources:
        return Confidence(0.0, dict.fromkeys(FEATURES, 0.0), ["no_sources"])
    signals = features(question, sources, qvec, sentences)
    # "Right" means citing a document that answers: an answer citing nothing cannot be right. The
    # extractive answers the model was fitted on are always supported by their sources, so it cannot
    # learn what an unsupported (LLM-written) sentence costs: each one takes its share off, by rule.
    support = verification.support_ratio if verification.cited else 0.0
    score = (model or load_model()).probability(signals) * support
    reasons = []
    if signals["top_cosine"] < 0.35:
        reasons.append("weak_match")
    if signals["section_terms"] < 0.5:
        reasons.append("question_terms_missing")
    if not signals["agreement"]:
        reasons.append("retrievers_disagree")
    if not verification.cited:
        reasons.append("no_citations")
    elif verification.unsupported:
        reasons.append("unsupported_sentences")
    return Confidence(round(score, 4), {k: round(v, 4) for k, v in signals.items()}, reasons)

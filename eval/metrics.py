"""Ranking metrics over document ids (standard definitions, as in pytrec_eval / BEIR)."""

from __future__ import annotations

import math
from collections.abc import Sequence


def ndcg_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    dcg = sum(relevant.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum(g / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    return len(rel & set(ranked[:k])) / len(rel) if rel else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: dict[str, int], k: int = 10) -> float:
    for i, d in enumerate(ranked[:k]):
        if relevant.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


def average_precision(ranked: Sequence[str], relevant: dict[str, int]) -> float:
    rel = {d for d, g in relevant.items() if g > 0}
    if not rel:
        return 0.0
    hits, total = 0, 0.0
    for i, d in enumerate(ranked):
        if d in rel:
            hits += 1
            total += hits / (i + 1)
    return total / len(rel)


def unique_docs(doc_ids: Sequence[str]) -> list[str]:
    """Chunk hits -> document ranking: each document at the rank of its best chunk."""
    seen: dict[str, None] = {}
    for d in doc_ids:
        seen.setdefault(d, None)
    return list(seen)


def _tokens(text: str) -> list[str]:
    import re

    return re.findall(r"\w+", text.lower())


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style bag-of-tokens F1."""
    from collections import Counter

    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def rouge_l(prediction: str, reference: str) -> float:
    """ROUGE-L F-measure from the longest common subsequence of tokens."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    prev = [0] * (len(ref) + 1)
    for p in pred:
        cur = [0]
        for j, r in enumerate(ref, 1):
            cur.append(prev[j - 1] + 1 if p == r else max(prev[j], cur[j - 1]))
        prev = cur
    lcs = prev[-1]
    if lcs == 0:
        return 0.0
    precision, recall = lcs / len(pred), lcs / len(ref)
    return 2 * precision * recall / (precision + recall)


def roc_curve(scores: Sequence[float], labels: Sequence[bool]) -> tuple[list[float], list[float], float]:
    """(false positive rates, true positive rates, AUC); ties in score move together."""
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return [0.0, 1.0], [0.0, 1.0], float("nan")
    pairs = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])
    fpr, tpr = [0.0], [0.0]
    tp = fp = 0
    i = 0
    while i < len(pairs):
        j = i
        while j < len(pairs) and pairs[j][0] == pairs[i][0]:
            tp += pairs[j][1]
            fp += not pairs[j][1]
            j += 1
        fpr.append(fp / neg)
        tpr.append(tp / pos)
        i = j
    auc = sum((fpr[k] - fpr[k - 1]) * (tpr[k] + tpr[k - 1]) / 2 for k in range(1, len(fpr)))
    return fpr, tpr, auc


def coverage_precision(scores: Sequence[float], labels: Sequence[bool]) -> list[dict[str, float]]:
    """For each threshold t (answer when score >= t): share answered and share of those correct."""
    rows = []
    n = len(scores)
    for t in sorted(set(scores)):
        answered = [lab for s, lab in zip(scores, labels, strict=True) if s >= t]
        rows.append({"threshold": t, "coverage": len(answered) / n if n else 0.0,
                     "precision": sum(answered) / len(answered) if answered else 0.0})
    return rows


def threshold_for_precision(rows: list[dict[str, float]], target: float) -> dict[str, float] | None:
    """The lowest threshold (most coverage) whose precision reaches the target."""
    ok = [r for r in rows if r["precision"] >= target]
    return min(ok, key=lambda r: r["threshold"]) if ok else None


def reliability(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> list[dict[str, float]]:
    """Equal-width confidence bins: mean confidence against the share actually correct."""
    out = []
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        last = b == bins - 1
        inside = [(s, lab) for s, lab in zip(scores, labels, strict=True) if lo <= s < hi or (last and s == hi)]
        if inside:
            out.append({"low": lo, "high": hi, "count": len(inside),
                        "confidence": sum(s for s, _ in inside) / len(inside),
                        "accuracy": sum(lab for _, lab in inside) / len(inside)})
    return out


def expected_calibration_error(scores: Sequence[float], labels: Sequence[bool], bins: int = 10) -> float:
    """Count-weighted mean gap between stated confidence and observed accuracy (0 = calibrated)."""
    n = len(scores)
    if not n:
        return 0.0
    return sum(r["count"] / n * abs(r["confidence"] - r["accuracy"]) for r in reliability(scores, labels, bins))


def precision_at_coverage(scores: Sequence[float], labels: Sequence[bool], coverage: float) -> float | None:
    """Share correct among the most confident `coverage` of questions (ties broken by order)."""
    n = round(len(scores) * coverage)
    if n == 0:
        return None
    ranked = sorted(zip(scores, labels, strict=True), key=lambda p: -p[0])[:n]
    return sum(lab for _, lab in ranked) / n

"""Metric functions against hand-computed values, including ties, empty results and queries
without any relevant document."""

from __future__ import annotations

import math

import pytest

from eval.metrics import (
    average_precision,
    coverage_precision,
    mrr_at_k,
    ndcg_at_k,
    recall_at_k,
    roc_curve,
    rouge_l,
    threshold_for_precision,
    token_f1,
    unique_docs,
)


def test_ndcg_by_hand() -> None:
    # relevant at ranks 1 and 3 of two relevant: (1 + 1/log2(4)) / (1 + 1/log2(3))
    assert ndcg_at_k(["a", "x", "b"], {"a": 1, "b": 1}, 10) == pytest.approx((1 + 0.5) / (1 + 1 / math.log2(3)))
    # graded relevance: the ideal order puts the grade-2 document first
    assert ndcg_at_k(["b", "a"], {"a": 2, "b": 1}, 10) == pytest.approx(
        (1 + 2 / math.log2(3)) / (2 + 1 / math.log2(3)))
    assert ndcg_at_k([], {"a": 1}, 10) == 0.0  # nothing retrieved
    assert ndcg_at_k(["a"], {}, 10) == 0.0  # no relevant document: 0, not a division error
    assert ndcg_at_k(["x"] * 10 + ["a"], {"a": 1}, 10) == 0.0  # beyond the cut-off


def test_recall_mrr_ap_by_hand() -> None:
    ranked = ["x", "a", "y", "b"]
    rel = {"a": 1, "b": 1, "c": 1}
    assert recall_at_k(ranked, rel, 1) == 0.0
    assert recall_at_k(ranked, rel, 5) == pytest.approx(2 / 3)
    assert mrr_at_k(ranked, rel, 10) == 0.5
    assert mrr_at_k(ranked, rel, 1) == 0.0
    assert average_precision(ranked, rel) == pytest.approx((1 / 2 + 2 / 4) / 3)  # c never found counts
    assert average_precision(ranked, {}) == 0.0  # SemEval scoring: no relevant -> AP 0
    assert average_precision(ranked, {"a": 0}) == 0.0  # judged irrelevant only


def test_unique_docs_keeps_best_rank() -> None:
    assert unique_docs(["d1", "d2", "d1", "d3", "d2"]) == ["d1", "d2", "d3"]


def test_token_f1_and_rouge_l_by_hand() -> None:
    assert token_f1("the cat sat", "the cat sat") == 1.0
    # pred {set,the,url}, ref {set,the,database,url}: P=3/3, R=3/4 -> F1 = 6/7
    assert token_f1("Set the URL", "set the database URL") == pytest.approx(6 / 7)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0 and token_f1("a", "b") == 0.0
    # LCS("a b c d", "a c d e") = 3 -> P=3/4, R=3/4
    assert rouge_l("a b c d", "a c d e") == pytest.approx(0.75)
    assert rouge_l("d c b a", "a b c d") == pytest.approx(0.25)


def test_roc_with_ties_and_degenerate_labels() -> None:
    fpr, tpr, auc = roc_curve([0.9, 0.8, 0.3, 0.1], [True, True, False, False])
    assert auc == 1.0 and fpr[0] == tpr[0] == 0.0 and fpr[-1] == tpr[-1] == 1.0
    _, _, auc = roc_curve([0.1, 0.2, 0.8, 0.9], [True, True, False, False])
    assert auc == 0.0
    # a tie between a positive and a negative counts half
    _, _, auc = roc_curve([0.5, 0.5], [True, False])
    assert auc == pytest.approx(0.5)
    _, _, auc = roc_curve([0.5, 0.7], [True, True])
    assert math.isnan(auc)  # undefined without both classes, never a fake number


def test_coverage_precision_and_threshold_choice() -> None:
    scores = [0.9, 0.8, 0.7, 0.6, 0.2]
    labels = [True, True, False, True, False]
    rows = coverage_precision(scores, labels)
    by_t = {r["threshold"]: r for r in rows}
    assert by_t[0.9] == {"threshold": 0.9, "coverage": 0.2, "precision": 1.0}
    assert by_t[0.6]["coverage"] == 0.8 and by_t[0.6]["precision"] == 0.75
    assert by_t[0.2]["precision"] == 0.6
    assert threshold_for_precision(rows, 0.9) == by_t[0.8]  # the most coverage at >= 90%
    assert threshold_for_precision(rows, 0.7)["threshold"] == 0.6  # type: ignore[index]
    assert threshold_for_precision(coverage_precision([0.5], [False]), 0.9) is None

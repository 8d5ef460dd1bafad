"""The confidence model: shipped as package data, fitted in numpy, refit or recalibrated per deployment."""

from __future__ import annotations

import json
from importlib.resources import files
from pathlib import Path

import numpy as np

from assistant.answering.confidence import FEATURES, load_model
from eval.calibrate import calibrate, fit_logistic, fit_model
from eval.metrics import expected_calibration_error, reliability


def test_default_model_ships_inside_the_package() -> None:
    shipped = files("assistant.answering").joinpath("confidence_model.json")
    assert shipped.is_file()
    data = json.loads(shipped.read_text())
    assert data["features"] == list(FEATURES) and data["meta"]["trained_on"]
    model = load_model()
    strong = {"top_cosine": 0.8, "cosine_margin": 0.1, "gap": 2.0, "score_margin": 1.0, "section_terms": 1.0,
              "field_cosine": 0.7, "agreement": 1.0, "top_ranks": 0.0, "question_terms": 2.0,
              "sentence_cosine": 0.8, "sentence_margin": 0.2, "source_terms": 1.0, "unknown_terms": 0.0}
    weak = {"top_cosine": 0.1, "cosine_margin": 0.0, "gap": 0.1, "score_margin": 0.0, "section_terms": 0.0,
            "field_cosine": 0.05, "agreement": 0.0, "top_ranks": 3.0, "question_terms": 2.0,
            "sentence_cosine": 0.2, "sentence_margin": -0.1, "source_terms": 0.3, "unknown_terms": 1.1}
    assert 0.0 < model.probability(weak) < 0.5 < model.probability(strong) < 1.0


def synthetic(n: int, seed: int = 0) -> tuple[list[dict[str, float]], list[bool]]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(FEATURES)))
    p = 1 / (1 + np.exp(-(2.0 * x[:, 0] - 1.0 * x[:, 3] + 0.5)))
    y = rng.random(n) < p
    return [dict(zip(FEATURES, row.tolist(), strict=True)) for row in x], y.tolist()


def test_numpy_fit_recovers_the_generating_coefficients() -> None:
    rows, labels = synthetic(4000)
    x = np.array([[r[f] for f in FEATURES] for r in rows])
    coef, intercept = fit_logistic(x, np.array(labels, dtype=float), l2=1e-3)
    assert abs(coef[0] - 2.0) < 0.2 and abs(coef[3] + 1.0) < 0.15 and abs(intercept - 0.5) < 0.15
    assert np.abs(np.delete(coef, [0, 3])).max() < 0.15


def test_calibrate_refits_on_a_large_set_and_only_rescales_a_small_one(tmp_path: Path) -> None:
    # A shipped model that is right in ranking but badly overconfident: its logit is 5x too steep.
    rows, labels = synthetic(2000, seed=1)
    good = fit_model(rows, labels)
    steep = type(good)({k: 5 * v for k, v in good.coef.items()}, 5 * good.intercept, good.mean, good.scale)
    before = expected_calibration_error([steep.probability(r) for r in rows], labels)

    small, how = calibrate(steep, rows[:120], labels[:120])
    assert how == "recalibrated" and small.coef == steep.coef
    after = expected_calibration_error([small.probability(r) for r in rows], labels)
    assert before > 0.05 and after < before / 2

    large, how = calibrate(steep, rows[:600], labels[:600])
    assert how == "refit" and large.coef != steep.coef
    assert expected_calibration_error([large.probability(r) for r in rows], labels) < 0.05
    bins = reliability([large.probability(r) for r in rows], labels)
    assert sum(b["count"] for b in bins) == len(rows)

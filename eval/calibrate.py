"""Fitting the confidence model (logistic regression + Platt scaling) in plain numpy.

`answerdesk eval calibrate` uses this to adapt the shipped model to a deployment's golden set:
with enough questions of both kinds it refits the coefficients; with fewer it only recalibrates
(two parameters, which a few dozen questions can pin down without overfitting).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from assistant.answering.confidence import FEATURES, Model

REFIT_MIN_QUESTIONS = 300
REFIT_MIN_PER_CLASS = 40


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, iters: int = 100,
                 weights: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Newton-Raphson on the L2-penalised, optionally row-weighted log-likelihood (the intercept
    is not penalised)."""
    n, d = x.shape
    sw = np.ones(n) if weights is None else weights
    xb = np.hstack([x, np.ones((n, 1))])
    w = np.zeros(d + 1)
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ w, -50, 50)))
        grad = xb.T @ (sw * (p - y)) + penalty * w
        hess = (xb * (sw * p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w[:-1], float(w[-1])


def fit_model(rows: Sequence[dict[str, float]], labels: Sequence[bool], l2: float = 1.0,
              meta: dict[str, object] | None = None) -> Model:
    x = np.array([[r.get(f, 0.0) for f in FEATURES] for r in rows], dtype=float)
    y = np.array(labels, dtype=float)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    coef, intercept = fit_logistic((x - mean) / scale, y, l2)
    return Model(coef=dict(zip(FEATURES, coef.tolist(), strict=True)), intercept=intercept,
                 mean=dict(zip(FEATURES, mean.tolist(), strict=True)),
                 scale=dict(zip(FEATURES, scale.tolist(), strict=True)), meta=meta or {})


def recalibrate(model: Model, rows: Sequence[dict[str, float]], labels: Sequence[bool]) -> Model:
    """Platt scaling: p = sigmoid(a * logit + b), a and b fitted on these questions."""
    z = np.array([[model.logit(r)] for r in rows])
    (a,), b = fit_logistic(z, np.array(labels, dtype=float), l2=1e-3)
    return Model(model.coef, model.intercept, model.mean, model.scale, (float(a), b), dict(model.meta))


def calibrate(model: Model, rows: Sequence[dict[str, float]], labels: Sequence[bool]) -> tuple[Model, str]:
    """Refit when the set is large enough for seven coefficients, else recalibrate; says which."""
    positives = sum(bool(v) for v in labels)
    negatives = len(labels) - positives
    if min(positives, negatives) == 0:
        raise ValueError("calibration needs both right and wrong answers in the golden set")
    if len(labels) >= REFIT_MIN_QUESTIONS and min(positives, negatives) >= REFIT_MIN_PER_CLASS:
        return recalibrate(fit_model(rows, labels, meta=dict(model.meta)), rows, labels), "refit"
    return recalibrate(model, rows, labels), "recalibrated"

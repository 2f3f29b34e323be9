"""Honest accuracy while labeling: Wilson intervals, the audit sample, learning curves,
and ``simulate`` (replay labeling with an oracle to compare strategies).

``LearningCurveFit`` lives in ``learning_curve.py`` and ``simulate`` / ``SimulationResult``
in ``simulation.py`` (one public class per module); all are importable from here.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from .audit import AuditSampler, wilson_interval
from .learning_curve import LearningCurveFit
from .simulation import SimulationResult, simulate

__all__ = [
    "AuditSampler",
    "LearningCurveFit",
    "SimulationResult",
    "confidence_accuracy",
    "out_of_fold_probs",
    "simulate",
    "wilson_interval",
]

log = logging.getLogger(__name__)


def confidence_accuracy(
    pool_probs: Any,
    audit_probs: Any,
    audit_correct: Any,
    *,
    weights: Any = None,
    prior_mean: float = 0.0,
    prior_sd: float = 0.02,
    prior_n: float | None = None,
    confidence: float = 0.95,
) -> dict:
    """Accuracy of a model on a pool: its own mean confidence, corrected by audit answers.

    ``pool_probs`` (M, K): the model's probabilities for the unlabeled pool (the population
    whose accuracy is wanted). ``audit_probs`` (A, K) and ``audit_correct`` (A,) bool: its
    probabilities for answered items drawn at random from the pool (never trained on, or
    scored out of fold) and whether its guess was right. ``weights`` (A,) in (0, 1]: what
    each answer is worth (1 = an audit answer scored by this model; less for evidence
    about a sibling model, e.g. out-of-fold predictions).

    If the model were calibrated its accuracy would be ``m = mean(max p)`` over the pool:
    an estimate from all M items, not just the A answers. Its calibration gap ``d`` is
    learned from the weighted residuals ``correct - max p`` (sum ``S``, weight ``n``) with
    a normal prior ``d ~ N(prior_mean, prior_sd^2)``; ``s^2`` = the model-implied residual
    variance ``mean(p (1 - p))`` makes the prior worth ``n0 = s^2 / prior_sd^2`` answers
    (or ``prior_n`` when given): the estimate is ``m + (S + n0 prior_mean) / (n + n0)`` and
    the interval is the posterior's, ``+- z s / sqrt(n + n0)``. ``prior_sd`` = 2 points,
    about the spread of a linear probe's calibration gap on frozen features around its
    typical value (see ``Evaluation.accuracy_estimate`` for ``prior_mean``). Few answers
    -> mostly the model's confidence; many answers -> the evidence decides. When the mean
    residual is more than 3 sd from the prior's reach the prior is widened to it (a model
    far off calibration).

    Returns dict(estimate, low, high, n, expected, correction): ``expected`` = ``m``,
    ``correction`` = the posterior gap, n = A.
    """
    from scipy.stats import norm

    P = np.asarray(pool_probs, dtype=np.float64)
    if P.ndim != 2 or P.shape[0] == 0 or P.shape[1] < 1:
        raise ValueError(f"pool_probs must be a non-empty (M, K) array; got shape {P.shape}")
    Pa = np.asarray(audit_probs, dtype=np.float64)
    if Pa.size == 0:
        Pa = Pa.reshape(0, P.shape[1])
    ok = np.asarray(audit_correct, dtype=bool).reshape(-1)
    if Pa.ndim != 2 or Pa.shape[1] != P.shape[1] or len(Pa) != len(ok):
        raise ValueError(
            f"audit_probs must be (A, {P.shape[1]}) with A = len(audit_correct) = {len(ok)}; "
            f"got shape {Pa.shape}"
        )
    w = np.ones(len(ok)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != ok.shape or not np.isfinite(w).all() or (w <= 0).any() or (w > 1).any():
        raise ValueError(f"weights must be {len(ok)} values in (0, 1]; got shape {w.shape}")
    if not (np.isfinite(P).all() and np.isfinite(Pa).all()):
        raise ValueError("probabilities contain NaN or infinite values; refit the model")
    if not prior_sd > 0 or (prior_n is not None and not prior_n > 0):
        raise ValueError(f"prior_sd and prior_n must be > 0; got {prior_sd}, {prior_n}")
    if not (np.isfinite(prior_mean) and abs(prior_mean) < 1):
        raise ValueError(f"prior_mean must be a gap in (-1, 1); got {prior_mean}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    top = P.max(axis=1)
    expected = float(top.mean())
    var = max(float((top * (1.0 - top)).mean()), 1e-4)  # residual variance if calibrated
    n = float(w.sum())
    n0 = var / prior_sd**2 if prior_n is None else float(prior_n)  # the prior, in answers
    total = float((w * (ok - Pa.max(axis=1))).sum())
    if n and prior_n is None and abs(total / n - prior_mean) > 3 * np.sqrt(var / n + prior_sd**2):
        n0 = var / (total / n - prior_mean) ** 2  # the evidence contradicts the prior: widen
    correction = (total + n0 * prior_mean) / (n + n0)
    half = float(norm.ppf(0.5 + confidence / 2)) * np.sqrt(var / (n + n0))
    est = float(np.clip(expected + correction, 0.0, 1.0))
    return {"estimate": est, "low": float(max(est - half, 0.0)),
            "high": float(min(est + half, 1.0)), "n": len(ok), "expected": expected,
            "correction": float(correction)}


def out_of_fold_probs(
    model: Any,
    X: Any,
    y: Any,
    evaluate: Any,
    *,
    sample_weight: Any = None,
    folds: int = 5,
    random_state: int = 0,
) -> np.ndarray:
    """Probabilities for the training items ``evaluate`` from models that never saw them.

    ``X`` (M, D) / ``y`` (M,) / ``sample_weight`` (M,) is a training set; ``evaluate``
    (M,) bool marks the items to score (e.g. randomly picked labels: their out-of-fold
    predictions are unbiased evidence of accuracy, unlike items picked by uncertainty).
    The marked items are split into ``folds`` seeded folds; for each, a fresh
    ``sklearn.base.clone(model)`` is fitted on every other item (unmarked ones always)
    and predicts the fold. Returns (E, K) float64 in the columns of ``model.classes_``
    (the clone must keep them, e.g. a LinearProbe with ``classes`` set), E = evaluate.sum().
    """
    from sklearn.base import clone

    X = np.asarray(X)
    y = np.asarray(y, dtype=object)
    ev = np.asarray(evaluate, dtype=bool).reshape(-1)
    if X.ndim != 2 or len(X) != len(y) or len(ev) != len(y):
        raise ValueError(f"X (M, D), y (M,) and evaluate (M,) must agree; got {X.shape}, "
                         f"{y.shape} and {ev.shape}")
    if int(folds) < 2:
        raise ValueError(f"folds must be at least 2; got {folds}")
    w = np.ones(len(y)) if sample_weight is None else np.asarray(sample_weight, float)
    classes = list(model.classes_)
    col = {c: j for j, c in enumerate(classes)}
    marked = np.flatnonzero(ev)
    out = np.zeros((len(marked), len(classes)))
    order = np.random.default_rng(random_state).permutation(len(marked))
    for f in range(min(int(folds), len(marked))):
        held = np.zeros(len(y), dtype=bool)
        held[marked[order[f::folds]]] = True
        rows = np.flatnonzero(held[marked])
        fold = clone(model)
        if "warm_start" in fold.get_params():
            fold.set_params(warm_start=False)  # never start from weights that saw the fold
        fold.fit(X[~held], y[~held], sample_weight=w[~held])
        p = fold.predict_proba(X[held])
        for j, c in enumerate(fold.classes_):
            if c in col:
                out[rows, col[c]] = p[:, j]
    return out

"""Honest accuracy while labeling: Wilson intervals, the audit sample, learning curves,
and ``simulate`` (replay labeling with an oracle to compare strategies).

``LearningCurveFit`` lives in ``learning_curve.py`` and ``simulate`` / ``SimulationResult``
in ``simulation.py`` (one public class per module); all are importable from here.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import numpy as np

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


def wilson_interval(correct: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a proportion ``correct / n``; (0, 1) when ``n == 0``.

    Uses ``scipy.stats.binomtest(...).proportion_ci(method="wilson")``.
    """
    from scipy.stats import binomtest

    correct, n = int(correct), int(n)
    if n < 0 or not 0 <= correct <= max(n, 0):
        raise ValueError(f"need 0 <= correct <= n; got correct={correct}, n={n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(correct, n).proportion_ci(confidence_level=confidence, method="wilson")
    return float(ci.low), float(ci.high)


class AuditSampler:
    """Chooses the random audit share of what the user is asked, and remembers it.

    About ``share`` of all items served are drawn uniformly at random from the unlabeled
    pool, never by uncertainty; their answers are used only to estimate accuracy (the
    Session never trains on them). The count is kept exact over time: after ``m`` items
    served, ``round(share * m)`` were audit items, so one-at-a-time queues get them too.

    State is JSON-able: :meth:`to_json` / :meth:`from_json` (for the Session meta).
    """

    def __init__(self, *, share: float = 0.1, random_state: int = 0) -> None:
        if not 0 <= share < 1:
            raise ValueError(f"share must be in [0, 1); got {share}")
        self.share = float(share)
        self.random_state = int(random_state)
        self._items: list[int] = []
        self._asked = 0
        self._calls = 0

    @property
    def items(self) -> np.ndarray:
        """(M,) int64 indices served as audit items, in serving order."""
        return np.asarray(self._items, dtype=np.int64)

    @property
    def n_asked(self) -> int:
        """Items served so far (audit and strategy picks)."""
        return self._asked

    def restore(self, items: Iterable[int], *, asked: int | None = None) -> AuditSampler:
        """Reload served audit ``items`` (indices); ``asked`` defaults to ``len(items)/share``."""
        self._items = [int(i) for i in dict.fromkeys(int(i) for i in items)]
        if asked is None:
            asked = round(len(self._items) / self.share) if self.share else 0
        self._asked = max(int(asked), len(self._items))
        return self

    def n_due(self, k: int) -> int:
        """How many of the next ``k`` served items should be audit items."""
        target = int(np.floor(self.share * (self._asked + k) + 0.5))
        return int(min(max(target - len(self._items), 0), k))

    def sample(self, pool: Any, k: int, *, rng: np.random.Generator | None = None) -> np.ndarray:
        """Audit items for a batch of ``k`` served from ``pool`` (unlabeled indices).

        Returns (m,) int64, ``m = n_due(k)`` (fewer if the pool runs out), drawn uniformly
        from ``pool`` minus earlier audit items, and records them. The caller serves
        ``k - m`` strategy picks beside them.
        """
        pool = np.asarray(pool, dtype=np.int64)
        if pool.ndim != 1:
            raise ValueError(f"pool must be a 1-D array of item indices; got shape {pool.shape}")
        if k < 0:
            raise ValueError(f"k must be >= 0; got {k}")
        if rng is None:
            rng = np.random.default_rng([self.random_state, self._calls])
        self._calls += 1
        m = self.n_due(k)
        fresh = pool[~np.isin(pool, self._items)] if self._items else pool
        m = min(m, len(fresh))
        picks = rng.choice(fresh, size=m, replace=False) if m else np.empty(0, np.int64)
        self._items.extend(int(i) for i in picks)
        self._asked += int(k)
        return np.asarray(picks, dtype=np.int64)

    def is_audit(self, indices: Any) -> np.ndarray:
        """Boolean mask: which of ``indices`` are audit items."""
        return np.isin(np.asarray(indices, dtype=np.int64), self._items)

    def estimate(self, predictions: Any, labels: Any, *, confidence: float = 0.95) -> dict:
        """Accuracy on answered audit items: dict(estimate, low, high, n).

        ``predictions`` and ``labels`` are (N,) arrays over all items (labels: -1 or None
        where not labeled). ``estimate`` is None when no audit item is answered yet.
        """
        pred = np.asarray(predictions)
        lab = np.asarray(labels)
        if pred.shape != lab.shape or pred.ndim != 1:
            raise ValueError(
                f"predictions and labels must be (N,) arrays of the same length; got "
                f"{pred.shape} and {lab.shape}"
            )
        items = self.items
        if len(items) and items.max() >= len(lab):
            raise ValueError(f"audit item {int(items.max())} is outside labels (N={len(lab)})")
        given = lab[items]
        if given.dtype == object:
            answered = np.array([v is not None for v in given], dtype=bool)
        else:
            answered = given >= 0 if given.dtype.kind in "iu" else np.ones(len(given), bool)
        idx = items[answered]
        n = len(idx)
        if n == 0:
            return {"estimate": None, "low": None, "high": None, "n": 0}
        correct = int((pred[idx] == lab[idx]).sum())
        low, high = wilson_interval(correct, n, confidence=confidence)
        return {"estimate": correct / n, "low": low, "high": high, "n": n}

    def to_json(self) -> dict:
        """JSON-able state."""
        return {"share": self.share, "random_state": self.random_state,
                "items": list(self._items), "asked": self._asked, "calls": self._calls}

    @classmethod
    def from_json(cls, state: dict) -> AuditSampler:
        """Rebuild from :meth:`to_json` output."""
        try:
            out = cls(share=state["share"], random_state=state["random_state"])
            out.restore(state["items"], asked=state["asked"])
            out._calls = int(state.get("calls", 0))
        except KeyError as exc:
            raise ValueError(f"audit state is missing the key {exc}; got {sorted(state)}") from None
        return out

    def __repr__(self) -> str:
        return (f"AuditSampler(share={self.share}, random_state={self.random_state}, "
                f"items={len(self._items)}, asked={self._asked})")



def confidence_accuracy(
    pool_probs: Any,
    audit_probs: Any,
    audit_correct: Any,
    *,
    prior_sd: float = 0.025,
    prior_n: float | None = None,
    confidence: float = 0.95,
) -> dict:
    """Accuracy of a model on a pool: its own mean confidence, corrected by audit answers.

    ``pool_probs`` (M, K): the model's probabilities for the unlabeled pool (the population
    whose accuracy is wanted). ``audit_probs`` (A, K) and ``audit_correct`` (A,) bool: its
    probabilities for the answered random audit items (never trained on) and whether its
    guess was right.

    If the model were calibrated its accuracy would be ``m = mean(max p)`` over the pool:
    an estimate from all M items, not just the A answers. Its calibration bias ``d`` is
    learned from the audit residuals ``correct - max p`` (mean ``r``) with a normal prior
    ``d ~ N(0, prior_sd^2)``; ``s^2`` = the model-implied residual variance
    ``mean(p (1 - p))`` makes the prior worth ``n0 = s^2 / prior_sd^2`` answers (or
    ``prior_n`` when given): the estimate is ``m + w r`` with ``w = A / (A + n0)``, and the
    interval is the posterior's, ``+- z s / sqrt(A + n0)``. ``prior_sd`` = 2.5 points: the
    size of a linear probe's calibration gap on frozen features (rms 2.6 points under random
    sampling on Fashion-MNIST, its largest; 0.8-1.1 under margin/hybrid), so ~200 answers at
    75% accuracy. Few answers -> mostly the model's confidence (+-4.9 points at 95%);
    many answers -> the evidence decides (the answers' own noise, ~+-40 points each, no
    longer swamps a 1-point calibration gap). When the mean residual is more than 3 sd
    from the prior's reach the prior is widened to it (a model far off calibration).

    Returns dict(estimate, low, high, n, expected, correction): ``expected`` = ``m``,
    ``correction`` = ``w r``, n = A.
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
    if not (np.isfinite(P).all() and np.isfinite(Pa).all()):
        raise ValueError("probabilities contain NaN or infinite values; refit the model")
    if not prior_sd > 0 or (prior_n is not None and not prior_n > 0):
        raise ValueError(f"prior_sd and prior_n must be > 0; got {prior_sd}, {prior_n}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    top = P.max(axis=1)
    expected = float(top.mean())
    var = max(float((top * (1.0 - top)).mean()), 1e-4)  # residual variance if calibrated
    n = len(ok)
    n0 = var / prior_sd**2 if prior_n is None else float(prior_n)  # the prior, in answers
    resid = ok - Pa.max(axis=1)
    if n and prior_n is None and abs(resid.mean()) > 3 * np.sqrt(var / n + prior_sd**2):
        n0 = var / float(resid.mean()) ** 2  # the evidence contradicts the prior: widen it
    correction = float(resid.sum() / (n + n0)) if n else 0.0
    half = float(norm.ppf(0.5 + confidence / 2)) * np.sqrt(var / (n + n0))
    est = float(np.clip(expected + correction, 0.0, 1.0))
    return {"estimate": est, "low": float(max(est - half, 0.0)),
            "high": float(min(est + half, 1.0)), "n": n, "expected": expected,
            "correction": correction}


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

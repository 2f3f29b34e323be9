"""LearningCurveFit: fit accuracy(n) = a - b * n^(-c) and ask how many labels a target needs."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

__all__ = ["LearningCurveFit"]

log = logging.getLogger(__name__)

_LOWER = (0.0, 0.0, 0.01)
_UPPER = (1.0, 1e3, 3.0)


def _power_law(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    return a - b * np.power(n, -c)


def _jac(n: np.ndarray, a: float, b: float, c: float) -> np.ndarray:
    power = np.power(n, -c)
    return np.stack([np.ones_like(n), -power, b * power * np.log(n)], axis=1)


def _fit_once(n: np.ndarray, acc: np.ndarray, p0: Any = None) -> np.ndarray | None:
    from scipy.optimize import curve_fit

    if p0 is None:
        p0 = (min(float(acc.max()) + 0.02, 1.0), 1.0, 0.5)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            params, _ = curve_fit(_power_law, n, acc, p0=p0, bounds=(_LOWER, _UPPER),
                                  jac=_jac, max_nfev=2000)
    except (RuntimeError, ValueError):
        return None
    return params


def _needed(params: np.ndarray, target: float) -> float:
    a, b, c = params
    if target >= a:
        return float("inf")
    if b <= 0:
        return 1.0
    return float(max(((a - target) / b) ** (-1.0 / c), 1.0))


class LearningCurveFit:
    """Power-law learning curve ``acc(n) = a - b * n^(-c)`` (scipy ``curve_fit``, bounded:
    0 <= a <= 1, b >= 0, 0.01 <= c <= 3) with a bootstrap over the points for ranges.

    Parameters (keyword-only): ``n_bootstrap`` resamples, ``interval`` (0.9: the 5th-95th
    percentile range), ``random_state``. With few points the bootstrap range is too narrow
    rather than too wide (about 80% coverage for a nominal 90% on 7 points), so read it as
    "at least this uncertain".

    Fitted attributes: ``params_`` (a, b, c), ``asymptote_`` (= a), ``bootstrap_params_``
    (B, 3) (failed refits dropped), ``n_`` and ``accuracy_`` (the points).
    """

    def __init__(self, *, n_bootstrap: int = 100, interval: float = 0.9,
                 random_state: int = 0) -> None:
        self.n_bootstrap = n_bootstrap
        self.interval = interval
        self.random_state = random_state

    def fit(self, n_labels: Any, accuracy: Any) -> LearningCurveFit:
        """Fit to points ``n_labels`` (P,) > 0 and ``accuracy`` (P,) in [0, 1]."""
        n = np.asarray(n_labels, dtype=np.float64).ravel()
        acc = np.asarray(accuracy, dtype=np.float64).ravel()
        if n.shape != acc.shape:
            raise ValueError(f"n_labels and accuracy differ in length: {n.shape} vs {acc.shape}")
        ok = np.isfinite(n) & np.isfinite(acc)
        n, acc = n[ok], acc[ok]
        if (n <= 0).any():
            raise ValueError("n_labels must be positive")
        if ((acc < 0) | (acc > 1)).any():
            raise ValueError("accuracy must be a fraction in [0, 1] (not a percentage)")
        if len(np.unique(n)) < 3:
            raise ValueError(
                f"a learning curve needs points at >= 3 different label counts; got "
                f"{len(np.unique(n))}. Label more and fit again."
            )
        params = _fit_once(n, acc)
        if params is None:
            raise RuntimeError("the power-law fit did not converge on these points")
        self.n_, self.accuracy_ = n, acc
        self.params_ = params
        self.asymptote_ = float(params[0])
        rng = np.random.default_rng(self.random_state)
        boots = []
        for _ in range(self.n_bootstrap):
            idx = rng.integers(0, len(n), size=len(n))
            if len(np.unique(n[idx])) < 3:
                continue
            p = _fit_once(n[idx], acc[idx], p0=params)
            if p is not None:
                boots.append(p)
        self.bootstrap_params_ = np.asarray(boots).reshape(-1, 3)
        log.debug("learning curve: a=%.3f b=%.3f c=%.3f (%d bootstrap fits)",
                  *params, len(boots))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise RuntimeError("this LearningCurveFit is not fitted yet; call fit(n, acc)")

    def predict(self, n_labels: Any) -> np.ndarray:
        """Predicted accuracy at ``n_labels``, same shape."""
        self._check_fitted()
        return _power_law(np.asarray(n_labels, dtype=np.float64), *self.params_)

    def labels_needed(self, target: float) -> dict[str, Any]:
        """Labels needed for accuracy ``target``: dict(estimate, low, high, reachable,
        asymptote, asymptote_low, asymptote_high).

        ``estimate`` is ``inf`` and ``reachable`` False when ``target`` is at or above the
        fitted asymptote; ``high`` is ``inf`` when over ``(1 - interval) / 2`` of the
        bootstrap curves never reach it.
        """
        self._check_fitted()
        if not 0 < target < 1:
            raise ValueError(f"target must be an accuracy in (0, 1); got {target}")
        est = _needed(self.params_, target)
        lo_q, hi_q = (1 - self.interval) / 2, (1 + self.interval) / 2
        if len(self.bootstrap_params_):
            need = np.array([_needed(p, target) for p in self.bootstrap_params_])
            finite = np.isfinite(need)
            low = float(np.quantile(np.where(finite, need, np.inf), lo_q, method="lower"))
            high = float(np.quantile(np.where(finite, need, np.inf), hi_q, method="higher"))
            a_low, a_high = np.quantile(self.bootstrap_params_[:, 0], [lo_q, hi_q])
        else:
            low = high = est
            a_low = a_high = self.asymptote_
        return {
            "estimate": est,
            "low": low,
            "high": high,
            "reachable": bool(np.isfinite(est)),
            "asymptote": self.asymptote_,
            "asymptote_low": float(a_low),
            "asymptote_high": float(a_high),
        }

    def __repr__(self) -> str:
        if hasattr(self, "params_"):
            a, b, c = self.params_
            return f"LearningCurveFit(acc(n) = {a:.3f} - {b:.3f} * n^-{c:.3f})"
        return "LearningCurveFit(unfitted)"

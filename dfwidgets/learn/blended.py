"""BlendedClassifier: a label-free prior (zero-shot text) handing over to a trained model."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._checks import check_embeddings, check_labels

__all__ = ["BlendedClassifier"]

log = logging.getLogger(__name__)


def _align(probs: np.ndarray, have: list[Any], want: list[Any]) -> np.ndarray:
    out = np.zeros((probs.shape[0], len(want)), dtype=np.float32)
    pos = {c: i for i, c in enumerate(have)}
    for j, c in enumerate(want):
        if c in pos:
            out[:, j] = probs[:, pos[c]]
    return out


class BlendedClassifier(ClassifierMixin, BaseEstimator):
    """Mix a prior's probabilities with a supervised model's, per class, by label count.

    ``p(c|x) ∝ (1 - a_c) * prior(c|x) + a_c * supervised(c|x)`` with
    ``a_c = n_c / (n_c + prior_weight)`` where ``n_c`` is the number of labels of class
    ``c``: with no labels the prior (zero-shot from class names, or prototypes) decides;
    as labels arrive the supervised model takes over, class by class.

    Parameters
    ----------
    zero_shot : the prior, e.g. a :class:`ZeroShotClassifier` (fitted on first use) or a
        :class:`PrototypeClassifier`; anything with ``fit``, ``predict_proba``, ``classes_``.
    supervised : the model trained on labels, e.g. a :class:`LinearProbe`. If it cannot be
        fitted yet (labels of a single class), the prior is used alone.
    prior_weight : labels per class at which prior and model weigh the same.

    Fitted attributes: ``classes_`` (the prior's classes, then any new labeled ones),
    ``class_counts_`` (K,), ``weights_`` (K,) the ``a_c`` above, ``supervised_`` (or None).
    """

    def __init__(
        self,
        zero_shot: Any = None,
        supervised: Any = None,
        *,
        prior_weight: float = 5.0,
    ) -> None:
        self.zero_shot = zero_shot
        self.supervised = supervised
        self.prior_weight = prior_weight

    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> BlendedClassifier:
        """Fit the prior (if needed) and the supervised model on ``X`` (N, D), ``y`` (N,);
        ``sample_weight`` (N,) goes to the supervised model."""
        if self.zero_shot is None:
            raise ValueError("BlendedClassifier needs zero_shot= (the prior classifier)")
        if not self.prior_weight > 0:
            raise ValueError(f"prior_weight must be > 0; got {self.prior_weight}")
        X = check_embeddings(X, name="X", allow_empty=True)
        y = check_labels(y, len(X))
        if not hasattr(self.zero_shot, "classes_"):
            self.zero_shot.fit(X, y)
        classes = list(self.zero_shot.classes_)
        known = set(classes)
        classes += [c for c in dict.fromkeys(y.tolist()) if c not in known]
        self.supervised_ = None
        if self.supervised is not None and len(y):
            try:
                self.supervised_ = (self.supervised.fit(X, y) if sample_weight is None else
                                    self.supervised.fit(X, y, sample_weight=sample_weight))
            except ValueError as exc:  # e.g. only one class labeled yet: prior alone
                log.info("BlendedClassifier: using the prior alone (%s)", exc)
        lookup = {c: i for i, c in enumerate(classes)}
        counts = np.zeros(len(classes), dtype=np.int64)
        for v in y.tolist():
            counts[lookup[v]] += 1
        self.classes_ = np.asarray(classes)
        self.class_counts_ = counts
        weights = counts / (counts + float(self.prior_weight))
        self.weights_ = (weights if self.supervised_ is not None else np.zeros_like(weights))
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) float32 probabilities, columns in ``classes_`` order."""
        if not hasattr(self, "classes_"):
            raise RuntimeError("this BlendedClassifier is not fitted yet; call fit(X, y)")
        want = self.classes_.tolist()
        prior = _align(self.zero_shot.predict_proba(X), list(self.zero_shot.classes_), want)
        a = self.weights_.astype(np.float32)
        mixed = prior * (1.0 - a)
        if self.supervised_ is not None:
            sup = self.supervised_.predict_proba(X)
            mixed += _align(sup, list(self.supervised_.classes_), want) * a
        mixed /= np.maximum(mixed.sum(axis=1, keepdims=True), 1e-12)
        return mixed

    def predict(self, X: Any) -> np.ndarray:
        """Most probable class per row, (N,)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

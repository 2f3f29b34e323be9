"""PrototypeClassifier: nearest class mean by cosine similarity, for one-shot labeling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from ._checks import check_embeddings, check_labels, encode_labels

__all__ = ["PrototypeClassifier"]


def _normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _softmax(logits: np.ndarray) -> np.ndarray:
    logits = logits - logits.max(axis=1, keepdims=True)
    np.exp(logits, out=logits)
    logits /= logits.sum(axis=1, keepdims=True)
    return logits


class PrototypeClassifier(ClassifierMixin, BaseEstimator):
    """Cosine similarity to each class's mean embedding, turned into probabilities.

    ``p(c | x) = softmax_c(cos(x, prototype_c) / temperature)``. One example per class is
    enough. Hard negatives (items known *not* to be class ``c``) push the prototype away
    from them, Rocchio-style: ``prototype_c = mean(pos_c) - negative_weight * mean(neg_c)``.

    Parameters (keyword-only)
    -------------------------
    temperature : softmax temperature on cosine similarities (smaller = sharper).
    negative_weight : strength of the hard-negative term.
    classes : fixed class list and column order; classes with no example get probability 0.

    Fitted attributes: ``classes_`` (K,), ``prototypes_`` (K, D) unit vectors (zero rows
    for classes without examples), ``class_counts_`` (K,).
    """

    def __init__(
        self,
        *,
        temperature: float = 0.05,
        negative_weight: float = 0.5,
        classes: Sequence[Any] | None = None,
    ) -> None:
        self.temperature = temperature
        self.negative_weight = negative_weight
        self.classes = classes

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_negative: Any | None = None,
        y_negative: Any | None = None,
    ) -> PrototypeClassifier:
        """Fit on ``X`` (N, D) and labels ``y`` (N,); optional hard negatives
        ``X_negative`` (M, D) with ``y_negative`` (M,) naming the class each is *not*."""
        if not self.temperature > 0:
            raise ValueError(f"temperature must be > 0; got {self.temperature}")
        X = check_embeddings(X, name="X")
        y = check_labels(y, len(X))
        classes_, codes = encode_labels(y, self.classes)
        K, D = len(classes_), X.shape[1]
        counts = np.bincount(codes, minlength=K)
        Xn = _normalise(X)
        sums = np.zeros((K, D), dtype=np.float64)
        np.add.at(sums, codes, Xn)
        protos = np.zeros((K, D), dtype=np.float64)
        has = counts > 0
        protos[has] = sums[has] / counts[has, None]
        if X_negative is not None or y_negative is not None:
            if X_negative is None or y_negative is None:
                raise ValueError("pass both X_negative and y_negative, or neither")
            Xneg = check_embeddings(X_negative, name="X_negative", dim=D)
            yneg = check_labels(y_negative, len(Xneg), name="y_negative")
            _, neg_codes = encode_labels(yneg, classes_)
            neg_counts = np.bincount(neg_codes, minlength=K)
            neg_sums = np.zeros((K, D), dtype=np.float64)
            np.add.at(neg_sums, neg_codes, _normalise(Xneg))
            hn = has & (neg_counts > 0)
            protos[hn] -= self.negative_weight * neg_sums[hn] / neg_counts[hn, None]
        self.classes_ = classes_
        self.prototypes_ = _normalise(protos).astype(np.float32) * has[:, None]
        self.class_counts_ = counts
        self.n_features_in_ = D
        return self

    def similarity(self, X: Any) -> np.ndarray:
        """Cosine similarity of each row to each prototype, (N, K) float32."""
        if not hasattr(self, "prototypes_"):
            raise RuntimeError("this PrototypeClassifier is not fitted yet; call fit(X, y)")
        X = check_embeddings(X, name="X", dim=self.n_features_in_, allow_empty=True)
        return _normalise(X) @ self.prototypes_.T

    def predict_proba(self, X: Any) -> np.ndarray:
        """(N, K) float32 probabilities; classes with no example get 0."""
        logits = self.similarity(X) / np.float32(self.temperature)
        logits[:, self.class_counts_ == 0] = -np.inf
        return _softmax(logits).astype(np.float32, copy=False)

    def predict(self, X: Any) -> np.ndarray:
        """Nearest prototype's class per row, (N,)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    # ------------------------------------------------------------ saving state
    def get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """The fitted model as plain arrays (``prototypes_`` (K, D), ``class_counts_``
        (K,)) + JSON-able meta (``estimator``, ``params``, ``classes_``,
        ``n_features_in_``), for :meth:`from_state`; no pickle."""
        if not hasattr(self, "prototypes_"):
            raise RuntimeError("this PrototypeClassifier is not fitted yet; call fit(X, y)")
        params = self.get_params()
        if params.get("classes") is not None:
            params["classes"] = np.asarray(list(params["classes"])).tolist()
        arrays = {"prototypes_": self.prototypes_,
                  "class_counts_": np.asarray(self.class_counts_, dtype=np.int64)}
        meta = {"estimator": type(self).__name__, "params": params,
                "classes_": self.classes_.tolist(), "n_features_in_": int(self.n_features_in_)}
        return arrays, meta

    @classmethod
    def from_state(cls, arrays: dict[str, np.ndarray],
                   meta: dict[str, Any]) -> PrototypeClassifier:
        """A fitted PrototypeClassifier from :meth:`get_state` output; ValueError naming
        what is missing or inconsistent."""
        if meta.get("estimator") != cls.__name__:
            raise ValueError(f"state is for {meta.get('estimator')!r}, not {cls.__name__}")
        try:
            model = cls(**dict(meta.get("params") or {}))
            classes_ = np.asarray(meta["classes_"])
            K, D = len(classes_), int(meta["n_features_in_"])
            protos = np.asarray(arrays["prototypes_"])
            counts = np.asarray(arrays["class_counts_"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"incomplete PrototypeClassifier state: {exc!r} is missing or "
                             "wrong; refit the model") from None
        if protos.shape != (K, D) or counts.shape != (K,):
            raise ValueError(
                f"PrototypeClassifier state: prototypes_ {protos.shape} / class_counts_ "
                f"{counts.shape} do not fit {K} classes and {D} dims; refit")
        if not np.isfinite(protos).all():
            raise ValueError("PrototypeClassifier state: prototypes_ has NaN/inf; refit")
        model.classes_ = classes_
        model.prototypes_ = np.ascontiguousarray(protos, dtype=np.float32)
        model.class_counts_ = counts.astype(np.int64)
        model.n_features_in_ = D
        return model

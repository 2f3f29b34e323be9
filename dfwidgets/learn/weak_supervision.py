"""Weak supervision over arrays: rules' votes in, probabilistic labels out.

A *vote matrix* ``L`` is (N, R) int64: rule r's class code for item i, or ``ABSTAIN``
(-1). :class:`WeakLabelModel` combines the votes: ``method="label_model"`` uses Snorkel's
``LabelModel`` (Ratner et al., "Training Complex Models with Multi-Task Weak Supervision",
AAAI 2019: rule accuracies learned from their agreements, no ground truth needed; extra
``dfwidgets[weak]``), ``method="majority"`` is the baseline (ties split evenly). The
class balance comes from the hand labels. Rule kinds that need only arrays live here too
(examples, prompt; the neighbours rule is learn/label_spreading.py); the Session (``session/rules.py``) feeds them.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

__all__ = [
    "ABSTAIN", "METHODS", "WeakLabelModel", "centred_rows", "class_balance", "confident_by_class",
    "confident_weak",
    "example_votes", "majority_vote", "prompt_votes", "rule_stats",
]

log = logging.getLogger(__name__)

ABSTAIN = -1
METHODS = ("label_model", "majority")
SNORKEL_MISSING = ('The label model needs Snorkel: pip install "dfwidgets[weak]" '
                   '(or use method="majority", which needs nothing).')


def _check_votes(L: Any, cardinality: int) -> np.ndarray:
    L = np.asarray(L)
    if L.ndim != 2:
        raise ValueError(f"votes must be an (N, R) array; got shape {L.shape}.")
    L = L.astype(np.int64, copy=False)
    if L.size and (L.min() < ABSTAIN or L.max() >= cardinality):
        raise ValueError(f"votes must be class codes 0..{cardinality - 1} or {ABSTAIN} "
                         f"(abstain); got values {L.min()}..{L.max()}.")
    return L


def class_balance(codes: np.ndarray, cardinality: int, *, prior: float = 1.0) -> np.ndarray:
    """(K,) float64 class shares of hand labels ``codes`` (M,), add-``prior`` smoothed."""
    counts = np.bincount(np.asarray(codes, np.int64)[np.asarray(codes) >= 0],
                         minlength=cardinality)[:cardinality].astype(np.float64) + prior
    return counts / counts.sum()


def majority_vote(L: Any, cardinality: int) -> np.ndarray:
    """(N, K) float32 vote shares per item (ties split evenly); rows with no vote: zeros."""
    L = _check_votes(L, cardinality)
    counts = np.zeros((L.shape[0], cardinality), np.float32)
    rows, cols = np.nonzero(L >= 0)
    np.add.at(counts, (rows, L[rows, cols]), 1.0)
    top = counts.max(axis=1, keepdims=True)
    winners = (counts == top) & (top > 0)
    return (winners / np.maximum(winners.sum(axis=1, keepdims=True), 1)).astype(np.float32)


class WeakLabelModel(BaseEstimator):
    """Combine rule votes into class probabilities (sklearn-shaped).

    ``method``: "label_model" (Snorkel's LabelModel; ImportError naming the extra if
    Snorkel is missing) or "majority". ``class_balance``: (K,) prior from the hand labels
    (None: uniform). ``fit(L)`` -> self; ``predict_proba(L)`` -> (N, K) float32 (rows with
    no vote: the class balance); ``covered(L)`` -> (N,) bool. Learned: ``accuracies_``
    (R,) estimated accuracy per rule (label model) or agreement with the majority.
    """

    def __init__(self, *, cardinality: int, method: str = "label_model",
                 class_balance: Any = None, n_epochs: int = 100, lr: float = 0.01,
                 seed: int = 0) -> None:
        self.cardinality = cardinality
        self.method = method
        self.class_balance = class_balance
        self.n_epochs = n_epochs
        self.lr = lr
        self.seed = seed

    def _prior(self) -> np.ndarray:
        K = int(self.cardinality)
        if self.class_balance is None:
            return np.full(K, 1.0 / K)
        p = np.asarray(self.class_balance, np.float64).reshape(-1)
        if p.shape != (K,) or (p < 0).any() or p.sum() <= 0:
            raise ValueError(f"class_balance must be {K} non-negative shares; got {p}.")
        return p / p.sum()

    def fit(self, L: Any) -> WeakLabelModel:
        """Learn how much to trust each rule from the (N, R) votes ``L``."""
        if self.method not in METHODS:
            raise ValueError(f"Unknown method {self.method!r}; use one of {', '.join(METHODS)}.")
        K = int(self.cardinality)
        if K < 2:
            raise ValueError("Weak labels need at least 2 classes.")
        L = _check_votes(L, K)
        prior = self._prior()
        self.n_rules_ = L.shape[1]
        self.lm_ = None
        self.method_ = self.method
        fires = (L >= 0).any(axis=0)
        if self.method == "label_model" and fires.sum() >= 3:
            try:
                from snorkel.labeling.model import LabelModel
            except ImportError as exc:
                raise ImportError(SNORKEL_MISSING) from exc
            lm = LabelModel(cardinality=K, verbose=False)
            lm.fit(L, class_balance=prior.tolist(), n_epochs=int(self.n_epochs),
                   lr=float(self.lr), seed=int(self.seed), progress_bar=False)
            self.lm_ = lm
            weights = lm.get_weights()
            self.accuracies_ = np.where(fires, weights, np.nan).astype(np.float32)
        else:
            if self.method == "label_model":
                log.info("fewer than 3 rules vote: the label model falls back to majority vote")
                self.method_ = "majority"
            mv = majority_vote(L, K).argmax(axis=1)
            acc = [float((L[L[:, r] >= 0, r] == mv[L[:, r] >= 0]).mean()) if fires[r]
                   else np.nan for r in range(L.shape[1])]
            self.accuracies_ = np.asarray(acc, np.float32)
        return self

    def predict_proba(self, L: Any) -> np.ndarray:
        """(N, K) float32 probabilities; items no rule votes on get the class balance."""
        K = int(self.cardinality)
        L = _check_votes(L, K)
        if L.shape[1] != getattr(self, "n_rules_", -1):
            raise ValueError(f"fit on {getattr(self, 'n_rules_', None)} rules, got {L.shape[1]}.")
        prior = self._prior().astype(np.float32)
        covered = (L >= 0).any(axis=1)
        if self.lm_ is not None:
            probs = np.asarray(self.lm_.predict_proba(L), np.float32)
        else:
            probs = majority_vote(L, K)
        probs[~covered] = prior
        return probs

    @staticmethod
    def covered(L: Any) -> np.ndarray:
        """(N,) bool: at least one rule votes on the item."""
        return (np.asarray(L) >= 0).any(axis=1)


def rule_stats(L: Any, cardinality: int, truth: Any = None, *, names: Any = None) -> pd.DataFrame:
    """Per rule (Snorkel's LF summary): DataFrame[rule, coverage, overlaps, conflicts,
    n_votes, correct, accuracy]. ``truth`` (N,) codes, -1 unknown: accuracy on known ones."""
    K = int(cardinality)
    L = _check_votes(L, K)
    n, r = L.shape
    votes = L >= 0
    n_votes = votes.sum(axis=1)
    rows = []
    truth = None if truth is None else np.asarray(truth, np.int64)
    for j in range(r):
        m = votes[:, j]
        others = np.delete(L, j, axis=1) if r > 1 else np.full((n, 0), ABSTAIN)
        disagree = ((others >= 0) & (others != L[:, [j]])).any(axis=1) if r > 1 else np.zeros(n, bool)
        row = {"rule": names[j] if names is not None else j,
               "coverage": float(m.mean()) if n else 0.0,
               "overlaps": float((m & (n_votes > 1)).mean()) if n else 0.0,
               "conflicts": float((m & disagree).mean()) if n else 0.0,
               "n_votes": int(m.sum()), "correct": 0, "checked": 0, "accuracy": np.nan}
        if truth is not None:
            known = m & (truth >= 0)
            row["checked"] = int(known.sum())
            row["correct"] = int((L[known, j] == truth[known]).sum())
            row["accuracy"] = row["correct"] / row["checked"] if row["checked"] else np.nan
        rows.append(row)
    return pd.DataFrame(rows, columns=["rule", "coverage", "overlaps", "conflicts", "n_votes",
                                       "checked", "correct", "accuracy"])


def confident_weak(probs: np.ndarray, eligible: np.ndarray, *, threshold: float = 0.8
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Items to train on from weak labels: (idx (M,) int64, codes (M,), weight (M,)
    float32 = top probability) for ``eligible`` (N,) bool items whose top probability is
    at least ``threshold``."""
    if not 0.0 < float(threshold) <= 1.0:
        raise ValueError(f"threshold must be in (0, 1]; got {threshold}.")
    probs = np.asarray(probs, np.float32)
    conf = probs.max(axis=1)
    idx = np.flatnonzero(np.asarray(eligible, bool) & (conf >= threshold))
    return idx.astype(np.int64), probs[idx].argmax(axis=1).astype(np.int64), conf[idx]


def confident_by_class(probs: np.ndarray, eligible: np.ndarray, *, share: float = 0.5
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Like :func:`confident_weak`, but the cut is per class: of the ``eligible`` (N,)
    items whose top class is c, the ``share`` most confident (so a class the rules are
    less sure of still gets weak labels). -> (idx (M,) int64, codes (M,), weight (M,))."""
    if not 0.0 < float(share) <= 1.0:
        raise ValueError(f"share must be in (0, 1]; got {share}.")
    probs = np.asarray(probs, np.float32)
    conf, top = probs.max(axis=1), probs.argmax(axis=1)
    pool = np.flatnonzero(np.asarray(eligible, bool))
    keep = []
    for c in np.unique(top[pool]):
        m = pool[top[pool] == c]
        keep.append(m[np.argsort(-conf[m], kind="stable")[:int(np.ceil(share * len(m)))]])
    idx = np.sort(np.concatenate(keep)) if keep else np.empty(0, np.int64)
    return idx.astype(np.int64), top[idx].astype(np.int64), conf[idx]


def centred_rows(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """(N, D) float32 unit rows of ``X - mean``, so cosine 0 = unrelated (embeddings are
    often all alike: raw cosines of unrelated items near 0.8 make thresholds meaningless)."""
    Xc = np.asarray(X, np.float32) - np.asarray(mean, np.float32).reshape(1, -1)
    return Xc / np.maximum(np.linalg.norm(Xc, axis=1, keepdims=True), 1e-12)


def example_votes(X: np.ndarray, mean: np.ndarray, examples: np.ndarray,
                  example_codes: np.ndarray, code: int, *, threshold: float,
                  chunk: int = 8192) -> np.ndarray:
    """(N,) votes: ``code`` where an item's most similar example is of class ``code`` and
    at least ``threshold`` similar; else ABSTAIN. Similarity: cosine of ``X`` (N, D) rows
    after removing ``mean`` (D,) with the ``examples`` (E, D) (already centred and unit
    rows, see :func:`centred_rows`); ``example_codes`` (E,)."""
    if not -1.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold must be a similarity in [-1, 1], e.g. 0.8; got {threshold}.")
    out = np.full(len(X), ABSTAIN, np.int64)
    example_codes = np.asarray(example_codes, np.int64)
    if len(examples) == 0 or not (example_codes == code).any():
        return out
    E = np.asarray(examples, np.float32).T
    for start in range(0, len(X), chunk):
        s = centred_rows(X[start:start + chunk], mean) @ E
        hit = (example_codes[s.argmax(axis=1)] == code) & (s.max(axis=1) >= threshold)
        out[start:start + chunk][hit] = code
    return out


def prompt_votes(X: np.ndarray, text: np.ndarray, code: int, *, top: float = 0.05) -> np.ndarray:
    """(N,) votes: ``code`` for the ``top`` share of items most similar to the text
    embedding ``text`` (D,); else ABSTAIN."""
    if not 0.0 < float(top) < 1.0:
        raise ValueError(f"top must be a share in (0, 1), e.g. 0.05; got {top}.")
    s = np.asarray(X, np.float32) @ np.asarray(text, np.float32).reshape(-1)
    k = max(1, round(top * len(s)))
    out = np.full(len(s), ABSTAIN, np.int64)
    out[np.argpartition(-s, k - 1)[:k]] = code
    return out

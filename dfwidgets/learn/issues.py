"""Suspected label errors (confident learning, via cleanlab) and per-item difficulty."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from ._checks import check_embeddings, check_labels, encode_labels

__all__ = ["CLEANLAB_JOBS", "DIFFICULTY_LEVELS", "difficulty", "find_label_issues", "out_of_fold_probs"]

log = logging.getLogger(__name__)

DIFFICULTY_LEVELS = ("easy", "medium", "hard")
#: cleanlab's find_label_issues runs in this process (n_jobs=1): with more jobs it forks a
#: multiprocessing.Pool, which can hang for ever in a threaded process such as a Jupyter
#: kernel (seen: the quickstart's Session.fit stuck in Pool start-up in a CI run)
CLEANLAB_JOBS = 1


def out_of_fold_probs(
    embeddings: Any,
    y: Any,
    *,
    n_folds: int = 5,
    model: Any = None,
    random_state: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Stratified K-fold out-of-fold probabilities: (classes_ (K,), probs (N, K) float32).

    Each item's probabilities come from a model that never saw it (default
    :class:`LinearProbe`, cloned per fold). Every class needs >= 2 items.
    """
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    from .linear_probe import LinearProbe

    X = check_embeddings(embeddings, name="embeddings")
    y = check_labels(y, len(X))
    classes, codes = encode_labels(y, None)
    counts = np.bincount(codes, minlength=len(classes))
    if len(classes) < 2:
        raise ValueError(f"label issues need at least 2 classes; got only {list(classes)}")
    if counts.min() < 2:
        rare = [classes[i] for i in np.flatnonzero(counts < 2)]
        raise ValueError(f"classes {rare} have a single label; each class needs at least 2")
    folds = int(min(n_folds, counts.min()))
    if folds < n_folds:
        log.info("out-of-fold: %d folds instead of %d (smallest class has %d items)",
                 folds, n_folds, counts.min())
    base = LinearProbe() if model is None else model
    probs = np.zeros((len(X), len(classes)), dtype=np.float32)
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    for train, held in splitter.split(X, codes):
        fold_model = clone(base)
        if "classes" in fold_model.get_params():
            fold_model.set_params(classes=list(range(len(classes))))
        fold_model.fit(X[train], codes[train])
        p = fold_model.predict_proba(X[held])
        cols = np.asarray(fold_model.classes_, dtype=np.int64)
        probs[np.ix_(held, cols)] = p
    return classes, probs


def find_label_issues(
    embeddings: Any,
    y: Any,
    *,
    n_folds: int = 5,
    pred_probs: Any | None = None,
    model: Any = None,
    random_state: int = 0,
) -> pd.DataFrame:
    """Items whose given label is probably wrong, most suspicious first.

    Out-of-fold probabilities from a :class:`LinearProbe` (or ``pred_probs`` (N, K) given,
    columns in sorted-class order) go to ``cleanlab.filter.find_label_issues`` (confident
    learning, prune by noise rate), ranked by self-confidence. Classes with fewer than 2
    labels are left out of the analysis (logged).

    Returns DataFrame[index, given, suggested, score]: ``index`` is the row in
    ``embeddings``, ``score`` the out-of-fold probability of the given label (lower = more
    suspicious), ``suggested`` the most probable class.
    """
    from cleanlab.filter import find_label_issues as cl_find_label_issues

    X = check_embeddings(embeddings, name="embeddings")
    y = check_labels(y, len(X))
    columns = ["index", "given", "suggested", "score"]
    if pred_probs is None:
        values, counts = np.unique(y, return_counts=True)
        keep_classes = values[counts >= 2]
        if len(keep_classes) < len(values):
            log.info("label issues: skipping classes with a single label: %s",
                     list(values[counts < 2]))
        rows = np.flatnonzero(np.isin(y, keep_classes))
        if len(keep_classes) < 2:
            raise ValueError(
                "label issues need at least 2 classes with 2+ labels each; got "
                f"{dict(zip(values.tolist(), counts.tolist()))}"
            )
        classes, probs = out_of_fold_probs(X[rows], y[rows], n_folds=n_folds, model=model,
                                           random_state=random_state)
    else:
        rows = np.arange(len(X))
        classes = np.unique(y)
        probs = np.asarray(pred_probs, dtype=np.float32)
        if probs.shape != (len(X), len(classes)):
            raise ValueError(
                f"pred_probs must have shape (N, K) = ({len(X)}, {len(classes)}); "
                f"got {probs.shape}"
            )
    _, codes = encode_labels(y[rows], classes)
    ranked = cl_find_label_issues(
        labels=codes,
        pred_probs=probs,
        filter_by="prune_by_noise_rate",
        return_indices_ranked_by="self_confidence",
        n_jobs=CLEANLAB_JOBS,
    )
    ranked = np.asarray(ranked, dtype=np.int64)
    if not len(ranked):
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             zip(columns, ("int64", "object", "object", "float32"))})
    return pd.DataFrame({
        "index": rows[ranked],
        "given": classes[codes[ranked]],
        "suggested": classes[probs[ranked].argmax(axis=1)],
        "score": probs[ranked, codes[ranked]],
    })


def difficulty(
    probs: Any,
    y: Any = None,
    *,
    easy: float = 0.9,
    hard: float = 0.5,
) -> pd.Series:
    """Difficulty per item: ordered categorical easy / medium / hard.

    ``probs`` (N, K) (ideally out-of-fold). With labels ``y`` (N,) as column indices
    (-1 = unlabeled) the probability of the given label decides, else the top
    probability: >= ``easy`` -> easy, < ``hard`` -> hard, else medium.
    """
    P = np.asarray(probs, dtype=np.float32)
    if P.ndim != 2:
        raise ValueError(f"probs must be (N, K); got shape {P.shape}")
    if not 0 < hard <= easy < 1:
        raise ValueError(f"need 0 < hard <= easy < 1; got hard={hard}, easy={easy}")
    p = P.max(axis=1)
    if y is not None:
        codes = np.asarray(y)
        if codes.shape != (len(P),) or codes.dtype.kind not in "iu":
            raise ValueError(
                f"y must be (N,) integer column indices into probs (-1 = unlabeled); got "
                f"shape {codes.shape}, dtype {codes.dtype}"
            )
        if codes.max(initial=-1) >= P.shape[1]:
            raise ValueError(f"y has class index {int(codes.max())} but probs has {P.shape[1]} columns")
        labeled = codes >= 0
        p = p.copy()
        p[labeled] = P[np.flatnonzero(labeled), codes[labeled]]
    level = np.where(p >= easy, 0, np.where(p < hard, 2, 1))
    return pd.Series(pd.Categorical.from_codes(level, categories=list(DIFFICULTY_LEVELS),
                                               ordered=True), name="difficulty")

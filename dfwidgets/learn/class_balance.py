"""Never starve a class: candidates for classes with few training labels.

A class is *starved* when it has fewer than ``min_labels`` training labels although the
user knows it exists (it is among the classes, or an audit answer named it). Uncertainty
sampling rarely asks for such a class (the model barely has a column for it), so a share
of each batch goes to the unlabeled items most similar to the class's known examples
(training labels and audit answers alike: an audit answer is never trained on, but its
neighbours may be). Pure function over arrays.
"""

from __future__ import annotations

import numpy as np

__all__ = ["MIN_LABELS", "SHARE", "starved_classes", "starved_picks"]

MIN_LABELS = 3  # a class with fewer training labels than this gets candidates
SHARE = 0.25    # at most this share of a batch (at least 1 item) goes to starved classes


def starved_classes(train_counts: np.ndarray, known_counts: np.ndarray, *,
                    min_labels: int = MIN_LABELS, tie: np.ndarray | None = None
                    ) -> np.ndarray:
    """(S,) int64 class codes with < ``min_labels`` training labels (``train_counts`` (K,))
    but at least one known example (``known_counts`` (K,): labels incl. audit answers),
    fewest training labels first; ties by ``tie`` (K,) (default: the class code)."""
    train_counts = np.asarray(train_counts, dtype=np.int64)
    known_counts = np.asarray(known_counts, dtype=np.int64)
    starved = np.flatnonzero((train_counts < min_labels) & (known_counts > 0))
    tie = np.arange(len(train_counts)) if tie is None else np.asarray(tie)
    return starved[np.lexsort((tie[starved], train_counts[starved]))]


def starved_picks(embeddings: np.ndarray, codes: np.ndarray, train_counts: np.ndarray,
                  blocked: np.ndarray, n: int, *, min_labels: int = MIN_LABELS
                  ) -> np.ndarray:
    """Up to ``n`` (<= n,) int64 unblocked items, one per starved class (round-robin when
    ``n`` exceeds the starved classes): for each, the unblocked item with the highest
    cosine similarity to any of the class's known examples (ties: the class with the
    first known item first).

    ``embeddings`` (N, D); ``codes`` (N,) int class code of every known label (training
    labels and audit answers, -1 = none); ``train_counts`` (K,) training labels per
    class; ``blocked`` (N,) bool items that must not be picked.
    """
    codes = np.asarray(codes)
    K = len(train_counts)
    known = np.bincount(codes[codes >= 0], minlength=K)[:K]
    # ties by the class's first known item, not its code: the order classes were named in
    # (a Session's) or sorted (simulate's) must not change the picks
    first = np.full(K, len(codes), dtype=np.int64)
    ok = (codes >= 0) & (codes < K)
    np.minimum.at(first, codes[ok], np.flatnonzero(ok))
    classes = starved_classes(train_counts, known, min_labels=min_labels, tie=first)
    if n < 1 or not len(classes):
        return np.empty(0, dtype=np.int64)
    free = np.flatnonzero(~np.asarray(blocked, dtype=bool))
    if not len(free):
        return np.empty(0, dtype=np.int64)
    X = embeddings[free]
    norms = np.maximum(np.linalg.norm(X, axis=1), 1e-12)
    ranked: list[np.ndarray] = []
    for c in classes:
        ex = embeddings[np.flatnonzero(codes == c)]
        ex = ex / np.maximum(np.linalg.norm(ex, axis=1, keepdims=True), 1e-12)
        sim = (X @ ex.T).max(axis=1) / norms
        top = np.argpartition(-sim, min(n, len(sim) - 1))[: n + 1]
        ranked.append(free[top[np.argsort(-sim[top], kind="stable")]])
    picks: list[int] = []
    seen: set[int] = set()
    for depth in range(n + 1):
        for r in ranked:
            if len(picks) == n:
                return np.asarray(picks, dtype=np.int64)
            if depth < len(r) and int(r[depth]) not in seen:
                seen.add(int(r[depth]))
                picks.append(int(r[depth]))
    return np.asarray(picks, dtype=np.int64)

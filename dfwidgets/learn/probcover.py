"""ProbCover (Yehuda et al. 2022) for the cold start, over a k-nearest-neighbour graph.

Each item ``x`` covers the items that have ``x`` among their ``k`` nearest neighbours (a
ball whose radius adapts to the local density, instead of one global ``delta``). Greedy
max coverage: repeatedly the unlabeled item covering the most not-yet-covered items, so
early picks are typical (dense regions) and spread out (each new region once). Items
covered by a labeled item count as covered. The graph is NeighbourSmoothing's (cached on
disk by content hash).
"""

from __future__ import annotations

import threading
import numpy as np

__all__ = ["KNN", "neighbour_table", "probcover_picks"]

KNN = 10
_CACHE: dict[tuple, np.ndarray] = {}
_LOCK = threading.Lock()


def neighbour_table(X: np.ndarray, *, k: int = KNN) -> np.ndarray:
    """(N, k) int64 nearest neighbours (cosine, self excluded) of the rows of ``X``."""
    from .neighbour_smoothing import NeighbourSmoothing

    key = (X.shape, X.dtype.str, k, X[:: max(1, len(X) // 64)].tobytes())
    with _LOCK:
        table = _CACHE.get(key)
    if table is None:
        table = NeighbourSmoothing(k=k, alpha=1.0).fit(X).neighbours_.astype(np.int64)
        with _LOCK:
            _CACHE.clear()  # one pool at a time: bounded memory
            _CACHE[key] = table
    return table


def typicality(X: np.ndarray, *, k: int = KNN, chunk: int = 4096) -> np.ndarray:
    """(N,) float mean cosine similarity of each row of ``X`` to its ``k`` nearest rows,
    scaled to [0, 1]; computed in chunks (never an (N, k, D) array) and cached with the
    neighbour table of the same pool."""
    key = ("typicality", X.shape, X.dtype.str, k, X[:: max(1, len(X) // 64)].tobytes())
    with _LOCK:
        typ = _CACHE.get(key)
    if typ is not None:
        return typ
    table = neighbour_table(X, k=k)
    unit = X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
    typ = np.empty(len(X), dtype=unit.dtype)
    for lo in range(0, len(X), chunk):
        nb = table[lo:lo + chunk]
        typ[lo:lo + chunk] = np.einsum("id,ikd->i", unit[lo:lo + chunk], unit[nb]) / nb.shape[1]
    typ = (typ - typ.min()) / max(float(typ.max() - typ.min()), 1e-12)
    with _LOCK:
        _CACHE[key] = typ
    return typ


def probcover_picks(X: np.ndarray, labeled_mask: np.ndarray, k: int,
                    rng: np.random.Generator, *, knn: int = KNN) -> np.ndarray:
    """(k,) int64 unlabeled items by greedy coverage of the kNN graph, best first.

    ``X`` (N, D) embeddings, ``labeled_mask`` (N,) bool items that cannot be picked (they
    cover their in-neighbours already)."""
    mask = np.asarray(labeled_mask, dtype=bool)
    n = len(X)
    if k < 1:
        return np.empty(0, dtype=np.int64)
    if n <= knn + 1:  # too few items for a graph: random
        return rng.permutation(np.flatnonzero(~mask))[:k].astype(np.int64)
    table = neighbour_table(X, k=knn)
    owners = table.ravel()  # owner x of edge (y -> x): x covers y
    who = np.repeat(np.arange(n), table.shape[1])
    covered = mask | mask[table].any(axis=1)
    blocked = mask.copy()
    jitter = rng.random(n) * 1e-3  # random tie-breaks
    picks = np.empty(k, dtype=np.int64)
    for i in range(k):
        free = ~covered
        score = np.bincount(owners, weights=free[who], minlength=n) + free + jitter
        score[blocked] = -1.0
        x = int(np.argmax(score))
        picks[i] = x
        blocked[x] = covered[x] = True
        covered[who[owners == x]] = True
    return picks


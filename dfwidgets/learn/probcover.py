"""ProbCover (Yehuda et al. 2022) for the cold start, over a k-nearest-neighbour graph.

Each item ``x`` covers the items that have ``x`` among their ``k`` nearest neighbours (a
ball whose radius adapts to the local density, instead of one global ``delta``). Greedy
max coverage: repeatedly the unlabeled item covering the most not-yet-covered items, so
early picks are typical (dense regions) and spread out (each new region once). Items
covered by a labeled item count as covered. The graph is ``neighbour_smoothing.knn_table``'s
(cached on disk by content hash); a Session hands over its own (:func:`remember_table`).
:func:`whitened_table` is the graph of the whitened pool (``learn/whitening.py``), the one
coverage margin covers; a Session's neighbours rule reads the same cached table.
"""

from __future__ import annotations

import threading

import numpy as np

__all__ = ["KNN", "neighbour_table", "probcover_picks", "remember_table", "remember_whitened",
           "typicality", "whitened_table"]

KNN = 10
_CACHE: dict[tuple, np.ndarray] = {}
_LOCK = threading.Lock()


def _key(kind: str, X: np.ndarray, k: int) -> tuple:
    return (kind, X.shape, X.dtype.str, k, X[:: max(1, len(X) // 64)].tobytes())


def _pool_of(key: tuple) -> tuple:
    """The pool part of a cache key (shape, dtype, sampled rows), without kind and k."""
    return key[1:3] + key[4:]


def remember_table(X: np.ndarray, idx: np.ndarray, sims: np.ndarray) -> None:
    """Use a neighbour table made elsewhere (a Session's, ``knn_table``'s layout: idx (N, k)
    int64 and sims (N, k) cosine, nearest first) for the pool ``X`` (N, D): the strategies'
    calls on the same ``X`` then build nothing. Replaces the cached pool."""
    k = idx.shape[1]
    if k < 1 or len(idx) != len(X):
        return
    typ = sims.mean(axis=1, dtype=np.float64).astype(np.float32)
    typ = (typ - typ.min()) / max(float(typ.max() - typ.min()), 1e-12)
    _store({_key("table", X, k): idx, _key("typicality", X, k): typ})


def remember_whitened(X: np.ndarray, idx: np.ndarray) -> None:
    """Cache a table of the whitened pool (idx (N, k) int64, nearest first; built by
    :func:`whitened_table` or elsewhere) for the pool ``X`` (N, D): :func:`whitened_table`
    on the same ``X`` then builds nothing."""
    if idx.shape[1] >= 1 and len(idx) == len(X):
        _store({_key("whitened", X, idx.shape[1]): idx})


def _store(entries: dict[tuple, np.ndarray]) -> None:
    """Cache ``entries`` (all of one pool), dropping every other pool's (bounded memory; a
    pool's tables of any kind and k stay)."""
    pool = _pool_of(next(iter(entries)))
    with _LOCK:
        for old in [key for key in _CACHE if _pool_of(key) != pool]:
            del _CACHE[old]
        _CACHE.update(entries)


def neighbour_table(X: np.ndarray, *, k: int = KNN) -> np.ndarray:
    """(N, k) int64 nearest neighbours (cosine, self excluded, nearest first) of the rows of
    ``X``: the cached table (:func:`remember_table`), else ``knn_table``'s."""
    from .neighbour_smoothing import knn_table

    key = _key("table", X, k)
    with _LOCK:
        table = _CACHE.get(key)
    if table is None:
        sims, table = knn_table(X, k=k)
        remember_table(X, table, sims)
    return table


def whitened_table(X: np.ndarray, *, k: int) -> np.ndarray:
    """(N, k) int64 nearest neighbours of the rows of ``X`` in the whitened pool
    (``whitening.whitened_rows``: its 10 nearest share the item's class 84.3% of the time on
    Fashion-MNIST, raw 82.2%), nearest first: cached (a table of k or more columns of the
    same pool), else ``knn_table``'s."""
    pool = _pool_of(_key("whitened", X, k))
    with _LOCK:
        tables = [v for key, v in _CACHE.items()
                  if key[0] == "whitened" and key[3] >= k and _pool_of(key) == pool]
    if tables:
        return tables[0][:, :k]
    from .neighbour_smoothing import knn_table
    from .whitening import whitened_rows

    table = knn_table(whitened_rows(X), k=k)[1]
    remember_whitened(X, table)
    return table


def typicality(X: np.ndarray, *, k: int = KNN) -> np.ndarray:
    """(N,) float32 mean cosine similarity of each row of ``X`` to its ``k`` nearest rows,
    scaled to [0, 1]; cached with the neighbour table of the same pool."""
    key = _key("typicality", X, k)
    with _LOCK:
        typ = _CACHE.get(key)
    if typ is None:
        neighbour_table(X, k=k)
        with _LOCK:
            typ = _CACHE[key]
    return typ


def probcover_picks(X: np.ndarray, labeled_mask: np.ndarray, k: int,
                    rng: np.random.Generator, *, knn: int = KNN,
                    weights: np.ndarray | None = None, whitened: bool = False) -> np.ndarray:
    """(k,) int64 unlabeled items by greedy coverage of the kNN graph, best first.

    ``X`` (N, D) embeddings, ``labeled_mask`` (N,) bool items that cannot be picked (they
    cover their in-neighbours already). ``weights`` (N,) >= 0: what each not-yet-covered
    item is worth (e.g. the model's uncertainty about it); None = 1 each (ProbCover).
    ``whitened``: cover the graph of the whitened pool (:func:`whitened_table`)."""
    mask = np.asarray(labeled_mask, dtype=bool)
    n = len(X)
    if k < 1:
        return np.empty(0, dtype=np.int64)
    if n <= knn + 1:  # too few items for a graph: random
        return rng.permutation(np.flatnonzero(~mask))[:k].astype(np.int64)
    if weights is not None:
        weights = np.asarray(weights, dtype=np.float64)
        if weights.shape != (n,) or not np.isfinite(weights).all() or (weights < 0).any():
            raise ValueError(f"weights must be (N,) = ({n},) finite values >= 0; got shape "
                             f"{weights.shape}")
    table = whitened_table(X, k=knn) if whitened else neighbour_table(X, k=knn)
    owners = table.ravel()  # owner x of edge (y -> x): x covers y
    who = np.repeat(np.arange(n), table.shape[1])
    covered = mask | mask[table].any(axis=1)
    blocked = mask.copy()
    # random tie-breaks, far below any weight difference that means something
    jitter = rng.random(n) * (1e-3 if weights is None else 1e-9)
    worth = np.ones(n) if weights is None else weights
    picks = np.empty(k, dtype=np.int64)
    for i in range(k):
        free = np.where(covered, 0.0, worth)
        score = np.bincount(owners, weights=free[who], minlength=n) + free + jitter
        score[blocked] = -1.0
        x = int(np.argmax(score))
        picks[i] = x
        blocked[x] = covered[x] = True
        covered[who[owners == x]] = True
    return picks


"""Shared pieces of the acquisition strategies (argument checks, ranking, the near-duplicate
filter, k-means): used by :mod:`.strategies` and :mod:`.strategies_cold`. Pure functions."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from ._checks import check_embeddings, check_mask

log = logging.getLogger("dfwidgets.learn.strategies")

DUPLICATE_COSINE = 0.99
_CHUNK = 4096


def setup(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
           need_embeddings: bool = False
           ) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray, int, np.random.Generator]:
    """Validate the common arguments; return (probs, embeddings, pool, k, rng)."""
    mask_arr = np.asarray(labeled_mask)
    if mask_arr.ndim != 1:
        raise ValueError(f"labeled_mask must be 1-D (N,); got shape {mask_arr.shape}")
    n = len(mask_arr)
    mask = check_mask(mask_arr, n)
    if probs is not None:
        probs = np.asarray(probs, dtype=np.float32)
        if probs.ndim not in (2, 3) or probs.shape[-2] != n:
            raise ValueError(
                f"probs must have shape (N, K) or (S, N, K) with N = {n} (the pool size); "
                f"got {probs.shape}"
            )
        if not np.isfinite(probs).all():
            raise ValueError("probs has NaN or infinite values; refit the model")
    if embeddings is not None:
        embeddings = check_embeddings(embeddings, name="embeddings")
        if len(embeddings) != n:
            raise ValueError(
                f"embeddings have {len(embeddings)} rows but labeled_mask has {n}; "
                "pass one embedding per pool item"
            )
    elif need_embeddings:
        raise ValueError("this strategy needs embeddings (N, D); got None")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise TypeError(f"k must be an int; got {type(k).__name__}")
    k = int(k)
    pool = np.flatnonzero(~mask)
    if k < 0:
        raise ValueError(f"k must be >= 0; got {k}")
    if k > len(pool):
        raise ValueError(f"asked for k={k} items but only {len(pool)} unlabeled items are "
                         f"left; ask for at most {len(pool)}")
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    return probs, embeddings, pool, k, rng


def unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def take_distinct(
    ranked: np.ndarray, embeddings: np.ndarray | None, k: int, *, threshold: float = DUPLICATE_COSINE
) -> np.ndarray:
    """First ``k`` of ``ranked`` skipping items with cosine > threshold to an earlier pick."""
    ranked = np.asarray(ranked, dtype=np.int64)
    if embeddings is None or k <= 1:
        return ranked[:k].copy()
    picked = np.empty(k, dtype=np.int64)
    vecs = np.empty((k, embeddings.shape[1]), dtype=np.float32)
    n_picked, pos, skipped = 0, 0, []
    while n_picked < k and pos < len(ranked):
        block = ranked[pos : pos + 2 * (k - n_picked) + 16]
        pos += len(block)
        V = unit(embeddings[block])
        for j, idx in enumerate(block):
            if n_picked and float((vecs[:n_picked] @ V[j]).max()) > threshold:
                skipped.append(idx)
                continue
            picked[n_picked], vecs[n_picked] = idx, V[j]
            n_picked += 1
            if n_picked == k:
                break
    if n_picked < k:  # the pool is nearly all duplicates: fill with them, in rank order
        log.info("only %d distinct items left; %d near-duplicates fill the batch",
                 n_picked, k - n_picked)
        fill = np.asarray(skipped[: k - n_picked], dtype=np.int64)
        picked[n_picked : n_picked + len(fill)] = fill
        n_picked += len(fill)
    return picked[:n_picked]


def rank_by(score: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pool items by descending score, ties broken at random (seeded)."""
    shuffled = pool[rng.permutation(len(pool))]
    return shuffled[np.argsort(-score[shuffled], kind="stable")]



def sq_norms(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X)


def kmeans_labels(X: np.ndarray, n_clusters: int, rng: np.random.Generator, *,
                   max_fit: int = 10_000) -> np.ndarray:
    """Cluster ids (N,) from scikit-learn's MiniBatchKMeans, fitted on <= max_fit rows."""
    from sklearn.cluster import MiniBatchKMeans

    seed = int(rng.integers(2**31 - 1))
    fit_rows = X if len(X) <= max_fit else X[rng.choice(len(X), max_fit, replace=False)]
    km = MiniBatchKMeans(n_clusters=n_clusters, random_state=seed, n_init=1,
                         batch_size=2048, max_iter=20, max_no_improvement=5,
                         init_size=min(len(fit_rows), max(3 * n_clusters, 1024)))
    km.fit(fit_rows)
    return km.predict(X)


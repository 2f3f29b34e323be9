"""Whitening of a pool's embeddings: every principal direction scaled to unit variance.

In a raw embedding a few high-variance directions (overall shape, brightness) dominate the
cosine, so items that differ only there look alike: on Fashion-MNIST with the offline
backbone, dark Coats, Shirts and Pullovers form one tight blob. Whitened, they separate:
the 10 nearest neighbours share the item's class 84.3% of the time instead of 82.2%, and
label spreading over that graph is about 4-5 points more accurate (``benchmarks/RESULTS.md``,
"Weak supervision: session 30 notes"). The shrinkage ``alpha`` adds ``alpha`` x the largest
eigenvalue to every eigenvalue, so no direction is stretched more than ``1/sqrt(alpha)``
times the largest one (small pools and noise directions stay bounded).

Used by the open-set rule of proposals (``learn/open_set.py``, ``alpha`` 0.2) and, with
``alpha`` 0.01, by the graph that the neighbours rule spreads labels over and coverage
margin covers (``learn/probcover.py``'s ``whitened_table``, one table for both).
"""

from __future__ import annotations

import numpy as np

__all__ = ["COV_SAMPLE", "GRAPH_SHRINK", "ROWS_PER_STEP", "sample_rows", "whiten",
           "whitened_rows", "whitener"]

#: the whitener's covariance comes from at most this many pool items (a fixed-seed sample)
COV_SAMPLE = 100_000
#: rows whitened per step (bounds the temporary copies of a large pool)
ROWS_PER_STEP = 65_536
#: shrinkage of the whitened neighbour graph (label spreading on Fashion-MNIST, seeds 3-5,
#: 30 and 100 labels: 0.05 < 0.02 < 0.01 ~ 0.005 ~ 0.002 > 0.0005 > 1e-6, Ledoit-Wolf
#: (~1e-4 here) like 1e-6; raw graph 3-5 points below 0.01)
GRAPH_SHRINK = 0.01


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


def sample_rows(X: np.ndarray, limit: int | None = None) -> np.ndarray:
    """``X`` (N, D) itself when N <= ``limit`` (None: COV_SAMPLE), else ``limit`` of its
    rows (a fixed-seed sample, in order): enough to estimate a pool's second moments."""
    limit = COV_SAMPLE if limit is None else int(limit)
    if len(X) <= limit:
        return X
    return X[np.sort(np.random.default_rng(0).choice(len(X), limit, replace=False))]


def whitener(X_pool: np.ndarray, mean: np.ndarray, *, alpha: float) -> np.ndarray:
    """(D, D) float32 matrix ``W``: ``(x - mean) @ W`` has unit variance along each
    principal direction of the pool ``X_pool`` (P, D), shrunk by ``alpha`` (eigenvalue +
    ``alpha`` x the largest; a large ``alpha`` is close to no whitening)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0; got {alpha!r}.")
    X_pool = sample_rows(np.asarray(X_pool, np.float32))  # a large pool: from a sample
    Xc = X_pool - np.asarray(mean, np.float32)
    cov = (Xc.T @ Xc).astype(np.float64) / max(len(Xc) - 1, 1)
    w, V = np.linalg.eigh(cov)
    w = np.maximum(w, 0.0)
    return (V / np.sqrt(w + alpha * max(float(w.max()), 1e-12))).astype(np.float32)


def whiten(X: np.ndarray, mean: np.ndarray, W: np.ndarray) -> np.ndarray:
    """Unit rows of ``(X - mean) @ W`` for ``X`` (N, D), ``W`` (D, D) (float32, in steps
    of ROWS_PER_STEP rows so a large pool is not copied several times at once)."""
    X = np.asarray(X, np.float32)
    mean = np.asarray(mean, np.float32)
    out = np.empty((len(X), W.shape[1]), np.float32)
    for lo in range(0, len(X), ROWS_PER_STEP):
        out[lo:lo + ROWS_PER_STEP] = _unit((X[lo:lo + ROWS_PER_STEP] - mean) @ W)
    return out


def whitened_rows(X: np.ndarray, *, alpha: float = GRAPH_SHRINK) -> np.ndarray:
    """(N, D) float32 unit rows of the pool ``X`` (N, D) whitened by its own mean and
    covariance (shrinkage ``alpha``)."""
    X = np.asarray(X, np.float32)
    if X.ndim != 2 or len(X) == 0:
        raise ValueError(f"whitening needs a non-empty (N, D) pool; got shape {X.shape}.")
    mean = X.mean(axis=0, dtype=np.float64).astype(np.float32)
    return whiten(X, mean, whitener(X, mean, alpha=alpha))

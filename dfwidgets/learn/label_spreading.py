"""Label spreading over a k-nearest-neighbour table (Zhou et al. 2004, "Learning with
local and global consistency").

``F <- alpha * S @ F + (1 - alpha) * Y`` iterated, with ``S = D^-1/2 W D^-1/2`` the
normalised affinity of the symmetrised kNN graph ``W`` and ``Y`` the seed labels (one-hot
rows, each class's column scaled to sum 1 so a class with more labels does not flood the
graph). This is scikit-learn's ``LabelSpreading(kernel="knn")`` update, run on the (N, k)
neighbour table a pool already has: sklearn's version would rebuild the kNN graph by
brute force (O(N^2 D): minutes at 60,000 items), the iteration here is a sparse product.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["knn_affinity", "spread", "spread_labels"]


def knn_affinity(neighbours: np.ndarray, n: int | None = None) -> sp.csr_matrix:
    """(N, N) float32 symmetric normalised affinity ``D^-1/2 W D^-1/2`` of the kNN table
    ``neighbours`` (N, k) int (-1 = none): ``W_ij = 1`` if j is among i's neighbours or i
    among j's."""
    nb = np.asarray(neighbours, np.int64)
    if nb.ndim != 2:
        raise ValueError(f"neighbours must be an (N, k) table of item indices; got shape {nb.shape}.")
    n = len(nb) if n is None else int(n)
    rows = np.repeat(np.arange(len(nb)), nb.shape[1])
    cols = nb.reshape(-1)
    ok = (cols >= 0) & (cols != rows)
    if ok.any() and cols[ok].max() >= n:
        raise ValueError(f"neighbours holds index {cols[ok].max()} but there are {n} items.")
    W = sp.csr_matrix((np.ones(int(ok.sum()), np.float32), (rows[ok], cols[ok])), shape=(n, n))
    W = W.maximum(W.T).tocsr()
    deg = np.asarray(W.sum(axis=1)).reshape(-1)
    inv = np.where(deg > 0, 1.0 / np.sqrt(np.maximum(deg, 1e-12)), 0.0).astype(np.float32)
    D = sp.diags(inv)
    return (D @ W @ D).tocsr().astype(np.float32)


def spread_labels(neighbours: np.ndarray, seeds: np.ndarray, seed_codes: np.ndarray,
                  cardinality: int, *, alpha: float = 0.99, n_iter: int = 30,
                  affinity: sp.csr_matrix | None = None) -> np.ndarray:
    """(N, K) float32 class scores per item, rows normalised to sum 1 (all zeros where no
    seed reaches the item), from the labels ``seed_codes`` (M,) of items ``seeds`` (M,)
    spread over the kNN table ``neighbours`` (N, k). ``alpha`` in (0, 1): how far labels
    travel (sklearn's default 0.2 keeps them near the seeds; 0.99 as in Zhou et al.);
    ``affinity``: a precomputed :func:`knn_affinity` of the same table."""
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"alpha must be in (0, 1), e.g. 0.99; got {alpha}.")
    K = int(cardinality)
    S = knn_affinity(neighbours) if affinity is None else affinity
    n = S.shape[0]
    seeds = np.asarray(seeds, np.int64).reshape(-1)
    codes = np.asarray(seed_codes, np.int64).reshape(-1)
    if seeds.shape != codes.shape:
        raise ValueError(f"seeds {seeds.shape} and seed_codes {codes.shape} must match.")
    if len(codes) and (codes.min() < 0 or codes.max() >= K):
        raise ValueError(f"seed_codes must be class codes 0..{K - 1}.")
    Y = np.zeros((n, K), np.float32)
    Y[seeds, codes] = 1.0
    Y /= np.maximum(Y.sum(axis=0, keepdims=True), 1.0)
    F = spread(S, Y, alpha=alpha, n_iter=n_iter)
    total = F.sum(axis=1, keepdims=True)
    return np.where(total > 0, F / np.maximum(total, 1e-30), 0.0).astype(np.float32)


def spread(affinity: sp.csr_matrix, Y: np.ndarray, *, alpha: float = 0.99,
           n_iter: int = 30) -> np.ndarray:
    """(N, K) float32 scores ``F`` after ``n_iter`` steps of ``F <- alpha S F + (1 - alpha)
    Y`` from ``F = Y``, for a :func:`knn_affinity` ``S`` (N, N) and seed scores ``Y``
    (N, K), hard or soft (rows not normalised)."""
    Y = np.asarray(Y, np.float32)
    F = Y.copy()
    for _ in range(int(n_iter)):
        F = float(alpha) * (affinity @ F) + (1.0 - float(alpha)) * Y
    return F

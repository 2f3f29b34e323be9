"""How faithful a 2-D layout is to its embeddings (cosine): trustworthiness and k-NN
preservation, measured for a seeded sample of query items against all items.

``layout_quality(x, xy, k=10, n_queries=2000)`` -> {"trustworthiness", "knn_preservation"}.
Trustworthiness (Venna & Kaski) penalises items that are 2-D neighbours but far apart in
the embedding space, by their rank there; k-NN preservation is the mean share of an item's
k nearest embedding neighbours that are also among its k nearest 2-D neighbours. Ranks
are over all N items (exact, in chunks), only the queries are sampled.
"""

from __future__ import annotations

import numpy as np

__all__ = ["layout_quality"]


def layout_quality(x: np.ndarray, xy: np.ndarray, *, k: int = 10, n_queries: int = 2000,
                   seed: int = 0) -> dict[str, float]:
    """{"trustworthiness": float, "knn_preservation": float} of layout ``xy`` (N, 2) for
    embeddings ``x`` (N, D), cosine in D, Euclidean in 2-D, ``k`` neighbours."""
    x = np.asarray(x, dtype=np.float32)
    xy = np.ascontiguousarray(xy, dtype=np.float32)
    n = len(x)
    if xy.shape != (n, 2):
        raise ValueError(f"xy must have shape ({n}, 2) like the embeddings; got {xy.shape}.")
    if n < 3 * k + 2:
        raise ValueError(f"layout quality with k={k} needs more than {3 * k + 1} items.")
    unit = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    queries = np.random.default_rng(seed).choice(n, min(n_queries, n), replace=False)
    penalty, kept = 0.0, 0.0
    for lo in range(0, len(queries), 128):
        q = queries[lo:lo + 128]
        rows = np.arange(len(q))
        sim = unit[q] @ unit.T  # (b, N)
        sim[rows, q] = -np.inf
        d2 = ((xy[q][:, None, :] - xy[None, :, :]) ** 2).sum(-1)
        d2[rows, q] = np.inf
        low = np.argpartition(d2, k, axis=1)[:, :k]
        high = np.argpartition(-sim, k, axis=1)[:, :k]
        low_sims = np.take_along_axis(sim, low, axis=1)  # (b, k)
        for r in range(len(q)):
            ranks = (sim[r][None, :] > low_sims[r][:, None]).sum(1) + 1  # 1 = nearest
            penalty += float(np.maximum(ranks - k, 0).sum())
            kept += np.intersect1d(low[r], high[r]).size / k
    m = len(queries)
    trust = 1.0 - 2.0 / (m * k * (2 * n - 3 * k - 1)) * penalty
    return {"trustworthiness": float(trust), "knn_preservation": float(kept / m)}

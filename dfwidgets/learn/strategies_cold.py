"""Representative strategies for the cold start (few or no labels): TypiClust, ProbCover,
typical margin, dense margin and coverage margin. Same signature as every strategy of :mod:`.strategies`:
``(probs, embeddings, labeled_mask, k, rng) -> (k,) int64``."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._strategy_parts import kmeans_labels as _kmeans_labels
from ._strategy_parts import rank_by as _rank_by
from ._strategy_parts import setup as _setup
from ._strategy_parts import sq_norms as _sq_norms
from ._strategy_parts import take_distinct as _take_distinct
from ._strategy_parts import unit as _unit

__all__ = ["COVER_KNN", "coverage_margin", "dense_margin", "probcover", "typical_margin",
           "typiclust"]

#: neighbours per item of the graph :func:`coverage_margin` covers, in the whitened pool
#: (session 30: whitened 30-NN beat raw 30-NN by +0.4 to +1.1 points at 40-320 labels on
#: fresh seeds 20-29 and 30-49; 20 beat 30 by +0.4 to +0.5 at 160, level at 40 / 80; raw
#: graph, session 29: 30 > 10, 20, 45, 60)
COVER_KNN = 20


def _margin(probs: np.ndarray) -> np.ndarray:
    """(N,) 1 - (top-1 minus top-2 probability) of (N, K) or (S, N, K) probabilities."""
    p = probs.mean(axis=0) if probs.ndim == 3 else probs
    if p.shape[1] < 2:
        return np.zeros(len(p), dtype=np.float32)
    top2 = np.partition(p, -2, axis=1)[:, -2:]
    return 1.0 - (top2[:, 1] - top2[:, 0])


def _typicality(members: np.ndarray, reference: np.ndarray, knn: int = 20) -> np.ndarray:
    """1 / mean distance to the ``knn`` nearest reference points, (len(members),)."""
    kk = min(knn, len(reference) - 1)
    if kk < 1:
        return np.ones(len(members), dtype=np.float32)
    out = np.empty(len(members), dtype=np.float32)
    nr = _sq_norms(reference)
    for s in range(0, len(members), 1024):
        M = members[s : s + 1024]
        d = np.maximum(_sq_norms(M)[:, None] + nr[None, :] - 2.0 * (M @ reference.T), 0.0)
        # the nearest is the point itself when it is among the reference points
        near = np.partition(d, kk, axis=1)[:, 1 : kk + 1]
        out[s : s + 1024] = 1.0 / (np.sqrt(near).mean(axis=1) + 1e-8)
    return out


def typiclust(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
              max_clusters: int = 500, sample_per_cluster: int = 2000) -> np.ndarray:
    """TypiClust (Hacohen et al. 2022), for the cold start: KMeans into ``k + n_labeled``
    clusters (capped at ``max_clusters`` and N/20, at least ``k``); from the largest clusters with
    the fewest labels, the most typical unlabeled item (densest neighbourhood)."""
    _, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng, need_embeddings=True)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    mask = np.asarray(labeled_mask)
    n_labeled = int(mask.sum())
    # clusters of >= ~20 items, so typicality (20 nearest neighbours) means something
    n_clusters = min(len(X), max(k, min(k + n_labeled, max_clusters, len(X) // 20)))
    labels = _kmeans_labels(X, n_clusters, rng)
    sizes = np.bincount(labels, minlength=n_clusters)
    covered = np.bincount(labels[mask], minlength=n_clusters)
    free = np.bincount(labels[pool], minlength=n_clusters)
    order = np.lexsort((-sizes, covered))  # fewest labels first, then largest
    order = order[free[order] > 0]
    picks: list[int] = []
    backups: list[np.ndarray] = []
    for c in order:
        members = np.flatnonzero(labels == c)
        cand = members[~mask[members]]
        ref = members
        if len(ref) > sample_per_cluster:
            ref = rng.choice(ref, sample_per_cluster, replace=False)
        if len(cand) > sample_per_cluster:
            cand = rng.choice(cand, sample_per_cluster, replace=False)
        typ = _typicality(X[cand], X[ref])
        ranked = cand[np.argsort(-typ, kind="stable")]
        picks.append(int(ranked[0]))
        backups.append(ranked[1:])
        if len(picks) == k:
            break
    ranked_all = np.concatenate([np.asarray(picks, dtype=np.int64), *backups,
                                 rng.permutation(pool)])
    _, first = np.unique(ranked_all, return_index=True)
    return _take_distinct(ranked_all[np.sort(first)], X, k)



def probcover(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """ProbCover (Yehuda et al. 2022) on the 10-NN graph (``learn/probcover.py``)."""
    from .probcover import probcover_picks

    _, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng, need_embeddings=True)
    picks = probcover_picks(X, np.asarray(labeled_mask, dtype=bool), k, rng)
    rest = rng.permutation(pool[~np.isin(pool, picks)])
    return _take_distinct(np.concatenate([picks, rest]), X, k)



def _best_of_clusters(score: np.ndarray, X: np.ndarray, pool: np.ndarray, k: int,
                      rng: np.random.Generator, n_candidates: int) -> np.ndarray:
    """The ``n_candidates`` best-scored pool items clustered into ``k`` (k-means on unit
    embeddings); the best of each cluster first, then the rest by score."""
    ranked = _rank_by(score, pool, rng)
    cand = ranked[: max(k, min(n_candidates, len(ranked)))]
    if k > 1 and len(cand) > k:
        _, first = np.unique(_kmeans_labels(_unit(X[cand]), k, rng), return_index=True)
        chosen = cand[np.sort(first)]  # cand is sorted: the first member is the best
    else:
        chosen = cand[:k]
    return _take_distinct(np.concatenate([chosen, ranked[~np.isin(ranked, chosen)]]), X, k)


def typical_margin(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
                   n_candidates: int = 10_000) -> np.ndarray:
    """Margin uncertainty x typicality (mean cosine similarity to the 10 nearest pool
    neighbours, scaled to [0, 1]: uncertain items of dense regions, not outliers); the
    ``n_candidates`` best are clustered into ``k``, the best of each cluster is taken."""
    from .probcover import typicality

    probs, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng,
                                    need_embeddings=True)
    if probs is None or k == 0:
        return typiclust(None, X, labeled_mask, k, rng)
    return _best_of_clusters(_margin(probs) * typicality(X), X, pool, k, rng, n_candidates)


def dense_margin(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
                 n_candidates: int = 10_000, own_weight: float = 0.5,
                 gamma: float = 0.5) -> np.ndarray:
    """Information density (Settles & Craven 2008) on the 10-NN graph: each item's margin
    uncertainty blended with its 10 nearest neighbours' mean (``own_weight`` its own),
    times typicality ** ``gamma`` (as :func:`typical_margin`): uncertain *regions*, not
    lone uncertain items; the ``n_candidates`` best clustered into ``k``, the best of each."""
    from .probcover import neighbour_table, typicality

    probs, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng,
                                    need_embeddings=True)
    if probs is None or k == 0:
        return typiclust(None, X, labeled_mask, k, rng)
    u = _margin(probs)
    score = own_weight * u + (1.0 - own_weight) * u[neighbour_table(X)].mean(axis=1)
    return _best_of_clusters(score * typicality(X) ** gamma, X, pool, k, rng, n_candidates)


def coverage_margin(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
                    knn: int = COVER_KNN) -> np.ndarray:
    """ProbCover weighted by uncertainty: greedy max coverage of the ``knn``-NN graph of the
    whitened pool (``learn/whitening.py``: its neighbours share the class more often) where
    each item not yet covered (by a label or an earlier pick) is worth its margin
    uncertainty, so each pick is the item whose neighbourhood holds the most uncertainty
    left: uncertain regions, one pick per region, no k-means."""
    from .probcover import probcover_picks

    probs, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng,
                                    need_embeddings=True)
    if probs is None or k == 0:
        return typiclust(None, X, labeled_mask, k, rng)
    u = _margin(probs)
    picks = probcover_picks(X, np.asarray(labeled_mask, dtype=bool), k, rng, knn=knn,
                            weights=u, whitened=True)
    rest = _rank_by(u, pool[~np.isin(pool, picks)], rng)
    return _take_distinct(np.concatenate([picks, rest]), X, k)

"""Acquisition strategies: which unlabeled items to ask about next.

Every strategy is a plain function ``(probs, embeddings, labeled_mask, k, rng) -> (k,)
int64`` returning ``k`` distinct indices of unlabeled items, most wanted first:

- ``probs``: (N, K) class probabilities, or (S, N, K) samples from ``predict_proba_mc``
  (needed by ``bald``; the others average them). ``None`` before any model: uncertainty
  strategies fall back to ``typiclust`` (``random`` without embeddings) and log it.
- ``embeddings``: (N, D) float; needed by the diversity/typicality strategies and by the
  near-duplicate filter (pass None to skip it for the others).
- ``labeled_mask``: (N,) bool, True for items that must not be picked (labeled/excluded).
- ``k``: batch size; more than the unlabeled items left raises ValueError.
- ``rng``: ``numpy.random.Generator`` (or a seed); the same seed gives the same batch.

No batch holds near-duplicates: a pick whose cosine similarity to an earlier pick of the
same batch exceeds ``DUPLICATE_COSINE`` is replaced by the strategy's next choice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import numpy as np

from ._checks import check_embeddings, check_mask

__all__ = ["DUPLICATE_COSINE", "STRATEGIES", "auto", "bald", "coreset", "entropy", "hybrid",
           "least_confidence", "margin", "probcover", "random", "select", "select_with_random",
           "typical_margin", "typiclust", "uncertainty_scores"]

log = logging.getLogger(__name__)

DUPLICATE_COSINE = 0.99
_CHUNK = 4096

Strategy = Callable[..., np.ndarray]


# =========================================================================== checks
def _setup(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
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


def _unit(X: np.ndarray) -> np.ndarray:
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def _take_distinct(
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
        V = _unit(embeddings[block])
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


def _rank_by(score: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pool items by descending score, ties broken at random (seeded)."""
    shuffled = pool[rng.permutation(len(pool))]
    return shuffled[np.argsort(-score[shuffled], kind="stable")]


# ==================================================================== uncertainty
def uncertainty_scores(probs: np.ndarray, kind: str) -> np.ndarray:
    """(N,) uncertainty, higher = less sure. ``kind``: least_confidence | margin | entropy
    | bald. ``probs``: (N, K), or (S, N, K) (averaged; BALD needs the samples)."""
    probs = np.asarray(probs, dtype=np.float32)
    if kind == "bald":
        if probs.ndim != 3:
            raise ValueError("bald needs probability samples of shape (S, N, K) from "
                             f"LinearProbe.predict_proba_mc(embeddings); got {probs.shape}")
        mean = probs.mean(axis=0)
        h_mean = -(mean * np.log(np.clip(mean, 1e-12, None))).sum(axis=1)
        h_each = -(probs * np.log(np.clip(probs, 1e-12, None))).sum(axis=2).mean(axis=0)
        return h_mean - h_each
    p = probs.mean(axis=0) if probs.ndim == 3 else probs
    if kind == "least_confidence":
        return 1.0 - p.max(axis=1)
    if kind == "margin":
        if p.shape[1] < 2:
            return np.zeros(len(p), dtype=np.float32)
        top2 = np.partition(p, -2, axis=1)[:, -2:]
        return 1.0 - (top2[:, 1] - top2[:, 0])
    if kind == "entropy":
        return -(p * np.log(np.clip(p, 1e-12, None))).sum(axis=1)
    raise ValueError(f"unknown uncertainty kind {kind!r}")


def _by_uncertainty(kind: str, probs: Any, embeddings: Any, labeled_mask: Any, k: int,
                    rng: Any) -> np.ndarray:
    probs, embeddings, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng)
    if probs is None:
        fallback = "typiclust" if embeddings is not None else "random"
        log.info("%s: no model probabilities yet (cold start); using %s", kind, fallback)
        return STRATEGIES[fallback](None, embeddings, labeled_mask, k, rng)
    score = uncertainty_scores(probs, kind)
    return _take_distinct(_rank_by(score, pool, rng), embeddings, k)


def random(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """Uniformly random unlabeled items: the honest baseline."""
    _, embeddings, pool, k, rng = _setup(None, embeddings, labeled_mask, k, rng)
    return _take_distinct(rng.permutation(pool), embeddings, k)


def least_confidence(probs: Any, embeddings: Any, labeled_mask: Any, k: int,
                     rng: Any) -> np.ndarray:
    """Lowest top-class probability first."""
    return _by_uncertainty("least_confidence", probs, embeddings, labeled_mask, k, rng)


def margin(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """Smallest gap between the two most probable classes first."""
    return _by_uncertainty("margin", probs, embeddings, labeled_mask, k, rng)


def entropy(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """Highest predictive entropy first."""
    return _by_uncertainty("entropy", probs, embeddings, labeled_mask, k, rng)


def bald(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """Highest mutual information between label and model (needs (S, N, K) samples)."""
    return _by_uncertainty("bald", probs, embeddings, labeled_mask, k, rng)


# ======================================================================= diversity
def _sq_norms(X: np.ndarray) -> np.ndarray:
    return np.einsum("ij,ij->i", X, X)


def coreset(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """k-center greedy (Sener & Savarese 2018): repeatedly the item farthest from
    everything labeled or picked. Distances are computed in chunks (O(chunk x L) memory)."""
    _, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng, need_embeddings=True)
    if k == 0:
        return np.empty(0, dtype=np.int64)
    Xp = X[pool]
    norms_p = _sq_norms(Xp)
    labeled = np.flatnonzero(np.asarray(labeled_mask))
    min_d = np.full(len(pool), np.inf, dtype=np.float32)
    for start in range(0, len(labeled), _CHUNK):
        L = X[labeled[start : start + _CHUNK]]
        nl = _sq_norms(L)
        for s in range(0, len(pool), _CHUNK):
            d = norms_p[s : s + _CHUNK, None] + nl[None, :] - 2.0 * (Xp[s : s + _CHUNK] @ L.T)
            np.minimum(min_d[s : s + _CHUNK], d.min(axis=1), out=min_d[s : s + _CHUNK])
    picks = np.empty(k, dtype=np.int64)
    first = 0
    if not len(labeled):
        first = int(rng.integers(len(pool)))
        min_d[:] = np.inf
    for i in range(k):
        j = first if (i == 0 and not len(labeled)) else int(np.argmax(min_d))
        picks[i] = j
        d = norms_p + norms_p[j] - 2.0 * (Xp @ Xp[j])
        np.minimum(min_d, d, out=min_d)
        min_d[j] = -np.inf
    rest = np.setdiff1d(np.arange(len(pool)), picks)
    rest = rest[np.argsort(-min_d[rest], kind="stable")]
    return _take_distinct(pool[np.concatenate([picks, rest])], X, k)


def _kmeans_labels(X: np.ndarray, n_clusters: int, rng: np.random.Generator, *,
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


def hybrid(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
           n_candidates: int = 10_000, random_share: float = 0.1, kind: str = "margin",
           with_random: bool = False) -> Any:
    """Batch-diverse uncertainty (Cluster-Margin style): the ``n_candidates`` most uncertain
    items are clustered into as many clusters as picks, the most uncertain item of each
    cluster is taken; ``random_share`` of the batch is drawn first, uniformly from the whole
    pool (exploration). ``with_random``: also return which picks are those uniform draws."""
    probs, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng,
                                    need_embeddings=True)
    if probs is None or k == 0:
        log.info("hybrid: no model probabilities yet (cold start); using typiclust")
        out = typiclust(None, X, labeled_mask, k, rng)
        return (out, np.zeros(len(out), dtype=bool)) if with_random else out
    if not 0 <= random_share < 1:
        raise ValueError(f"random_share must be in [0, 1); got {random_share}")
    n_random = int(random_share * k)
    n_unc = k - n_random
    # uniform draws from the pool first: not conditioned on the uncertainty picks
    explore = rng.choice(pool, size=n_random, replace=False) if n_random else pool[:0]
    rest_pool = pool[~np.isin(pool, explore)]
    ranked = _rank_by(uncertainty_scores(probs, kind), rest_pool, rng)
    cand = ranked[: max(n_unc, min(n_candidates, len(ranked)))]
    if n_unc > 1 and len(cand) > n_unc:
        # cand is sorted by uncertainty: a cluster's first member is its most uncertain one
        _, first = np.unique(_kmeans_labels(_unit(X[cand]), n_unc, rng), return_index=True)
        chosen = cand[np.sort(first)]
    else:
        chosen = cand[:n_unc]
    ranked_all = np.concatenate([explore, chosen, ranked[~np.isin(ranked, chosen)]])
    out = _take_distinct(ranked_all, X, k)
    return (out, np.isin(out, explore)) if with_random else out


def probcover(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any) -> np.ndarray:
    """ProbCover (Yehuda et al. 2022) on the 10-NN graph (``learn/probcover.py``)."""
    from .probcover import probcover_picks

    _, X, pool, k, rng = _setup(probs, embeddings, labeled_mask, k, rng, need_embeddings=True)
    picks = probcover_picks(X, np.asarray(labeled_mask, dtype=bool), k, rng)
    rest = rng.permutation(pool[~np.isin(pool, picks)])
    return _take_distinct(np.concatenate([picks, rest]), X, k)


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
    U = _unit(X)
    ranked = _rank_by(uncertainty_scores(probs, "margin") * typicality(X), pool, rng)
    cand = ranked[: max(k, min(n_candidates, len(ranked)))]
    if k > 1 and len(cand) > k:
        _, first = np.unique(_kmeans_labels(U[cand], k, rng), return_index=True)
        chosen = cand[np.sort(first)]  # cand is sorted: the first member is the best
    else:
        chosen = cand[:k]
    return _take_distinct(np.concatenate([chosen, ranked[~np.isin(ranked, chosen)]]), X, k)


def auto(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
         early: str = "typiclust", middle: str = "typical_margin", late: str = "hybrid",
         per_class: int = 10, with_random: bool = False) -> Any:
    """The default: ``early`` (representative picks) before a model exists, ``middle``
    while fewer than ``per_class`` labels per class are in (K = the model's classes),
    then ``late`` (uncertainty with diversity). Chosen by measurement (RESULTS.md).
    ``with_random``: return ``(picks, random (k,) bool)`` as :func:`select_with_random`."""
    name = early if probs is None else late if (
        int(np.sum(labeled_mask)) >= per_class * np.shape(probs)[-1]) else middle
    if with_random:
        return select_with_random(name, probs, embeddings, labeled_mask, k, rng)
    return STRATEGIES[name](probs, embeddings, labeled_mask, k, rng)


STRATEGIES: dict[str, Strategy] = {
    "random": random, "least_confidence": least_confidence, "margin": margin,
    "entropy": entropy, "bald": bald, "coreset": coreset, "typiclust": typiclust,
    "hybrid": hybrid, "probcover": probcover, "typical_margin": typical_margin, "auto": auto,
}


def select(name: str, probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any = None,
           **options: Any) -> np.ndarray:
    """Run strategy ``name`` (a key of :data:`STRATEGIES`); ``options`` go to it
    (e.g. ``n_candidates`` for hybrid). Returns (k,) int64 indices."""
    fn = STRATEGIES.get(name)
    if fn is None:
        raise ValueError(f"unknown strategy {name!r}; choose one of {sorted(STRATEGIES)}")
    return np.asarray(fn(probs, embeddings, labeled_mask, k, rng, **options), dtype=np.int64)


def select_with_random(name: str, probs: Any, embeddings: Any, labeled_mask: Any, k: int,
                       rng: Any = None) -> tuple[np.ndarray, np.ndarray]:
    """:func:`select` plus ``random`` (k,) bool: which picks were uniform draws from the pool
    (all of ``random``'s, hybrid's exploration share, also inside ``auto``; never a pick
    chosen by uncertainty or typicality): only these are unbiased evidence of accuracy."""
    if name in ("hybrid", "auto"):
        out, rand = STRATEGIES[name](probs, embeddings, labeled_mask, k, rng, with_random=True)
        return np.asarray(out, dtype=np.int64), np.asarray(rand, dtype=bool)
    out = select(name, probs, embeddings, labeled_mask, k, rng)
    return out, np.full(len(out), name == "random")

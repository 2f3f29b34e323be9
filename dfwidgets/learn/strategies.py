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

from ._strategy_parts import _CHUNK, DUPLICATE_COSINE
from ._strategy_parts import kmeans_labels as _kmeans_labels
from ._strategy_parts import rank_by as _rank_by
from ._strategy_parts import setup as _setup
from ._strategy_parts import sq_norms as _sq_norms
from ._strategy_parts import take_distinct as _take_distinct
from ._strategy_parts import unit as _unit
from .strategies_cold import coverage_margin, dense_margin, probcover, typical_margin, typiclust

__all__ = ["DUPLICATE_COSINE", "STRATEGIES", "SWITCH_PER_CLASS", "auto", "bald", "coreset",
           "coverage_margin", "dense_margin", "entropy", "hybrid", "least_confidence", "margin", "probcover",
           "random", "select", "select_with_random", "typical_margin", "typiclust", "uncertainty_scores"]

log = logging.getLogger(__name__)

#: labels per class (x the model's classes) at which ``auto`` goes from coverage margin to hybrid
SWITCH_PER_CLASS = 40

Strategy = Callable[..., np.ndarray]


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


def auto(probs: Any, embeddings: Any, labeled_mask: Any, k: int, rng: Any, *,
         early: str = "typiclust", middle: str = "coverage_margin", late: str = "hybrid",
         per_class: int = SWITCH_PER_CLASS, with_random: bool = False) -> Any:
    """The default: ``early`` (representative picks) before a model exists, ``middle``
    (uncertain regions) while fewer than ``per_class`` labels per class are in (K = the
    model's classes), then ``late`` (uncertainty with diversity). Chosen by measurement
    (RESULTS.md, "Default strategy: what was tried"; session 28 moved the switch from 10
    to ``SWITCH_PER_CLASS`` labels per class: dense margin held level with hybrid to ~600;
    session 29 replaced dense margin by coverage margin: +1.1 points at 160 labels, 30 seeds;
    session 30 moved its graph to the whitened pool: +0.9 at 160, 20 fresh seeds).
    ``with_random``: return ``(picks, random (k,) bool)`` as :func:`select_with_random`."""
    name = early if probs is None else late if (
        int(np.sum(labeled_mask)) >= per_class * np.shape(probs)[-1]) else middle
    if with_random:
        return select_with_random(name, probs, embeddings, labeled_mask, k, rng)
    return STRATEGIES[name](probs, embeddings, labeled_mask, k, rng)


STRATEGIES: dict[str, Strategy] = {
    "random": random, "least_confidence": least_confidence, "margin": margin,
    "entropy": entropy, "bald": bald, "coreset": coreset, "typiclust": typiclust,
    "hybrid": hybrid, "probcover": probcover, "typical_margin": typical_margin,
    "dense_margin": dense_margin, "coverage_margin": coverage_margin, "auto": auto,
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
"""Open-set rejection for proposals: "none of these" for items far from every example.

A prototype (or zero-shot) proposal assigns every pool item to the nearest class that has
an example, even an item of a class nobody named. :func:`near_examples` keeps an item only
when it lies inside the *calibrated radius* of at least one example of the class it is
proposed for; the rest are left out of commits (label kept, ``kept=False``).

The radius of example ``e`` is calibrated on the examples and the data themselves, in
embeddings centred on the pool mean (cosine):

* its ``k``-th neighbour similarity ``s_k(e)`` among the pool items (density-adaptive: an
  item must be one of the ``k`` pool items closest to some example of its class), and
* a floor ``q``: the ``density_quantile`` of the pool's own nearest-neighbour similarity
  (from a sample): an item must be as close to an example as the closest ``1 -
  density_quantile`` of items are to their own nearest neighbour. Neighbourhoods that
  tight are mostly one class, looser ones are mixed (measured on Fashion-MNIST: see
  ``benchmarks/proposals.py``).

:func:`text_outliers` is the zero-shot counterpart: an item is kept when its similarity
to its class's text stands out of the pool's similarities to that text (median + ``z``
robust deviations).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["OpenSet", "center", "near_examples", "text_outliers"]

#: defaults chosen with benchmarks/proposals.py (Fashion-MNIST 60k, offline backbone,
#: seeds 0-4): with 1 example per class, committed proposals are 97-99% right (24-38
#: items); with 5 examples of 2 or 5 classes only 86-94%; fresh seeds 5-9: 5 classes x 1
#: example 86%, 2 classes commit 0-3 items. Coats, Shirts and Pullovers share
#: neighbourhoods in this embedding (a Coat's nearest item is a Coat only 73% of the
#: time), so no distance rule separates them. A floor of 0.9 (the old default) committed
#: 0-7 items; 0.5 commits ~4x more at 80-96%.
K_NEIGHBOUR = 200
DENSITY_QUANTILE = 0.7
SAMPLE = 1000
CHUNK = 256


@dataclass(frozen=True)
class OpenSet:
    """Which pool items a proposal keeps: ``kept`` (P,) bool, the floor ``q``, per-example
    radii ``radius`` (M,), and ``reason`` (why the others were left out, in words)."""

    kept: np.ndarray
    radius: np.ndarray
    floor: float
    reason: str


def _unit(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, np.float32)
    return X / np.maximum(np.linalg.norm(X, axis=-1, keepdims=True), 1e-12)


def center(X: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Unit rows of ``X`` (N, D) after subtracting ``mean`` (D,) (float32)."""
    return _unit(np.asarray(X, np.float32) - np.asarray(mean, np.float32))


def density_floor(Xc_pool: np.ndarray, *, quantile: float = DENSITY_QUANTILE,
                  sample: int = SAMPLE, seed: int = 0) -> float:
    """The ``quantile`` of the nearest-neighbour cosine of ``sample`` pool items among the
    centred unit pool ``Xc_pool`` (P, D) (an item itself excluded)."""
    P = len(Xc_pool)
    if P < 2:
        return 1.0
    rng = np.random.default_rng(seed)
    pick = rng.choice(P, size=min(P, sample), replace=False)
    best = np.empty(len(pick), np.float32)
    for lo in range(0, len(pick), CHUNK):
        rows = pick[lo:lo + CHUNK]
        S = Xc_pool[rows] @ Xc_pool.T
        S[np.arange(len(rows)), rows] = -np.inf
        best[lo:lo + CHUNK] = S.max(axis=1)
    return float(np.quantile(best, quantile))


def near_examples(
    X_examples: np.ndarray,
    example_class: np.ndarray,
    X_pool: np.ndarray,
    pool_class: np.ndarray,
    *,
    k: int = K_NEIGHBOUR,
    density_quantile: float = DENSITY_QUANTILE,
    mean: np.ndarray | None = None,
) -> OpenSet:
    """Keep pool item ``x`` (rows of ``X_pool`` (P, D), proposed class code
    ``pool_class`` (P,)) when ``cos(x, e) >= max(s_k(e), q)`` for some example ``e`` (rows
    of ``X_examples`` (M, D), class codes ``example_class`` (M,)) of its class. ``mean``
    (D,) centres the embeddings (default: the pool mean). -> :class:`OpenSet`."""
    if not 0.0 <= density_quantile <= 1.0:
        raise ValueError(f"density_quantile must be in [0, 1]; got {density_quantile!r}.")
    if int(k) < 1:
        raise ValueError(f"k must be at least 1; got {k!r}.")
    P = len(X_pool)
    mean = np.asarray(X_pool, np.float32).mean(axis=0) if mean is None else mean
    Xp, Xe = center(X_pool, mean), center(X_examples, mean)
    floor = density_floor(Xp, quantile=density_quantile)
    kk = min(int(k), max(P, 1))
    kept = np.zeros(P, bool)
    radius = np.zeros(len(Xe), np.float32)
    ex_cls, pool_cls = np.asarray(example_class), np.asarray(pool_class)
    for lo in range(0, len(Xe), CHUNK):
        S = Xp @ Xe[lo:lo + CHUNK].T  # (P, c)
        if P:
            kth = -np.partition(-S, kk - 1, axis=0)[kk - 1]
        else:
            kth = np.ones(S.shape[1], np.float32)
        r = np.maximum(kth, floor).astype(np.float32)
        radius[lo:lo + CHUNK] = r
        same = pool_cls[:, None] == ex_cls[None, lo:lo + CHUNK]
        kept |= ((S >= r[None, :]) & same).any(axis=1)
    reason = (f"farther from every example of their class than the example's {kk}th "
              f"neighbour, or than {1 - density_quantile:.0%} of items are from their own "
              f"nearest neighbour (cosine {floor:.3f})")
    return OpenSet(kept=kept, radius=radius, floor=floor, reason=reason)


def text_outliers(sims: np.ndarray, pool_class: np.ndarray, *, z: float = 3.0) -> OpenSet:
    """Zero-shot: keep item ``i`` when its cosine to its class's text ``sims[i, c]``
    (``sims`` (P, K), ``c = pool_class[i]``) is at least the median of column ``c`` plus
    ``z`` robust standard deviations (1.4826 * MAD) of that column. -> :class:`OpenSet`
    (``radius`` (K,) = the per-class cut)."""
    sims = np.asarray(sims, np.float32)
    med = np.median(sims, axis=0) if len(sims) else np.zeros(sims.shape[1], np.float32)
    mad = np.median(np.abs(sims - med), axis=0) * 1.4826 if len(sims) else med
    cut = (med + z * mad).astype(np.float32)
    cls = np.asarray(pool_class, np.int64)
    kept = sims[np.arange(len(sims)), cls] >= cut[cls] if len(sims) else np.zeros(0, bool)
    reason = (f"not closer to their class's text than most items are (below the median + "
              f"{z:g} deviations of the pool's similarity to that text)")
    return OpenSet(kept=kept, radius=cut, floor=float("nan"), reason=reason)

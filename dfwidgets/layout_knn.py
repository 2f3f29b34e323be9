"""Cosine neighbours for the layout, from faiss: the graph UMAP starts from, and the
placement of items that UMAP did not see (the rest of a large set, or new items).

Both work on unit rows with inner product (= cosine similarity). Without faiss,
``exact_knn`` returns None (UMAP then builds its own graph) and placement falls back to
exact numpy products in chunks.
"""

from __future__ import annotations

import logging

import numpy as np

__all__ = ["exact_knn", "place_by_neighbours", "unit_rows"]

log = logging.getLogger(__name__)

_CHUNK = 65_536
_IVF_FROM = 20_000  # base rows from which placement searches an IVF index, not all rows


def unit_rows(x: np.ndarray) -> np.ndarray:
    """(N, d) float32 C-contiguous rows scaled to length 1 (zero rows stay zero)."""
    x = np.asarray(x, dtype=np.float32)
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - faiss-cpu is a dependency
        log.info("faiss is not installed: UMAP builds its own neighbour graph (slower)")
        return None
    return faiss


def exact_knn(x: np.ndarray, *, k: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Exact ``k`` nearest rows of ``x`` (N, d) by cosine, each row first among its own:
    (indices (N, k) int32, cosine distances (N, k) float32), or None without faiss."""
    faiss = _faiss()
    if faiss is None:
        return None
    unit = unit_rows(x)
    index = faiss.IndexFlatIP(unit.shape[1])
    index.add(unit)
    sims, idx = index.search(unit, int(k))
    # a duplicate may come before the row itself: put the row first (UMAP expects it)
    rows = np.arange(len(unit))
    not_first = idx[:, 0] != rows
    if not_first.any():
        for i in np.flatnonzero(not_first):
            own = np.flatnonzero(idx[i] == i)
            j = own[0] if own.size else k - 1
            idx[i, 1:j + 1], idx[i, 0] = idx[i, :j].copy(), i
            sims[i, 1:j + 1], sims[i, 0] = sims[i, :j].copy(), 1.0
    dists = np.maximum(1.0 - sims, 0.0).astype(np.float32)
    dists[:, 0] = 0.0
    return idx.astype(np.int32), dists


def _searcher(base: np.ndarray, k: int):
    """A function (M, d) unit rows -> (sims (M, k), idx (M, k)) over ``base`` unit rows."""
    faiss = _faiss()
    if faiss is None:
        def search(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            sims = q @ base.T
            top = np.argpartition(-sims, k - 1, axis=1)[:, :k]
            return np.take_along_axis(sims, top, axis=1), top
        return search
    from .learn.knn_index import inner_product_index

    index = inner_product_index(base, ivf_from=_IVF_FROM, nprobe=8)
    return lambda q: index.search(q, k)


def place_by_neighbours(x: np.ndarray, base: np.ndarray, base_xy: np.ndarray, *,
                        k: int = 10) -> np.ndarray:
    """(M, 2) float32 positions for rows ``x`` (M, d) among ``base`` (S, d) rows laid out at
    ``base_xy`` (S, 2): the mean of the coordinates of their ``k`` most cosine-similar base
    rows, weighted by exp(-(d - d_nearest) / mean gap) on cosine distance d (UMAP-like
    membership: the nearest counts most). faiss (IVF above 20,000 base rows), in chunks."""
    unit_base = unit_rows(base)
    k = int(min(k, len(unit_base)))
    search = _searcher(unit_base, k)
    coords = np.asarray(base_xy, dtype=np.float32)
    out = np.empty((len(x), 2), dtype=np.float32)
    for lo in range(0, len(x), _CHUNK):
        q = unit_rows(x[lo:lo + _CHUNK])
        sims, idx = search(q)
        missing = idx < 0  # IVF found fewer than k: weight 0
        idx = np.where(missing, 0, idx)
        d = 1.0 - sims
        gap = d - d.min(axis=1, keepdims=True)
        scale = np.maximum(np.where(missing, 0.0, gap).mean(axis=1, keepdims=True), 1e-6)
        w = np.where(missing, 0.0, np.exp(-gap / scale)) + 1e-12
        out[lo:lo + _CHUNK] = (w[..., None] * coords[idx]).sum(1) / w.sum(1, keepdims=True)
    return out

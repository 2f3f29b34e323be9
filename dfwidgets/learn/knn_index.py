"""One faiss inner-product index over unit rows, shared by the map's placement and the
data-issue graph: exact (flat) below ``ivf_from`` rows, else an inverted-file index with
4 sqrt(N) lists and ``nprobe`` lists probed per query (each query scans ~1% of the rows)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["inner_product_index"]


def inner_product_index(base: np.ndarray, *, ivf_from: int = 20_000, nprobe: int = 8,
                        train_iterations: int | None = None,
                        points_per_list: int | None = None) -> Any:
    """A faiss index holding ``base`` (S, d) float32 C-contiguous rows, searched by inner
    product. ``train_iterations`` / ``points_per_list``: k-means settings of the IVF
    training (None: faiss's defaults, 25 iterations on up to 256 rows per list)."""
    import faiss

    n, dim = base.shape
    if n < ivf_from:
        index = faiss.IndexFlatIP(dim)
    else:
        nlist = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist,
                                   faiss.METRIC_INNER_PRODUCT)
        if train_iterations is not None:
            index.cp.niter = int(train_iterations)
        if points_per_list is not None:
            index.cp.max_points_per_centroid = int(points_per_list)
        index.train(base)
        index.nprobe = int(nprobe)
    index.add(base)
    return index

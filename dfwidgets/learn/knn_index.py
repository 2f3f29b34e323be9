"""One faiss inner-product index over unit rows, shared by the map's placement and the
data-issue graph: exact (flat) below ``ivf_from`` rows, else an inverted-file index with
4 sqrt(N) lists and ``nprobe`` lists probed per query (each query scans ~1% of the rows).
For a large pool's neighbour table, :func:`compressed_inner_product_index` holds the rows
projected and 8-bit quantized (approximate scores: re-rank its candidates exactly)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["compressed_inner_product_index", "inner_product_index"]


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


def compressed_inner_product_index(base: np.ndarray, *, dims: int = 256, nprobe: int = 8,
                                   train_iterations: int | None = None,
                                   points_per_list: int | None = None) -> Any:
    """A faiss index over ``base`` (S, d) float32 C-contiguous unit rows, searched by inner
    product on their projection to the ``dims`` leading eigenvectors of the rows' second
    moment (not centred, unlike PCA: centring would rank by the centred rows' products,
    which for embeddings that share a mean direction are not the cosines; from at most
    ``whitening.COV_SAMPLE`` rows), stored 8-bit scalar-quantized in an inverted file of 4 sqrt(S) lists
    (``nprobe`` probed). Its scores are approximate: ask for extra candidates and re-rank
    them by the exact inner product. Options as :func:`inner_product_index`."""
    import faiss

    from .whitening import sample_rows

    n, dim = base.shape
    dims = min(int(dims), dim)
    rows = sample_rows(base)
    _, vectors = np.linalg.eigh(rows.T.astype(np.float64) @ rows)
    project = faiss.LinearTransform(dim, dims, False)
    faiss.copy_array_to_vector(
        np.ascontiguousarray(vectors[:, ::-1][:, :dims].T, dtype=np.float32).ravel(),
        project.A)
    project.is_trained = True
    ivf = faiss.IndexIVFScalarQuantizer(faiss.IndexFlatIP(dims), dims, int(4 * np.sqrt(n)),
                                        faiss.ScalarQuantizer.QT_8bit,
                                        faiss.METRIC_INNER_PRODUCT)
    if train_iterations is not None:
        ivf.cp.niter = int(train_iterations)
    if points_per_list is not None:
        ivf.cp.max_points_per_centroid = int(points_per_list)
    index = faiss.IndexPreTransform(project, ivf)
    index.train(base)
    ivf.nprobe = int(nprobe)
    index.add(base)
    return index

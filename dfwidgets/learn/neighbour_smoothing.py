"""NeighbourSmoothing: each item's embedding plus the mean of its nearest neighbours'.

``smoothed_i = x_i + alpha * mean(x_j for j in the k nearest neighbours of i in the pool)``
(one step of feature propagation over a kNN graph, as in SGC, Wu et al. 2019). Images
that look alike get closer features, so a linear model trained on a few labels
generalises to their neighbourhood. On Fashion-MNIST (efficientnet_lite0 features,
alpha=0.5, see benchmarks/RESULTS.md) it cuts the labels needed to reach 95% of the
full-pool accuracy by 16% (margin) to 24% (random) and leaves the full-pool accuracy
unchanged; the probe's confidence becomes over-optimistic, so Sessions use it only when
asked (``Session.open(..., smoothing=0.5)``).

The graph is :func:`knn_table`'s: built once per pool (a faiss inverted-file index from
20,000 items when faiss is installed, recall@10 0.995 at 60k; else exact cosine search) and cached on
disk by the embeddings' hash, so every Session and simulation over the same embeddings
shares it (the Session's data-issue graph, neighbours rule and strategies use the same table).
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from ._checks import check_embeddings

__all__ = ["NeighbourSmoothing", "knn_table"]

log = logging.getLogger(__name__)

HNSW_FROM = 20_000  # items from which a pool's table is approximate (faiss IVF, _ivf_knn)
IVF_NPROBE = 32  # inverted lists probed per item (recall@10 0.995 at 60k)
#: items from which the table's index holds compressed rows (COMPRESSED_DIMS, 8-bit),
#: its candidates re-ranked exactly: the same recall@20 as full rows (0.980 vs 0.981 at
#: 250,000 whitened rows, 0.993 vs 0.994 at 1,000,000, 0.992 vs 0.994 at 250,000 raw rows)
#: in 0.48x the time (benchmarks/RESULTS.md, "Neighbour table at a million items")
COMPRESSED_FROM = 200_000
COMPRESSED_DIMS = 256
_CHUNK = 2048


class NeighbourSmoothing:
    """Graph-smoothed features over a pool of ``N`` embeddings of dimension ``D``.

    Parameters
    ----------
    k : neighbours per item (the item itself excluded).
    alpha : weight of the neighbours' mean; 0 returns the embeddings unchanged.
    cache : cache the (N, k) neighbour table on disk (``$DFW_CACHE_DIR/neighbours``).

    ``fit(pool)`` builds the graph; ``transform()`` gives the smoothed pool (N, D);
    ``transform(X)`` smooths other rows (M, D) with their neighbours in the pool.
    Fitted attributes: ``neighbours_`` (N, k) int32, ``seconds_`` (time to build or load).
    """

    def __init__(self, *, k: int = 10, alpha: float = 0.5, cache: bool = True) -> None:
        if int(k) < 1:
            raise ValueError(f"k must be at least 1 neighbour; got {k}")
        if not np.isfinite(alpha) or alpha < 0:
            raise ValueError(f"alpha must be a finite weight >= 0; got {alpha}")
        self.k = int(k)
        self.alpha = float(alpha)
        self.cache = bool(cache)

    def __repr__(self) -> str:
        return f"NeighbourSmoothing(k={self.k}, alpha={self.alpha})"

    # ------------------------------------------------------------------ fit
    def fit(self, pool: Any) -> NeighbourSmoothing:
        """Build (or load from the cache) the kNN graph of ``pool`` (N, D)."""
        X = _unit_rows(check_embeddings(pool, name="pool"))
        self.pool_ = np.asarray(pool, dtype=np.float32)
        started = time.perf_counter()
        k = min(self.k, len(X) - 1)
        if k < 1 or self.alpha == 0:
            self.neighbours_ = np.zeros((len(X), 0), dtype=np.int32)
            self.seconds_ = 0.0
            return self
        self.neighbours_ = _index_table(X, k, cache=self.cache)
        self.seconds_ = time.perf_counter() - started
        log.info("neighbour graph of %d items (k=%d) in %.1f s", len(X), k, self.seconds_)
        return self

    # ------------------------------------------------------------------ transform
    def transform(self, X: Any = None) -> np.ndarray:
        """Smoothed features: of the pool (``X=None``) (N, D), or of other rows (M, D)."""
        if not hasattr(self, "neighbours_"):
            raise RuntimeError("NeighbourSmoothing is not fitted: call fit(pool) first")
        pool = self.pool_
        if X is None:
            table, base = self.neighbours_, pool
        else:
            base = np.asarray(check_embeddings(X, name="X"), dtype=np.float32)
            if base.shape[1] != pool.shape[1]:
                raise ValueError(f"X has {base.shape[1]} dims but the pool has "
                                 f"{pool.shape[1]}; use embeddings from the same model")
            if self.neighbours_.shape[1] == 0:
                return base.copy()
            table = _knn(_unit_rows(base), _unit_rows(pool), self.neighbours_.shape[1],
                         exclude_self=False)
        if table.shape[1] == 0:
            return base.copy()
        out = np.empty_like(base)
        for i in range(0, len(base), 8192):  # bounded memory: (chunk, k, D) at a time
            nb = pool[table[i:i + 8192]].mean(axis=1)
            out[i:i + 8192] = base[i:i + 8192] + self.alpha * nb
        return out

    def fit_transform(self, pool: Any) -> np.ndarray:
        """``fit(pool).transform()``: the smoothed pool (N, D)."""
        return self.fit(pool).transform()


# ====================================================================== the table
def knn_table(pool: Any, *, k: int = 10, cache: bool = True, chunk: int = 4096
              ) -> tuple[np.ndarray, np.ndarray]:
    """Each row's ``k`` nearest other rows of ``pool`` (N, D) by cosine similarity ->
    (sims (N, k') float32, idx (N, k') int64), nearest first, k' = min(k, N - 1).

    Exact below 20,000 rows, else a faiss inverted-file index; the index part is cached on disk by content
    hash (``cache``), the similarities are recomputed exactly from it (chunked)."""
    X = _unit_rows(check_embeddings(pool, name="pool"))
    k = max(0, min(int(k), len(X) - 1))
    idx = _index_table(X, k, cache=cache).astype(np.int64) if k else \
        np.zeros((len(X), 0), dtype=np.int64)
    sims = np.empty(idx.shape, dtype=np.float32)
    for lo in range(0, len(X), chunk):
        sims[lo:lo + chunk] = np.einsum("id,ikd->ik", X[lo:lo + chunk], X[idx[lo:lo + chunk]])
    order = np.argsort(-sims, axis=1, kind="stable")
    return np.take_along_axis(sims, order, 1), np.take_along_axis(idx, order, 1)


def _index_table(X: np.ndarray, k: int, *, cache: bool) -> np.ndarray:
    """(N, k) int32 neighbours of unit rows ``X`` (self excluded), from the disk cache, else
    exact (:func:`_knn`) below ``HNSW_FROM`` rows or without faiss, else :func:`_ivf_knn`."""
    approximate = len(X) >= HNSW_FROM and _has_faiss()
    method = "" if not approximate else f"_ivf{IVF_NPROBE}" + (
        f"sq{COMPRESSED_DIMS}" if len(X) >= COMPRESSED_FROM else "")
    file = _cache_file(X, k, method) if cache else None
    table = _load_table(file, len(X), k) if file is not None else None
    if table is None:
        table = _ivf_knn(X, k) if approximate else _knn(X, X, k, exclude_self=True)
        if file is not None:
            _save_table(file, table)
    return table


def _has_faiss() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _ivf_knn(X: np.ndarray, k: int) -> np.ndarray:
    """(N, k) int32 neighbours of unit rows ``X`` among themselves (self excluded): a faiss
    inverted-file index (``knn_index.inner_product_index``, 4 sqrt(N) lists, ``IVF_NPROBE``
    probed, ranked exactly inside them). At 60k Fashion-MNIST rows, recall@10: nprobe 8
    0.915, 16 0.974, 32 0.995 (HNSW, used before: 0.984, and it let one item of a separate
    200-item cluster link to the rest, which hid that cluster from the outlier rule).
    From ``COMPRESSED_FROM`` rows: :func:`_compressed_knn`."""
    from .knn_index import inner_product_index

    X = np.ascontiguousarray(X, dtype=np.float32)
    if len(X) >= COMPRESSED_FROM:
        return _compressed_knn(X, k)
    index = inner_product_index(X, ivf_from=0, nprobe=IVF_NPROBE, train_iterations=10,
                                points_per_list=32)
    _, found = index.search(X, k + 1)
    return _drop_self(found, k)


def _compressed_knn(X: np.ndarray, k: int, *, step: int = 4096) -> np.ndarray:
    """:func:`_ivf_knn` for a large pool: the same lists and probes over rows compressed
    by ``knn_index.compressed_inner_product_index`` (a quarter of the bytes to scan), 2k + 1
    candidates per row re-ranked by the exact inner product; ``step`` rows at a time with a
    progress bar (a million rows: minutes, once per pool)."""
    from tqdm.auto import tqdm

    from .knn_index import compressed_inner_product_index

    index = compressed_inner_product_index(X, dims=COMPRESSED_DIMS, nprobe=IVF_NPROBE,
                                           train_iterations=10, points_per_list=32)
    found = np.empty((len(X), k + 1), np.int64)
    with tqdm(total=len(X), unit="item", leave=False,
              desc=f"neighbour table of {len(X):,} items") as bar:
        for lo in range(0, len(X), step):
            rows = X[lo:lo + step]
            _, cand = index.search(rows, 2 * k + 1)
            sims = np.einsum("id,ikd->ik", rows, X[np.maximum(cand, 0)])
            sims[cand < 0] = -np.inf
            best = np.argsort(-sims, axis=1, kind="stable")[:, :k + 1]
            found[lo:lo + step] = np.take_along_axis(cand, best, axis=1)
            bar.update(len(rows))
    return _drop_self(found, k)


def _cache_file(X: np.ndarray, k: int, method: str = "") -> Path | None:
    from .._config import cache_dir

    try:
        digest = hashlib.blake2b(np.ascontiguousarray(X).view(np.uint8),
                                 digest_size=16).hexdigest()
        return cache_dir(sub="neighbours") / f"{digest}_k{k}{method}.npy"
    except OSError as exc:  # read-only home etc.: just do not cache
        log.info("no neighbour cache (%s)", exc)
        return None


# ====================================================================== helpers
def _unit_rows(X: np.ndarray) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return X / np.maximum(norms, 1e-12)


def _knn(queries: np.ndarray, base: np.ndarray, k: int, *, exclude_self: bool) -> np.ndarray:
    """(M, k) int32 indices of the k most cosine-similar rows of ``base`` per query."""
    extra = 1 if exclude_self else 0
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None and len(base) >= HNSW_FROM:
        index = faiss.IndexHNSWFlat(base.shape[1], 16, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.add(np.ascontiguousarray(base))
        index.hnsw.efSearch = max(32, 2 * (k + extra))
        _, found = index.search(np.ascontiguousarray(queries), k + extra)
    else:
        import torch

        Q, B = torch.from_numpy(np.ascontiguousarray(queries)), torch.from_numpy(base)
        found = np.empty((len(queries), k + extra), dtype=np.int64)
        with torch.no_grad():
            for i in range(0, len(Q), _CHUNK):
                found[i:i + _CHUNK] = (Q[i:i + _CHUNK] @ B.T).topk(k + extra, dim=1).indices
    if not exclude_self:
        return found[:, :k].astype(np.int32)
    return _drop_self(found, k)


def _drop_self(found: np.ndarray, k: int) -> np.ndarray:
    """(N, k + 1) search results of the rows themselves -> (N, k) int32 without each row's
    own index (or, where the search missed it, without the last neighbour)."""
    rows = np.arange(len(found))[:, None]
    is_self = found == rows
    missing = ~is_self.any(axis=1)
    is_self[missing, -1] = True
    table = found[~is_self].reshape(len(found), k)
    bad = table < 0  # HNSW pads with -1 when it finds too few: repeat the first neighbour
    if bad.any():
        table = np.where(bad, table[:, :1], table)
    return table.astype(np.int32)


def _load_table(file: Path, n: int, k: int) -> np.ndarray | None:
    if not file.exists():
        return None
    try:
        table = np.load(file, allow_pickle=False)
    except (OSError, ValueError) as exc:
        log.warning("ignoring unreadable neighbour cache %s (%s)", file, exc)
        return None
    if table.shape != (n, k) or table.dtype != np.int32 or (n and table.max() >= n):
        log.warning("ignoring neighbour cache %s: shape %s does not fit", file, table.shape)
        return None
    return table


def _save_table(file: Path, table: np.ndarray) -> None:
    try:
        file.parent.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            np.save(fh, table, allow_pickle=False)
        os.replace(tmp, file)
    except OSError as exc:
        log.info("could not cache the neighbour graph (%s)", exc)

"""Nearest neighbours over a Session's embeddings, and item images for views.

The :class:`~dfwidgets.index.NearestNeighborIndex` is built on first use, once, and shared
by every view. The pool's neighbour table (each item's 10 nearest, :meth:`Neighbours.table`)
is built once too and shared by the data-issue graph and the strategies (handed to
``learn.probcover``'s cache); the neighbours rule spreads labels over the table of the
*whitened* pool (:meth:`Neighbours.whitened_table`, ``learn/whitening.py``), built when
first asked for. Images go through
:func:`dfwidgets.thumbs.encode_item`, the one encoding path.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .checks import check_indices

__all__ = ["TABLE_K", "Neighbours", "item_image_bytes"]

TABLE_K = 10  # neighbours per item in the shared table


class Neighbours:
    """Top-k cosine search over ``embeddings`` (N, D); the index is built lazily."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self._embeddings = embeddings
        self._index: Any = None
        self._lock = threading.Lock()
        self._table: tuple[np.ndarray, np.ndarray] | None = None
        self._table_lock = threading.Lock()  # a second caller waits for the first build
        self._whitened: np.ndarray | None = None
        self._whitened_lock = threading.Lock()  # its build does not hold up table()

    def index(self) -> Any:
        """The NearestNeighborIndex (built on the first call, thread-safe)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    from ..index import NearestNeighborIndex

                    self._index = NearestNeighborIndex(self._embeddings)
        return self._index

    def table(self, *, k: int = TABLE_K) -> tuple[np.ndarray, np.ndarray]:
        """Each item's ``k`` nearest other items -> (sims (N, k') float32 cosine, idx
        (N, k') int64), nearest first, k' = min(k, N - 1). Built once per embeddings
        (``learn.neighbour_smoothing.knn_table``: exact below 20,000 items, else faiss IVF;
        cached on disk), thread-safe; do not modify the arrays."""
        want = max(0, min(int(k), len(self._embeddings) - 1))
        with self._table_lock:
            if self._table is None or self._table[1].shape[1] < want:
                from ..learn.neighbour_smoothing import knn_table
                from ..learn.probcover import remember_table

                sims, idx = knn_table(self._embeddings, k=max(want, TABLE_K))
                for a in (sims, idx):
                    a.flags.writeable = False
                self._table = (sims, idx)
                remember_table(self._embeddings, idx[:, :TABLE_K], sims[:, :TABLE_K])
            sims, idx = self._table
        return sims[:, :want], idx[:, :want]

    def whitened_table(self, *, k: int = TABLE_K) -> np.ndarray:
        """(N, k') int64 each item's ``k`` nearest other items in the whitened pool
        (``learn.whitening.whitened_rows``: label spreading over it is about 4-5 points more
        accurate than over :meth:`table` on Fashion-MNIST), nearest first; built once
        (``knn_table``, cached on disk), thread-safe; do not modify the array."""
        want = max(0, min(int(k), len(self._embeddings) - 1))
        with self._whitened_lock:
            if self._whitened is None or self._whitened.shape[1] < want:
                from ..learn.probcover import whitened_table
                from ..learn.strategies_cold import COVER_KNN

                # one table for the rule and coverage margin (learn.probcover's cache)
                idx = whitened_table(self._embeddings, k=max(want, TABLE_K, COVER_KNN))
                idx.flags.writeable = False
                self._whitened = idx
            idx = self._whitened
        return idx[:, :want]

    def nearest(self, vectors: Any, *, k: int, exclude: Any = None
                ) -> tuple[np.ndarray, np.ndarray]:
        """(Q, D) or (D,) queries -> (scores (Q, k) float32, indices (Q, k) int64); see
        :meth:`NearestNeighborIndex.search` (-1 / -inf where fewer than k items remain)."""
        return self.index().search(vectors, k, exclude=exclude)

    def nearest_to_items(self, indices: Any, *, k: int, exclude_self: bool = True
                         ) -> tuple[np.ndarray, np.ndarray]:
        """Neighbours of items ``indices`` (M,) (in the given order), each item itself left
        out when ``exclude_self`` -> (scores (M, k), indices (M, k))."""
        idx = check_indices(indices, len(self._embeddings), unique=False)
        exclude = [np.array([i], dtype=np.int64) for i in idx] if exclude_self else None
        return self.index().search(self._embeddings[idx], k, exclude=exclude)


def item_image_bytes(source: Any, index: Any, *, edge: int) -> tuple[bytes, str, tuple[int, int]]:
    """Item ``index`` of ``source`` encoded for a view -> (data, mime, (width, height)):
    native PNG when small, else a JPEG of at most ``2 * edge`` px (thumbs.encode_item)."""
    from ..thumbs import encode_item

    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be an item index (int); got {index!r}.")
    if int(edge) < 1:
        raise ValueError(f"edge must be a positive number of pixels; got {edge!r}.")
    i = int(check_indices([index], len(source))[0])
    arr = getattr(source, "array", None)
    img = np.asarray(arr[i]) if arr is not None else source[i]
    return encode_item(img, edge=int(edge))

"""Nearest neighbours over a Session's embeddings, and item images for views.

The :class:`~dfwidgets.index.NearestNeighborIndex` is built on first use, once, and shared
by every view; images go through :func:`dfwidgets.thumbs.encode_item`, the one encoding path.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from .checks import check_indices

__all__ = ["Neighbours", "item_image_bytes"]


class Neighbours:
    """Top-k cosine search over ``embeddings`` (N, D); the index is built lazily."""

    def __init__(self, embeddings: np.ndarray) -> None:
        self._embeddings = embeddings
        self._index: Any = None
        self._lock = threading.Lock()

    def index(self) -> Any:
        """The NearestNeighborIndex (built on the first call, thread-safe)."""
        if self._index is None:
            with self._lock:
                if self._index is None:
                    from ..index import NearestNeighborIndex

                    self._index = NearestNeighborIndex(self._embeddings)
        return self._index

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

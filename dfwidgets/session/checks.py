"""Argument checks shared by the Session's parts: item indices and strategy names."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["check_indices", "check_strategy", "strategy_names"]


def check_indices(indices: Any, n: int, *, unique: bool = True,
                  allow_empty: bool = False) -> np.ndarray:
    """Item positions in ``0..n-1`` as (M,) int64 (sorted and unique when ``unique``).

    ``indices``: an int, a sequence/array of ints, or an (n,) bool mask. ValueError for a
    wrong mask shape, a non-1-D array or no items (unless ``allow_empty``), TypeError for
    non-integers, IndexError for positions out of range.
    """
    arr = np.atleast_1d(np.asarray(indices))
    if arr.dtype == bool:
        if arr.shape != (n,):
            raise ValueError(f"A boolean mask must have shape ({n},), got {arr.shape}.")
        arr = np.flatnonzero(arr)
    if arr.ndim != 1:
        raise ValueError(f"Item indices must be 1-D, got shape {arr.shape}.")
    if arr.size == 0:
        if allow_empty:
            return np.empty(0, dtype=np.int64)
        raise ValueError("No items given: pass at least one item index.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(
            f"Item indices must be integers (positions in the source), got {arr.dtype}; "
            "use session.indices_of(ids) for item ids."
        )
    bad = arr[(arr < 0) | (arr >= n)]
    if bad.size:
        raise IndexError(f"Item index {int(bad[0])} is out of range: the source has {n} items.")
    arr = arr.astype(np.int64)
    if not unique or arr.size < 2:
        return arr
    # sort + mask, not np.unique: numpy 2.x hashes there (1.5 s for 333k ints; this 20 ms)
    arr = arr if (np.diff(arr) > 0).all() else np.sort(arr)
    return arr[np.concatenate(([True], arr[1:] != arr[:-1]))]


def strategy_names() -> tuple[str, ...]:
    """Names of the acquisition strategies ``next_batch`` accepts."""
    from ..learn.strategies import STRATEGIES

    return tuple(STRATEGIES)


def check_strategy(name: Any) -> str:
    """``name`` if it is a known strategy, else ValueError naming the known ones."""
    names = strategy_names()
    if not isinstance(name, str) or name not in names:
        raise ValueError(f"Unknown strategy {name!r}; use one of {', '.join(names)}.")
    return name

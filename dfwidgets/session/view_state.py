"""Shared view state of a Session: the selection, the focused item and the highlight.

Every view reads and writes them through the Session, so one view's lasso, current item
or search results can be followed by the others (events ``"selection_changed"``,
``"focus_changed"`` and ``"highlight_changed"``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

from .checks import check_indices

__all__ = ["SELECT_MODES", "ViewState"]

SELECT_MODES = ("replace", "add", "remove")


class ViewState:
    """Selection and highlight ((M,) sorted unique uint32 each) and focus (an item index or
    -1) of ``n`` items. The selection is what the user picked (lasso, confusion cell); the
    highlight is what another view points at (e.g. the current search results).

    ``emit(event, payload)`` is called after a change (outside the lock), never when a
    call leaves the state as it was.
    """

    def __init__(self, n: int, emit: Callable[[str, Any], None]) -> None:
        self._n = int(n)
        self._emit = emit
        self._lock = threading.Lock()
        self._selection = np.empty(0, dtype=np.uint32)
        self._focus = -1
        self._highlight = np.empty(0, dtype=np.uint32)

    @property
    def selection(self) -> np.ndarray:
        """(M,) uint32 sorted unique item indices (a copy)."""
        with self._lock:
            return self._selection.copy()

    def select(self, indices: Any, *, mode: str = "replace") -> None:
        """Replace the selection with ``indices`` (ints, an (N,) bool mask, or empty), or
        ``mode="add"`` / ``"remove"`` them; emits ``"selection_changed"`` if it changed."""
        if mode not in SELECT_MODES:
            raise ValueError(f"mode must be one of {', '.join(SELECT_MODES)}; got {mode!r}.")
        idx = check_indices(indices, self._n, allow_empty=True).astype(np.uint32)
        with self._lock:
            old = self._selection
            if mode == "replace":
                new = idx
            elif mode == "add":
                new = np.union1d(old, idx).astype(np.uint32)
            else:
                new = np.setdiff1d(old, idx, assume_unique=True).astype(np.uint32)
            if np.array_equal(new, old):
                return
            self._selection = new
        self._emit("selection_changed", new.copy())

    def clear_selection(self) -> None:
        """Select nothing (emits ``"selection_changed"`` if something was selected)."""
        self.select([], mode="replace")

    @property
    def focus(self) -> int:
        """The focused item index, -1 for none."""
        with self._lock:
            return self._focus

    def set_focus(self, index: int | None) -> None:
        """Focus item ``index`` (None or -1: no item); emits ``"focus_changed"`` if changed."""
        if index is None:
            new = -1
        elif isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"focus must be an item index (int) or -1/None; got {index!r}.")
        elif int(index) == -1:
            new = -1
        elif not 0 <= int(index) < self._n:
            raise IndexError(f"Item index {int(index)} is out of range: the source has "
                             f"{self._n} items.")
        else:
            new = int(index)
        with self._lock:
            if new == self._focus:
                return
            self._focus = new
        self._emit("focus_changed", new)

    @property
    def highlight(self) -> np.ndarray:
        """(M,) uint32 sorted unique highlighted item indices (a copy)."""
        with self._lock:
            return self._highlight.copy()

    def set_highlight(self, indices: Any) -> None:
        """Highlight ``indices`` (ints, an (N,) bool mask; empty or None: nothing); emits
        ``"highlight_changed"`` with the new (M,) uint32 array if it changed."""
        new = check_indices([] if indices is None else indices, self._n,
                            allow_empty=True).astype(np.uint32)
        with self._lock:
            if np.array_equal(new, self._highlight):
                return
            self._highlight = new
        self._emit("highlight_changed", new.copy())

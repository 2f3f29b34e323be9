"""The Session's in-memory copy of the labels, kept in sync with the LabelStore.

The cache holds one class code per item (-1 = unlabeled) and the class names. It syncs
incrementally (only items with new store events, unless the classes changed) whenever the
store's change counter moved: on every read, after every write of this Session, and from
the poller while callbacks are registered. Each sync emits ``"classes_changed"`` and
``"labels_changed"`` for what changed, then calls ``changed()`` (the Session refits).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import pandas as pd

from .checks import check_indices

__all__ = ["LabelCache"]

log = logging.getLogger(__name__)

SYNC_WAIT = 1.0  # longest a reader waits for another thread's write + sync


class LabelCache:
    """Labels of the items ``ids`` (N,) from ``store``.

    ``emit(event, payload)`` reports changes; ``changed()`` runs after a sync that changed
    labels or classes (not for the first sync).
    """

    def __init__(self, store: Any, ids: np.ndarray, *, emit: Callable[..., None],
                 changed: Callable[[], None]) -> None:
        self.store = store
        self.ids = ids
        self.index_of: dict[str, int] = {str(i): n for n, i in enumerate(ids)}
        self._emit = emit
        self._changed = changed
        self.lock = threading.RLock()
        # held by a write from its store call until its events are out, so no other
        # thread's sync (poller, reader) reports this Session's own change first
        self.write_lock = threading.RLock()
        self.closed = False
        self._codes = np.full(len(ids), -1, dtype=np.int64)
        self._classes: list[str] = []
        self._synced_version = -1
        self._last_event = 0  # newest store event seen
        self._seq = 0  # bumps on every label change seen
        self.sync(emit=False)

    # ------------------------------------------------------------------ reading
    def snapshot(self) -> tuple[int, np.ndarray, list[str]]:
        """(label change counter, codes (N,) copy, class names) as of the last sync."""
        with self.lock:
            return self._seq, self._codes.copy(), list(self._classes)

    def classes(self) -> list[str]:
        """Class names in store order (synced first)."""
        self.sync_if_moved()
        with self.lock:
            return list(self._classes)

    def codes(self) -> np.ndarray:
        """(N,) int64 class index per item, -1 = unlabeled (synced first, a copy)."""
        self.sync_if_moved()
        with self.lock:
            return self._codes.copy()

    def n_labeled(self) -> int:
        with self.lock:
            return int((self._codes >= 0).sum())

    def labels(self) -> pd.Series:
        """Labeled items only: Series item index -> class name, sorted by index."""
        self.sync_if_moved()
        with self.lock:
            idx = np.flatnonzero(self._codes >= 0)
            names = np.asarray(self._classes, dtype=object)
            values = names[self._codes[idx]] if len(idx) else np.array([], dtype=object)
        return pd.Series(values, index=pd.Index(idx, name="index"), name="label", dtype=object)

    def indices_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """(M,) int64 indices of ``item_ids``; KeyError naming unknown ids."""
        ids = [str(i) for i in item_ids]
        missing = [i for i in ids if i not in self.index_of]
        if missing:
            raise KeyError(f"Unknown item id(s) {missing[:5]}; ids come from source.ids.")
        return np.fromiter((self.index_of[i] for i in ids), dtype=np.int64, count=len(ids))

    def known_indices(self, ids: Iterable[str]) -> np.ndarray:
        """(M,) int64 indices of the ids that are in this source (others skipped)."""
        return np.fromiter((self.index_of[i] for i in ids if i in self.index_of),
                           dtype=np.int64)

    def history(self) -> pd.DataFrame:
        """The store's history plus ``index`` (-1 for ids not in this source)."""
        self.sync_if_moved()
        h = self.store.history()
        h.insert(0, "index", np.fromiter((self.index_of.get(i, -1) for i in h["item_id"]),
                                         dtype=np.int64, count=len(h)))
        return h

    # ------------------------------------------------------------------ writing
    def check(self, indices: Any, *, unique: bool = True) -> np.ndarray:
        return check_indices(indices, len(self.ids), unique=unique)

    def write(self, idx: np.ndarray | None, action: Callable[[list[str]], int]) -> int:
        """Run ``action(item ids)`` (a store write), then sync and emit; its result."""
        ids = [] if idx is None else self.ids[idx].tolist()
        with self.write_lock:
            n = action(ids)
            self.sync()
        return n

    def refresh(self) -> bool:
        """Sync now; True if labels or classes changed."""
        with self.write_lock:
            return self.sync()

    def invalidate(self) -> None:
        """Forget the sync point: the next sync reloads every label from the store."""
        with self.lock:
            self._synced_version, self._last_event = -1, 0

    # ------------------------------------------------------------------ syncing
    def poll(self) -> None:
        """The poller's call: sync if the store moved, without waiting for writers."""
        self.sync_if_moved(wait=0.0)

    def sync_if_moved(self, *, wait: float = SYNC_WAIT) -> None:
        """Sync (and emit) if the store changed since the last sync: one cheap query.

        Waits at most ``wait`` s for a write in progress in another thread (it emits its
        own events); after that, or once closed, the cache is used as it is."""
        if self.closed:
            return
        try:
            if self.store.version() == self._synced_version:
                return
        except sqlite3.ProgrammingError:  # store closed under us
            return
        if not self.write_lock.acquire(timeout=wait):
            log.debug("sync skipped: another thread is writing")
            return
        try:
            if not self.closed:
                self.sync()
        finally:
            self.write_lock.release()

    def sync(self, *, emit: bool = True) -> bool:
        """Bring the cache up to date with the store; emit what changed."""
        with self.lock, self.store.snapshot():
            version = self.store.version()
            if version == self._synced_version:
                return False
            classes = self.store.classes()
            items, last_event = self.store.changed_since(self._last_event)
            if classes == self._classes and len(items) <= 20_000:
                mapping = self.store.labels_of(items)
                codes = self._codes.copy()
                known = [self.index_of[i] for i in items if i in self.index_of]
                codes[known] = -1
            else:
                mapping = self.store.label_map()
                codes = np.full(len(self.ids), -1, dtype=np.int64)
            self._last_event = last_event
            lookup = {c: i for i, c in enumerate(classes)}
            unknown = 0
            for item, name in mapping.items():
                i = self.index_of.get(item)
                if i is None:
                    unknown += 1
                else:
                    codes[i] = lookup[name]
            if unknown:
                log.debug("%d labeled ids in the store are not in this source", unknown)
            if classes == self._classes:
                changed = np.flatnonzero(codes != self._codes).astype(np.int64)
            else:  # compare by name: a rename changes no label, a merge does
                old_names = np.asarray(self._classes + [None], dtype=object)[self._codes]
                new_names = np.asarray(classes + [None], dtype=object)[codes]
                changed = np.flatnonzero(old_names != new_names).astype(np.int64)
            classes_changed = classes != self._classes
            self._codes, self._classes = codes, classes
            self._synced_version = version
            if len(changed):
                self._seq += 1
        if emit and classes_changed:
            self._emit("classes_changed", list(classes))
        if emit and len(changed):
            self._emit("labels_changed", changed)
        if emit and (len(changed) or classes_changed):
            self._changed()
        return bool(len(changed) or classes_changed)

"""The items of one source that could not be read, and the grey placeholder shown instead.

A bad file never stops a run: :class:`ProblemLog` records ``index -> (path, reason)``,
warns once (a summary, or one warning for the first failure found late) and hands out
placeholders the size of a typical item.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pandas as pd
from PIL import Image

from dfwidgets.data.decoding import IO_THREADS, PLACEHOLDER_GREY, probe_file

__all__ = ["ProblemLog"]

logger = logging.getLogger(__name__)

_PROGRESS_FROM = 5000  # show a progress bar for header checks of this many files or more
_DEFAULT_PLACEHOLDER_SIZE = (64, 64)
_PROBLEM_COLUMNS = ["index", "path", "reason"]


class ProblemLog:
    """Thread-safe record of unreadable items of a source of ``n`` images.

    Attributes:
        placeholder_size: ``(width, height)`` of placeholders, or ``None`` (64 x 64).
    """

    def __init__(self, n: int) -> None:
        self.n = int(n)
        self.placeholder_size: tuple[int, int] | None = None
        self._items: dict[int, tuple[str | None, str]] = {}
        self._late_warning_given = False
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._items)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def get(self, i: int) -> tuple[str | None, str] | None:
        """``(path, reason)`` of item ``i``, or ``None`` when it has no problem."""
        return self._items.get(i)

    def indices(self) -> set[int]:
        """Positions of the items with a problem."""
        with self._lock:
            return set(self._items)

    def add(self, i: int, path: str | None, reason: str) -> None:
        """Record a problem found while scanning (the caller warns once for all)."""
        with self._lock:
            self._items[i] = (path, reason)

    def forget(self, i: int) -> None:
        """Item ``i`` reads fine now (e.g. fixed on disk)."""
        with self._lock:
            self._items.pop(i, None)

    def record(self, i: int, path: str | None, reason: str, *, late: bool) -> None:
        """Record a problem found on access; the first late one warns, later ones log."""
        with self._lock:
            new = i not in self._items
            self._items[i] = (path, reason)
            warn_now = late and new and not self._late_warning_given
            if warn_now:
                self._late_warning_given = True
        if warn_now:
            warnings.warn(
                f"ImageSource: item {i} ({path or 'dataset item'}) could not be decoded "
                f"({reason}) and was replaced by a grey placeholder; later failures are "
                "recorded silently - see src.problems (src.check() decodes everything).",
                UserWarning,
                stacklevel=4,
            )
        else:
            logger.debug("item %d (%s): %s", i, path, reason)

    @contextlib.contextmanager
    def quiet_late(self) -> Iterator[None]:
        """Suppress the per-failure warning (the caller gives one summary instead)."""
        before = self._late_warning_given
        self._late_warning_given = True
        try:
            yield
        finally:
            self._late_warning_given = before

    def warn_summary(self, count: int, when: str) -> None:
        """One warning for ``count`` unreadable items found ``when``."""
        warnings.warn(
            f"ImageSource: {count} of {self.n} images could not be read {when} and are "
            "shown as grey placeholders; see src.problems for the list and reasons.",
            UserWarning,
            stacklevel=3,
        )

    def frame(self) -> pd.DataFrame:
        """DataFrame ``[index, path, reason]``, one row per bad item, by index."""
        with self._lock:
            rows = sorted(self._items.items())
        return pd.DataFrame(
            {"index": np.array([r[0] for r in rows], dtype=np.int64),
             "path": [r[1][0] for r in rows],
             "reason": [r[1][1] for r in rows]},
            columns=_PROBLEM_COLUMNS,
        )

    def placeholder(self) -> Image.Image:
        """A grey RGB image of :attr:`placeholder_size`."""
        return Image.new("RGB", self.placeholder_size or _DEFAULT_PLACEHOLDER_SIZE, PLACEHOLDER_GREY)

    def subset(self, idx: np.ndarray) -> ProblemLog:
        """The log of the sub-source holding items ``idx`` ``(M,)`` (in that order)."""
        sub = ProblemLog(len(idx))
        position = {int(old): new for new, old in enumerate(idx)}
        with self._lock:
            for old, row in self._items.items():
                if old in position:
                    sub._items[position[old]] = row
        sub.placeholder_size = self.placeholder_size
        return sub

    def check_headers(self, paths: list[str]) -> None:
        """Open every file without decoding pixels; record the ones that fail and size
        placeholders like the median image."""
        from tqdm.auto import tqdm

        sizes: list[tuple[int, int]] = []
        found = 0
        with ThreadPoolExecutor(max_workers=IO_THREADS) as pool:  # threads hide disk latency
            probes = list(tqdm(pool.map(probe_file, paths, chunksize=256), total=len(paths),
                               desc="checking image headers", unit="img", leave=False,
                               disable=len(paths) < _PROGRESS_FROM))
        for i, (p, (size, reason)) in enumerate(zip(paths, probes)):
            if reason is not None:
                self.add(i, p, reason)
                found += 1
            elif size is not None and len(sizes) < 1000:
                sizes.append(size)
        if sizes:
            w = int(np.median([s[0] for s in sizes]))
            h = int(np.median([s[1] for s in sizes]))
            self.placeholder_size = (max(w, 1), max(h, 1))
        if found:
            self.warn_summary(found, "(missing, empty or not images)")

"""Excluded items of a Session: left out of training, acquisition, proposals, the audit and
export; never deleted; undoable by source; kept in history (``store/exclusions.py``).

The (N,) mask is cached by the store's version, so every hook reads it cheaply.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .session import Session

__all__ = ["exclude", "excluded_mask", "exclusions", "include", "undo_exclude"]

_LOCK = threading.Lock()


def _write(session: Session, indices: Any, *, excluded: bool, reason: str, source: str) -> int:
    from ..store.exclusions import set_excluded

    idx = session.check_indices(indices)
    n = set_excluded(session.store, session.ids[idx].tolist(), excluded=excluded,
                     reason=reason, source=source)
    _changed(session)
    return n


def _changed(session: Session) -> None:
    """Excluded items moved: the issue report drops them, a model refit leaves them out."""
    part = getattr(session, "_issues_part", None)
    if part is not None:
        part.exclusions_changed()
    if session.auto_fit:
        session._fit.request(delay=session.fit_delay)


def exclude(session: Session, indices: Any, *, reason: str = "", source: str = "review") -> int:
    """Leave items ``indices`` (ints or a bool mask) out of training, acquisition,
    proposals, the audit and export (never deleted); one call undoable with
    :func:`undo_exclude` by ``source``. ``reason`` e.g. "duplicate". Returns items written."""
    return _write(session, indices, excluded=True, reason=reason, source=source)


def include(session: Session, indices: Any, *, reason: str = "", source: str = "review") -> int:
    """Take items ``indices`` back in (recorded in history, undoable); returns items written."""
    return _write(session, indices, excluded=False, reason=reason, source=source)


def undo_exclude(session: Session, *, source: str | None = "review",
                 all_events: bool = False) -> int:
    """Undo the newest exclude / include call of ``source`` (None = any source), or all of
    them with ``all_events=True``; returns the items it touched."""
    from ..store.exclusions import undo_exclusions

    n = undo_exclusions(session.store, source=source, all_events=all_events)
    _changed(session)
    return n


def excluded_mask(session: Session) -> np.ndarray:
    """(N,) bool: items excluded now (a copy; cached by the store's version)."""
    from ..store.exclusions import excluded_ids

    version = int(session.store.version())
    with _LOCK:
        cached = getattr(session, "_excluded_cache", None)
        if cached is not None and cached[0] == version:
            return cached[1].copy()
    mask = np.zeros(len(session.ids), dtype=bool)
    mask[session._labels.known_indices(excluded_ids(session.store)["item_id"])] = True
    with _LOCK:
        session._excluded_cache = (version, mask)
    return mask.copy()


def exclusions(session: Session) -> pd.DataFrame:
    """Items excluded now: DataFrame[index, item_id, reason, source, time]."""
    from ..store.exclusions import excluded_ids

    df = excluded_ids(session.store)
    df = df[df["item_id"].isin(session._labels.index_of)].reset_index(drop=True)
    df.insert(0, "index", session._labels.indices_of(df["item_id"]) if len(df)
              else np.empty(0, dtype=np.int64))
    return df

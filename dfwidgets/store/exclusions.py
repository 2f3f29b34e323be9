"""Excluded items: left out of training and export, never deleted, undoable, with history.

The ``exclusions`` table (see :mod:`dfwidgets.store.schema`) is append-only: one row per
item per call, ``excluded`` 1 (exclude) or 0 (include again), a ``reason`` and a
``source`` (one of :data:`~dfwidgets.store.schema.SOURCES`). An item is excluded when its
newest row that is not ``undone`` says so. Undo flags the newest call (of a source) as
``undone``; nothing is ever deleted. The store knows item ids only, nothing of models.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import TYPE_CHECKING

import pandas as pd

from dfwidgets.store.schema import check_ids, check_source, to_datetime

if TYPE_CHECKING:
    from dfwidgets.store.label_store import LabelStore

__all__ = ["excluded_ids", "exclusion_history", "set_excluded", "undo_exclusions"]

_CURRENT = """
SELECT e.item_id, e.reason, e.source, e.time FROM exclusions e
JOIN (SELECT item_id, MAX(event_id) AS event_id FROM exclusions WHERE undone = 0
      GROUP BY item_id) last ON last.event_id = e.event_id
WHERE e.excluded = 1 ORDER BY e.event_id
"""


def set_excluded(store: LabelStore, item_ids: Iterable[str], *, excluded: bool,
                 reason: str = "", source: str = "review") -> int:
    """Exclude (``excluded=True``) or include again items ``item_ids`` as one undoable
    call; returns the items written (a repeated id counts once)."""
    check_source(source)
    if not isinstance(reason, str):
        raise TypeError(f"reason must be a string (e.g. 'duplicate'); got {reason!r}.")
    ids = list(dict.fromkeys(check_ids(item_ids)))
    if not ids:
        return 0
    now = time.time()
    with store._write() as conn:
        row = conn.execute("SELECT COALESCE(MAX(group_id), 0) + 1 FROM exclusions").fetchone()
        conn.executemany(
            "INSERT INTO exclusions (group_id, item_id, excluded, reason, source, time) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [(int(row[0]), i, int(bool(excluded)), reason, source, now) for i in ids])
    return len(ids)


def excluded_ids(store: LabelStore) -> pd.DataFrame:
    """Items excluded now: DataFrame[item_id, reason, source, time (UTC)]."""
    with store._lock:
        df = pd.read_sql_query(_CURRENT, store._conn)
    df["time"] = to_datetime(df["time"])
    return df


def exclusion_history(store: LabelStore) -> pd.DataFrame:
    """Every exclude / include call: DataFrame[item_id, excluded (bool), reason, source,
    time (UTC), undone (bool), group_id], oldest first."""
    with store._lock:
        df = pd.read_sql_query(
            "SELECT item_id, excluded, reason, source, time, undone, group_id "
            "FROM exclusions ORDER BY event_id", store._conn)
    df["time"] = to_datetime(df["time"])
    df["excluded"] = df["excluded"].astype(bool)
    df["undone"] = df["undone"].astype(bool)
    return df


def undo_exclusions(store: LabelStore, *, source: str | None = "review",
                    all_events: bool = False) -> int:
    """Undo the newest exclude / include call (of ``source``; None = any), or all of
    them with ``all_events``; returns the items whose rows were undone."""
    where = "undone = 0" + (" AND source = ?" if source else "")
    params: tuple = (source,) if source else ()
    with store._write() as conn:
        if all_events:
            groups = [r[0] for r in conn.execute(
                f"SELECT DISTINCT group_id FROM exclusions WHERE {where}", params)]
        else:
            row = conn.execute(f"SELECT MAX(group_id) FROM exclusions WHERE {where}",
                               params).fetchone()
            groups = [] if row[0] is None else [int(row[0])]
        if not groups:
            return 0
        marks = ",".join("?" * len(groups))
        n = conn.execute(f"SELECT COUNT(DISTINCT item_id) FROM exclusions WHERE group_id IN "
                         f"({marks})", groups).fetchone()[0]
        conn.execute(f"UPDATE exclusions SET undone = 1 WHERE group_id IN ({marks})", groups)
    return int(n)

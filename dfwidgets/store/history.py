"""The append-only event log of the label store: writing label events, reading current
class ids, and undo (SQL over a connection, inside the caller's write transaction).

An undo never deletes or edits an event: it flags the reverted events ``undone`` and
appends new events (source ``"undo"``, ``reverts`` = the reverted group) that record the
label now in force for each item.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from dfwidgets.store.classes import class_id
from dfwidgets.store.schema import UNDO_SOURCE

__all__ = ["append_labels", "current_class_ids", "undo_groups"]

_SMALL = 500  # below this many items, look up current labels item by item (index) not by scan


def current_class_ids(conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, int]:
    """item id -> raw class id of its current label (labeled items only)."""
    if len(ids) <= _SMALL:
        out: dict[str, int] = {}
        for item in set(ids):
            row = conn.execute(
                "SELECT class_id FROM events WHERE item_id = ? AND undone = 0 "
                "AND reverts IS NULL ORDER BY event_id DESC LIMIT 1",
                (item,),
            ).fetchone()
            if row is not None and row[0] is not None:
                out[item] = int(row[0])
        return out
    wanted = set(ids)
    rows = conn.execute(
        "SELECT item_id, class_id FROM effective_events WHERE class_id IS NOT NULL"
    ).fetchall()
    return {i: int(c) for i, c in rows if i in wanted}


def append_labels(conn: sqlite3.Connection, labels: dict[str, str | None], *, source: str,
                  kind: str, now: float) -> None:
    """One event group giving item ``i`` the class ``labels[i]`` (None = unlabel);
    unknown class names are added."""
    name_to_id: dict[str, int] = {}
    for name in dict.fromkeys(v for v in labels.values() if v is not None):
        name_to_id[name] = class_id(conn, name, create=True)
    before = current_class_ids(conn, list(labels))
    gid = conn.execute(
        "INSERT INTO groups (source, kind, time, n_items) VALUES (?, ?, ?, ?)",
        (source, kind, now, len(labels)),
    ).lastrowid
    conn.executemany(
        "INSERT INTO events (group_id, item_id, class_id, previous_id, source, time) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        [
            (gid, item, None if lab is None else name_to_id[lab], before.get(item), source, now)
            for item, lab in labels.items()
        ],
    )


def undo_groups(conn: sqlite3.Connection, *, source: str | None, all_events: bool,
                now: float) -> tuple[int, int]:
    """Revert the last event group (of ``source``), or every group of ``source`` when
    ``all_events``; returns ``(items reverted, groups reverted)``."""
    where = "undone = 0 AND reverts IS NULL" + (" AND source = ?" if source else "")
    params: tuple = (source,) if source else ()
    if all_events:
        groups = [
            r[0]
            for r in conn.execute(f"SELECT DISTINCT group_id FROM events WHERE {where}", params)
        ]
    else:
        row = conn.execute(f"SELECT MAX(group_id) FROM events WHERE {where}", params).fetchone()
        groups = [] if row[0] is None else [int(row[0])]
    if not groups:
        return 0, 0
    gmarks = ",".join("?" * len(groups))
    item_group = dict(
        conn.execute(
            f"SELECT item_id, MAX(group_id) FROM events WHERE group_id IN ({gmarks}) "
            "GROUP BY item_id",
            groups,
        ).fetchall()
    )
    items = list(item_group)
    before = current_class_ids(conn, items)
    conn.execute(f"UPDATE events SET undone = 1 WHERE group_id IN ({gmarks})", groups)
    after = current_class_ids(conn, items)
    gid = conn.execute(
        "INSERT INTO groups (source, kind, time, n_items) VALUES (?, 'undo', ?, ?)",
        (UNDO_SOURCE, now, len(items)),
    ).lastrowid
    conn.executemany(
        "INSERT INTO events (group_id, item_id, class_id, previous_id, source, time, "
        "reverts) VALUES (?, ?, ?, ?, ?, ?, ?)",
        [
            (gid, item, after.get(item), before.get(item), UNDO_SOURCE, now, item_group[item])
            for item in items
        ],
    )
    return len(items), len(groups)

"""Classes in the label store: names by id, add, rename, merge, and hard negatives ("not
this class"), as SQL over a connection.

Labels are stored as class ids, so a rename changes the name everywhere (history included)
and a merge points the merged classes at the target. Callers run these inside one write
transaction (see :meth:`LabelStore._write`).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence

__all__ = [
    "active_names", "add_negatives", "class_id", "merge_classes", "remove_negatives", "rename_class",
]


def active_names(conn: sqlite3.Connection) -> list[str]:
    """Active class names in creation order (merged-away classes left out)."""
    rows = conn.execute(
        "SELECT name FROM classes WHERE merged_into IS NULL ORDER BY class_id"
    ).fetchall()
    return [r[0] for r in rows]


def class_id(conn: sqlite3.Connection, name: str, *, create: bool) -> int:
    """The id of the active class ``name``; created when missing and ``create``, else KeyError."""
    row = conn.execute(
        "SELECT class_id FROM classes WHERE name = ? AND merged_into IS NULL", (name,)
    ).fetchone()
    if row is not None:
        return int(row[0])
    if not create:
        raise KeyError(
            f"No class named {name!r}. Classes: {', '.join(active_names(conn)) or '(none)'}."
        )
    cur = conn.execute("INSERT INTO classes (name, created) VALUES (?, ?)", (name, time.time()))
    return int(cur.lastrowid)


def rename_class(conn: sqlite3.Connection, old: str, new: str) -> None:
    """Rename ``old`` to ``new``; ValueError when ``new`` is another class already."""
    cid = class_id(conn, old, create=False)
    if new == old:
        return
    if new in active_names(conn):
        raise ValueError(
            f"A class named {new!r} exists already; use merge_classes([{old!r}], "
            f"into={new!r}) to join them."
        )
    conn.execute("UPDATE classes SET name = ? WHERE class_id = ?", (new, cid))


def merge_classes(conn: sqlite3.Connection, names: Sequence[str], into: str) -> int:
    """Point classes ``names`` at ``into`` (created if new); returns the items relabeled.

    The merged classes stay in the file, so their events (and undo) resolve to the target;
    their hard negatives move to the target.
    """
    ids = [class_id(conn, n, create=False) for n in names if n != into]
    target = class_id(conn, into, create=True)
    if not ids:
        return 0
    marks = ",".join("?" * len(ids))
    n_items = conn.execute(
        f"SELECT COUNT(*) FROM effective_events e JOIN classes c "
        f"ON c.class_id = e.class_id WHERE COALESCE(c.merged_into, c.class_id) "
        f"IN ({marks})",
        ids,
    ).fetchone()[0]
    conn.execute(
        f"UPDATE classes SET merged_into = ? WHERE class_id IN ({marks}) "
        f"OR merged_into IN ({marks})",
        [target, *ids, *ids],
    )
    conn.execute(
        f"INSERT OR IGNORE INTO negatives (item_id, class_id, source, time) "
        f"SELECT item_id, ?, source, time FROM negatives WHERE class_id IN ({marks})",
        [target, *ids],
    )
    conn.execute(f"DELETE FROM negatives WHERE class_id IN ({marks})", ids)
    return int(n_items)


def add_negatives(conn: sqlite3.Connection, ids: Sequence[str], label: str, *, source: str,
                  now: float) -> int:
    """Record "not ``label``" for items ``ids`` (class created if new); returns rows added."""
    cid = class_id(conn, label, create=True)
    before = conn.total_changes
    conn.executemany(
        "INSERT OR REPLACE INTO negatives (item_id, class_id, source, time) VALUES (?, ?, ?, ?)",
        [(i, cid, source, now) for i in dict.fromkeys(ids)],
    )
    return conn.total_changes - before


def remove_negatives(conn: sqlite3.Connection, ids: Sequence[str], label: str) -> int:
    """Forget "not ``label``" for items ``ids``; returns rows removed."""
    cid = class_id(conn, label, create=False)
    before = conn.total_changes
    conn.executemany(
        "DELETE FROM negatives WHERE item_id = ? AND class_id = ?", [(i, cid) for i in ids]
    )
    return conn.total_changes - before

"""LabelStore: every label in one SQLite file, committed before the call returns.

Layout of the file (``<project>/labels.sqlite``):

- ``groups``: one row per labeling call (source, time, kind "label" / "undo" / "import").
- ``events``: append-only, one row per item per call: ``event_id, group_id, item_id,
  class_id, previous_id, source, time, undone, reverts``. An undo never deletes or edits a
  label: it sets the ``undone`` flag on the reverted events and appends new events (with
  ``reverts`` = the reverted group) that record the label now in force.
- ``current_labels`` (VIEW): per item, the newest event that is neither undone nor an undo
  record; items whose newest event is an "unlabel" (no class) are not listed.
- ``classes``: names in creation order. Labels are stored as class ids, so a rename changes
  the name everywhere (history included) and a merge points the merged classes at the target.
- ``negatives`` ("not this class" hard negatives), ``meta`` (JSON values), ``curve``
  (learning-curve records as JSON), ``state`` (the change counter behind :meth:`version`).

Durability: WAL journal with ``synchronous=FULL``, so a commit is fsynced to the WAL before
the call returns; a process killed with SIGKILL (or a power cut) keeps every acknowledged
label. Concurrency: every write is one ``BEGIN IMMEDIATE`` transaction and connections wait
up to ``busy_timeout`` for the write lock, so two widgets or two processes can share a file.
"""

from __future__ import annotations

import io
import json
import logging
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["FILE_NAME", "SOURCES", "UNDO_SOURCE", "LabelStore"]

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("click", "bulk", "search", "zero-shot", "prototype", "import", "review")
"""Where a label came from; every labeling call names one of these."""

UNDO_SOURCE = "undo"
"""The ``source`` of the history rows an undo appends (never a labeling source)."""

FILE_NAME = "labels.sqlite"
"""File name used when :class:`LabelStore` is given a folder."""

_SCHEMA_VERSION = 1
_EXPORT_FORMATS = ("dataframe", "csv", "json", "parquet")
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}
_SMALL = 500  # below this many items, look up current labels item by item (index) not by scan

_SCHEMA = """
CREATE TABLE IF NOT EXISTS classes (
    class_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT NOT NULL,
    created     REAL NOT NULL,
    merged_into INTEGER REFERENCES classes(class_id)
);
CREATE UNIQUE INDEX IF NOT EXISTS classes_active_name ON classes(name) WHERE merged_into IS NULL;
CREATE TABLE IF NOT EXISTS groups (
    group_id INTEGER PRIMARY KEY AUTOINCREMENT,
    source   TEXT NOT NULL,
    kind     TEXT NOT NULL,
    time     REAL NOT NULL,
    n_items  INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS events (
    event_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id    INTEGER NOT NULL REFERENCES groups(group_id),
    item_id     TEXT NOT NULL,
    class_id    INTEGER REFERENCES classes(class_id),
    previous_id INTEGER REFERENCES classes(class_id),
    source      TEXT NOT NULL,
    time        REAL NOT NULL,
    undone      INTEGER NOT NULL DEFAULT 0,
    reverts     INTEGER REFERENCES groups(group_id)
);
CREATE INDEX IF NOT EXISTS events_item ON events(item_id, event_id);
CREATE INDEX IF NOT EXISTS events_group ON events(group_id);
CREATE INDEX IF NOT EXISTS events_source ON events(source, undone, group_id);
CREATE VIEW IF NOT EXISTS effective_events AS
    SELECT item_id, class_id, source, time, MAX(event_id) AS event_id
    FROM events WHERE undone = 0 AND reverts IS NULL GROUP BY item_id;
CREATE VIEW IF NOT EXISTS class_names AS
    SELECT c.class_id AS class_id, t.name AS name
    FROM classes c JOIN classes t ON t.class_id = COALESCE(c.merged_into, c.class_id);
CREATE VIEW IF NOT EXISTS current_labels AS
    SELECT w.item_id AS item_id, n.name AS label, w.source AS source, w.time AS time,
           w.event_id AS event_id
    FROM effective_events w JOIN class_names n ON n.class_id = w.class_id;
CREATE TABLE IF NOT EXISTS negatives (
    item_id  TEXT NOT NULL,
    class_id INTEGER NOT NULL REFERENCES classes(class_id),
    source   TEXT NOT NULL,
    time     REAL NOT NULL,
    PRIMARY KEY (item_id, class_id)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS curve (
    point_id INTEGER PRIMARY KEY AUTOINCREMENT,
    time     REAL NOT NULL,
    record   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS state (
    k       INTEGER PRIMARY KEY CHECK (k = 0),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO state (k, version) VALUES (0, 0);
"""


def _check_source(source: str) -> str:
    if source not in SOURCES:
        raise ValueError(
            f"Unknown label source {source!r}. Use one of: {', '.join(SOURCES)}."
        )
    return source


def _check_label(label: Any, *, allow_none: bool) -> str | None:
    """A class name (non-empty str), or None to unlabel when allowed."""
    if label is None or (isinstance(label, float) and math.isnan(label)):
        if allow_none:
            return None
        raise ValueError("A class name is required here, got None/NaN.")
    if isinstance(label, (np.str_,)):
        label = str(label)
    if not isinstance(label, str):
        raise TypeError(
            f"Class names must be strings, got {type(label).__name__} {label!r}. "
            "Map numeric labels to names first (e.g. classes[i])."
        )
    if not label.strip():
        raise ValueError("Class names must not be empty or only whitespace.")
    return label


def _check_ids(item_ids: Iterable[Any]) -> list[str]:
    if isinstance(item_ids, (str, bytes)):
        item_ids = [item_ids]
    ids = [str(i) if isinstance(i, np.str_) else i for i in item_ids]
    bad = [i for i in ids if not isinstance(i, str) or not i]
    if bad:
        raise TypeError(
            f"Item ids must be non-empty strings (ImageSource.ids), got {bad[:3]!r}. "
            "Session.label takes item indices and converts them for you."
        )
    return ids


def _to_datetime(seconds: pd.Series) -> pd.Series:
    return pd.to_datetime(seconds.astype("float64"), unit="s", utc=True)


class LabelStore:
    """Labels, history, classes, hard negatives, metadata and curves in one SQLite file.

    Parameters
    ----------
    path:
        The SQLite file, created if missing; a folder means ``<folder>/labels.sqlite``.
    timeout:
        Seconds to wait for another writer (another widget or process) before giving up.

    Every method that changes something runs one ``BEGIN IMMEDIATE`` transaction and
    commits (fsynced) before it returns. Methods are thread-safe.
    """

    def __init__(self, path: str | os.PathLike, *, timeout: float = 30.0) -> None:
        path = Path(path).expanduser()
        if path.is_dir():
            path = path / FILE_NAME
        if not path.parent.exists():
            raise FileNotFoundError(
                f"Folder {path.parent} does not exist; create it or pass another path."
            )
        self.path: Path = path
        self._lock = threading.RLock()
        try:
            self._conn = sqlite3.connect(
                str(path), timeout=timeout, isolation_level=None, check_same_thread=False
            )
            self._conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            mode = self._conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("SQLite refused WAL mode for %s (got %s)", path, mode)
            self._conn.execute("PRAGMA synchronous = FULL")
            self._conn.execute("PRAGMA foreign_keys = ON")
            with self._write():
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        self._conn.execute(statement)
                self._conn.execute(
                    "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
                    (json.dumps(_SCHEMA_VERSION),),
                )
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{path} is not a dfwidgets label store ({exc}). Point LabelStore at a new "
                "file or at a labels.sqlite written by dfwidgets."
            ) from exc
        schema = self.get_meta("schema_version")
        if schema != _SCHEMA_VERSION:
            raise ValueError(
                f"{path} uses label-store schema {schema}, this dfwidgets reads "
                f"{_SCHEMA_VERSION}; upgrade dfwidgets."
            )

    # ------------------------------------------------------------------ plumbing
    def __repr__(self) -> str:
        return f"LabelStore({str(self.path)!r})"

    def __enter__(self) -> LabelStore:  # noqa: PYI034 (Python 3.10 has no Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection (all writes are already committed)."""
        with self._lock:
            self._conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction: BEGIN IMMEDIATE, bump the version, COMMIT (or ROLLBACK)."""
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("UPDATE state SET version = version + 1 WHERE k = 0")
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @contextmanager
    def snapshot(self) -> Iterator[LabelStore]:
        """Read-only block: all reads inside see one consistent state of the file
        (no write from another connection lands in between). Do not write inside."""
        with self._lock:
            self._conn.execute("BEGIN")
            try:
                yield self
            finally:
                self._conn.execute("COMMIT")

    def _query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def version(self) -> int:
        """A counter that changes whenever anything in the file changes (any process)."""
        return int(self._query("SELECT version FROM state WHERE k = 0")[0][0])

    # ------------------------------------------------------------------ classes
    def classes(self) -> list[str]:
        """Active class names in creation order (classes with no examples included)."""
        rows = self._query(
            "SELECT name FROM classes WHERE merged_into IS NULL ORDER BY class_id"
        )
        return [r[0] for r in rows]

    def _class_id(self, conn: sqlite3.Connection, name: str, *, create: bool) -> int:
        row = conn.execute(
            "SELECT class_id FROM classes WHERE name = ? AND merged_into IS NULL", (name,)
        ).fetchone()
        if row is not None:
            return int(row[0])
        if not create:
            raise KeyError(
                f"No class named {name!r}. Classes: {', '.join(self._names(conn)) or '(none)'}."
            )
        cur = conn.execute(
            "INSERT INTO classes (name, created) VALUES (?, ?)", (name, time.time())
        )
        return int(cur.lastrowid)

    @staticmethod
    def _names(conn: sqlite3.Connection) -> list[str]:
        rows = conn.execute(
            "SELECT name FROM classes WHERE merged_into IS NULL ORDER BY class_id"
        ).fetchall()
        return [r[0] for r in rows]

    def add_class(self, name: str) -> bool:
        """Add a class (no examples needed). Returns False if it already existed."""
        name = _check_label(name, allow_none=False)
        with self._write() as conn:
            existed = name in self._names(conn)
            self._class_id(conn, name, create=True)
        return not existed

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class; every item and every history row shows the new name."""
        new = _check_label(new, allow_none=False)
        with self._write() as conn:
            cid = self._class_id(conn, old, create=False)
            if new == old:
                return
            if new in self._names(conn):
                raise ValueError(
                    f"A class named {new!r} exists already; use merge_classes([{old!r}], "
                    f"into={new!r}) to join them."
                )
            conn.execute("UPDATE classes SET name = ? WHERE class_id = ?", (new, cid))

    def merge_classes(self, names: Sequence[str], into: str) -> int:
        """Merge classes ``names`` into ``into`` (created if new). Returns items relabeled.

        History is kept: the merged classes stay in the file, pointing at ``into``, so
        their events (and undo) resolve to the target class.
        """
        if isinstance(names, str):
            names = [names]
        into = _check_label(into, allow_none=False)
        with self._write() as conn:
            ids = [self._class_id(conn, n, create=False) for n in names if n != into]
            target = self._class_id(conn, into, create=True)
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
            # hard negatives of merged classes now refer to the target
            conn.execute(
                f"INSERT OR IGNORE INTO negatives (item_id, class_id, source, time) "
                f"SELECT item_id, ?, source, time FROM negatives WHERE class_id IN ({marks})",
                [target, *ids],
            )
            conn.execute(f"DELETE FROM negatives WHERE class_id IN ({marks})", ids)
        return int(n_items)

    # ------------------------------------------------------------------ labels
    def _current_ids(self, conn: sqlite3.Connection, ids: Sequence[str]) -> dict[str, int]:
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

    def set_labels(
        self, item_ids: Iterable[str], label: str | None, *, source: str
    ) -> int:
        """Give every item in ``item_ids`` the class ``label`` (None = remove its label).

        One event group, committed before returning; unknown class names are added.
        Returns the number of items written.
        """
        ids = _check_ids(item_ids)
        return self.set_many(ids, [label] * len(ids), source=source)

    def set_many(
        self,
        item_ids: Iterable[str],
        labels: Sequence[str | None],
        *,
        source: str,
        _kind: str = "label",
    ) -> int:
        """Label ``item_ids[i]`` as ``labels[i]`` (None = unlabel), as one event group.

        All or nothing: a bad id or label raises before anything is written.
        Returns the number of items written (a repeated id counts once, last wins).
        """
        _check_source(source)
        ids = _check_ids(item_ids)
        labels = list(labels)
        if len(labels) != len(ids):
            raise ValueError(
                f"Got {len(ids)} item ids but {len(labels)} labels; pass one label per item."
            )
        checked = [_check_label(lab, allow_none=True) for lab in labels]
        last: dict[str, str | None] = dict(zip(ids, checked))
        if not last:
            return 0
        now = time.time()
        with self._write() as conn:
            name_to_id: dict[str, int] = {}
            for name in dict.fromkeys(v for v in last.values() if v is not None):
                name_to_id[name] = self._class_id(conn, name, create=True)
            before = self._current_ids(conn, list(last))
            gid = conn.execute(
                "INSERT INTO groups (source, kind, time, n_items) VALUES (?, ?, ?, ?)",
                (source, _kind, now, len(last)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO events (group_id, item_id, class_id, previous_id, source, time) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (gid, item, None if lab is None else name_to_id[lab], before.get(item),
                     source, now)
                    for item, lab in last.items()
                ],
            )
        return len(last)

    def current(self) -> pd.DataFrame:
        """Labeled items: DataFrame[item_id, label, source, time (UTC), event_id]."""
        with self._lock:
            df = pd.read_sql_query(
                "SELECT item_id, label, source, time, event_id FROM current_labels "
                "ORDER BY event_id",
                self._conn,
            )
        df["time"] = _to_datetime(df["time"])
        df["event_id"] = df["event_id"].astype("int64")
        return df

    def label_map(self) -> dict[str, str]:
        """item id -> current class name, for labeled items (faster than :meth:`current`)."""
        rows = self._query("SELECT item_id, label FROM current_labels")
        return dict(rows)

    def changed_since(self, event_id: int) -> tuple[list[str], int]:
        """Items with events newer than ``event_id`` (every label change, undo included,
        appends one) and the newest event id: for incremental polling."""
        with self._lock:
            items = [r[0] for r in self._conn.execute(
                "SELECT DISTINCT item_id FROM events WHERE event_id > ?", (int(event_id),))]
            last = self._conn.execute("SELECT COALESCE(MAX(event_id), 0) FROM events")
            return items, int(last.fetchone()[0])

    def labels_of(self, item_ids: Iterable[str]) -> dict[str, str]:
        """item id -> current class name for those of ``item_ids`` that are labeled
        (indexed look-ups: fast for a few items in a large store)."""
        ids = _check_ids(item_ids)
        with self._lock:
            raw = self._current_ids(self._conn, ids)
            names = dict(self._conn.execute("SELECT class_id, name FROM class_names").fetchall())
        return {i: names[c] for i, c in raw.items()}

    def history(self) -> pd.DataFrame:
        """Every event, oldest first.

        DataFrame[event_id, group_id, item_id, label, previous, source, time, undone,
        reverts]: ``label``/``previous`` are class names (None = unlabeled), ``undone`` is
        True for events reverted by an undo; undo rows have source ``"undo"`` and
        ``reverts`` = the group they reverted.
        """
        with self._lock:
            df = pd.read_sql_query(
                "SELECT e.event_id, e.group_id, e.item_id, n.name AS label, "
                "p.name AS previous, e.source, e.time, e.undone, e.reverts "
                "FROM events e LEFT JOIN class_names n ON n.class_id = e.class_id "
                "LEFT JOIN class_names p ON p.class_id = e.previous_id ORDER BY e.event_id",
                self._conn,
            )
        df["time"] = _to_datetime(df["time"])
        for col in ("label", "previous"):  # None (not NaN) for "no label"
            df[col] = df[col].astype(object).where(df[col].notna(), None)
        df["undone"] = df["undone"].astype(bool)
        df["reverts"] = df["reverts"].astype("Int64")
        return df

    def undo(self, *, source: str | None = None, all_events: bool = False) -> int:
        """Revert the last labeling call (of ``source``, if given); returns items reverted.

        ``all_events=True`` (needs ``source``) reverts every call from that source, e.g.
        all zero-shot labels. Each item falls back to its newest label that is not undone
        (so a later click on the same item is kept). History stays append-only: the
        reverted events get ``undone=True`` and new events (source ``"undo"``, ``reverts`` =
        the reverted group) record the labels now in force.
        Returns 0 when there is nothing to undo.
        """
        if source is not None:
            _check_source(source)
        if all_events and source is None:
            raise ValueError("undo(all_events=True) needs a source, e.g. source='zero-shot'.")
        where = "undone = 0 AND reverts IS NULL" + (" AND source = ?" if source else "")
        params: tuple = (source,) if source else ()
        now = time.time()
        with self._write() as conn:
            if all_events:
                groups = [
                    r[0]
                    for r in conn.execute(
                        f"SELECT DISTINCT group_id FROM events WHERE {where}", params
                    ).fetchall()
                ]
            else:
                row = conn.execute(
                    f"SELECT MAX(group_id) FROM events WHERE {where}", params
                ).fetchone()
                groups = [] if row[0] is None else [int(row[0])]
            if not groups:
                return 0
            gmarks = ",".join("?" * len(groups))
            item_group = dict(
                conn.execute(
                    f"SELECT item_id, MAX(group_id) FROM events WHERE group_id IN ({gmarks}) "
                    "GROUP BY item_id",
                    groups,
                ).fetchall()
            )
            items = list(item_group)
            before = self._current_ids(conn, items)
            conn.execute(f"UPDATE events SET undone = 1 WHERE group_id IN ({gmarks})", groups)
            after = self._current_ids(conn, items)
            gid = conn.execute(
                "INSERT INTO groups (source, kind, time, n_items) VALUES (?, 'undo', ?, ?)",
                (UNDO_SOURCE, now, len(items)),
            ).lastrowid
            conn.executemany(
                "INSERT INTO events (group_id, item_id, class_id, previous_id, source, time, "
                "reverts) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (gid, item, after.get(item), before.get(item), UNDO_SOURCE, now,
                     item_group[item])
                    for item in items
                ],
            )
        log.info("undo: reverted %d item(s) from %d call(s)", len(items), len(groups))
        return len(items)

    # ------------------------------------------------------------------ negatives
    def add_negatives(self, item_ids: Iterable[str], label: str, *, source: str) -> int:
        """Record "not ``label``" for these items (hard negatives). Returns rows added."""
        _check_source(source)
        ids = _check_ids(item_ids)
        label = _check_label(label, allow_none=False)
        now = time.time()
        with self._write() as conn:
            cid = self._class_id(conn, label, create=True)
            before = conn.total_changes
            conn.executemany(
                "INSERT OR REPLACE INTO negatives (item_id, class_id, source, time) "
                "VALUES (?, ?, ?, ?)",
                [(i, cid, source, now) for i in dict.fromkeys(ids)],
            )
            return conn.total_changes - before

    def remove_negatives(self, item_ids: Iterable[str], label: str) -> int:
        """Forget "not ``label``" for these items. Returns rows removed."""
        ids = _check_ids(item_ids)
        with self._write() as conn:
            cid = self._class_id(conn, label, create=False)
            before = conn.total_changes
            conn.executemany(
                "DELETE FROM negatives WHERE item_id = ? AND class_id = ?",
                [(i, cid) for i in ids],
            )
            return conn.total_changes - before

    def negatives(self) -> pd.DataFrame:
        """Hard negatives: DataFrame[item_id, label, source, time]."""
        with self._lock:
            df = pd.read_sql_query(
                "SELECT g.item_id, n.name AS label, g.source, g.time FROM negatives g "
                "JOIN class_names n ON n.class_id = g.class_id ORDER BY g.time, g.item_id",
                self._conn,
            )
        df["time"] = _to_datetime(df["time"])
        return df

    # ------------------------------------------------------------------ meta, curve
    def get_meta(self, key: str, default: Any = None) -> Any:
        """The JSON value stored under ``key``, or ``default``."""
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(rows[0][0]) if rows else default

    def set_meta(self, key: str, value: Any) -> None:
        """Store a JSON-able ``value`` under ``key`` (None deletes the key)."""
        if value is None:
            with self._write() as conn:
                conn.execute("DELETE FROM meta WHERE key = ?", (key,))
            return
        try:
            text = json.dumps(value, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise TypeError(
                f"meta[{key!r}] must be JSON-able (lists, dicts, str, finite numbers): {exc}"
            ) from exc
        with self._write() as conn:
            conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, text))

    def add_curve_point(self, record: dict[str, Any]) -> None:
        """Append one learning-curve record (a JSON-able dict, e.g. n_labels, accuracy)."""
        if not isinstance(record, dict):
            raise TypeError(f"A curve record is a dict, got {type(record).__name__}.")
        clean = {
            k: (None if isinstance(v, float) and not math.isfinite(v) else
                v.item() if isinstance(v, np.generic) else v)
            for k, v in record.items()
        }
        text = json.dumps(clean)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO curve (time, record) VALUES (?, ?)",
                (float(clean.get("time") or time.time()), text),
            )

    def curve(self) -> pd.DataFrame:
        """All learning-curve records in order, one row each (columns from the records)."""
        rows = self._query("SELECT record FROM curve ORDER BY point_id")
        return pd.DataFrame([json.loads(r[0]) for r in rows])

    # ------------------------------------------------------------------ export/import
    def export(self, path_or_format: str | os.PathLike = "dataframe") -> Any:
        """Current labels as DataFrame[item_id, label, source, time].

        ``path_or_format``: "dataframe" returns the DataFrame; "csv" / "json" return text,
        "parquet" returns bytes; a path ending in .csv / .json / .parquet writes that file
        and returns its Path.
        """
        df = self.current()[["item_id", "label", "source", "time"]]
        target = str(path_or_format)
        fmt = target.lower() if target.lower() in _EXPORT_FORMATS else None
        path: Path | None = None
        if fmt is None:
            path = Path(path_or_format).expanduser()
            fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
            if fmt is None:
                raise ValueError(
                    f"Cannot tell the export format from {target!r}: use one of "
                    f"{', '.join(_EXPORT_FORMATS)} or a path ending in .csv, .json, .parquet."
                )
        if fmt == "dataframe":
            return df
        out = df.assign(time=df["time"].map(lambda t: t.isoformat()))
        if fmt == "csv":
            text = out.to_csv(index=False)
        elif fmt == "json":
            text = out.to_json(orient="records", indent=1, force_ascii=False)
        else:
            buf = io.BytesIO()
            out.to_parquet(buf, index=False)
            text = buf.getvalue()
        if path is None:
            return text
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        return path

    def import_labels(
        self, df_or_path: pd.DataFrame | str | os.PathLike, *, source: str = "import"
    ) -> int:
        """Label items from a DataFrame or a .csv / .json / .parquet file (columns item_id,
        label; others ignored). Unknown classes are added. One undoable event group,
        all or nothing. Returns the number of items labeled.
        """
        _check_source(source)
        if isinstance(df_or_path, pd.DataFrame):
            df, name = df_or_path, "the DataFrame"
        else:
            path = Path(df_or_path).expanduser()
            name = str(path)
            if not path.exists():
                raise FileNotFoundError(f"No file {path} to import labels from.")
            fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
            if fmt == "csv":
                df = pd.read_csv(path, dtype={"item_id": str, "label": str},
                                 keep_default_na=False, na_values=[""])
            elif fmt == "json":
                df = pd.read_json(path, orient="records", dtype={"item_id": str, "label": str})
            elif fmt == "parquet":
                df = pd.read_parquet(path)
            else:
                raise ValueError(
                    f"Cannot import {path.name}: use a .csv, .json or .parquet file, "
                    "or a DataFrame."
                )
        missing = [c for c in ("item_id", "label") if c not in df.columns]
        if missing:
            raise ValueError(
                f"{name} lacks column(s) {missing}; it needs 'item_id' and 'label' "
                f"(has {list(df.columns)}). Rename columns first, e.g. df.rename(columns=...)."
            )
        ids = df["item_id"]
        labels = df["label"]
        no_id = np.flatnonzero(ids.isna().to_numpy() | (ids.astype(str).str.len() == 0))
        no_label = np.flatnonzero(
            labels.isna().to_numpy() | (labels.astype(str).str.strip() == "").to_numpy()
        )
        if len(no_id):
            raise ValueError(f"{name}: rows {no_id[:10].tolist()} have no item_id.")
        if len(no_label):
            raise ValueError(
                f"{name}: rows {no_label[:10].tolist()} have no label; drop them "
                "(df.dropna(subset=['label'])) or fill them in."
            )
        ids = ids.astype(str).tolist()
        labels = labels.astype(str).tolist()
        seen: dict[str, str] = {}
        conflicts = []
        for i, lab in zip(ids, labels):
            if i in seen and seen[i] != lab:
                conflicts.append(i)
            seen[i] = lab
        if conflicts:
            raise ValueError(
                f"{name}: item(s) {conflicts[:5]} appear with different labels; keep one row "
                "per item (e.g. df.drop_duplicates('item_id', keep='last'))."
            )
        return self.set_many(ids, labels, source=source, _kind="import")

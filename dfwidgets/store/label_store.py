"""LabelStore: every label in one SQLite file, committed before the call returns.

The file's layout and durability settings are in :mod:`dfwidgets.store.schema`; the SQL of
classes and of the event log (labels, undo) in :mod:`~dfwidgets.store.classes` and
:mod:`~dfwidgets.store.history`; file formats in :mod:`~dfwidgets.store.export`.
Every write is one ``BEGIN IMMEDIATE`` transaction, so two widgets or two processes can
share a file.
"""

from __future__ import annotations

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

from dfwidgets.store import classes as _classes
from dfwidgets.store.export import read_label_table, without_excluded, write_labels
from dfwidgets.store.history import append_labels, current_class_ids, undo_groups
from dfwidgets.store.schema import (
    FILE_NAME,
    SCHEMA_VERSION,
    check_ids,
    check_label,
    check_source,
    connect,
    create_schema,
    to_datetime,
)

__all__ = ["LabelStore"]

log = logging.getLogger(__name__)


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
            self._conn = connect(path, timeout=timeout)
            with self._write() as conn:
                create_schema(conn)
        except sqlite3.DatabaseError as exc:
            raise ValueError(
                f"{path} is not a dfwidgets label store ({exc}). Point LabelStore at a new "
                "file or at a labels.sqlite written by dfwidgets."
            ) from exc
        schema = self.get_meta("schema_version")
        if schema != SCHEMA_VERSION:
            raise ValueError(
                f"{path} uses label-store schema {schema}, this dfwidgets reads "
                f"{SCHEMA_VERSION}; upgrade dfwidgets."
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

    def _frame(self, sql: str) -> pd.DataFrame:
        """The rows of ``sql`` as a DataFrame, its ``time`` column as UTC timestamps."""
        with self._lock:
            df = pd.read_sql_query(sql, self._conn)
        df["time"] = to_datetime(df["time"])
        return df

    def version(self) -> int:
        """A counter that changes whenever anything in the file changes (any process)."""
        return int(self._query("SELECT version FROM state WHERE k = 0")[0][0])

    # ------------------------------------------------------------------ classes
    def classes(self) -> list[str]:
        """Active class names in creation order (classes with no examples included)."""
        with self._lock:
            return _classes.active_names(self._conn)

    def add_class(self, name: str) -> bool:
        """Add a class (no examples needed). Returns False if it already existed."""
        name = check_label(name, allow_none=False)
        with self._write() as conn:
            existed = name in _classes.active_names(conn)
            _classes.class_id(conn, name, create=True)
        return not existed

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class; every item and every history row shows the new name."""
        new = check_label(new, allow_none=False)
        with self._write() as conn:
            _classes.rename_class(conn, old, new)

    def merge_classes(self, names: Sequence[str], into: str) -> int:
        """Merge classes ``names`` into ``into`` (created if new). Returns items relabeled.

        History is kept: the merged classes stay in the file, pointing at ``into``, so
        their events (and undo) resolve to the target class.
        """
        if isinstance(names, str):
            names = [names]
        into = check_label(into, allow_none=False)
        with self._write() as conn:
            return _classes.merge_classes(conn, names, into)

    # ------------------------------------------------------------------ labels
    def set_labels(self, item_ids: Iterable[str], label: str | None, *, source: str) -> int:
        """Give every item in ``item_ids`` the class ``label`` (None = remove its label).

        One event group, committed before returning; unknown class names are added.
        Returns the number of items written.
        """
        ids = check_ids(item_ids)
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
        check_source(source)
        ids = check_ids(item_ids)
        labels = list(labels)
        if len(labels) != len(ids):
            raise ValueError(
                f"Got {len(ids)} item ids but {len(labels)} labels; pass one label per item."
            )
        checked = [check_label(lab, allow_none=True) for lab in labels]
        last: dict[str, str | None] = dict(zip(ids, checked))
        if not last:
            return 0
        with self._write() as conn:
            append_labels(conn, last, source=source, kind=_kind, now=time.time())
        return len(last)

    def current(self) -> pd.DataFrame:
        """Labeled items: DataFrame[item_id, label, source, time (UTC), event_id]."""
        df = self._frame("SELECT item_id, label, source, time, event_id FROM current_labels "
                         "ORDER BY event_id")
        df["event_id"] = df["event_id"].astype("int64")
        return df

    def label_map(self) -> dict[str, str]:
        """item id -> current class name, for labeled items (faster than :meth:`current`)."""
        return dict(self._query("SELECT item_id, label FROM current_labels"))

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
        ids = check_ids(item_ids)
        with self._lock:
            raw = current_class_ids(self._conn, ids)
            names = dict(self._conn.execute("SELECT class_id, name FROM class_names").fetchall())
        return {i: names[c] for i, c in raw.items()}

    def history(self) -> pd.DataFrame:
        """Every event, oldest first.

        DataFrame[event_id, group_id, item_id, label, previous, source, time, undone,
        reverts]: ``label``/``previous`` are class names (None = unlabeled), ``undone`` is
        True for events reverted by an undo; undo rows have source ``"undo"`` and
        ``reverts`` = the group they reverted.
        """
        df = self._frame(
            "SELECT e.event_id, e.group_id, e.item_id, n.name AS label, "
            "p.name AS previous, e.source, e.time, e.undone, e.reverts "
            "FROM events e LEFT JOIN class_names n ON n.class_id = e.class_id "
            "LEFT JOIN class_names p ON p.class_id = e.previous_id ORDER BY e.event_id"
        )
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
            check_source(source)
        if all_events and source is None:
            raise ValueError("undo(all_events=True) needs a source, e.g. source='zero-shot'.")
        with self._write() as conn:
            n_items, n_groups = undo_groups(conn, source=source, all_events=all_events,
                                            now=time.time())
        if n_groups:
            log.info("undo: reverted %d item(s) from %d call(s)", n_items, n_groups)
        return n_items

    # ------------------------------------------------------------------ negatives
    def add_negatives(self, item_ids: Iterable[str], label: str, *, source: str) -> int:
        """Record "not ``label``" for these items (hard negatives). Returns rows added."""
        check_source(source)
        ids = check_ids(item_ids)
        label = check_label(label, allow_none=False)
        with self._write() as conn:
            return _classes.add_negatives(conn, ids, label, source=source, now=time.time())

    def remove_negatives(self, item_ids: Iterable[str], label: str) -> int:
        """Forget "not ``label``" for these items. Returns rows removed."""
        ids = check_ids(item_ids)
        with self._write() as conn:
            return _classes.remove_negatives(conn, ids, label)

    def negatives(self) -> pd.DataFrame:
        """Hard negatives: DataFrame[item_id, label, source, time]."""
        return self._frame(
            "SELECT g.item_id, n.name AS label, g.source, g.time FROM negatives g "
            "JOIN class_names n ON n.class_id = g.class_id ORDER BY g.time, g.item_id"
        )

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
        """Current labels as DataFrame[item_id, label, source, time] (excluded items left out).

        ``path_or_format``: "dataframe" returns the DataFrame; "csv" / "json" return text,
        "parquet" returns bytes; a path ending in .csv / .json / .parquet writes that file
        and returns its Path.
        """
        return write_labels(without_excluded(self, self.current())[["item_id", "label", "source",
                                                                    "time"]], path_or_format)

    def import_labels(
        self, df_or_path: pd.DataFrame | str | os.PathLike, *, source: str = "import"
    ) -> int:
        """Label items from a DataFrame or a .csv / .json / .parquet file (columns item_id,
        label; others ignored). Unknown classes are added. One undoable event group,
        all or nothing. Returns the number of items labeled.
        """
        check_source(source)
        ids, labels = read_label_table(df_or_path)
        return self.set_many(ids, labels, source=source, _kind="import")

"""The label store's SQLite layout, its connection settings, and what may be written.

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
  (learning-curve records as JSON), ``state`` (the change counter behind ``version()``),
  ``exclusions`` (items left out of training and export: append-only exclude / include
  events with a reason and a source; undo flags them ``undone``; see ``store/exclusions.py``).

Durability: WAL journal with ``synchronous=FULL``, so a commit is fsynced to the WAL before
the call returns; a process killed with SIGKILL (or a power cut) keeps every acknowledged
label. Concurrency: connections wait up to ``busy_timeout`` for the write lock.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "FILE_NAME", "SCHEMA_VERSION", "SOURCES", "UNDO_SOURCE", "check_ids", "check_label",
    "check_source", "connect", "to_datetime",
]

log = logging.getLogger(__name__)

SOURCES: tuple[str, ...] = ("click", "bulk", "search", "zero-shot", "prototype", "import", "review")
"""Where a label came from; every labeling call names one of these."""

UNDO_SOURCE = "undo"
"""The ``source`` of the history rows an undo appends (never a labeling source)."""

FILE_NAME = "labels.sqlite"
"""File name used when :class:`~dfwidgets.store.LabelStore` is given a folder."""

SCHEMA_VERSION = 1

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
CREATE TABLE IF NOT EXISTS exclusions (
    event_id INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id INTEGER NOT NULL,
    item_id  TEXT NOT NULL,
    excluded INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    source   TEXT NOT NULL,
    time     REAL NOT NULL,
    undone   INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS exclusions_item ON exclusions(item_id, event_id);
CREATE TABLE IF NOT EXISTS state (
    k       INTEGER PRIMARY KEY CHECK (k = 0),
    version INTEGER NOT NULL
);
INSERT OR IGNORE INTO state (k, version) VALUES (0, 0);
"""


def connect(path: Path, *, timeout: float) -> sqlite3.Connection:
    """An autocommit connection with WAL, ``synchronous=FULL``, foreign keys and a busy
    timeout of ``timeout`` seconds (transactions are begun explicitly)."""
    conn = sqlite3.connect(str(path), timeout=timeout, isolation_level=None, check_same_thread=False)
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
    if str(mode).lower() != "wal":
        log.warning("SQLite refused WAL mode for %s (got %s)", path, mode)
    conn.execute("PRAGMA synchronous = FULL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def create_schema(conn: sqlite3.Connection) -> None:
    """Create missing tables and views (inside the caller's write transaction)."""
    for statement in _SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    conn.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
        (json.dumps(SCHEMA_VERSION),),
    )


def check_source(source: str) -> str:
    """``source`` if it is one of :data:`SOURCES`, else ValueError naming them."""
    if source not in SOURCES:
        raise ValueError(
            f"Unknown label source {source!r}. Use one of: {', '.join(SOURCES)}."
        )
    return source


def check_label(label: Any, *, allow_none: bool) -> str | None:
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


def check_ids(item_ids: Iterable[Any]) -> list[str]:
    """Item ids as a list of non-empty strings (one string counts as one id)."""
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


def to_datetime(seconds: pd.Series) -> pd.Series:
    """Unix seconds -> UTC timestamps."""
    return pd.to_datetime(seconds.astype("float64"), unit="s", utc=True)

"""LabelStore: every label in one SQLite file, committed before the call returns.

Modules: ``label_store`` (the class: transactions, reads, writes), ``schema`` (file
layout, connection settings, input checks, :data:`SOURCES`), ``classes`` (add, rename,
merge), ``history`` (the append-only event log and undo), ``export`` (CSV / JSON /
Parquet out and in). The store knows nothing of models or images.
"""

from __future__ import annotations

from dfwidgets.store.label_store import LabelStore
from dfwidgets.store.schema import FILE_NAME, SOURCES, UNDO_SOURCE

__all__ = ["FILE_NAME", "SOURCES", "UNDO_SOURCE", "LabelStore"]

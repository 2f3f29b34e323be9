"""Bringing existing labels into a Session: from class sub-folders, a DataFrame or a CSV.

One ``label_many`` call with source ``"import"`` (one ``session.undo(source="import")``
reverts it). Existing labels are never overwritten; unknown ids or paths, unreadable
items (``source.problems``), empty labels and items given two different labels are
skipped and reported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .session import Session

__all__ = ["MAX_REPORTED", "folder_labels_available", "import_labels"]

MAX_REPORTED = 20  # ids listed per kind of skipped item
ID_COLUMNS = ("item_id", "id")
PATH_COLUMNS = ("path", "file", "filepath", "filename")


def import_labels(session: Session, source: Any = "folders", *, label_column: str = "label",
                  id_column: str | None = None, path_column: str | None = None
                  ) -> dict[str, Any]:
    """Label items from existing labels; never overwrites a label (one undoable call).

    ``source``: ``"folders"`` (the class sub-folder names of a source made by
    ``ImageSource.from_folder``), a pandas DataFrame, or a CSV path (also .json /
    .parquet). A table names items by ``id_column`` (``session.ids``) or ``path_column``
    (file paths, compared resolved; relative ones against the table's folder, the current
    folder and the image folder); by default the first of "item_id", "id", "path",
    "file", "filepath", "filename" that exists. Returns dict(imported, skipped_labeled,
    unknown (first 20 ids/paths), n_unknown, unreadable (first 20 item ids),
    n_unreadable, n_empty, conflicting (first 20 item ids with two labels),
    n_conflicting, classes (names imported)).
    """
    s = session
    if isinstance(source, str) and source == "folders":
        idx, names, unknown, n_empty = _from_folders(s)
        conflicting: list[str] = []
    else:
        frame, base = _read_table(source)
        idx, names, unknown, n_empty, conflicting = _from_table(
            s, frame, base, label_column=label_column, id_column=id_column,
            path_column=path_column)
    bad = np.zeros(len(s.ids), dtype=bool)
    problems = s.source.problems
    if len(problems):
        bad[problems["index"].to_numpy(dtype=np.int64)] = True
    unreadable = idx[bad[idx]]
    keep = ~bad[idx]
    labeled = s.label_array()[idx] >= 0
    skipped_labeled = int((labeled & keep).sum())
    keep &= ~labeled
    idx, names = idx[keep], [n for n, k in zip(names, keep) if k]
    if idx.size:
        s.label_many(idx, names, source="import")
    order = {c: i for i, c in enumerate(s.classes)}
    return {
        "imported": int(idx.size), "skipped_labeled": skipped_labeled,
        "unknown": unknown[:MAX_REPORTED], "n_unknown": len(unknown),
        "unreadable": s.ids[unreadable[:MAX_REPORTED]].tolist(),
        "n_unreadable": int(unreadable.size), "n_empty": int(n_empty),
        "conflicting": conflicting[:MAX_REPORTED], "n_conflicting": len(conflicting),
        "classes": sorted(set(names), key=lambda c: (order.get(c, len(order)), c)),
    }


def folder_labels_available(session: Session) -> int:
    """Items with a class sub-folder label that are not labeled yet and can be read
    (what ``import_labels("folders")`` would import); 0 without folder labels."""
    src = session.source
    if not getattr(src, "labels_from_folders", False):
        return 0
    todo = (np.asarray(src.labels) >= 0) & (session.label_array() < 0)
    problems = src.problems
    if len(problems):
        todo[problems["index"].to_numpy(dtype=np.int64)] = False
    return int(todo.sum())


# ------------------------------------------------------------------ folders
def _from_folders(s: Session) -> tuple[np.ndarray, list[str], list[str], int]:
    src = s.source
    if not getattr(src, "labels_from_folders", False):
        if getattr(src, "labels", None) is not None:
            raise ValueError(
                f"This source ({getattr(src, 'kind', 'unknown')} kind) has labels, but they "
                "did not come from class sub-folders: they are the dataset's ground truth, "
                "used to measure accuracy, so they are not imported. Import a DataFrame or "
                "CSV of labels instead: session.import_labels(df)."
            )
        raise ValueError(
            "No folder labels to import: the source was not made from class sub-folders "
            "(ImageSource.from_folder over root/<class>/<image>). Import a DataFrame or CSV "
            "instead: session.import_labels(df, id_column=... or path_column=...)."
        )
    codes = np.asarray(src.labels, dtype=np.int64)
    names = np.asarray(src.classes, dtype=object)
    idx = np.flatnonzero(codes >= 0).astype(np.int64)
    return idx, [str(c) for c in names[codes[idx]]], [], 0


# ------------------------------------------------------------------ tables
def _read_table(source: Any) -> tuple[pd.DataFrame, Path | None]:
    """(the table, the folder of its file or None for a DataFrame)."""
    if isinstance(source, pd.DataFrame):
        return source, None
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(
            f'import_labels takes "folders", a pandas DataFrame or a CSV path; got '
            f"{type(source).__name__}."
        )
    path = Path(source).expanduser()
    if not path.is_file():
        raise ValueError(
            f"No file {str(path)!r} to import labels from (check the path; for class "
            'sub-folders use import_labels("folders")).'
        )
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        frame = pd.read_parquet(path)
    elif suffix == ".json":
        frame = pd.read_json(path, orient="records", dtype=False)
    else:  # .csv, .tsv, .txt...
        frame = pd.read_csv(path, sep=None if suffix != ".csv" else ",", dtype=str,
                            keep_default_na=False, na_values=[""], engine="python")
    return frame, path.resolve().parent


def _from_table(s: Session, frame: pd.DataFrame, base: Path | None, *, label_column: str,
                id_column: str | None, path_column: str | None
                ) -> tuple[np.ndarray, list[str], list[str], int, list[str]]:
    """(item indices, label names, unknown keys, empty labels, conflicting ids)."""
    columns = [str(c) for c in frame.columns]
    if len(frame) == 0:
        raise ValueError(f"The table has no rows (columns {columns}); nothing to import.")
    if id_column is not None and path_column is not None:
        raise ValueError("Pass id_column= or path_column=, not both.")
    for col, what in ((label_column, "label_column"), (id_column, "id_column"),
                      (path_column, "path_column")):
        if col is not None and col not in frame.columns:
            raise ValueError(f"{what}={col!r} is not a column; the columns are {columns}. "
                             f"Pass {what}=<name>.")
    if id_column is None and path_column is None:
        id_column = next((c for c in ID_COLUMNS if c in frame.columns), None)
        if id_column is None:
            path_column = next((c for c in PATH_COLUMNS if c in frame.columns), None)
        if id_column is None and path_column is None:
            raise ValueError(
                f"The table needs an id or a path column; the columns are {columns}. Pass "
                "id_column=<name> (values from session.ids) or path_column=<name>."
            )
    labels = [_label_text(v) for v in frame[label_column].tolist()]
    keys = frame[id_column if id_column is not None else path_column].tolist()
    if id_column is not None:
        lookup = s._labels.index_of
        found = [lookup.get(_key_text(k)) for k in keys]
    else:
        found = _match_paths(s, keys, base)
    chosen: dict[int, str] = {}
    conflicts: dict[int, None] = {}
    unknown: list[str] = []
    n_empty = 0
    for key, i, label in zip(keys, found, labels):
        if label is None:
            n_empty += 1
        elif i is None:
            unknown.append(_key_text(key))
        elif chosen.setdefault(i, label) != label:
            conflicts[i] = None
    for i in conflicts:
        del chosen[i]
    idx = np.fromiter(chosen, dtype=np.int64, count=len(chosen))
    return idx, list(chosen.values()), unknown, n_empty, s.ids[list(conflicts)].tolist()


def _match_paths(s: Session, keys: list[Any], base: Path | None) -> list[int | None]:
    """Item index per path (None when no source file is that path)."""
    paths = s.source.paths
    if paths is None:
        raise ValueError("This source has no file paths (it is not made of files); name the "
                         "items by id instead: id_column=<name> with values from session.ids.")
    where = {os.path.realpath(p): i for i, p in enumerate(paths) if p}
    spec = s.source.spec or {}
    roots = [b for b in (base, Path.cwd(),
                         Path(spec["path"]) if spec.get("kind") == "folder" else None) if b]
    out: list[int | None] = []
    for key in keys:
        text = _key_text(key)
        hit = None
        if text:
            p = Path(text).expanduser()
            for candidate in ([p] if p.is_absolute() else [r / p for r in roots]):
                hit = where.get(os.path.realpath(candidate))
                if hit is not None:
                    break
        out.append(hit)
    return out


def _missing(value: Any) -> bool:
    return (value is None or value is pd.NA or value is pd.NaT
            or (isinstance(value, (float, np.floating)) and math.isnan(value)))


def _key_text(value: Any) -> str:
    """An id or path cell as text ("" when missing); whole floats lose their ".0"."""
    if _missing(value):
        return ""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return str(int(value))
    return str(value).strip()


def _label_text(value: Any) -> str | None:
    """A label cell as a class name, or None when it is empty."""
    if _missing(value):
        return None
    text = _key_text(value)
    return text or None

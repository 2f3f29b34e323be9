"""Label files in and out: current labels as a DataFrame, CSV, JSON or Parquet, and the
checks on a table of labels before it is imported."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["EXPORT_FORMATS", "read_label_table", "without_excluded", "write_labels"]

EXPORT_FORMATS = ("dataframe", "csv", "json", "parquet")
_SUFFIX_FORMATS = {".csv": "csv", ".json": "json", ".parquet": "parquet", ".pq": "parquet"}


def without_excluded(store: Any, df: pd.DataFrame) -> pd.DataFrame:
    """``df`` (with an item_id column) minus the items excluded in ``store`` now."""
    from dfwidgets.store.exclusions import excluded_ids

    gone = set(excluded_ids(store)["item_id"])
    return df[~df["item_id"].isin(gone)] if gone else df


def write_labels(df: pd.DataFrame, path_or_format: str | os.PathLike) -> Any:
    """``df`` (item_id, label, source, time) in the format asked for.

    ``path_or_format``: "dataframe" returns ``df``; "csv" / "json" return text, "parquet"
    returns bytes; a path ending in .csv / .json / .parquet writes that file and returns
    its Path.
    """
    target = str(path_or_format)
    fmt = target.lower() if target.lower() in EXPORT_FORMATS else None
    path: Path | None = None
    if fmt is None:
        path = Path(path_or_format).expanduser()
        fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
        if fmt is None:
            raise ValueError(
                f"Cannot tell the export format from {target!r}: use one of "
                f"{', '.join(EXPORT_FORMATS)} or a path ending in .csv, .json, .parquet."
            )
    if fmt == "dataframe":
        return df
    out = df.assign(time=df["time"].map(lambda t: t.isoformat()))
    if fmt == "csv":
        text: str | bytes = out.to_csv(index=False)
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


def read_label_table(df_or_path: pd.DataFrame | str | os.PathLike) -> tuple[list[str], list[str]]:
    """``(item ids, labels)`` from a DataFrame or a .csv / .json / .parquet file with columns
    item_id and label (others ignored); ValueError for missing values, conflicting rows or
    an unknown file type."""
    if isinstance(df_or_path, pd.DataFrame):
        df, name = df_or_path, "the DataFrame"
    else:
        path = Path(df_or_path).expanduser()
        name = str(path)
        df = _read_file(path)
    missing = [c for c in ("item_id", "label") if c not in df.columns]
    if missing:
        raise ValueError(
            f"{name} lacks column(s) {missing}; it needs 'item_id' and 'label' "
            f"(has {list(df.columns)}). Rename columns first, e.g. df.rename(columns=...)."
        )
    ids, labels = df["item_id"], df["label"]
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
    id_list, label_list = ids.astype(str).tolist(), labels.astype(str).tolist()
    seen: dict[str, str] = {}
    conflicts = []
    for i, lab in zip(id_list, label_list):
        if i in seen and seen[i] != lab:
            conflicts.append(i)
        seen[i] = lab
    if conflicts:
        raise ValueError(
            f"{name}: item(s) {conflicts[:5]} appear with different labels; keep one row "
            "per item (e.g. df.drop_duplicates('item_id', keep='last'))."
        )
    return id_list, label_list


def _read_file(path: Path) -> pd.DataFrame:
    """The table in a .csv / .json / .parquet file (ids and labels read as strings)."""
    if not path.exists():
        raise FileNotFoundError(f"No file {path} to import labels from.")
    fmt = _SUFFIX_FORMATS.get(path.suffix.lower())
    if fmt == "csv":
        return pd.read_csv(path, dtype={"item_id": str, "label": str},
                           keep_default_na=False, na_values=[""])
    if fmt == "json":
        return pd.read_json(path, orient="records", dtype={"item_id": str, "label": str})
    if fmt == "parquet":
        return pd.read_parquet(path)
    raise ValueError(
        f"Cannot import {path.name}: use a .csv, .json or .parquet file, or a DataFrame."
    )

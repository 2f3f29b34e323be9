"""Labels and ids for image sources: class names or ints in, int64 codes and names out.

Shapes: ``labels`` hold one entry per image (``N``); codes are ``(N,)`` int64 with ``-1``
for "no label"; ids are ``N`` unique strings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["check_ids", "default_ids", "encode_labels", "is_missing", "to_list", "unique_strings"]


def is_missing(value: Any) -> bool:
    """None, NaN, pd.NA or NaT (cheap for the common str/int cases)."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, int, np.integer)):
        return False
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def to_list(values: Any) -> Any:
    """Tensors/arrays to plain Python values (lists or scalars)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, np.generic):
        return values.item()
    return list(values) if isinstance(values, (tuple, list)) else values


def encode_labels(
    labels: Sequence[Any] | np.ndarray | None, classes: Sequence[str] | None, n: int
) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels (names or ints; None/NaN/-1 = none) -> int64 ``(N,)`` and the class list.

    Names not in ``classes`` are appended to it; ints must index ``classes``.
    """
    cls_names = None if classes is None else [str(c) for c in classes]
    if cls_names is not None and len(set(cls_names)) != len(cls_names):
        raise ValueError(f"classes contain duplicates: {cls_names}; class names must be unique.")
    if labels is None:
        return None, cls_names
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, np.ndarray) and np.issubdtype(labels.dtype, np.integer) and labels.ndim == 1:
        return _encode_int_labels(labels, cls_names, n)
    values = to_list(labels) if not isinstance(labels, (str, bytes)) else labels
    if isinstance(values, (str, bytes)) or not isinstance(values, list):
        raise TypeError(f"labels must be a sequence with one label per image, got {type(labels).__name__}.")
    if len(values) != n:
        raise ValueError(f"labels has {len(values)} entries but there are {n} images; "
                         "give exactly one label per image (None for unlabeled).")
    out = np.full(n, -1, dtype=np.int64)
    names = list(cls_names) if cls_names is not None else []
    lookup = {c: k for k, c in enumerate(names)}
    ints: list[tuple[int, int]] = []
    for i, v in enumerate(values):
        if is_missing(v) or (isinstance(v, str) and v == ""):
            continue
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"label {i} is a bool ({v!r}); use class names or ints.")
        if isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer()):
            ints.append((i, int(v)))
            continue
        if isinstance(v, (float, np.floating)):
            raise TypeError(f"label {i} is {v!r}, not a class name or whole number.")
        name = str(v)
        k = lookup.get(name)
        if k is None:
            k = lookup[name] = len(names)
            names.append(name)
        out[i] = k
    if ints:
        if len(ints) < sum(1 for v in values if not is_missing(v) and v != ""):
            raise ValueError("labels mix class names and integers; use one kind.")
        top = max(v for _, v in ints)
        bad = [v for _, v in ints if v < -1 or (cls_names is not None and v >= len(cls_names))]
        if bad:
            raise ValueError(
                f"integer labels must lie in [-1, {len(cls_names) - 1 if cls_names else 'K-1'}] "
                f"(-1 = unlabeled), got {sorted(set(bad))[:5]}; pass classes= with one name per class."
            )
        if cls_names is None:
            names = [str(k) for k in range(top + 1)] if top >= 0 else []
        for i, v in ints:
            out[i] = v
    if not names and cls_names is None:
        return out, []
    return out, names


def _encode_int_labels(
    labels: np.ndarray, cls_names: list[str] | None, n: int
) -> tuple[np.ndarray, list[str]]:
    """Vectorised path of :func:`encode_labels` for an int array ``(N,)``."""
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but there are {n} images; "
                         "give exactly one label per image (-1 for unlabeled).")
    out = labels.astype(np.int64)
    top = int(out.max()) if n else -1
    limit = len(cls_names) if cls_names is not None else None
    bad = out[(out < -1) | ((out >= limit) if limit is not None else False)]
    if bad.size:
        raise ValueError(
            f"integer labels must lie in [-1, {limit - 1 if limit is not None else 'K-1'}] "
            f"(-1 = unlabeled), got {sorted(set(bad.tolist()))[:5]}; pass classes= with one name per class."
        )
    names = cls_names if cls_names is not None else [str(k) for k in range(top + 1)]
    return out, names


def default_ids(n: int) -> list[str]:
    """``n`` zero-padded position ids: ``"00000"``, ``"00001"``, ..."""
    width = max(5, len(str(max(n - 1, 0))))
    return [f"{i:0{width}d}" for i in range(n)]


def unique_strings(values: list[str]) -> list[str]:
    """``values`` with repeats made unique: the second ``"a"`` becomes ``"a#2"``."""
    seen: dict[str, int] = {}
    out = []
    for v in values:
        count = seen.get(v, 0)
        seen[v] = count + 1
        out.append(v if count == 0 else f"{v}#{count + 1}")
    return out


def check_ids(ids: Sequence[Any], n: int) -> np.ndarray:
    """``(N,)`` object array of the ids as strings; ValueError unless ``n`` unique ids."""
    arr = np.empty(n, dtype=object)
    values = [str(i) for i in to_list(ids)] if not isinstance(ids, np.ndarray) else [str(i) for i in ids]
    if len(values) != n:
        raise ValueError(f"ids has {len(values)} entries but there are {n} images; give one id per image.")
    if len(set(values)) != n:
        dup = pd.Series(values)[pd.Series(values).duplicated()].unique()[:3].tolist()
        raise ValueError(f"ids must be unique; duplicates include {dup}.")
    arr[:] = values
    return arr

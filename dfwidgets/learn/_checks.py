"""Input checks shared by the learners and strategies: clear errors that say how to fix."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["check_embeddings", "check_labels", "check_mask", "encode_labels"]


def _preview(indices: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(int(i)) for i in indices[:limit])
    more = f", ... ({len(indices)} in all)" if len(indices) > limit else ""
    return f"[{shown}{more}]"


def check_embeddings(
    X: Any, *, name: str = "embeddings", dim: int | None = None, allow_empty: bool = False
) -> np.ndarray:
    """Return ``X`` as a C-contiguous float32 array of shape (N, D), or raise ValueError.

    Rejects non-2-D input, a dimension other than ``dim``, and NaN/infinite values
    (the message names the offending rows).
    """
    arr = np.asarray(X)
    if arr.dtype == object:
        raise ValueError(f"{name} must be a numeric (N, D) array; got dtype object")
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of shape (N, D); got shape {arr.shape}. "
            "Stack one embedding vector per item."
        )
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{name} is empty (0 rows); there is nothing to learn from")
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(
            f"{name} has {arr.shape[1]} dimensions but the model was fitted on {dim}; "
            "use embeddings from the same embedder for fitting and predicting"
        )
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        bad = np.flatnonzero(~finite)
        raise ValueError(
            f"{name} has NaN or infinite values in {len(bad)} row(s): {_preview(bad)}; "
            "re-embed those items or leave them out"
        )
    return arr


def check_labels(y: Any, n: int, *, name: str = "y") -> np.ndarray:
    """Return ``y`` as a 1-D array of length ``n``, or raise ValueError."""
    arr = np.asarray(y)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per row); got shape {arr.shape}")
    if len(arr) != n:
        raise ValueError(
            f"{name} has {len(arr)} labels but the embeddings have {n} rows; "
            "pass exactly one label per embedding row"
        )
    if arr.dtype.kind == "f" and np.isnan(arr).any():
        bad = np.flatnonzero(np.isnan(arr))
        raise ValueError(f"{name} has missing (NaN) labels in rows {_preview(bad)}; drop them")
    if arr.dtype == object:
        missing = np.array([v is None for v in arr])
        if missing.any():
            raise ValueError(
                f"{name} has missing (None) labels in rows {_preview(np.flatnonzero(missing))}; "
                "fit only on labeled items"
            )
    return arr


def check_mask(mask: Any, n: int, *, name: str = "labeled_mask") -> np.ndarray:
    """Return a boolean (n,) mask, or raise ValueError."""
    arr = np.asarray(mask)
    if arr.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) to match the pool; got {arr.shape}")
    if arr.dtype != bool:
        raise ValueError(f"{name} must be a boolean array; got dtype {arr.dtype}")
    return arr


def encode_labels(
    y: np.ndarray, classes: Sequence[Any] | None
) -> tuple[np.ndarray, np.ndarray]:
    """Map labels to codes ``0..K-1``; return (classes_, codes).

    ``classes`` fixes the column order (a class may have no examples yet); without it the
    classes are the sorted unique labels. Labels not in ``classes`` raise ValueError.
    """
    if classes is None:
        classes_, codes = np.unique(y, return_inverse=True)
        return classes_, codes.astype(np.int64)
    classes_ = np.asarray(list(classes))
    if len(classes_) == 0:
        raise ValueError("classes is empty; pass at least two class names")
    if len(set(classes_.tolist())) != len(classes_):
        raise ValueError(f"classes has duplicates: {list(classes_)}")
    lookup = {c: i for i, c in enumerate(classes_.tolist())}
    try:
        codes = np.fromiter((lookup[v] for v in y.tolist()), dtype=np.int64, count=len(y))
    except KeyError:
        unknown = sorted({v for v in y.tolist() if v not in lookup}, key=str)
        raise ValueError(
            f"labels {unknown[:10]} are not in classes={list(classes_)}; "
            "add them to the class list first"
        ) from None
    return classes_, codes

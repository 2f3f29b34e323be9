"""What the EmbeddingMap draws for the Session's layout: coordinates in the map's data
space and the status line's method and failure reason."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["LAYOUT_NAMES", "layout_view", "normalize"]

LAYOUT_NAMES = {"pca": "pca", "umap": "umap", "given": "custom"}


def normalize(xy: np.ndarray) -> np.ndarray:
    """(N, 2) layout -> float32 in [-0.95, 0.95] (aspect ratio kept), the map's data space."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    center = (lo + hi) / 2
    span = float((hi - lo).max()) or 1.0
    return ((xy - center) * (1.9 / span)).astype(np.float32)


def layout_view(status: dict[str, Any]) -> tuple[str, str]:
    """``session.layout_status`` -> (method shown: "pca" | "pca-pending" | "umap" |
    "custom", error: why the requested layout failed, "" when it did not)."""
    method = LAYOUT_NAMES.get(status.get("method") or "", "pca")
    if status.get("state") == "computing":
        method = "pca-pending"
    if status.get("state") != "failed":
        return method, ""
    # a failed UMAP leaves the PCA view drawn
    return ("pca" if method == "umap" else method), str(status.get("error") or "unknown error")

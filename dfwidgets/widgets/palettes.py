"""Colours of the views: a categorical palette (Tableau-20 style, readable on light and
dark backgrounds, golden-angle hues beyond 20), a viridis ramp, and the grey of
"unlabeled" / "missing". Pure functions, no widget state."""

from __future__ import annotations

import colorsys

import numpy as np

__all__ = ["CATEGORICAL", "UNLABELED", "categorical", "ramp", "categorical_codes",
           "continuous_codes"]

UNLABELED = "#9e9e9e"
CATEGORICAL = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#e6ab02", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
]
VIRIDIS_ANCHORS = [  # anchors of matplotlib's viridis, interpolated to any length
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37),
]
MAX_CATEGORIES = 254  # codes are uint8 and 0 means "none"


def ramp(n: int = 256) -> list[str]:
    """``n`` CSS hex colours along viridis, dark to light."""
    anchors = np.asarray(VIRIDIS_ANCHORS, dtype=float)
    pos = np.linspace(0, len(anchors) - 1, n)
    lo = np.floor(pos).astype(int).clip(0, len(anchors) - 2)
    frac = (pos - lo)[:, None]
    rgb = anchors[lo] * (1 - frac) + anchors[lo + 1] * frac
    return ["#%02x%02x%02x" % tuple(int(round(c)) for c in row) for row in rgb]


def categorical(k: int) -> list[str]:
    """``k`` distinct CSS hex colours: the fixed palette, then golden-angle hues."""
    if k <= len(CATEGORICAL):
        return CATEGORICAL[:k]
    extra = []
    for i in range(k - len(CATEGORICAL)):
        r, g, b = colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.55, 0.65)
        extra.append("#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255)))
    return CATEGORICAL + extra


def categorical_codes(idx: np.ndarray, names: list[str], *, title: str,
                      none_name: str) -> tuple[np.ndarray, list[str], dict]:
    """(N,) category index (-1 = none) -> (codes (N,) int64 into the palette, palette,
    legend ``{title, kind: "categorical", items: [{name, color, count}]}``)."""
    if len(names) > MAX_CATEGORIES:
        raise ValueError(f"{len(names)} classes are too many to colour (at most {MAX_CATEGORIES}).")
    idx = np.asarray(idx, dtype=np.int64)
    codes = np.where(idx >= 0, idx + 1, 0)
    counts = np.bincount(codes, minlength=len(names) + 1)
    colors = categorical(len(names))
    items = [{"name": str(nm), "color": colors[k], "count": int(counts[k + 1])}
             for k, nm in enumerate(names)]
    if counts[0]:
        items.append({"name": none_name, "color": UNLABELED, "count": int(counts[0])})
    return codes, [UNLABELED, *colors], {"title": title, "kind": "categorical", "items": items}


def continuous_codes(values: np.ndarray, *, title: str) -> tuple[np.ndarray, list[str], dict]:
    """(N,) numbers -> (codes (N,) uint8: 1..255 along the ramp, 0 for NaN/inf, palette,
    legend ``{title, kind: "continuous", min_label, max_label, items}``)."""
    values = np.asarray(values, dtype=float)
    finite = np.isfinite(values)
    if not finite.any():
        raise ValueError("all values are NaN or infinite")
    lo, hi = float(values[finite].min()), float(values[finite].max())
    scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
    codes = np.where(finite, 1 + np.round(np.nan_to_num(scaled) * 254), 0).astype(np.uint8)
    legend = {"title": title, "kind": "continuous", "min_label": f"{lo:.3g}",
              "max_label": f"{hi:.3g}", "items": []}
    if (~finite).any():
        legend["items"].append({"name": "missing", "color": UNLABELED, "count": int((~finite).sum())})
    return codes, [UNLABELED, *ramp(255)], legend

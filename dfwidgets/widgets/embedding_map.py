"""EmbeddingMap: a WebGL map of the whole dataset with thumbnails, lasso and bulk labels.

::

    m = dfw.EmbeddingMap(session)         # or dfw.EmbeddingMap(src, emb): throwaway Session
    m                                     # displays in JupyterLab / Notebook 7
    m.selected                            # (k,) uint32 indices of the lasso/box selection
    m.color_by = "prediction"             # "label" | "prediction" | "uncertainty" | "difficulty" | (N,) array
    m.label_selection("Sneaker")          # the same as the widget's "Label" button; source="bulk"
"""

from __future__ import annotations

import colorsys
import logging
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..layout import LayoutComputer
from ..thumbs import SpriteSheets, encode_image
from ._common import Buffer, bundle, resolve_session

__all__ = ["EmbeddingMap"]

log = logging.getLogger(__name__)

COLOR_MODES = ("label", "prediction", "uncertainty", "difficulty")
UNLABELED = "#9e9e9e"
# Tableau-20 style categorical colours, readable on light and dark backgrounds
CATEGORICAL = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
    "#17becf", "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896",
    "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
]
_VIRIDIS = [  # anchors of matplotlib's viridis, interpolated to 256 steps
    (68, 1, 84), (72, 40, 120), (62, 74, 137), (49, 104, 142), (38, 130, 142),
    (31, 158, 137), (53, 183, 121), (110, 206, 88), (181, 222, 43), (253, 231, 37),
]


def _ramp(n: int = 256) -> list[str]:
    anchors = np.asarray(_VIRIDIS, dtype=float)
    pos = np.linspace(0, len(anchors) - 1, n)
    lo = np.floor(pos).astype(int).clip(0, len(anchors) - 2)
    frac = (pos - lo)[:, None]
    rgb = anchors[lo] * (1 - frac) + anchors[lo + 1] * frac
    return ["#%02x%02x%02x" % tuple(int(round(c)) for c in row) for row in rgb]


def _categorical(k: int) -> list[str]:
    if k <= len(CATEGORICAL):
        return CATEGORICAL[:k]
    extra = []
    for i in range(k - len(CATEGORICAL)):  # golden-angle hues beyond the fixed palette
        r, g, b = colorsys.hls_to_rgb((i * 0.618034) % 1.0, 0.55, 0.65)
        extra.append("#%02x%02x%02x" % (int(r * 255), int(g * 255), int(b * 255)))
    return CATEGORICAL + extra


def _normalize(xy: np.ndarray) -> np.ndarray:
    """(N, 2) layout -> float32 in [-0.95, 0.95] (aspect ratio kept), the map's data space."""
    xy = np.asarray(xy, dtype=np.float64)
    lo, hi = xy.min(axis=0), xy.max(axis=0)
    center = (lo + hi) / 2
    span = float((hi - lo).max()) or 1.0
    return ((xy - center) * (1.9 / span)).astype(np.float32)


class EmbeddingMap(anywidget.AnyWidget):
    """A zoomable WebGL map of all items (one point each) over a Session.

    Hover shows the thumbnail with id, label, prediction and confidence; click pins an
    item; Shift+drag (or long-press, or the Lasso/Box modes) selects, Ctrl/Cmd adds, Alt
    subtracts; "Label selection as…" writes the selection to the LabelStore with source
    "bulk". Colours follow the Session live (labels and model updates).

    Args:
        session_or_source: a :class:`~dfwidgets.session.Session`, or an ImageSource (then
            pass ``embeddings`` too and a throwaway Session is made in a temp folder).
        embeddings: (N, D) embeddings when a source is given.
        layout: "umap" (PCA at once, UMAP in the background, then points move), "pca", or
            an (N, 2) array of coordinates.
        color_by: "label" | "prediction" | "uncertainty" | "difficulty" | (N,) array.
        thumb_size: thumbnail cell size in px in the sprite sheets.
        height: map height in px.
    """

    _esm = bundle("embedding_map")

    _n = t.Int(0).tag(sync=True)
    """Number of points N."""
    _coords = Buffer(b"").tag(sync=True)
    """float32 (N, 2) map coordinates, x/y interleaved, in [-1, 1]."""
    _layout_method = t.Unicode("pca").tag(sync=True)
    """Layout shown now: "pca", "pca-pending" (UMAP still computing), "umap" or "custom"."""
    _color_codes = Buffer(b"").tag(sync=True)
    """uint8 (N,) index into ``_palette`` for every point (sent apart from coordinates)."""
    _palette = t.List(t.Unicode()).tag(sync=True)
    """CSS colours indexed by ``_color_codes``."""
    _legend = t.Dict().tag(sync=True)
    """{title, kind: "categorical"|"continuous", items: [{name, color, count}], min_label, max_label}."""
    _color_by_name = t.Unicode("label").tag(sync=True)
    """Current colour mode name (set by the widget's "Colour by" menu too)."""
    _selected = Buffer(b"").tag(sync=True)
    """uint32 sorted item indices of the selection (written by lasso/box in the page)."""
    pinned = t.Int(-1).tag(sync=True)
    """Index of the pinned item (click on a point), -1 for none."""
    _view = t.List(t.Float(), default_value=[-1.0, 1.0, -1.0, 1.0]).tag(sync=True)
    """Visible data rectangle [x0, x1, y0, y1] in map coordinates (written by the page)."""
    _classes = t.List(t.Unicode()).tag(sync=True)
    """Class names offered by the "Label selection as…" box."""
    _message = t.Dict().tag(sync=True)
    """Inline message {text, kind: "info"|"ok"|"error", undo: bool, serial}."""
    _sprite_meta = t.Dict().tag(sync=True)
    """Sprite sheet geometry (thumbs.SpriteSheets.meta())."""
    height = t.Int(520).tag(sync=True)
    """Map height in px."""

    def __init__(
        self,
        session_or_source: Any,
        embeddings: np.ndarray | None = None,
        *,
        layout: str | np.ndarray = "umap",
        color_by: str | np.ndarray = "label",
        thumb_size: int = 32,
        height: int = 520,
        **session_kwargs: Any,
    ) -> None:
        super().__init__()
        self.session = resolve_session(session_or_source, embeddings, **session_kwargs)
        s = self.session
        n = len(s.ids)
        self.sprites = SpriteSheets(s.source, thumb_size=thumb_size)
        self._msg_serial = 0
        self._color_array: np.ndarray | None = None
        self._layout: LayoutComputer | None = None
        self._handles: list[int] = []
        with self.hold_sync():
            self._n = n
            self.height = int(height)
            self._sprite_meta = self.sprites.meta()
            self._classes = list(s.classes)
            self._set_layout(layout)
            self.color_by = color_by
        self.on_msg(self._on_msg)
        self._handles = [
            s.on("labels_changed", self._on_labels_changed),
            s.on("model_updated", self._on_model_updated),
            s.on("classes_changed", self._on_classes_changed),
        ]

    # ------------------------------------------------------------------ layout
    def _set_layout(self, layout: str | np.ndarray) -> None:
        n = self._n
        if isinstance(layout, str):
            if layout not in ("umap", "pca"):
                raise ValueError(f'layout must be "umap", "pca" or an (N, 2) array; got {layout!r}.')
            self._layout = LayoutComputer(method=layout)
            self._layout.fit(self.session.embeddings, background=True, callback=self._on_layout_done)
            if not self._layout.done:
                self._show_coords(self._layout.embedding_, "pca-pending")
            return
        xy = np.asarray(layout)
        if xy.shape != (n, 2) or not np.isfinite(xy).all():
            raise ValueError(
                f"layout array must be finite with shape ({n}, 2) (one x, y per item); "
                f"got {xy.shape}."
            )
        self._show_coords(xy, "custom")

    def _on_layout_done(self, xy: np.ndarray) -> None:
        lc = self._layout
        self._show_coords(xy, lc.method_ if lc is not None else "umap")

    def _show_coords(self, xy: np.ndarray, method: str) -> None:
        self._xy = _normalize(xy)
        with self.hold_sync():
            self._coords = self._xy.tobytes()
            self._layout_method = method

    @property
    def coordinates(self) -> np.ndarray:
        """(N, 2) float32 map coordinates of the points as drawn now (data space of ``view``)."""
        return self._xy.copy()

    @property
    def layout(self) -> LayoutComputer | None:
        """The LayoutComputer (PCA/UMAP), or None for a given coordinate array."""
        return self._layout

    @property
    def view(self) -> dict[str, tuple[float, float]]:
        """Visible data rectangle in the browser: {"x": (x0, x1), "y": (y0, y1)}."""
        x0, x1, y0, y1 = self._view
        return {"x": (x0, x1), "y": (y0, y1)}

    # ------------------------------------------------------------------ selection
    @property
    def selected(self) -> np.ndarray:
        """(k,) uint32 sorted indices of the selected items (lasso/box in the map)."""
        return np.frombuffer(self._selected, dtype=np.uint32).copy()

    @selected.setter
    def selected(self, indices: Any) -> None:
        arr = np.asarray(indices)
        if arr.dtype == bool:
            if arr.shape != (self._n,):
                raise ValueError(f"a boolean selection mask needs shape ({self._n},); got {arr.shape}.")
            arr = np.flatnonzero(arr)
        arr = np.atleast_1d(arr)
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"selection indices must be integers; got dtype {arr.dtype}.")
        if arr.size and (arr.min() < 0 or arr.max() >= self._n):
            raise IndexError(f"selection indices must be in 0..{self._n - 1}.")
        self._selected = np.unique(arr).astype(np.uint32).tobytes()

    @t.validate("_selected")
    def _check_selected(self, proposal: Any) -> bytes:
        data = bytes(proposal["value"])
        if len(data) % 4:
            raise t.TraitError("_selected must hold uint32 values (a multiple of 4 bytes).")
        arr = np.frombuffer(data, dtype=np.uint32)
        if arr.size and int(arr.max()) >= self._n:
            raise t.TraitError(f"selection index {int(arr.max())} is out of range 0..{self._n - 1}.")
        if arr.size > 1 and not (np.diff(arr.astype(np.int64)) > 0).all():
            data = np.unique(arr).tobytes()  # sorted, unique: the form the page sends
        return data

    def label_selection(self, label: str) -> int:
        """Label every selected item as ``label`` (a new name creates the class), source
        "bulk". Returns the number of items written. Raises ValueError (with the fix) for
        an empty selection or an empty class name."""
        sel = self.selected
        label = (label or "").strip() if isinstance(label, str) else label
        if not isinstance(label, str):
            raise TypeError(f"label must be a class name (str); got {type(label).__name__}.")
        if sel.size == 0:
            raise ValueError(
                "Nothing is selected: draw a lasso (Shift+drag) or a box around some points first."
            )
        if not label:
            raise ValueError("Type a class name to label the selection with.")
        n = self.session.label(sel.astype(np.int64), label, source="bulk")
        self._say(f"Labeled {n:,} items as “{label}” (source: bulk).", "ok", undo=True)
        self.send({"type": "labels_applied", "label": label, "count": int(n)})
        return n

    # ------------------------------------------------------------------ colours
    @property
    def color_by(self) -> str | np.ndarray:
        """What colours the points: "label" | "prediction" | "uncertainty" | "difficulty"
        | an (N,) array (numbers: a colour ramp; strings or few integers: categories)."""
        return self._color_array if self._color_by_name == "custom" else self._color_by_name

    @color_by.setter
    def color_by(self, value: str | np.ndarray) -> None:
        if isinstance(value, str):
            if value not in COLOR_MODES:
                raise ValueError(
                    f"color_by must be one of {', '.join(COLOR_MODES)} or an (N,) array; got {value!r}."
                )
            self._color_array = None
            if self._color_by_name == value:
                self._recolor()
            else:
                self._color_by_name = value  # observer recolours
            return
        arr = np.asarray(value)
        if arr.shape != (self._n,):
            raise ValueError(f"a color_by array needs shape ({self._n},) (one value per item); got {arr.shape}.")
        self._color_array = arr
        if self._color_by_name == "custom":
            self._recolor()
        else:
            self._color_by_name = "custom"

    @t.observe("_color_by_name")
    def _on_color_mode(self, change: dict) -> None:
        if change["new"] == "custom" and self._color_array is None:
            self._color_by_name = change["old"]
            return
        self._recolor()

    def _recolor(self) -> None:
        mode = self._color_by_name
        try:
            codes, palette, legend = self._colors(mode)
        except Exception as exc:  # never a traceback in the page: keep colours, say why
            log.exception("colouring by %s failed", mode)
            self._say(f"Cannot colour by {mode}: {exc}", "error")
            return
        with self.hold_sync():
            if palette != self._palette:
                self._palette = palette
            self._color_codes = codes.astype(np.uint8).tobytes()
            self._legend = legend

    def _colors(self, mode: str) -> tuple[np.ndarray, list[str], dict]:
        s = self.session
        classes = list(s.classes)
        if mode == "label":
            return self._categorical_colors(s.label_array(), classes, "label", "unlabeled")
        if mode == "prediction":
            pred = s.predictions_
            if pred is None:
                self._say(f"No model yet ({s.fit_status_}); points are grey until one is trained.")
                return self._categorical_colors(np.full(self._n, -1), classes, "prediction", "no model yet")
            return self._categorical_colors(pred, classes, "prediction", "none")
        if mode == "uncertainty":
            if s.uncertainty_ is None:
                self._say(f"No model yet ({s.fit_status_}); uncertainty needs a trained model.")
                return self._categorical_colors(np.full(self._n, -1), [], "uncertainty", "no model yet")
            return self._continuous_colors(np.asarray(s.uncertainty_, float), "uncertainty (1 − max p)")
        if mode == "difficulty":
            if s.probs_ is None:
                self._say(f"No model yet ({s.fit_status_}); difficulty needs a trained model.")
                return self._categorical_colors(np.full(self._n, -1), [], "difficulty", "no model yet")
            from ..learn.issues import difficulty

            return self._continuous_colors(
                np.asarray(difficulty(s.probs_, s.label_array()), float), "difficulty"
            )
        arr = self._color_array
        if arr is None:
            raise ValueError("no color_by array was given")
        if arr.dtype.kind in "OUSb" or (arr.dtype.kind in "iu" and len(np.unique(arr)) <= 30):
            names, codes = np.unique(arr.astype(str) if arr.dtype.kind in "OUSb" else arr, return_inverse=True)
            if len(names) > 254:
                raise ValueError(f"{len(names)} categories are too many to colour; pass numbers for a ramp.")
            return self._categorical_colors(codes, [str(v) for v in names], "custom", "none")
        return self._continuous_colors(arr.astype(float), "custom")

    def _categorical_colors(self, idx: np.ndarray, names: list[str], title: str,
                            none_name: str) -> tuple[np.ndarray, list[str], dict]:
        if len(names) > 254:
            raise ValueError(f"{len(names)} classes are too many to colour (at most 254).")
        idx = np.asarray(idx, dtype=np.int64)
        codes = np.where(idx >= 0, idx + 1, 0)
        counts = np.bincount(codes, minlength=len(names) + 1)
        colors = _categorical(len(names))
        items = [{"name": str(nm), "color": colors[k], "count": int(counts[k + 1])}
                 for k, nm in enumerate(names)]
        if counts[0]:
            items.append({"name": none_name, "color": UNLABELED, "count": int(counts[0])})
        return codes, [UNLABELED, *colors], {"title": title, "kind": "categorical", "items": items}

    def _continuous_colors(self, values: np.ndarray, title: str) -> tuple[np.ndarray, list[str], dict]:
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
        return codes, [UNLABELED, *_ramp(255)], legend

    # ------------------------------------------------------------------ session events
    def _on_labels_changed(self, indices: Any) -> None:
        if self._color_by_name in ("label", "difficulty"):
            self._recolor()
        self.send({"type": "invalidate"})

    def _on_model_updated(self, session: Any) -> None:
        if self._color_by_name in ("prediction", "uncertainty", "difficulty"):
            self._recolor()
        self.send({"type": "invalidate"})

    def _on_classes_changed(self, classes: list[str]) -> None:
        self._classes = list(classes)
        if self._color_by_name in ("label", "prediction"):
            self._recolor()

    # ------------------------------------------------------------------ messages from the page
    def _say(self, text: str, kind: str = "info", *, undo: bool = False) -> None:
        self._msg_serial += 1
        self._message = {"text": text, "kind": kind, "undo": undo, "serial": self._msg_serial}

    def _on_msg(self, widget: Any, content: dict, buffers: list) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        rid = content.get("request_id") if isinstance(content, dict) else None
        try:
            if kind == "sheet":
                data = self.sprites.sheet(int(content["index"]))
                self.send({"type": "sheet", "request_id": rid}, buffers=[data])
            elif kind == "image":
                i = self._index(content["index"])
                size = int(content.get("size") or 192)
                data = encode_image(self.session.source[i], size=min(max(size, 16), 1024))
                self.send({"type": "image", "request_id": rid}, buffers=[data])
            elif kind == "info":
                self.send({"type": "info", "request_id": rid, **self.item_info(int(content["index"]))})
            elif kind == "label_selection":
                try:
                    self.label_selection(str(content.get("label", "")))
                except (ValueError, TypeError) as exc:
                    self._say(str(exc), "error")
            elif kind == "undo_bulk":
                n = self.session.undo(source="bulk")
                self._say(f"Undid the last bulk labeling ({n:,} items)." if n else
                          "Nothing to undo.", "ok" if n else "info")
            else:
                log.debug("ignoring message %r", content)
        except Exception as exc:  # reply with the error; the page shows it inline
            log.exception("EmbeddingMap message %r failed", kind)
            if rid is not None:
                self.send({"type": kind, "request_id": rid, "error": str(exc)})
            else:
                self._say(f"Something went wrong: {exc}", "error")

    def _index(self, value: Any) -> int:
        i = int(value)
        if not 0 <= i < self._n:
            raise IndexError(f"item {i} is out of range 0..{self._n - 1}")
        return i

    def item_info(self, index: int) -> dict:
        """Hover/pin details of item ``index``: id, label, prediction, confidence (+ value
        when colouring by a custom array)."""
        i = self._index(index)
        s = self.session
        lab = s.label_array()[i]
        classes = list(s.classes)
        out: dict[str, Any] = {"index": i, "id": str(s.ids[i]),
                               "label": classes[lab] if lab >= 0 else None}
        probs, pred = s.probs_, s.predictions_
        if probs is not None and pred is not None:
            out["prediction"] = classes[int(pred[i])] if int(pred[i]) < len(classes) else None
            out["confidence"] = float(probs[i].max())
        if self._color_by_name == "custom" and self._color_array is not None:
            v = self._color_array[i]
            out["value"] = v.item() if hasattr(v, "item") else str(v)
            out["value_name"] = "value"
        return out

    def close(self) -> None:
        """Close the view and stop listening to the Session."""
        for h in self._handles:
            self.session.off(h)
        self._handles = []
        super().close()

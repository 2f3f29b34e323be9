"""EmbeddingMap: a WebGL map of the whole dataset with thumbnails, lasso and bulk labels.

::

    m = dfw.EmbeddingMap(session)         # or dfw.EmbeddingMap(src, emb): throwaway Session
    m                                     # displays in JupyterLab / Notebook 7
    m.selected                            # (k,) uint32 indices: the Session's selection
    m.color_by = "prediction"             # "label" | "prediction" | "uncertainty" | "difficulty" | (N,) array
    m.label_selection("Sneaker")          # the same as the widget's "Label" button; source="bulk"

The layout (PCA at once, UMAP in the background) and the selection live in the Session,
so every view sees the same coordinates and the same selected items: the lasso writes
``session.select(...)`` and a ``session.select(...)`` from Python shows in the map. The
Session's focus (e.g. the Labeler's current item) is drawn as a ring and its highlighted
items (e.g. the search results) as outlined points.

Built for millions of points: coordinates (float32), colour codes (uint8) and the
selection (uint32) travel as binary buffers; hover thumbnails are made one item at a time
when the page asks for them and kept in an LRU cache (``m.thumbs``), so opening a map of
1,000,000 images makes no thumbnails at all. A failed layout is said in the status line
(``session.layout_status["error"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..thumbs import ThumbCache
from ._common import Buffer, bundle, resolve_session
from .base import SessionView, error_text
from .embedding_map_colors import COLOR_MODES, item_info, point_colors
from .embedding_map_layout import layout_view, normalize

__all__ = ["EmbeddingMap"]

log = logging.getLogger(__name__)


class EmbeddingMap(SessionView, anywidget.AnyWidget):
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
            an (N, 2) array of coordinates (``session.set_layout``).
        color_by: "label" | "prediction" | "uncertainty" | "difficulty" | (N,) array.
        thumb_size: hover thumbnail size in px (made on demand, LRU-cached).
        height: map height in px.
    """

    _esm = bundle("embedding_map")

    _n = t.Int(0).tag(sync=True)
    """Number of points N."""
    _coords = Buffer(b"").tag(sync=True)
    """float32 (N, 2) map coordinates, x/y interleaved, in [-1, 1]."""
    _layout_method = t.Unicode("pca").tag(sync=True)
    """Layout shown now: "pca", "pca-pending" (UMAP still computing), "umap" or "custom"."""
    _layout_error = t.Unicode("").tag(sync=True)
    """Why the requested layout failed (``session.layout_status["error"]``), "" if it did not."""
    _color_codes = Buffer(b"").tag(sync=True)
    """uint8 (N,) index into ``_palette`` for every point (sent apart from coordinates)."""
    _palette = t.List(t.Unicode()).tag(sync=True)
    """CSS colours indexed by ``_color_codes``."""
    _legend = t.Dict().tag(sync=True)
    """{title, kind: "categorical"|"continuous", items: [{name, color, count}], min_label, max_label}."""
    _color_by_name = t.Unicode("label").tag(sync=True)
    """Current colour mode name (set by the widget's "Colour by" menu too)."""
    _color_modes = t.List(t.Unicode()).tag(sync=True)
    """The "Colour by" menu's modes (``embedding_map_colors.COLOR_MODES``)."""
    _selected = Buffer(b"").tag(sync=True)
    """uint32 sorted item indices of the selection (the Session's; written by the lasso)."""
    _focus = t.Int(-1).tag(sync=True)
    """The Session's focused item (``session.focus``), drawn as a ring; -1 for none."""
    _highlight = Buffer(b"").tag(sync=True)
    """uint32 sorted item indices of ``session.highlight``, drawn as outlined points."""
    pinned = t.Int(-1).tag(sync=True)
    """Index of the pinned item (click on a point), -1 for none."""
    _view = t.List(t.Float(), default_value=[-1.0, 1.0, -1.0, 1.0]).tag(sync=True)
    """Visible data rectangle [x0, x1, y0, y1] in map coordinates (written by the page)."""
    _classes = t.List(t.Unicode()).tag(sync=True)
    """Class names offered by the "Label selection as…" box."""
    _message = t.Dict().tag(sync=True)
    """Inline message {text, kind: "info"|"ok"|"error", undo: bool, serial}."""
    _thumb_size = t.Int(72).tag(sync=True)
    """Hover thumbnail size in px (longest side), asked of Python one item at a time."""
    height = t.Int(520).tag(sync=True)
    """Map height in px."""

    def __init__(
        self,
        session_or_source: Any,
        embeddings: np.ndarray | None = None,
        *,
        layout: str | np.ndarray = "umap",
        color_by: str | np.ndarray = "label",
        thumb_size: int = 72,
        height: int = 520,
        **session_kwargs: Any,
    ) -> None:
        super().__init__()
        self.init_view(resolve_session(session_or_source, embeddings, **session_kwargs))
        s = self.session
        if not 16 <= int(thumb_size) <= 256:
            raise ValueError(f"thumb_size must be 16..256 px; got {thumb_size}.")
        self.thumbs = ThumbCache(s.item_image_bytes, max_items=4096)
        self._msg_serial = 0
        self._color_array: np.ndarray | None = None
        self._xy = np.zeros((len(s.ids), 2), dtype=np.float32)
        with self.hold_sync():
            self._n = len(s.ids)
            self.height = int(height)
            self._thumb_size = int(thumb_size)
            self._color_modes = list(COLOR_MODES)
            self._classes = list(s.classes)
            self._selected = np.asarray(s.selection, dtype=np.uint32).tobytes()
            self._focus = int(s.focus)
            self._highlight = np.asarray(s.highlight, dtype=np.uint32).tobytes()
            self.color_by = color_by
        self.on_msg(self._on_msg)
        self.observe(self._on_page_selection, names="_selected")
        self.listen("labels_changed", self._on_labels_changed)
        self.listen("model_updated", self._on_model_updated)
        self.listen("classes_changed", self._on_classes_changed)
        self.listen("selection_changed", self._on_selection_changed)
        self.listen("layout_changed", self._on_layout_changed)
        self.listen("focus_changed", self._on_focus_changed)
        self.listen("highlight_changed", self._on_highlight_changed)
        self.listen("rules_changed", self._on_rules_changed)  # issue 18
        self.listen("issues_changed", self._on_issues_changed)  # issue 19
        if isinstance(layout, str):
            if layout not in ("umap", "pca"):
                raise ValueError(f'layout must be "umap", "pca" or an (N, 2) array; got {layout!r}.')
            try:
                s.start_layout(layout)
            except Exception as exc:  # noqa: BLE001 - e.g. umap-learn missing: PCA stays, said
                log.warning("layout %s could not start: %s", layout, exc)
        else:
            s.set_layout(layout)
        if not self._coords:  # the layout was there already: no "layout_changed" came
            self._on_layout_changed()

    # ------------------------------------------------------------------ layout
    def _on_layout_changed(self, *args: Any) -> None:
        """Show the Session's layout (PCA now, UMAP once it is done; or a given array)."""
        status = self.session.layout_status
        xy = self.session.layout_coords
        if xy is None:
            return
        method, error = layout_view(status)
        self._xy = normalize(xy)
        with self.hold_sync():
            self._coords = self._xy.tobytes()
            self._layout_method = method
            self._layout_error = error
        if error:
            self._say(f"The UMAP layout failed ({error}); showing PCA.", "error")

    @property
    def coordinates(self) -> np.ndarray:
        """(N, 2) float32 map coordinates of the points as drawn now (data space of ``view``)."""
        return self._xy.copy()

    @property
    def layout(self) -> dict:
        """The Session's layout status: {"method", "state", "error"} (see
        ``session.layout_status``)."""
        return self.session.layout_status

    @property
    def view(self) -> dict[str, tuple[float, float]]:
        """Visible data rectangle in the browser: {"x": (x0, x1), "y": (y0, y1)}."""
        x0, x1, y0, y1 = self._view
        return {"x": (x0, x1), "y": (y0, y1)}

    # ------------------------------------------------------------------ selection
    @property
    def selected(self) -> np.ndarray:
        """(k,) uint32 sorted indices of the selected items (the Session's selection:
        the lasso/box in the map, or ``session.select`` from anywhere)."""
        return np.frombuffer(self._selected, dtype=np.uint32).copy()

    @selected.setter
    def selected(self, indices: Any) -> None:
        self.session.select(indices)  # checks the indices; "selection_changed" updates us

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

    def _page_selection(self, content: dict, buffers: list) -> bytes:
        """A "select" message's buffer as uint32 bytes: indices, or (``bits``) a mask of
        ``_n`` bits, little bit order (the smaller of the two for large selections)."""
        data = bytes(buffers[0]) if buffers else b""
        if not content.get("bits"):
            return data
        bits = np.unpackbits(np.frombuffer(data, np.uint8), count=self._n, bitorder="little")
        return np.flatnonzero(bits).astype(np.uint32).tobytes()

    def _on_page_selection(self, change: dict) -> None:
        """The lasso/box changed ``_selected``: make it the Session's selection."""
        arr = np.frombuffer(change["new"], dtype=np.uint32)
        if not np.array_equal(arr, self.session.selection):
            self.session.select(arr.astype(np.int64))

    def _on_selection_changed(self, indices: Any) -> None:
        data = np.asarray(indices, dtype=np.uint32).tobytes()
        if data != self._selected:
            self._selected = data

    # ------------------------------------------------------------------ focus, highlight
    @property
    def focus(self) -> int:
        """The item drawn with a ring: ``session.focus`` (-1 for none)."""
        return int(self._focus)

    @property
    def highlighted(self) -> np.ndarray:
        """(M,) uint32 sorted indices drawn as outlined points: ``session.highlight``."""
        return np.frombuffer(self._highlight, dtype=np.uint32).copy()

    def _on_focus_changed(self, index: Any) -> None:
        self._focus = int(index)

    def _on_highlight_changed(self, indices: Any) -> None:
        data = np.asarray(indices, dtype=np.uint32).tobytes()
        if data != self._highlight:
            self._highlight = data

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
            codes, palette, legend, note = point_colors(self.session, mode, self._color_array)
        except Exception as exc:  # never a traceback in the page: keep colours, say why
            log.exception("colouring by %s failed", mode)
            self._say(f"Cannot colour by {mode}: {error_text(exc)}", "error")
            return
        if note:
            self._say(note)
        with self.hold_sync():
            if palette != self._palette:
                self._palette = palette
            self._color_codes = codes.astype(np.uint8).tobytes()
            self._legend = legend

    # ------------------------------------------------------------------ session events
    def _on_rules_changed(self, names: Any) -> None:
        if self._color_by_name in ("weak label", "no rule"):
            self._recolor()

    def _on_issues_changed(self, report: Any) -> None:
        if self._color_by_name == "issue":
            self._recolor()

    def _on_labels_changed(self, indices: Any) -> None:
        if self._color_by_name in ("label", "difficulty", "no rule"):
            self._recolor()
        self.send({"type": "invalidate"})

    def _on_model_updated(self, session: Any) -> None:
        if self._color_by_name in ("prediction", "uncertainty", "difficulty", "weak label"):
            self._recolor()
        self.send({"type": "invalidate"})

    def _on_classes_changed(self, classes: list[str]) -> None:
        self._classes = list(classes)
        if self._color_by_name in ("label", "prediction"):
            self._recolor()

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` under the map; ``kind`` "info", "ok" or "error"."""
        self._say(text, kind, undo=bool(extra.get("undo", False)))

    def _say(self, text: str, kind: str = "info", *, undo: bool = False) -> None:
        self._msg_serial += 1
        self._message = {"text": text, "kind": kind, "undo": undo, "serial": self._msg_serial}

    def _on_msg(self, widget: Any, content: dict, buffers: list) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        rid = content.get("request_id") if isinstance(content, dict) else None
        try:
            if kind == "images":
                self.reply_images(content, default_edge=128)
            elif kind == "info":
                self.send({"type": "info", "request_id": rid, **self.item_info(content["index"])})
            elif kind == "label_selection":
                self.run_safely(self.label_selection, str(content.get("label", "")),
                                what="Labeling the selection")
            elif kind == "select":  # the page's lasso/box: one buffer, not a (throttled) sync
                self._selected = self._page_selection(content, buffers)
            elif kind == "undo_bulk":
                n = self.session.undo(source="bulk")
                self._say(f"Undid the last bulk labeling ({n:,} items)." if n else
                          "Nothing to undo.", "ok" if n else "info")
            else:
                log.debug("ignoring message %r", content)
        except Exception as exc:  # reply with the error; the page shows it inline
            log.warning("EmbeddingMap message %r failed: %s", kind, exc)
            if rid is not None:
                self.reply_error(content, exc)
            else:
                self._say(f"Something went wrong: {error_text(exc)}", "error")

    def encode_items(self, indices: Sequence[int], *, edge: int
                     ) -> tuple[list[dict[str, Any]], list[bytes], list[int]]:
        """(metas, buffers, missing) for the page's image requests, through the LRU
        :class:`~dfwidgets.thumbs.ThumbCache` (``self.thumbs``: made on demand only)."""
        return self.thumbs.reply(indices, edge=edge)

    def item_info(self, index: int) -> dict:
        """Hover/pin details of item ``index``: id, label, prediction, confidence (+ value
        when colouring by a custom array)."""
        i = int(index)
        if not 0 <= i < self._n:
            raise IndexError(f"item {i} is out of range 0..{self._n - 1}")
        out = item_info(self.session, i)
        if self._color_by_name == "custom" and self._color_array is not None:
            v = self._color_array[i]
            out["value"] = v.item() if hasattr(v, "item") else str(v)
            out["value_name"] = "value"
        return out

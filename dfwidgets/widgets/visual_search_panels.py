"""What VisualSearch sends to the page and what it does with the page's actions.

The page gets indices and metadata in traits (tiles, examples, proposal samples) and asks
for the images itself (``{"type": "images"}`` requests answered by
:meth:`~dfwidgets.widgets.base.SessionView.reply_images` with binary buffers). Everything
here goes through the Session's public API.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

__all__ = ["SearchPanels", "plain", "short_reason"]

#: confidence levels of the proposal preview's samples
SAMPLE_LEVELS = (0.99, 0.9, 0.7, 0.5)
#: proposal sources: labels written by a commit
PROPOSAL_SOURCES = ("prototype", "zero-shot")


class SearchPanels:
    """Mixin of :class:`~dfwidgets.widgets.visual_search.VisualSearch`: page state
    (tiles, examples, proposal preview) and the page's actions."""

    # set by VisualSearch
    session: Any
    page_size: int
    hide_labeled: bool
    _indices: np.ndarray
    _scores: np.ndarray
    _browse: np.ndarray
    _highlight: np.ndarray | None
    _hover: int

    # ================================================================ page state
    def _shown(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self.mode == "results":
            return self._indices, self._scores
        return self._browse, None

    def _render_page(self, *_: Any) -> None:
        """Tiles of the current page: {index, rank, similarity | None, label} (no image
        bytes: the page fetches images by index)."""
        idx, scores = self._shown()
        n_pages = max(1, -(-len(idx) // self.page_size))
        page = min(self.page, n_pages - 1)
        lo, hi = page * self.page_size, min((page + 1) * self.page_size, len(idx))
        codes = self.session.label_array()
        names = self.session.classes
        self.n_pages = n_pages
        self.page_items = [
            {"index": int(idx[j]), "rank": j,
             "similarity": None if scores is None else round(float(scores[j]), 4),
             "label": names[codes[idx[j]]] if codes[idx[j]] >= 0 else ""}
            for j in range(lo, hi)
        ]

    def _sync_classes(self) -> None:
        self.classes = list(self.session.classes)
        if self.active_class and self.active_class not in self.classes:
            self.active_class = ""
        elif not self.active_class and self.classes:
            self.active_class = self.classes[0]
        self._send_examples()

    def _send_examples(self) -> None:
        """Examples of the active class: {kind, index (-1 unless an item), name, text}."""
        self.examples = [
            {"kind": ex["kind"], "index": int(ex.get("index", -1)),
             "name": ex.get("name", ""), "text": ex.get("text", "")}
            for ex in self.session.examples.all().get(self.active_class, [])
        ]

    def _preview(self) -> None:
        proposal = self.session.proposal_
        if proposal is None:
            self.proposal_summary, self.proposal_samples, self.proposal_left_out = [], [], {}
            return
        out = int(proposal.attrs.get("left_out") or 0)
        self.proposal_left_out = ({"count": out, "reason": str(proposal.attrs.get(
            "left_out_reason") or "")} if out else {})
        self._send_summary()
        samples = self.session.examples.samples(levels=SAMPLE_LEVELS, per_class=1)
        self.proposal_samples = [
            {"label": r.label, "level": float(r.level), "index": int(r.index),
             "confidence": round(float(r.confidence), 3)}
            for r in samples.itertuples()
        ]

    def _send_summary(self) -> None:
        summary = self.session.examples.summary(min_confidence=self.min_confidence)
        # NaN (a class with no proposals) is not valid JSON; each row carries the threshold
        # it was counted at, so the page never shows counts next to a newer threshold
        self.proposal_summary = [
            {**{k: plain(v) for k, v in row.items()}, "threshold": float(self.min_confidence)}
            for row in summary.to_dict("records")
        ]

    # ================================================================ observers
    def _on_threshold(self, change: dict) -> None:
        if not 0.0 <= float(change["new"]) <= 1.0:
            self.min_confidence = min(1.0, max(0.0, float(change["new"])))
            return
        if self.proposal_method:
            self._send_summary()

    def _on_active(self, change: dict) -> None:
        self._send_examples()
        if self.session.examples.vectors(change["new"]).shape[0]:
            self.query_class(change["new"])
        elif self.mode == "results":
            self.mode, self.query_label = "browse", ""
            self._sync_highlight()
            self.page = 0
            self._render_page()

    def _on_page(self, change: dict) -> None:
        self._render_page()

    # ================================================================ linked views
    def _sync_highlight(self) -> None:
        """The current results (none while browsing) are the Session's highlight: the map
        outlines them. A view that never highlighted leaves another view's highlight."""
        idx = np.unique(self._indices) if self.mode == "results" else np.zeros(0, np.int64)
        if idx.size == 0:
            self._clear_highlight()
            return
        self._highlight = idx
        self.session.set_highlight(idx)

    def _clear_highlight(self) -> None:
        """Clear the Session's highlight if it is still the one this view set."""
        mine = self._highlight
        self._highlight = None
        if mine is not None and np.array_equal(self.session.highlight, mine):
            self.session.set_highlight([])

    def _on_selection_changed(self, indices: Any) -> None:
        self.selection_size = len(indices)

    def hover(self, index: int) -> None:
        """A tile under the mouse (-1: none) is the Session's focus (the map rings it);
        leaving clears the focus unless another view moved it meanwhile."""
        index = int(index)
        if index >= 0:
            self.session.set_focus(index)
        elif self._hover >= 0 and self.session.focus == self._hover:
            self.session.set_focus(-1)
        self._hover = index

    def _activate(self, label: str) -> None:
        self._sync_classes()
        if self.active_class == label:
            self._on_active({"new": label})
        else:
            self.active_class = label  # observer searches and sends examples

    # ================================================================ page actions
    def _on_msg(self, _w: Any, content: dict, buffers: list) -> None:
        """Actions from the page; a user mistake becomes an inline message."""
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "images":
            self.run_safely(self.reply_images, content, default_edge=self.thumb_size,
                            what="Loading images")
            return
        handler = _ACTIONS.get(kind)
        if handler is None:
            self.show_message(f"Unknown action {kind!r}.", kind="error")
            return
        self.run_safely(handler, self, content, list(buffers or []),
                        what=f"VisualSearch action {kind!r}")

    def _act_add_class(self, content: dict, _buffers: list) -> None:
        name = str(content.get("name", "")).strip()
        if self.add_label_class(name):
            self._activate(name)
            self.show_message(f"Added class {name}. Star a tile or drop an image as its example.")

    def _act_rename_class(self, content: dict, _buffers: list) -> None:
        old, new = str(content.get("old", "")), str(content.get("new", "")).strip()
        if not new:
            raise ValueError("A class name cannot be empty.")
        if new in self.session.classes:
            raise ValueError(f"There is already a class {new!r}.")
        self.session.rename_class(old, new)  # the Session keeps the class's examples
        self._activate(new)
        self.show_message(f"Renamed {old} to {new}.")

    def _act_example_item(self, content: dict, _buffers: list) -> None:
        if not self.active_class:
            raise ValueError("Add a class first, then star its example.")
        index = int(content["index"])
        self.set_example(self.active_class, index=index)
        self.show_message(f"Item {index} is now an example of {self.active_class}; its "
                          "nearest neighbours are below.")

    def _act_upload(self, content: dict, buffers: list) -> None:
        if not self.active_class:
            raise ValueError("Add a class first, then drop its example image.")
        if not buffers:
            raise ValueError("The dropped file was empty.")
        name = str(content.get("name", "image"))
        try:
            self.set_example(self.active_class, image=bytes(buffers[0]))
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None
        self.show_message(f"{name} is now an example of {self.active_class}.")

    def _act_text(self, content: dict, _buffers: list) -> None:
        if not self.text_enabled:
            raise ValueError(self.text_reason or "Text prompts need a CLIP model.")
        self.set_example(self.active_class, text=str(content.get("text", "")))

    def _act_clear_examples(self, _content: dict, _buffers: list) -> None:
        self.session.examples.clear(self.active_class)
        self._on_active({"new": self.active_class})

    def _act_select_top(self, content: dict, _buffers: list) -> None:
        k = int(content.get("k") or 0)
        if k < 1:
            raise ValueError("Type how many results to select (a number from 1).")
        self.selected = [int(i) for i in self._indices[:k]]

    def _act_hover(self, content: dict, _buffers: list) -> None:
        index = content.get("index", -1)
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"hover needs an item index; got {index!r}.")
        self.hover(index)

    def _act_use_selection(self, _content: dict, _buffers: list) -> None:
        n = len(self.session.selection)
        self.use_selection()
        self.show_message(f"The {n:,} selected items are now the examples of "
                          f"{self.active_class}; their nearest neighbours are below.")

    def _act_propose(self, content: dict, _buffers: list) -> None:
        method = str(content.get("method", "prototype"))
        if method == "zero-shot" and not self.text_enabled:
            raise ValueError(self.text_reason or "Zero-shot needs a CLIP model.")
        self.propose(method)


_ACTIONS = {
    "add_class": SearchPanels._act_add_class,
    "rename_class": SearchPanels._act_rename_class,
    "example_item": SearchPanels._act_example_item,
    "upload": SearchPanels._act_upload,
    "text": SearchPanels._act_text,
    "clear_examples": SearchPanels._act_clear_examples,
    "select_top": SearchPanels._act_select_top,
    "hover": SearchPanels._act_hover,
    "use_selection": SearchPanels._act_use_selection,
    "propose": SearchPanels._act_propose,
    "commit": lambda self, _c, _b: self.commit(),
    "undo_proposal": lambda self, _c, _b: self.undo_proposal(),
    "accept": lambda self, _c, _b: self.accept(),
    "reject": lambda self, _c, _b: self.reject(),
}


def short_reason(why: str) -> str:
    """The first sentence of an error, for the disabled prompt box."""
    head = why.split(". ")[0].rstrip(".")
    return head + ". Use a CLIP model (e.g. model='ViT-B-32') to search by text."


def plain(value: Any) -> Any:
    """A JSON-safe Python scalar (numpy -> builtin, NaN -> None)."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and np.isnan(value) else value

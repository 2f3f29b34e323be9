"""The Trainer's item panels: the evaluation items behind a confusion-matrix cell or a
per-class accuracy bar, shown as thumbnails and selected in the Session (``session.select``),
so the map and the Labeler's "Only the selection" follow a click in the Trainer.
"""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as W
import numpy as np

__all__ = ["MAX_THUMBS", "TrainerItems"]

MAX_THUMBS = 24
THUMB_EDGE = 96


class TrainerItems:
    """Mixin of :class:`~dfwidgets.widgets.trainer.Trainer` (uses its ``session``,
    ``_confusion``, ``items_caption``, ``items_box``, ``run_safely``, ``show_message``)."""

    session: Any
    _confusion: dict[str, Any] | None

    def _on_cell(self, true: str, predicted: str) -> None:
        self.run_safely(self.show_confused, true, predicted, what="Showing the items")

    def _on_bar(self, true: str) -> None:
        self.run_safely(self.show_class, true, what="Showing the items")

    def show_class(self, true: str) -> np.ndarray:
        """Show and select (``session.select``) the evaluation items of class ``true`` (a
        per-class accuracy bar), wrong predictions first; returns them (M,) sorted."""
        conf = self._confusion
        if conf is None:
            self.show_message("Train first: there is no per-class accuracy yet.", kind="error")
            return np.empty(0, dtype=np.int64)
        if true not in conf["classes"]:
            raise ValueError(f"Unknown class {true!r}.")
        ev = conf["evaluation"]
        mine = np.asarray(ev["truth"]) == conf["classes"].index(true)
        hits = np.asarray(ev["indices"], dtype=np.int64)[mine]
        wrong = np.asarray(ev["pred"])[mine] != conf["classes"].index(true)
        order = np.argsort(~wrong, kind="stable")  # the mistakes are the thumbnails to see
        acc = f", {1 - wrong.mean():.0%} right" if len(hits) else ""
        self._show_items(hits[order], f"<b>{len(hits)}</b> item(s) of class "
                         f"<b>{html.escape(true)}</b> ({conf['kind']}{acc}), wrong ones first")
        return np.sort(hits)

    def show_confused(self, true: str, predicted: str) -> np.ndarray:
        """Show thumbnails of evaluation items of class ``true`` predicted as ``predicted``
        and select them in the Session (other views follow); returns their item indices
        (M,)."""
        if self._confusion is None:
            self.show_message("Train first: there is no confusion matrix yet.", kind="error")
            return np.empty(0, dtype=np.int64)
        try:
            hits = self.session.training.confused_items(
                true, predicted, evaluation=self._confusion["evaluation"])
        except ValueError as exc:
            self.show_message(str(exc), kind="error")
            return np.empty(0, dtype=np.int64)
        what = "correct" if true == predicted else "confused"
        self._show_items(hits, f"<b>{len(hits)}</b> {what} item(s): true "
                         f"<b>{html.escape(true)}</b>, predicted <b>{html.escape(predicted)}</b>"
                         f" ({self._confusion['kind']})")
        return hits

    def _show_items(self, hits: np.ndarray, caption: str) -> None:
        """Caption + the first thumbnails of ``hits``; select them in the Session."""
        more = f"; showing the first {MAX_THUMBS}." if len(hits) > MAX_THUMBS else "."
        self.items_caption.value = caption + more
        self.items_box.children = [self._thumb(int(i)) for i in hits[:MAX_THUMBS]]
        self.session.select(hits)

    def _thumb(self, index: int) -> W.Widget:
        data, mime, _size = self.session.item_image_bytes(index, edge=THUMB_EDGE)
        pic = W.Image(value=data, format=mime.split("/")[-1], width=64, height=64)
        pic.layout.object_fit = "contain"
        return W.VBox([pic, W.HTML(f'<span class="dfw-tr-muted" style="font-size:11px">'
                                   f"#{index}</span>")], layout=W.Layout(align_items="center"))

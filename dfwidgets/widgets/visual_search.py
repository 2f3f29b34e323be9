"""VisualSearch: one example per class, its nearest neighbours, accept them as labels.

::

    vs = dfw.VisualSearch(session)
    vs.query(index=123)                  # or image="shoe.jpg" / text="a red sneaker" (CLIP)
    vs.results                           # DataFrame[index, similarity, label]
    vs.accept(top=20, label="Sneaker")   # source="search"
    vs.reject(top=3)                     # "not this class": hard negatives in the store
    vs.use_selection(label="Sneaker")    # the Session's selection (e.g. a map lasso) as examples

In the page: pick a class (or add / rename one), give it an example (the star on any
tile, a dropped or chosen image file, a text prompt with CLIP models), then select results
(click, shift-click for a range, "Select top k") and accept them or mark them "not this
class". Examples live in the Session (``session.examples``), so a reopened Session still
has them. Traits carry indices only; the page fetches images as binary buffers.

Linked views: the current results are the Session's highlight (``session.set_highlight``:
the map outlines them), hovering a tile focuses its item (``session.set_focus``: the map
rings it), and "Use the selection" takes the Session's selection (a map lasso) as examples.
"""

from __future__ import annotations

import logging
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from ._common import bundle, resolve_session
from .base import SessionView
from .visual_search_panels import PROPOSAL_SOURCES, SearchPanels, short_reason

__all__ = ["VisualSearch"]

log = logging.getLogger(__name__)


class VisualSearch(SearchPanels, SessionView, anywidget.AnyWidget):
    """Nearest-neighbour search and one-shot labeling over a Session (see module doc).

    ``VisualSearch(session, k=200, page_size=24, thumb_size=72)``: ``k`` results per query.
    ``index``: an object with ``search(queries (Q, D), k, exclude=) -> (scores, indices)``
    to search with instead of the Session's neighbour index (``session.nearest``).
    """

    _esm = bundle("visual_search")

    classes = t.List(t.Unicode()).tag(sync=True)
    """Class names, in the Session's order."""
    active_class = t.Unicode("").tag(sync=True)
    """The class whose examples are searched for and that "Accept" labels (set by clicks)."""
    examples = t.List(t.Dict()).tag(sync=True)
    """Examples of the active class: {kind, index (item examples; else -1), name, text}."""
    page_items = t.List(t.Dict()).tag(sync=True)
    """Tiles of the current page: {index, rank, similarity | None, label}."""
    page = t.Int(0).tag(sync=True)
    """Current results page (0-based), set by the page buttons."""
    n_pages = t.Int(0).tag(sync=True)
    """Number of result pages."""
    mode = t.Unicode("browse").tag(sync=True)
    """"browse" (a sample of items to pick examples from) or "results" (neighbours)."""
    query_label = t.Unicode("").tag(sync=True)
    """What the current results are neighbours of, e.g. "examples of Sneaker"."""
    selected = t.List(t.Int()).tag(sync=True)
    """Selected result item indices (click, shift-click range, "Select top k")."""
    text_enabled = t.Bool(False).tag(sync=True)
    """True when the session's model embeds text (CLIP): the prompt box is on."""
    text_reason = t.Unicode("").tag(sync=True)
    """Why the prompt box is off (shown in the widget)."""
    message = t.Unicode("").tag(sync=True)
    """Inline message ("" hides it)."""
    message_level = t.Unicode("info").tag(sync=True)
    """"info", "ok" or "error"."""
    thumb_size = t.Int(72).tag(sync=True)
    """Tile image edge in CSS pixels (images are requested at this edge)."""
    min_confidence = t.Float(0.9).tag(sync=True)
    """Threshold of the proposal preview and of "Commit" (set in the page)."""
    proposal_method = t.Unicode("").tag(sync=True)
    """Method of the previewed proposal ("" = none): "prototype" or "zero-shot"."""
    proposal_summary = t.List(t.Dict()).tag(sync=True)
    """Per class: {label, proposed, above_threshold, median_confidence, threshold}."""
    proposal_left_out = t.Dict().tag(sync=True)
    """Items the proposal leaves out ("none of these"): {count, reason} ({} = none)."""
    only_near_examples = t.Bool(True).tag(sync=True)
    """Proposals keep only items close to an example (open set, "none of these"; on by
    default; the page's checkbox)."""
    proposal_samples = t.List(t.Dict()).tag(sync=True)
    """Items to look at: {label, level, index, confidence} at several confidence levels."""
    selection_size = t.Int(0).tag(sync=True)
    """Items in ``session.selection`` (shown on "Use the selection"; follows the Session)."""

    def __init__(
        self,
        session: Any,
        embeddings: np.ndarray | None = None,
        *,
        k: int = 200,
        page_size: int = 24,
        thumb_size: int = 72,
        hide_labeled: bool = True,
        index: Any = None,
    ) -> None:
        if k < 1 or page_size < 1:
            raise ValueError(f"k and page_size must be at least 1; got k={k}, page_size={page_size}.")
        self.init_view(resolve_session(session, embeddings))
        self.k = int(k)
        self.page_size = int(page_size)
        self.hide_labeled = bool(hide_labeled)
        self.index = index
        self._scores = np.zeros(0, np.float32)
        self._indices = np.zeros(0, np.int64)
        self._query: np.ndarray | None = None
        self._query_items = np.zeros(0, np.int64)
        self._highlight: np.ndarray | None = None  # what this view made the highlight
        self._hover = -1  # the item this view focused by a tile hover
        n = len(self.session.ids)
        rng = np.random.default_rng(0)
        self._browse = rng.permutation(n)[: min(n, 20 * page_size)].astype(np.int64)
        ok, why = self.session.supports_text()
        super().__init__(thumb_size=int(thumb_size), text_enabled=bool(ok),
                         text_reason="" if ok else short_reason(why))
        self._sync_classes()
        self._render_page()
        self.on_msg(self._on_msg)
        self.observe(self._on_page, names="page")
        self.observe(self._on_active, names="active_class")
        self.observe(self._on_threshold, names="min_confidence")
        self.listen("classes_changed", lambda *_: self._sync_classes())
        self.listen("labels_changed", lambda *_: self._render_page())
        self.selection_size = len(self.session.selection)
        self.listen("selection_changed", self._on_selection_changed)

    # ================================================================ Python API
    @property
    def results(self) -> pd.DataFrame:
        """Current results, most similar first: DataFrame[index, similarity, label]."""
        labels = self.session.labels
        return pd.DataFrame({
            "index": self._indices.copy(),
            "similarity": self._scores.copy(),
            "label": [labels.get(int(i)) for i in self._indices],
        })

    def query(self, *, index: Any = None, image: Any = None, text: str | None = None,
              vector: np.ndarray | None = None) -> pd.DataFrame:
        """Search for neighbours of item(s) ``index``, an outside ``image`` (path, PIL,
        bytes), a ``text`` prompt (CLIP models) or a raw ``vector`` (D,); returns
        :attr:`results`. Query items themselves are never returned."""
        if sum(x is not None for x in (index, image, text, vector)) != 1:
            raise ValueError("Give exactly one of index=, image=, text= or vector=.")
        items = np.zeros(0, np.int64)
        if index is not None:
            items = self.session.check_indices(np.atleast_1d(index))
            vec = self.session.embeddings[items].mean(axis=0)
            what = f"item {int(items[0])}" if len(items) == 1 else f"{len(items)} items"
        elif image is not None:
            vec = self.session.embed_image(image)
            what = "the image"
        elif text is not None:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text must be a non-empty prompt, e.g. 'a red sneaker'.")
            vec = self.session.embed_text([text.strip()])[0]
            what = f"“{text.strip()}”"
        else:
            vec = np.asarray(vector, np.float32)
            what = "the vector"
        self._run(np.asarray(vec, np.float32), items, what)
        return self.results

    def query_class(self, label: str | None = None) -> pd.DataFrame:
        """Search with the mean of class ``label``'s examples (default: the active class)."""
        label = label or self.active_class
        vecs = self.session.examples.vectors(label)
        if len(vecs) == 0:
            raise ValueError(f"Class {label!r} has no example yet: star a tile, drop an image "
                             "or type a prompt first.")
        items = self.session.examples.item_indices(label)
        self._run(vecs.mean(axis=0), items, f"examples of {label}")
        return self.results

    def set_example(self, label: str, *, index: int | None = None, image: Any = None,
                    text: str | None = None) -> None:
        """Make an item / outside image / prompt an example of ``label``, make ``label``
        the active class and search with its examples."""
        self.session.examples.add(label, index=index, image=image, text=text)
        self._activate(label)

    def use_selection(self, selection: Any = None, *, label: str | None = None) -> pd.DataFrame:
        """Use the Session's selection (default; e.g. a lasso in the EmbeddingMap), an
        EmbeddingMap's ``selected`` or an index array as the examples of ``label``
        (default: the active class) and search with them; the items are not labeled."""
        if selection is None:
            selection = self.session.selection
        idx = np.asarray(selection.selected if hasattr(selection, "selected") else selection)
        if idx.size == 0:
            raise ValueError("The selection is empty: lasso some points in the map first.")
        label = label or self.active_class
        if not label:
            raise ValueError("Choose a class first (label=... or click one in the widget).")
        self.session.examples.add_items(label, idx, replace=True)
        self._activate(label)
        return self.results

    def accept(self, top: int | None = None, *, label: str | None = None,
               indices: Any = None) -> int:
        """Label results as ``label`` (default: the active class), source "search": the
        ``top`` best unlabeled results, or ``indices``, or else the selection. Returns the
        items written (labels of other classes are never overwritten by ``top``)."""
        label = label or self.active_class
        if not label:
            raise ValueError("Choose a class to label with (label=... or click one).")
        idx = self._pick(top, indices)
        if len(idx) == 0:
            raise ValueError("Nothing to accept: select results or pass top=.")
        n = self.session.label(idx, label, source="search")
        self.selected = []
        self.show_message(f"Labeled {n} item{'s' * (n != 1)} as {label}.")
        self._render_page()
        return n

    def reject(self, top: int | None = None, *, label: str | None = None,
               indices: Any = None) -> int:
        """Mark results as "not ``label``" (hard negatives for the model); they leave the
        results. Returns the items marked."""
        label = label or self.active_class
        if not label:
            raise ValueError("Choose the class these items are not (label=... or click one).")
        idx = self._pick(top, indices)
        if len(idx) == 0:
            raise ValueError("Nothing to mark: select results or pass top=.")
        self.session.add_negatives(idx, label, source="search")
        keep = ~np.isin(self._indices, idx)
        self._indices, self._scores = self._indices[keep], self._scores[keep]
        self._sync_highlight()
        self.selected = []
        self.show_message(f"Marked {len(idx)} item{'s' * (len(idx) != 1)} as not {label}.")
        self._render_page()
        return len(idx)

    def propose(self, method: str = "prototype", *, prompts: Any = None,
                open_set: bool | None = None) -> pd.DataFrame:
        """Propose a label for every unlabeled item (``session.propose``) and show the
        preview: counts per class above ``min_confidence`` and samples at several
        confidence levels; ``open_set=True`` leaves out items far from every example
        (None: the ``only_near_examples`` checkbox). Nothing is written until :meth:`commit`."""
        if open_set is None:
            open_set = self.only_near_examples
        proposal = self.session.propose(method=method, prompts=prompts, open_set=bool(open_set))
        self._preview()  # summary and samples first, then the method (the page draws on it)
        self.proposal_method = method
        kept = proposal["kept"] if "kept" in proposal.columns else True
        n = int(((proposal["confidence"] >= self.min_confidence) & kept).sum())
        out = int(proposal.attrs.get("left_out") or 0)
        none = (f" {out:,} left out as none of these (far from every example)." if out
                else "")
        self.show_message(f"Proposed labels for {len(proposal):,} items; {n:,} at confidence "
                          f"≥ {self.min_confidence:.2f}.{none} Look at the samples, then "
                          "commit.")
        return proposal

    def commit(self, *, min_confidence: float | None = None) -> int:
        """Write the previewed proposal above the threshold (source "prototype" /
        "zero-shot"); labels given since are kept. Returns the items written."""
        if min_confidence is not None:
            self.min_confidence = float(min_confidence)
        method = self.proposal_method
        n = self.session.commit_proposal(min_confidence=self.min_confidence)
        self.proposal_method, self.proposal_summary, self.proposal_samples = "", [], []
        self.proposal_left_out = {}
        self.show_message(f"Committed {n:,} {method} labels (undo restores them all at once).")
        self._render_page()
        return n

    def undo_proposal(self) -> int:
        """Undo the last committed proposal (by source)."""
        hist = self.session.history()
        done = hist[hist["source"].isin(PROPOSAL_SOURCES) & ~hist["undone"]]
        if done.empty:
            raise ValueError("There is no committed proposal to undo.")
        source = str(done.sort_values("event_id")["source"].iloc[-1])
        n = self.session.undo(source=source)
        self.show_message(f"Undid {n:,} {source} labels.")
        self._render_page()
        return n

    def close(self) -> None:
        """Take back this view's highlight and hover focus, then close."""
        try:
            self._clear_highlight()
            self.hover(-1)
        except Exception:  # noqa: BLE001 - the Session may be closed already
            log.debug("could not clear the highlight", exc_info=True)
        super().close()

    def show_message(self, text: str, *, kind: str = "info", **_: Any) -> None:
        """Show ``text`` under the grid; ``kind`` is "info", "ok" or "error"."""
        self.message_level = kind
        self.message = text

    # ================================================================ internals
    def _pick(self, top: int | None, indices: Any) -> np.ndarray:
        if indices is not None:
            return self.session.check_indices(indices)
        if top is not None:
            if int(top) < 1:
                raise ValueError(f"top must be at least 1; got {top!r}.")
            free = self._indices[self.session.label_array()[self._indices] < 0]
            return free[: int(top)]
        return np.asarray(self.selected, np.int64)

    def _run(self, vec: np.ndarray, items: np.ndarray, what: str) -> None:
        self._query, self._query_items, self.query_label = vec, items, what
        self._search()
        self.mode = "results"
        self._sync_highlight()
        self.selected = []
        if self.page != 0:
            self.page = 0  # observer renders
        else:
            self._render_page()

    def _search(self) -> None:
        exclude = set(self._query_items.tolist())
        if self.hide_labeled:
            exclude |= set(np.flatnonzero(self.session.label_array() >= 0).tolist())
        excl = np.fromiter(exclude, np.int64) if exclude else None
        query = self._query[None, :]
        if self.index is not None:
            scores, idx = self.index.search(query, self.k, exclude=excl)
        else:
            scores, idx = self.session.nearest(query, k=self.k, exclude=excl)
        ok = idx[0] >= 0
        self._scores, self._indices = scores[0][ok], idx[0][ok]

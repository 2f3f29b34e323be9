"""VisualSearch: one example per class, its nearest neighbours, accept them as labels.

::

    vs = dfw.VisualSearch(session)
    vs.query(index=123)                  # or image="shoe.jpg" / text="a red sneaker" (CLIP)
    vs.results                           # DataFrame[index, similarity, label]
    vs.accept(top=20, label="Sneaker")   # source="search"
    vs.reject(top=3)                     # "not this class": hard negatives in the store

In the page: pick a class (or add / rename one), give it an example (the star on any
tile, a dropped or chosen image file, a text prompt with CLIP models), then select results
(click, shift-click for a range, "Select top k") and accept them or mark them "not this
class". Examples live in the Session's store, so a reopened Session still has them.
"""

from __future__ import annotations

import logging
from typing import Any

import anywidget
import numpy as np
import pandas as pd
import traitlets as t

from ..index import NearestNeighborIndex
from ..learn import proposals
from ..thumbs import encode_image
from ._common import bundle, resolve_session

__all__ = ["VisualSearch"]

log = logging.getLogger(__name__)


class VisualSearch(anywidget.AnyWidget):
    """Nearest-neighbour search and one-shot labeling over a Session (see module doc).

    ``VisualSearch(session, k=200, page_size=24, thumb_size=72)``: ``k`` results per query.
    """

    _esm = bundle("visual_search")

    classes = t.List(t.Unicode()).tag(sync=True)
    """Class names, in the Session's order."""
    active_class = t.Unicode("").tag(sync=True)
    """The class whose examples are searched for and that "Accept" labels (set by clicks)."""
    examples = t.List(t.Dict()).tag(sync=True)
    """Examples of the active class: {kind, index | name | text, png (bytes) | None}."""
    page_items = t.List(t.Dict()).tag(sync=True)
    """Tiles of the current page: {index, similarity | None, label, png (bytes)}."""
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
    """"info" or "error"."""
    thumb_size = t.Int(72).tag(sync=True)
    """Tile image edge in CSS pixels."""
    min_confidence = t.Float(0.9).tag(sync=True)
    """Threshold of the proposal preview and of "Commit" (set in the page)."""
    proposal_method = t.Unicode("").tag(sync=True)
    """Method of the previewed proposal ("" = none): "prototype" or "zero-shot"."""
    proposal_summary = t.List(t.Dict()).tag(sync=True)
    """Per class: {label, proposed, above_threshold, median_confidence}."""
    proposal_samples = t.List(t.Dict()).tag(sync=True)
    """Items to look at: {label, level, index, confidence, png} at several confidence levels."""

    def __init__(
        self,
        session: Any,
        embeddings: np.ndarray | None = None,
        *,
        k: int = 200,
        page_size: int = 24,
        thumb_size: int = 72,
        hide_labeled: bool = True,
        index: NearestNeighborIndex | None = None,
    ) -> None:
        if k < 1 or page_size < 1:
            raise ValueError(f"k and page_size must be at least 1; got k={k}, page_size={page_size}.")
        self.session = resolve_session(session, embeddings)
        self.k = int(k)
        self.page_size = int(page_size)
        self.hide_labeled = bool(hide_labeled)
        self.index = index if index is not None else NearestNeighborIndex(self.session.embeddings)
        self._scores = np.zeros(0, np.float32)
        self._indices = np.zeros(0, np.int64)
        self._query: np.ndarray | None = None
        self._query_items = np.zeros(0, np.int64)
        rng = np.random.default_rng(0)
        n = len(self.session.ids)
        self._browse = rng.permutation(n)[: min(n, 20 * page_size)].astype(np.int64)
        ok, why = proposals.supports_text(self.session)
        super().__init__(thumb_size=int(thumb_size), text_enabled=ok,
                         text_reason="" if ok else _short_reason(why))
        self._sync_classes()
        self._render_page()
        self.on_msg(self._on_msg)
        self.observe(self._on_page, names="page")
        self.observe(self._on_active, names="active_class")
        self.observe(self._on_threshold, names="min_confidence")
        self._handles = [
            self.session.on("classes_changed", lambda *_: self._sync_classes()),
            self.session.on("labels_changed", lambda *_: self._render_page()),
        ]

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
        given = [x is not None for x in (index, image, text, vector)]
        if sum(given) != 1:
            raise ValueError("Give exactly one of index=, image=, text= or vector=.")
        items = np.zeros(0, np.int64)
        if index is not None:
            items = self.session._check_indices(np.atleast_1d(index))
            vec = self.session.embeddings[items].mean(axis=0)
            what = f"item {int(items[0])}" if len(items) == 1 else f"{len(items)} items"
        elif image is not None:
            vec = proposals.embed_query_image(self.session, image)
            what = "the image"
        elif text is not None:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text must be a non-empty prompt, e.g. 'a red sneaker'.")
            vec = proposals._text_embedder(self.session).embed_text([text.strip()])[0]
            what = f"“{text.strip()}”"
        else:
            vec = np.asarray(vector, np.float32)
            what = "the vector"
        self._run(np.asarray(vec, np.float32), items, what)
        return self.results

    def query_class(self, label: str | None = None) -> pd.DataFrame:
        """Search with the mean of class ``label``'s examples (default: the active class)."""
        label = label or self.active_class
        vecs = proposals.example_vectors(self.session, label)
        if len(vecs) == 0:
            raise ValueError(f"Class {label!r} has no example yet: star a tile, drop an image "
                             "or type a prompt first.")
        kept = proposals.class_examples(self.session).get(label, [])
        items = np.asarray([e["index"] for e in kept if e["kind"] == "item"], np.int64)
        self._run(vecs.mean(axis=0), items, f"examples of {label}")
        return self.results

    def set_example(self, label: str, *, index: int | None = None, image: Any = None,
                    text: str | None = None) -> None:
        """Make an item / outside image / prompt an example of ``label``, make ``label``
        the active class and search with its examples."""
        proposals.add_example(self.session, label, index=index, image=image, text=text)
        self._activate(label)

    def use_selection(self, selection: Any, *, label: str | None = None) -> pd.DataFrame:
        """Use an EmbeddingMap's selection (or an index array) as the examples of ``label``
        (default: the active class) and search with them; the items are not labeled."""
        idx = selection.selected if hasattr(selection, "selected") else selection
        idx = np.asarray(idx)
        if idx.size == 0:
            raise ValueError("The selection is empty: lasso some points in the map first.")
        label = label or self.active_class
        if not label:
            raise ValueError("Choose a class first (label=... or click one in the widget).")
        proposals.clear_examples(self.session, label)
        for i in self.session._check_indices(idx)[:256]:
            proposals.add_example(self.session, label, index=int(i), label_item=False)
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
        self._say(f"Labeled {n} item{'s' * (n != 1)} as {label}.")
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
        self.selected = []
        self._say(f"Marked {len(idx)} item{'s' * (len(idx) != 1)} as not {label}.")
        self._render_page()
        return len(idx)

    def propose(self, method: str = "prototype", *, prompts: Any = None) -> pd.DataFrame:
        """Propose a label for every unlabeled item (``session.propose``) and show the
        preview: counts per class above ``min_confidence`` and samples at several
        confidence levels. Nothing is written until :meth:`commit`."""
        proposal = self.session.propose(method=method, prompts=prompts)
        self._preview()  # summary and samples first, then the method (the page draws on it)
        self.proposal_method = method
        n = int((proposal["confidence"] >= self.min_confidence).sum())
        self._say(f"Proposed labels for {len(proposal):,} items; {n:,} at confidence ≥ "
                  f"{self.min_confidence:.2f}. Look at the samples, then commit.")
        return proposal

    def commit(self, *, min_confidence: float | None = None) -> int:
        """Write the previewed proposal above the threshold (source "prototype" /
        "zero-shot"); labels given since are kept. Returns the items written."""
        if min_confidence is not None:
            self.min_confidence = float(min_confidence)
        method = self.proposal_method
        n = self.session.commit_proposal(min_confidence=self.min_confidence)
        self.proposal_method, self.proposal_summary, self.proposal_samples = "", [], []
        self._say(f"Committed {n:,} {method} labels (undo restores them all at once).")
        self._render_page()
        return n

    def undo_proposal(self) -> int:
        """Undo the last committed proposal (by source)."""
        hist = self.session.history()
        done = hist[hist["source"].isin(["prototype", "zero-shot"]) & ~hist["undone"]]
        if done.empty:
            raise ValueError("There is no committed proposal to undo.")
        source = str(done.sort_values("event_id")["source"].iloc[-1])
        n = self.session.undo(source=source)
        self._say(f"Undid {n:,} {source} labels.")
        self._render_page()
        return n

    def _preview(self) -> None:
        proposal = getattr(self.session, "proposal_", None)
        if proposal is None:
            self.proposal_summary, self.proposal_samples = [], []
            return
        self._send_summary()
        samples = proposals.proposal_samples(proposal, levels=(0.99, 0.9, 0.7, 0.5),
                                             per_class=1)
        self.proposal_samples = [
            {"label": r.label, "level": float(r.level), "index": int(r.index),
             "confidence": round(float(r.confidence), 3), "png": self._thumb(int(r.index))}
            for r in samples.itertuples()
        ]

    def _on_threshold(self, change: dict) -> None:
        if not 0.0 <= float(change["new"]) <= 1.0:
            self.min_confidence = min(1.0, max(0.0, float(change["new"])))
            return
        if self.proposal_method:
            self._send_summary()

    def _send_summary(self) -> None:
        summary = proposals.summarize_proposal(self.session.proposal_,
                                               min_confidence=self.min_confidence)
        # NaN (a class with no proposals) is not valid JSON; each row carries the threshold
        # it was counted at, so the page never shows counts next to a newer threshold
        self.proposal_summary = [
            {**{k: _plain(v) for k, v in row.items()}, "threshold": float(self.min_confidence)}
            for row in summary.to_dict("records")
        ]

    def close(self) -> None:
        for h in getattr(self, "_handles", []):
            self.session.off(h)
        super().close()

    # ================================================================ internals
    def _pick(self, top: int | None, indices: Any) -> np.ndarray:
        if indices is not None:
            return self.session._check_indices(indices)
        if top is not None:
            if int(top) < 1:
                raise ValueError(f"top must be at least 1; got {top!r}.")
            free = self._indices[self.session.label_array()[self._indices] < 0]
            return free[: int(top)]
        return np.asarray(self.selected, np.int64)

    def _activate(self, label: str) -> None:
        self._sync_classes()
        if self.active_class == label:
            self._on_active({"new": label})
        else:
            self.active_class = label  # observer searches and sends examples

    def _run(self, vec: np.ndarray, items: np.ndarray, what: str) -> None:
        self._query, self._query_items, self.query_label = vec, items, what
        self._search()
        self.mode = "results"
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
        scores, idx = self.index.search(self._query[None, :], self.k, exclude=excl)
        ok = idx[0] >= 0
        self._scores, self._indices = scores[0][ok], idx[0][ok]

    def _shown(self) -> tuple[np.ndarray, np.ndarray | None]:
        if self.mode == "results":
            return self._indices, self._scores
        return self._browse, None

    def _render_page(self, *_: Any) -> None:
        idx, scores = self._shown()
        n_pages = max(1, -(-len(idx) // self.page_size))
        page = min(self.page, n_pages - 1)
        lo, hi = page * self.page_size, (page + 1) * self.page_size
        codes = self.session.label_array()
        names = self.session.classes
        items = []
        for j in range(lo, min(hi, len(idx))):
            i = int(idx[j])
            items.append({
                "index": i,
                "rank": j,
                "similarity": None if scores is None else round(float(scores[j]), 4),
                "label": names[codes[i]] if codes[i] >= 0 else "",
                "png": self._thumb(i),
            })
        self.n_pages = n_pages
        self.page_items = items

    def _thumb(self, i: int) -> bytes:
        return encode_image(self.session.source[i], size=self.thumb_size * 2)

    def _sync_classes(self) -> None:
        self.classes = self.session.classes
        if self.active_class and self.active_class not in self.classes:
            self.active_class = ""
        elif not self.active_class and self.classes:
            self.active_class = self.classes[0]
        self._send_examples()

    def _send_examples(self) -> None:
        out = []
        for ex in proposals.class_examples(self.session).get(self.active_class, []):
            row = {"kind": ex["kind"], "index": ex.get("index", -1),
                   "name": ex.get("name", ""), "text": ex.get("text", ""), "png": None}
            if ex["kind"] == "item":
                row["png"] = self._thumb(ex["index"])
            out.append(row)
        self.examples = out

    def _on_active(self, change: dict) -> None:
        self._send_examples()
        if proposals.example_vectors(self.session, change["new"]).shape[0]:
            self.query_class(change["new"])
        elif self.mode == "results":
            self.mode, self.query_label = "browse", ""
            self.page = 0
            self._render_page()

    def _on_page(self, change: dict) -> None:
        self._render_page()

    def _say(self, text: str, level: str = "info") -> None:
        self.message_level = level
        self.message = text

    def _on_msg(self, _w: Any, content: dict, buffers: list) -> None:
        """Actions from the page; a user mistake becomes an inline message."""
        kind = content.get("type")
        try:
            if kind == "add_class":
                name = str(content.get("name", "")).strip()
                if not name:
                    raise ValueError("Type a class name first.")
                if name in self.session.classes:
                    raise ValueError(f"There is already a class {name!r}.")
                self.session.add_class(name)
                self._activate(name)
                self._say(f"Added class {name}. Star a tile or drop an image as its example.")
            elif kind == "rename_class":
                old, new = content.get("old", ""), str(content.get("new", "")).strip()
                if not new:
                    raise ValueError("A class name cannot be empty.")
                if new in self.session.classes:
                    raise ValueError(f"There is already a class {new!r}.")
                stored = self.session.store.get_meta(proposals.EXAMPLES_META) or {}
                self.session.rename_class(old, new)
                if old in stored:
                    stored[new] = stored.pop(old)
                    self.session.store.set_meta(proposals.EXAMPLES_META, stored)
                self._activate(new)
                self._say(f"Renamed {old} to {new}.")
            elif kind == "example_item":
                if not self.active_class:
                    raise ValueError("Add a class first, then star its example.")
                self.set_example(self.active_class, index=int(content["index"]))
                self._say(f"Item {int(content['index'])} is now an example of "
                          f"{self.active_class}; its nearest neighbours are below.")
            elif kind == "upload":
                if not self.active_class:
                    raise ValueError("Add a class first, then drop its example image.")
                if not buffers:
                    raise ValueError("The dropped file was empty.")
                name = str(content.get("name", "image"))
                try:
                    self.set_example(self.active_class, image=bytes(buffers[0]))
                except ValueError as exc:
                    raise ValueError(f"{name}: {exc}") from None
                self._say(f"{name} is now an example of {self.active_class}.")
            elif kind == "text":
                if not self.text_enabled:
                    raise ValueError(self.text_reason or "Text prompts need a CLIP model.")
                self.set_example(self.active_class, text=str(content.get("text", "")))
            elif kind == "clear_examples":
                proposals.clear_examples(self.session, self.active_class)
                self._on_active({"new": self.active_class})
            elif kind == "select_top":
                k = int(content.get("k", 0))
                if k < 1:
                    raise ValueError("Type how many results to select (a number from 1).")
                self.selected = [int(i) for i in self._indices[:k]]
            elif kind == "propose":
                method = str(content.get("method", "prototype"))
                if method == "zero-shot" and not self.text_enabled:
                    raise ValueError(self.text_reason or "Zero-shot needs a CLIP model.")
                self.propose(method)
            elif kind == "commit":
                self.commit()
            elif kind == "undo_proposal":
                self.undo_proposal()
            elif kind == "accept":
                self.accept()
            elif kind == "reject":
                self.reject()
            else:
                raise ValueError(f"Unknown action {kind!r}.")
        except Exception as exc:  # shown inline in the widget, never as a traceback
            if not isinstance(exc, (ValueError, TypeError, IndexError, KeyError)):
                log.exception("VisualSearch action %r failed", kind)
            self._say(str(exc).strip("'\""), "error")


def _short_reason(why: str) -> str:
    """The first sentence of an error, for the disabled prompt box."""
    head = why.split(". ")[0].rstrip(".")
    return head + ". Use a CLIP model (e.g. model='ViT-B-32') to search by text."


def _plain(value: Any) -> Any:
    """A JSON-safe Python scalar (numpy -> builtin, NaN -> None)."""
    value = value.item() if isinstance(value, np.generic) else value
    return None if isinstance(value, float) and np.isnan(value) else value

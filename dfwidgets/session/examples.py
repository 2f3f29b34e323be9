"""Class examples and label proposals of a Session: ``session.examples``.

Examples are kept per class in the store's metadata (key ``"class_examples"``), so a
reopened Session still has them: dataset items (by item id), outside images and text
prompts (by their embedding). They survive class renames and merges (the Session calls
:meth:`ClassExamples.rename` / :meth:`ClassExamples.merge`).

A *proposal* is a label and a confidence for every unlabeled item (the pure functions of
:mod:`dfwidgets.learn.proposals`): ``method="prototype"`` from the class examples (labeled
items, kept examples, the store's hard negatives), ``method="zero-shot"`` from class
prompts (CLIP models). Nothing is written until :meth:`ClassExamples.commit`, which labels
only items above a threshold that are *still* unlabeled, as one store event with source
"prototype" / "zero-shot", undoable by source.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..learn import proposals as P

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EXAMPLES_META", "ClassExamples"]

log = logging.getLogger(__name__)

#: store metadata key of the kept examples: {class: [{"kind": "item", "id": ...},
#: {"kind": "image", "name": ..., "vector": [...]}, {"kind": "text", "text": ..., "vector": [...]}]}
EXAMPLES_META = "class_examples"
#: keep at most this many item examples from one selection
MAX_SELECTION_EXAMPLES = 256


class ClassExamples:
    """Examples kept per class (items, outside images, text prompts) and the proposals
    made from them. ``proposal_`` is the last proposal (DataFrame) or None."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self.proposal_: pd.DataFrame | None = None

    # ================================================================ examples
    def all(self) -> dict[str, list[dict[str, Any]]]:
        """Examples per class: ``{class: [{"kind": "item", "index": i, "id": ...},
        {"kind": "image", "name": ..., "vector": [...]}, {"kind": "text", "text": ...,
        "vector": [...]}]}``. Items no longer in the source are left out."""
        stored = self._stored()
        ids = [ex["id"] for items in stored.values() for ex in items if ex.get("kind") == "item"]
        index_of = self._known_indices(ids)
        out: dict[str, list[dict[str, Any]]] = {}
        for name, items in stored.items():
            rows = []
            for ex in items:
                if ex.get("kind") != "item":
                    rows.append(dict(ex))
                elif ex["id"] in index_of:
                    rows.append({"kind": "item", "index": index_of[ex["id"]], "id": ex["id"]})
            out[name] = rows
        return out

    def add(self, label: str, *, index: int | None = None, image: Any = None,
            text: str | None = None, replace: bool = False,
            label_item: bool = True) -> dict[str, Any]:
        """Make an item (also labeled ``label``, source "click", unless
        ``label_item=False``), an outside image (path, PIL, uint8 array or encoded bytes) or
        a text prompt (CLIP models) an example of class ``label``. Exactly one of ``index``
        / ``image`` / ``text``. ``replace=True`` drops the class's earlier examples first.
        Returns the stored example."""
        s = self._session
        if sum(x is not None for x in (index, image, text)) != 1:
            raise ValueError("Give exactly one of index=, image= or text= for the example.")
        if not isinstance(label, str) or not label.strip():
            raise ValueError("label must be a class name (a non-empty string).")
        if index is not None:
            idx = s.check_indices([index])
            if label_item:
                s.label(idx, label, source="click")
            else:
                s.add_class(label)
            example: dict[str, Any] = {"kind": "item", "id": str(s.ids[int(idx[0])])}
        elif image is not None:
            vec = s.embed_image(image)
            name = os.path.basename(str(image)) if isinstance(image, (str, os.PathLike)) else "image"
            example = {"kind": "image", "name": name, "vector": _rounded(vec)}
            s.add_class(label)
        else:
            if not isinstance(text, str) or not text.strip():
                raise ValueError("text must be a non-empty prompt, e.g. 'a photo of a sneaker'.")
            vec = s.embed_text([text.strip()])[0]
            example = {"kind": "text", "text": text.strip(), "vector": _rounded(vec)}
            s.add_class(label)
        stored = self._stored()
        kept = [] if replace else [e for e in stored.get(label, []) if e != example]
        stored[label] = kept + [example]
        self._save(stored)
        return example

    def add_items(self, label: str, indices: Any, *, replace: bool = True) -> int:
        """Make items ``indices`` (ints or a bool mask; e.g. ``session.selection``) the
        examples of ``label`` without labeling them (at most 256). Returns the items kept."""
        s = self._session
        idx = s.check_indices(indices)[:MAX_SELECTION_EXAMPLES]
        s.add_class(label)
        new = [{"kind": "item", "id": str(s.ids[int(i)])} for i in idx]
        stored = self._stored()
        kept = [] if replace else [e for e in stored.get(label, []) if e not in new]
        stored[label] = kept + new
        self._save(stored)
        return len(new)

    def clear(self, label: str | None = None) -> None:
        """Forget the kept examples of ``label`` (all classes if None); labels stay."""
        stored = {} if label is None else self._stored()
        stored.pop(label, None)
        self._save(stored)

    def vectors(self, label: str) -> np.ndarray:
        """(E, D) float32 unit vectors of the kept examples of ``label``."""
        emb = self._session.embeddings
        rows = [emb[ex["index"]] if ex["kind"] == "item" else np.asarray(ex["vector"], np.float32)
                for ex in self.all().get(label, [])]
        if not rows:
            return np.zeros((0, emb.shape[1]), np.float32)
        x = np.stack(rows).astype(np.float32)
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    def item_indices(self, label: str) -> np.ndarray:
        """(M,) int64 item indices among the examples of ``label``."""
        return np.asarray([e["index"] for e in self.all().get(label, []) if e["kind"] == "item"],
                          np.int64)

    def rename(self, old: str, new: str) -> None:
        """Keep the examples of class ``old`` under ``new`` (no-op if ``old`` has none)."""
        if old == new:
            return
        self.merge([old], new)

    def merge(self, names: Sequence[str], into: str) -> None:
        """Keep the examples of classes ``names`` under ``into`` (after ``into``'s own)."""
        names = [names] if isinstance(names, str) else list(names)
        stored = self._stored()
        moved = [ex for n in names if n != into for ex in stored.pop(n, [])]
        if not moved:
            return
        kept = list(stored.get(into, []))
        kept += [ex for ex in moved if ex not in kept]
        stored[into] = kept
        self._save(stored)

    # ================================================================ proposals
    def propose(self, *, method: str = "prototype",
                prompts: Mapping[str, str | Sequence[str]] | None = None,
                examples: Mapping[str, Any] | None = None,
                templates: Sequence[str] | None = None,
                open_set: bool = True) -> pd.DataFrame:
        """A proposed label for every unlabeled item: DataFrame[index, label, confidence,
        kept], most confident first (``attrs``: method, source, classes, left_out,
        left_out_reason); kept as ``proposal_``. Nothing is written. ``open_set``: items
        far from every example of their class get ``kept=False`` ("none of these",
        :mod:`dfwidgets.learn.open_set`) and are never committed.

        ``method="prototype"``: nearest class mean of ``examples`` ({class: index or
        indices}); by default of every labeled item plus the kept examples, with the
        store's hard negatives. ``method="zero-shot"``: CLIP similarity to ``prompts``
        ({class: prompt or prompts}; default: ``templates`` filled with each class name).
        """
        s = self._session
        P.check_method(method)
        pool = np.flatnonzero((s.label_array() < 0) & ~s.excluded_mask())
        if method == "zero-shot":
            if examples is not None:
                raise ValueError("examples= is for method='prototype'; zero-shot uses prompts=.")
            ok, why = s.supports_text()
            if not ok:
                raise ValueError(why)
            frame = P.propose_zero_shot(
                s.embeddings[pool], pool, classes=list(prompts) if prompts else s.classes,
                text_embedder=s.embed_text, prompts=prompts, templates=templates,
                open_set=open_set)
        else:
            if prompts is not None:
                raise ValueError("prompts= is for method='zero-shot'; prototypes use examples=.")
            X, y = self._training_set(examples)
            X_neg, y_neg = (None, None) if examples is not None else self._negatives(set(y))
            frame = P.propose_prototypes(X, y, s.embeddings[pool], pool, open_set=open_set,
                                         X_negative=X_neg, y_negative=y_neg)
        self.proposal_ = frame
        return frame

    def commit(self, *, min_confidence: float = 0.9, labels: Sequence[str] | None = None,
               proposal: pd.DataFrame | None = None) -> int:
        """Write the proposed labels with confidence >= ``min_confidence`` (only for
        classes in ``labels`` if given) as one event with source "prototype" / "zero-shot".
        Items labeled since the proposal are skipped, never overwritten. Returns the items
        written; undo with ``session.undo(source=...)``."""
        P.check_threshold(min_confidence)
        idx, names, source = P.select_for_commit(self._current(proposal), self._session.label_array(),
                                                 min_confidence=min_confidence, labels=labels)
        if len(idx) == 0:
            return 0
        return self._session.label_many(idx, names, source=source)

    def summary(self, *, min_confidence: float = 0.9) -> pd.DataFrame:
        """Of the current proposal, per class: DataFrame[label, proposed, above_threshold,
        median_confidence]."""
        return P.summarize_proposal(self._current(None), min_confidence=min_confidence)

    def samples(self, *, levels: Sequence[float] = (0.99, 0.9, 0.7, 0.5),
                per_class: int = 3) -> pd.DataFrame:
        """Of the current proposal: items near each confidence level, per class:
        DataFrame[label, level, index, confidence]."""
        return P.proposal_samples(self._current(None), levels=levels, per_class=per_class)

    # ================================================================ internals
    def _current(self, proposal: pd.DataFrame | None) -> pd.DataFrame:
        proposal = proposal if proposal is not None else self.proposal_
        if proposal is None:
            raise ValueError("There is no proposal yet: call session.propose(method=...) first.")
        return proposal

    def _stored(self) -> dict[str, list[dict[str, Any]]]:
        return dict(self._session.store.get_meta(EXAMPLES_META) or {})

    def _save(self, stored: Mapping[str, list[dict[str, Any]]]) -> None:
        self._session.store.set_meta(EXAMPLES_META, dict(stored) or None)

    def _known_indices(self, ids: Sequence[str]) -> dict[str, int]:
        """{item id: index} for the ``ids`` that are in the source."""
        s = self._session
        if not ids:
            return {}
        try:
            return dict(zip(ids, s.indices_of(ids).tolist()))
        except KeyError:
            out = {}
            for i in ids:
                try:
                    out[i] = int(s.indices_of([i])[0])
                except KeyError:
                    continue
            return out

    def _training_set(self, examples: Mapping[str, Any] | None) -> tuple[np.ndarray, np.ndarray]:
        """(X (M, D), y (M,)) for the prototypes: ``examples`` if given, else every labeled
        item plus the kept image/text examples and unlabeled item examples."""
        s = self._session
        emb = s.embeddings
        if examples is not None:
            if not isinstance(examples, Mapping):
                raise TypeError("examples must be a dict {class name: item index or list of "
                                "indices}, e.g. {'Sneaker': 123, 'Bag': [5, 9]}.")
            xs, ys = [], []
            for name, idx in examples.items():
                idx = s.check_indices(np.atleast_1d(idx))
                xs.append(emb[idx])
                ys += [str(name)] * len(idx)
            X = np.concatenate(xs) if xs else np.zeros((0, emb.shape[1]), np.float32)
            return X, np.asarray(ys, dtype=object)
        codes = s.label_array()
        classes = np.asarray(list(s.classes) + [None], dtype=object)
        labeled = np.flatnonzero(codes >= 0)
        xs, ys = [emb[labeled]], list(classes[codes[labeled]])
        for name, kept in self.all().items():
            for e in kept:
                if e["kind"] != "item":
                    xs.append(np.asarray(e["vector"], np.float32)[None, :])
                elif codes[e["index"]] < 0:  # an unlabeled item example (e.g. a selection)
                    xs.append(emb[e["index"]][None, :])
                else:
                    continue
                ys.append(name)
        return np.concatenate(xs).astype(np.float32), np.asarray(ys, dtype=object)

    def _negatives(self, present: set[str]) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The store's hard negatives of classes ``present``: (X (Q, D), y (Q,)) or Nones."""
        s = self._session
        neg = s.store.negatives()
        if not len(neg):
            return None, None
        neg = neg[neg["label"].isin(present)]
        known = self._known_indices(neg["item_id"].astype(str).tolist())
        neg = neg[neg["item_id"].astype(str).isin(known)]
        if not len(neg):
            return None, None
        idx = np.asarray([known[str(i)] for i in neg["item_id"]], np.int64)
        return s.embeddings[idx], neg["label"].to_numpy(dtype=object)


def _rounded(vec: np.ndarray) -> list[float]:
    """A vector as a short JSON list (6 decimals)."""
    return np.asarray(vec, np.float32).round(6).tolist()

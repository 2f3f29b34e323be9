"""Session: one dataset + its embeddings + a LabelStore + the current model, in one folder.

The one door between views and the core; a script uses it as a widget does. A thin
facade over parts that own their state: project, label_cache + events, fit_worker,
model_file, evaluation + acquisition, view_state, layout_state, neighbours,
embedder_access, examples, training, label_import, status.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from operator import attrgetter
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..learn.simulation import SMOOTHING
from ..store import LabelStore
from . import acquisition, class_edits, data_issues, exclusions, label_import, project
from . import status as status_part
from .checks import check_indices, check_strategy, strategy_names
from .embedder_access import EmbedderAccess
from .evaluation import Evaluation
from .events import EVENTS, EventHub
from .examples import ClassExamples
from .fit_worker import FitWorker
from .label_cache import LabelCache
from .layout_state import LayoutState
from .model_file import MODEL_DIR, MODEL_FILE, MODEL_META_FILE, ModelFile
from .neighbours import Neighbours, item_image_bytes
from .rules import Rules, weak_labels  # issue 18
from .training import Training
from .view_state import ViewState

__all__ = ["EVENTS", "MODEL_DIR", "MODEL_FILE", "MODEL_META_FILE", "Session"]


def _part(attribute: str, doc: str) -> Any:
    """A read-only property reading ``attribute`` (dotted) of a part."""
    return property(attrgetter(attribute), doc=doc)


def _forward(part: str, method: Callable[..., Any]) -> Callable[..., Any]:
    """A facade method calling ``self.<part>.<method>`` (same name, doc and signature)."""
    @functools.wraps(method)
    def call(self: Session, *args: Any, **kwargs: Any) -> Any:
        return getattr(getattr(self, part), method.__name__)(*args, **kwargs)
    return call


class Session:
    """The hub shared by all widgets: source, embeddings, label store and model.

    Create one with :meth:`open` or :meth:`from_folder`. Attributes: ``path``, ``source``
    (ImageSource), ``embeddings`` (N, D) float32, ``store`` (LabelStore: scripts and tests
    only, never views), ``ids`` (N,), ``classes``; after a fit ``model_``, ``probs_``
    (N, K), ``uncertainty_`` (N,), ``predictions_`` (N,) (None without enough labels, see
    ``fit_status_``). Parts: ``examples`` (class examples, proposals), ``training``.
    Events (:meth:`on`): "labels_changed" (indices), "classes_changed" (classes),
    "model_updated" / "layout_changed" (session), "selection_changed" /
    "highlight_changed" ((M,) uint32), "focus_changed" (index).
    """

    def __init__(self, path: Path, *, source: Any, embeddings: np.ndarray, store: LabelStore,
                 model: str | None, auto_fit: bool, strategy: str, fit_delay: float = 0.5,
                 smoothing: float = SMOOTHING, embedder: Any = None) -> None:
        self.path = path
        self.source = source
        self.embeddings = embeddings
        self.store = store
        self.model_name = model
        self.auto_fit = bool(auto_fit)
        self.strategy = strategy
        self.fit_delay = float(fit_delay)
        self.smoothing = float(smoothing)
        self.ids: np.ndarray = np.asarray(source.ids, dtype=object)
        self._embeddings_hash = (store.get_meta("embeddings") or {}).get("hash")
        self._fit = FitWorker(self)
        self._evaluation = Evaluation(self)
        self._model_file = ModelFile(self)
        self._embedders = EmbedderAccess(model, dim=embeddings.shape[1], given=embedder)
        self._neighbours = Neighbours(embeddings)
        self._labels = LabelCache(store, self.ids, emit=self._emit, changed=self._labels_moved)
        self._events = EventHub(self._labels.poll, name=f"dfw-poll-{path.name}")
        self._view = ViewState(len(self.ids), self._emit)
        self._layout = LayoutState(embeddings, lambda: self._emit("layout_changed", self))
        self.examples = ClassExamples(self)
        self.training = Training(self)
        self.rules = Rules(self)  # issue 18: rules (weak supervision)

    @classmethod
    def open(cls, path: str | os.PathLike, *, source: Any = None,
             embeddings: Any = None, model: Any = None, auto_fit: bool = True,
             strategy: str = "auto", fit_delay: float = 0.5,
             smoothing: float = SMOOTHING) -> Session:
        """Create the project folder ``path``, or reopen it with everything restored.

        ``source``: an ImageSource (needed the first time; later rebuilt from its recipe).
        ``embeddings``: (N, D) for the N items, or a Parquet file (id, vector) matched by id;
        if omitted the saved ``embeddings.npy``, else computed with ``model`` (an embedder name such as ``"efficientnet_lite0"``, or
        an Embedder). ``auto_fit``: retrain in the background after each burst of labels
        (``fit_delay`` s of quiet). ``strategy``: default of :meth:`next_batch`.
        ``smoothing``: the model sees each embedding plus ``smoothing`` x the mean of its
        10 nearest neighbours (fewer labels needed, over-optimistic confidence); 0 = off.
        """
        return project.open_session(cls, path, source=source, embeddings=embeddings,
                                    model=model, auto_fit=auto_fit, strategy=strategy,
                                    fit_delay=fit_delay, smoothing=smoothing)

    from_folder = classmethod(project.from_folder)  # folder -> Session in <folder>/.dfwidgets

    def __repr__(self) -> str:
        return (f"Session({str(self.path)!r}, items={len(self.ids)}, "
                f"labels={self._labels.n_labeled()}, classes={self.classes!r})")

    def __enter__(self) -> Session:  # noqa: PYI034 (Python 3.10 has no Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the poller and the fit thread (after a running fit), close the store."""
        self._labels.closed = True
        self._fit.close()
        self._events.close()
        self.store.close()

    # ------------------------------------------------------------------ labels
    classes = property(lambda self: self._labels.classes(),
                       doc="Class names (store order, including classes with no examples).")
    labels = property(lambda self: self._labels.labels(),
                      doc="Labeled items only: Series item index -> class name (by index).")
    version = property(lambda self: int(self.store.version()),
                       doc="The store's change counter: changes on every write (any writer).")

    def label_array(self) -> np.ndarray:
        """(N,) int64: index into :attr:`classes` of each item's label, -1 = unlabeled."""
        return self._labels.codes()

    def indices_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """(M,) int64 item indices of ``item_ids`` (KeyError naming unknown ids)."""
        return self._labels.indices_of(item_ids)

    def check_indices(self, indices: Any, *, unique: bool = True) -> np.ndarray:
        """(M,) int64 positions from ints or an (N,) bool mask (sorted unique if ``unique``);
        ValueError / TypeError / IndexError saying what is wrong."""
        return check_indices(indices, len(self.ids), unique=unique)

    def label(self, indices: Any, label: str | None, *, source: str = "click") -> int:
        """Label items ``indices`` (ints or a bool mask) as ``label`` (None = unlabel);
        committed before it returns, emits ``"labels_changed"``; returns items written."""
        idx = self.check_indices(indices)
        return self._labels.write(idx, lambda ids: self.store.set_labels(ids, label,
                                                                         source=source))

    def label_many(self, indices: Any, labels: Sequence[str | None], *, source: str) -> int:
        """Label ``indices[i]`` as ``labels[i]`` in one undoable call."""
        idx = self.check_indices(indices, unique=False)
        labels = list(labels)
        if len(labels) != len(idx):
            raise ValueError(f"Got {len(idx)} indices but {len(labels)} labels; pass one each.")
        return self._labels.write(idx, lambda ids: self.store.set_many(ids, labels,
                                                                       source=source))

    def undo(self, *, source: str | None = None, all_events: bool = False) -> int:
        """Undo the last labeling call (of ``source``); ``all_events=True`` undoes every
        call from ``source``. Returns the items reverted."""
        return self._labels.write(None, lambda ids: self.store.undo(source=source,
                                                                    all_events=all_events))

    def history(self) -> pd.DataFrame:
        """Every labeling event (LabelStore.history) plus ``index`` (-1: not in source)."""
        return self._labels.history()

    def add_class(self, name: str) -> None:
        """Add a class (no examples needed); emits ``"classes_changed"``."""
        self._labels.write(None, lambda ids: int(self.store.add_class(name)))

    rename_class = class_edits.rename_class  # (old, new): labels, model columns, examples
    merge_classes = class_edits.merge_classes  # (names, into) -> items relabeled
    import_labels = label_import.import_labels  # "folders" | DataFrame | CSV -> report dict
    folder_labels_available = label_import.folder_labels_available  # -> int

    def add_negatives(self, indices: Any, label: str, *, source: str = "search") -> int:
        """Mark items as "not ``label``" (hard negatives kept in the store)."""
        idx = self.check_indices(indices)
        return self.store.add_negatives(self.ids[idx].tolist(), label, source=source)

    def refresh(self) -> bool:
        """Pick up changes another Session or process wrote; True if labels or classes
        changed (audit items served elsewhere are reloaded too)."""
        self._evaluation.reset_audit()
        return self._labels.refresh()

    # ------------------------------------------------------------------ events
    def on(self, event: str, callback: Callable[..., Any]) -> int:
        """Call ``callback`` on ``event`` (class doc); returns a handle for :meth:`off`.
        While callbacks exist a daemon thread polls the store (other writers' changes)."""
        return self._events.on(event, callback)

    def off(self, handle: int) -> None:
        """Remove a callback registered with :meth:`on` (unknown handles are ignored)."""
        self._events.off(handle)

    def _emit(self, event: str, *args: Any) -> None:
        self._events.emit(event, *args)

    def _labels_moved(self) -> None:
        if self.auto_fit:
            self._fit.request(delay=self.fit_delay)

    # ------------------------------------------------------------------ model
    model_ = _part("_fit.model_", "The fitted learner, or None.")
    probs_ = _part("_fit.probs_", "(N, K) float32 class probabilities (columns "
                   "model_classes_), or None.")
    uncertainty_ = _part("_fit.uncertainty_", "(N,) float32 1 - max probability, or None.")
    predictions_ = _part("_fit.predictions_", "(N,) int64 index into model_classes_, or None.")
    model_classes_ = _part("_fit.model_classes_", "Class names of the probs_ columns.")
    fit_status_ = _part("_fit.fit_status_", "What the last fit did, or why nothing was fitted.")
    fit_error_ = _part("_fit.fit_error_", "The last background fit error, or None.")
    fitting = _part("_fit.fitting", "True while a fit is pending or running in the background.")
    confidence_ = property(lambda self: self._fit.confidence(),
                           doc="(N,) float32 top class probability, or None before a model.")
    model_features = property(lambda self: self._fit.model_features(), doc="(N, D) float32 "
                              "embeddings the model sees (neighbour-smoothed if smoothing).")

    def fit(self, *, background: bool = False, weak: bool | None = None) -> Session:
        """Train on the labels so far (audit items excluded); sets ``model_``, ``probs_``,
        ``uncertainty_``, ``predictions_`` and records a learning-curve point. With fewer
        than two labeled classes nothing is trained (``fit_status_`` says why).
        ``background=True`` returns at once; ``weak=True``: + the rules' weak labels from now
        on, ``weak=False``: hand labels only; None keeps the current choice."""
        self.rules.use_in_fit(weak)  # issue 18: this and later fits
        if background:
            self._fit.request(delay=0.0)
        else:
            self._fit.fit_now()
        return self

    def wait_for_fit(self, timeout: float | None = None) -> bool:
        """Block until no fit is pending or running; False on timeout."""
        return self._fit.wait(timeout)

    def predicted_labels(self) -> np.ndarray | None:
        """(N,) object class name predicted per item (from ``model_classes_``); None
        before a model. The one place views get class names of predictions."""
        return self._fit.predicted_labels()

    # ------------------------------------------------------------------ asking, evaluating
    strategies = property(lambda self: strategy_names(),
                          doc="Names of the strategies next_batch accepts.")

    def check_strategy(self, name: str) -> str:
        """``name`` if next_batch knows it, else ValueError naming the known strategies."""
        return check_strategy(name)

    def next_batch(self, k: int, *, strategy: str | None = None, exclude: Iterable[int] = (),
                   within: Any = None) -> np.ndarray:
        """(<= k,) int64 unlabeled items to ask next: ``strategy`` (default the Session's;
        "typiclust" while there is no model for model-based ones) plus ~10% random audit
        items (used only for :meth:`accuracy_estimate`). Never labeled items or ``exclude``.
        ``within`` (ints / bool mask, e.g. the selection): only those items, no audit."""
        return acquisition.next_batch(self, k, strategy=strategy, exclude=exclude, within=within)

    def accuracy_estimate(self) -> dict[str, Any]:
        """Accuracy on the unlabeled items, 95% interval: dict(estimate, low, high, n,
        expected, correction, prior_gap, audit_*, n_random): mean confidence corrected by
        the ``n`` audit answers and the ``n_random`` random picks scored out of fold (prior
        gap: the calibration gap expected before evidence); ``audit_*``: the audit alone."""
        return self._evaluation.accuracy_estimate()

    def true_accuracy(self) -> dict[str, Any] | None:
        """{"accuracy", "n"} on the unlabeled ground-truth holdout (<= 2,000 items), or None."""
        return self._evaluation.true_accuracy()

    curve = property(lambda self: self.store.curve(),
                     doc="Learning-curve records, one per fit: DataFrame[n_labels, n_train, "
                         "accuracy, low, high, n_audit, true_accuracy, strategy, model, ...].")

    def audit_mask(self) -> np.ndarray:
        """(N,) bool: items served as audit items (never trained on)."""
        return self._evaluation.audit_mask()

    def holdout_indices(self) -> np.ndarray:
        """(M,) int64 ground-truth holdout items (empty if the source has no labels)."""
        return self._evaluation.holdout_indices()

    def eval_items(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(indices, true codes into ``classes``, kind) to score a model on: the unlabeled
        holdout ("ground truth") if the source has labels, else answered audit items
        ("audit labels"); None when there are none."""
        return self._evaluation.eval_items()

    def label_issues(self) -> pd.DataFrame:
        """Suspected label errors, most suspicious first: DataFrame[index, item_id, given,
        suggested, score]; empty with fewer than two labeled classes."""
        return self._evaluation.label_issues()

    def review_items(self, issues: pd.DataFrame | None = None) -> np.ndarray:
        """(M,) int64 suspected errors (``issues``, default :meth:`label_issues`) whose
        current label was not given with source "review", most suspicious first."""
        return self._evaluation.review_items(issues)

    def difficulty(self) -> pd.Series | None:
        """(N,) easy / medium / hard (learn.issues.difficulty); None before a model."""
        return self._evaluation.difficulty()

    status = status_part.status  # -> dict: counts, estimate, fit state, next_step
    next_step = status_part.next_step  # -> str: the next useful step in words

    # ------------------------------------------------------------------ view state
    selection = _part("_view.selection", "(M,) uint32 sorted unique selected items (a copy).")
    focus = _part("_view.focus", "The focused item index, -1 for none.")
    highlight = _part("_view.highlight", "(M,) uint32 sorted unique items another view "
                      "points at (e.g. search results); set with set_highlight.")

    select = _forward("_view", ViewState.select)  # (indices, *, mode="replace"|"add"|"remove")
    clear_selection = _forward("_view", ViewState.clear_selection)
    set_focus = _forward("_view", ViewState.set_focus)  # (index | None)
    set_highlight = _forward("_view", ViewState.set_highlight)  # (indices | None)

    # ------------------------------------------------------------------ layout, neighbours
    layout_coords = _part("_layout.coords", "(N, 2) float32 read-only layout that views "
                          "draw now; None before start_layout / set_layout.")
    layout_status = _part("_layout.status", '{"method": "pca"|"umap"|"given"|None, "state": '
                          '"none"|"computing"|"done"|"failed", "error": str|None, "stage": '
                          'str|None}; PCA is shown while UMAP computes (method "pca", state '
                          '"computing"; "stage" says what runs now).')

    def start_layout(self, method: str = "umap") -> None:
        """Compute the layout once per Session ("umap" | "pca"): PCA at once, UMAP in the
        background; the same method again is a no-op. Emits ``"layout_changed"``."""
        self._layout.start(method)

    def set_layout(self, coords: Any) -> None:
        """Use ``coords`` (N, 2), finite, as the layout; emits ``"layout_changed"``."""
        self._layout.set(coords)

    def wait_for_layout(self, timeout: float | None = None) -> bool:
        """Block until no layout is computing; False on timeout."""
        return self._layout.wait(timeout)

    nearest = _forward("_neighbours", Neighbours.nearest)  # (Q, D), *, k -> (scores, idx)
    nearest_to_items = _forward("_neighbours", Neighbours.nearest_to_items)  # (M,), *, k

    def item_image_bytes(self, index: int, *, edge: int) -> tuple[bytes, str, tuple[int, int]]:
        """Item ``index`` as (data, mime, (width, height)) for a view ``edge`` px wide."""
        return item_image_bytes(self.source, index, edge=edge)

    # ------------------------------------------------------------------ the embedder
    embedder = _forward("_embedders", EmbedderAccess.embedder)  # -> Embedder | None
    supports_text = _forward("_embedders", EmbedderAccess.supports_text)  # -> (ok, why)
    embed_image = _forward("_embedders", EmbedderAccess.embed_image)  # image -> (D,) unit
    embed_text = _forward("_embedders", EmbedderAccess.embed_text)  # texts -> (T, D) unit

    # ------------------------------------------------------------------ proposals
    def propose(self, *, method: str = "prototype", prompts: Any = None, examples: Any = None,
                templates: Sequence[str] | None = None, open_set: bool = False) -> pd.DataFrame:
        """DataFrame[index, label, confidence, kept] per unlabeled item, as ``proposal_``;
        ``open_set=True`` (VisualSearch's default): items far from every example get
        kept=False, never committed."""
        return self.examples.propose(method=method, prompts=prompts, examples=examples,
                                     templates=templates, open_set=open_set)

    def commit_proposal(self, *, min_confidence: float = 0.9,
                        labels: Sequence[str] | None = None) -> int:
        """Label the last proposal's items with confidence >= ``min_confidence`` (source
        "prototype"/"zero-shot", undoable by source); returns the items written."""
        return self.examples.commit(min_confidence=min_confidence, labels=labels)

    proposal_ = property(lambda self: self.examples.proposal_,
                         lambda self, frame: setattr(self.examples, "proposal_", frame),
                         doc="The last proposal (DataFrame[index, label, confidence]) or None.")

    # --- issue 18
    weak_labels = weak_labels  # (*, method) -> (probs (N, K), abstain (N,)) from the rules

    # --- issue 19
    issues = property(data_issues.part, doc="DataIssues: report_, status_ (progress), wait.")
    find_issues = data_issues.find_issues  # (*, background) -> DataFrame of open data issues
    exclude = exclusions.exclude  # (indices, *, reason, source="review") -> n; never deleted
    include = exclusions.include  # (indices, *, reason, source="review") -> n
    undo_exclude = exclusions.undo_exclude  # (*, source="review", all_events) -> n
    excluded_mask = exclusions.excluded_mask  # -> (N,) bool items excluded now

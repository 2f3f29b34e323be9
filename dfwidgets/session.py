"""Session: one dataset + its embeddings + a LabelStore + the current model, in one folder.

Every widget is a view over a Session; a plain script can use it the same way::

    s = Session.open("fm_project/", source=src, embeddings=emb)
    s.label([12, 40, 41], "Sneaker")          # committed to labels.sqlite before it returns
    s.fit(); s.probs_, s.uncertainty_         # (N, K), (N,)
    s.next_batch(8)                           # what to ask next (audit items mixed in)

The project folder holds ``labels.sqlite`` (labels, history, classes, curve, metadata:
the source recipe and fingerprint, the audit and holdout item ids), ``embeddings.npy``
(float32) and ``model/last_model.npz`` (the last model, plain arrays, no pickle).
``Session.open(path)`` on that folder restores everything; the model is reloaded as it
was when the labels have not changed since, else refitted (warm-started from it).
Labels written by another Session or process show up without a refresh: the read
accessors check the store's change counter, and while callbacks are registered a small
daemon thread polls it about once a second.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .learn.simulation import SMOOTHING
from .store import LabelStore

__all__ = ["Session"]

log = logging.getLogger(__name__)

EVENTS = ("labels_changed", "classes_changed", "model_updated")
EMBEDDINGS_FILE = "embeddings.npy"
AUDIT_SHARE = 0.1          # share of next_batch items drawn at random for the audit
HOLDOUT_SIZE = 2000        # ground-truth items kept for the true accuracy (when available)
_IDLE_SECONDS = 30.0       # the background fit thread exits after this long without work
_POLL_SECONDS = 1.0        # how often the poller checks the store for other writers
_SYNC_WAIT = 1.0           # longest a reader waits for another thread's write + sync
MODEL_DIR = "model"
MODEL_FILE = "last_model.npz"        # arrays + the meta JSON (key "__meta__"); no pickle
MODEL_META_FILE = "last_model.json"  # a readable copy of that meta
_MODEL_FORMAT = 1


class Session:
    """The hub shared by all widgets: source, embeddings, label store and model.

    Create one with :meth:`Session.open`. Attributes:

    - ``path`` (project folder), ``source`` (:class:`~dfwidgets.data.ImageSource`),
      ``embeddings`` (N, D) float32, ``store`` (:class:`~dfwidgets.store.LabelStore`),
      ``ids`` (N,) item ids, ``classes`` (class names, the column order of ``probs_``).
    - After a fit: ``model_`` (a fitted learner or None), ``probs_`` (N, K) float32,
      ``uncertainty_`` (N,) float32 (1 - max prob), ``predictions_`` (N,) int64 indices into
      ``classes``; all None while there are not enough labels (see ``fit_status_``).

    Events (:meth:`on`): ``"labels_changed"`` -> ``callback(indices: ndarray)``,
    ``"classes_changed"`` -> ``callback(classes: list[str])``, ``"model_updated"`` ->
    ``callback(session)``. Callback errors are logged and never break labeling.
    """

    def __init__(
        self,
        path: Path,
        *,
        source: Any,
        embeddings: np.ndarray,
        store: LabelStore,
        model: str | None,
        auto_fit: bool,
        strategy: str,
        fit_delay: float = 0.5,
        smoothing: float = SMOOTHING,
    ) -> None:
        self.path = path
        self.smoothing = float(smoothing)
        self._features: np.ndarray | None = None
        self._features_lock = threading.Lock()
        self.source = source
        self.embeddings = embeddings
        self.store = store
        self.model_name = model
        self.auto_fit = bool(auto_fit)
        self.strategy = strategy
        self.fit_delay = float(fit_delay)
        self.ids: np.ndarray = np.asarray(source.ids, dtype=object)
        self._index_of: dict[str, int] = {str(i): n for n, i in enumerate(self.ids)}
        self._lock = threading.RLock()
        # held by a write from its store call until its events are out, so no other
        # thread's sync (poller, reader) reports this Session's own change first
        self._write_lock = threading.RLock()
        self._poller: threading.Thread | None = None
        self._poll_stop = threading.Event()
        self._callbacks: dict[int, tuple[str, Callable[..., Any]]] = {}
        self._handles = itertools.count(1)
        # labels cache, synced with the store's version
        self._codes = np.full(len(self.ids), -1, dtype=np.int64)
        self._classes: list[str] = []
        self._synced_version = -1
        self._last_event = 0  # newest store event seen by the label cache
        self._label_seq = 0  # bumps on every label change seen by this Session
        # model state
        self.model_: Any = None
        self.probs_: np.ndarray | None = None
        self.uncertainty_: np.ndarray | None = None
        self.predictions_: np.ndarray | None = None
        self.model_classes_: list[str] = []
        self.fit_status_: str = "not fitted yet"
        self.fit_error_: str | None = None
        self._published_seq = -1
        self._probe: Any = None  # LinearProbe kept between fits (warm start)
        self._zero_shot: tuple[tuple[str, ...], Any] | None = None  # (classes, classifier)
        self._fit_lock = threading.Lock()
        self._cond = threading.Condition()
        self._fit_requested = False
        self._fit_due = 0.0
        self._fitting = False
        self._worker: threading.Thread | None = None
        self._closed = False
        self._embedder: Any = None
        self._audit: Any = None
        self._holdout: np.ndarray | None = None
        self._embeddings_hash = (store.get_meta("embeddings") or {}).get("hash")
        self._sync(emit=False)

    # ================================================================== opening
    @classmethod
    def open(
        cls,
        path: str | os.PathLike,
        *,
        source: Any = None,
        embeddings: np.ndarray | None = None,
        model: Any = None,
        auto_fit: bool = True,
        strategy: str = "hybrid",
        fit_delay: float = 0.5,
        smoothing: float = SMOOTHING,
    ) -> Session:
        """Create the project folder ``path``, or reopen it with everything restored.

        ``source``: an ImageSource (needed the first time; later rebuilt from its recipe
        when it has one). ``embeddings``: (N, D) array for the source's N items; if omitted,
        the saved ``embeddings.npy`` is used, else they are computed with ``model`` (an
        embedder name such as ``"efficientnet_lite0"``, or an Embedder). ``auto_fit``:
        retrain in the background after each burst of labels (``fit_delay`` seconds of
        quiet). ``strategy``: default for :meth:`next_batch`. ``smoothing``: the model sees
        each item's embedding plus ``smoothing`` x the mean of its 10 nearest neighbours
        (:class:`~dfwidgets.learn.neighbour_smoothing.NeighbourSmoothing`; 0.5 needs ~20%
        fewer labels for the same accuracy on Fashion-MNIST, but the model's confidence and
        so :meth:`accuracy_estimate` become over-optimistic); 0 (default) = raw embeddings.
        """
        if not np.isfinite(smoothing) or smoothing < 0:
            raise ValueError(f"smoothing must be a weight >= 0 (0 = off); got {smoothing}")
        path = Path(path).expanduser()
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"{path} is a file; Session.open needs a project folder.")
        path.mkdir(parents=True, exist_ok=True)
        _check_strategy_name(strategy)
        store = LabelStore(path)
        try:
            return cls._open(path, store, source=source, embeddings=embeddings, model=model,
                             auto_fit=auto_fit, strategy=strategy, fit_delay=fit_delay,
                             smoothing=smoothing)
        except BaseException:
            store.close()
            raise

    @classmethod
    def _open(cls, path: Path, store: LabelStore, *, source: Any, embeddings: Any, model: Any,
              auto_fit: bool, strategy: str, fit_delay: float,
              smoothing: float = SMOOTHING) -> Session:
        from .data import ImageSource

        saved = store.get_meta("source")
        if source is None:
            if saved is None:
                raise ValueError(
                    f"{path} is a new project: pass source= (an ImageSource, e.g. "
                    "dfw.datasets.fashion_mnist() or ImageSource.from_folder(...))."
                )
            if saved.get("spec") is None:
                raise ValueError(
                    f"The source of {path} was built in memory and cannot be rebuilt; pass "
                    "source= again (the same images)."
                )
            source = ImageSource.from_spec(saved["spec"])
        elif not isinstance(source, ImageSource):
            raise TypeError(
                f"source must be an ImageSource, got {type(source).__name__}; wrap it with "
                "ImageSource.from_array / from_paths / from_folder / from_torch / from_dataframe."
            )
        if len(source) == 0:
            raise ValueError("The source has no items; there is nothing to label.")
        fingerprint = source.fingerprint()
        if saved is not None and saved.get("fingerprint") != fingerprint:
            raise ValueError(
                f"{path} was made for another dataset ({saved.get('n')} items, fingerprint "
                f"{str(saved.get('fingerprint'))[:12]}...); this source has {len(source)} items "
                f"(fingerprint {fingerprint[:12]}...). Open a new folder for this source."
            )
        emb = _load_or_make_embeddings(path, store, source, fingerprint, embeddings, model)
        model_name = _model_name(model) if model is not None else store.get_meta("model")
        if saved is None:  # only once the embeddings are known to fit the source
            store.set_meta("source", {"spec": source.spec, "fingerprint": fingerprint,
                                      "n": len(source)})
        if model is not None:
            store.set_meta("model", model_name)
        if store.get_meta("classes_seeded") is None:
            for name in source.classes or []:
                store.add_class(str(name))
            store.set_meta("classes_seeded", True)
        session = cls(path, source=source, embeddings=emb, store=store, model=model_name,
                      auto_fit=auto_fit, strategy=strategy, fit_delay=fit_delay,
                      smoothing=smoothing)
        if not isinstance(model, str) and model is not None:
            session._embedder = model  # an Embedder object given by the caller
        log.info("Session %s: %d items, %d labels, classes %s", path, len(source),
                 int((session._codes >= 0).sum()), session.classes)
        restored = session._restore_model()  # no refit when the labels are unchanged
        if auto_fit and not restored and session._can_fit()[0]:
            session._request_fit(delay=0.0)  # (re)fit the model in the background
        return session

    def __repr__(self) -> str:
        n = int((self._codes >= 0).sum())
        return (f"Session({str(self.path)!r}, items={len(self.ids)}, labels={n}, "
                f"classes={self.classes!r})")

    def __enter__(self) -> Session:  # noqa: PYI034 (Python 3.10 has no Self)
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the poller and the background fit thread (after a running fit), close
        the store."""
        with self._cond:
            self._closed = True
            self._fit_requested = False
            self._cond.notify_all()
        self._poll_stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5)
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=60)
        self.store.close()

    # ================================================================== labels
    @property
    def classes(self) -> list[str]:
        """Class names (store order, including classes with no examples yet)."""
        self._sync_if_moved()
        with self._lock:
            return list(self._classes)

    @property
    def labels(self) -> pd.Series:
        """Labeled items only: pd.Series item index -> class name (sorted by index)."""
        self._sync_if_moved()
        with self._lock:
            idx = np.flatnonzero(self._codes >= 0)
            names = np.asarray(self._classes, dtype=object)
            values = names[self._codes[idx]] if len(idx) else np.array([], dtype=object)
        return pd.Series(values, index=pd.Index(idx, name="index"), name="label", dtype=object)

    def label_array(self) -> np.ndarray:
        """(N,) int64: index into :attr:`classes` of each item's label, -1 = unlabeled."""
        self._sync_if_moved()
        with self._lock:
            return self._codes.copy()

    def indices_of(self, item_ids: Iterable[str]) -> np.ndarray:
        """(M,) int64 item indices of ``item_ids`` (KeyError naming unknown ids)."""
        ids = [str(i) for i in item_ids]
        missing = [i for i in ids if i not in self._index_of]
        if missing:
            raise KeyError(f"Unknown item id(s) {missing[:5]}; ids come from source.ids.")
        return np.fromiter((self._index_of[i] for i in ids), dtype=np.int64, count=len(ids))

    def label(self, indices: Any, label: str | None, *, source: str = "click") -> int:
        """Label items ``indices`` (ints or a boolean mask) as ``label`` (None = unlabel).

        Committed to the store before returning; emits ``"labels_changed"``; schedules a
        background refit when ``auto_fit``. Returns the number of items written.
        """
        idx = self._check_indices(indices)
        return self._write(idx, lambda ids: self.store.set_labels(ids, label, source=source))

    def label_many(self, indices: Any, labels: Sequence[str | None], *, source: str) -> int:
        """Label ``indices[i]`` as ``labels[i]`` in one undoable call."""
        idx = self._check_indices(indices, unique=False)
        labels = list(labels)
        if len(labels) != len(idx):
            raise ValueError(f"Got {len(idx)} indices but {len(labels)} labels; pass one each.")
        return self._write(idx, lambda ids: self.store.set_many(ids, labels, source=source))

    def undo(self, *, source: str | None = None, all_events: bool = False) -> int:
        """Undo the last labeling call (of ``source``); ``all_events=True`` undoes every
        call from ``source`` (e.g. all zero-shot labels). Returns the items reverted."""
        return self._write(None, lambda ids: self.store.undo(source=source,
                                                             all_events=all_events))

    def history(self) -> pd.DataFrame:
        """Every labeling event (see :meth:`LabelStore.history`) plus ``index`` (item index,
        -1 for ids not in this source)."""
        self._sync_if_moved()
        h = self.store.history()
        h.insert(0, "index", np.fromiter((self._index_of.get(i, -1) for i in h["item_id"]),
                                         dtype=np.int64, count=len(h)))
        return h

    def add_class(self, name: str) -> None:
        """Add a class (no examples needed); emits ``"classes_changed"``."""
        self._write(None, lambda ids: int(self.store.add_class(name)))

    def rename_class(self, old: str, new: str) -> None:
        """Rename a class everywhere (labels, history, model columns)."""
        def rename(ids: list[str]) -> int:
            self.store.rename_class(old, new)
            with self._lock:
                self.model_classes_ = [new if c == old else c for c in self.model_classes_]
            return 0

        self._write(None, rename)

    def merge_classes(self, names: Sequence[str], into: str) -> int:
        """Merge classes into one (history kept); returns the items relabeled."""
        return self._write(None, lambda ids: self.store.merge_classes(names, into))

    def add_negatives(self, indices: Any, label: str, *, source: str = "search") -> int:
        """Mark items as "not ``label``" (hard negatives kept in the store)."""
        idx = self._check_indices(indices)
        return self.store.add_negatives(self.ids[idx].tolist(), label, source=source)

    def refresh(self) -> bool:
        """Pick up changes another Session or process wrote; True if labels or classes
        changed (audit items served elsewhere are reloaded too). Labels and classes also
        come in by themselves (read accessors and the poller, see :meth:`on`)."""
        with self._lock:
            self._audit = None
        with self._write_lock:
            return self._sync()

    # ================================================================== events
    def on(self, event: str, callback: Callable[..., Any]) -> int:
        """Call ``callback`` on ``event``; returns a handle for :meth:`off`.

        While any callback is registered, a daemon thread checks the store about once a
        second, so changes from another Session or process fire the events too (from
        that thread). It stops on :meth:`close` or when the last callback is removed."""
        if event not in EVENTS:
            raise ValueError(f"Unknown event {event!r}; use one of {', '.join(EVENTS)}.")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
        handle = next(self._handles)
        with self._lock:
            self._callbacks[handle] = (event, callback)
            if self._poller is None and not self._closed:
                self._poller = threading.Thread(
                    target=_poll_store, args=(weakref.ref(self), self._poll_stop),
                    daemon=True, name=f"dfw-poll-{self.path.name}")
                self._poller.start()
        return handle

    def off(self, handle: int) -> None:
        """Remove a callback registered with :meth:`on` (unknown handles are ignored)."""
        with self._lock:
            self._callbacks.pop(handle, None)

    def _emit(self, event: str, *args: Any) -> None:
        with self._lock:
            targets = [cb for ev, cb in self._callbacks.values() if ev == event]
        for cb in targets:
            try:
                cb(*args)
            except Exception:  # a widget's bug must not break labeling
                log.exception("%s callback %r failed", event, cb)

    # ================================================================== internals: labels
    def _check_indices(self, indices: Any, *, unique: bool = True) -> np.ndarray:
        n = len(self.ids)
        arr = np.atleast_1d(np.asarray(indices))
        if arr.dtype == bool:
            if arr.shape != (n,):
                raise ValueError(f"A boolean mask must have shape ({n},), got {arr.shape}.")
            arr = np.flatnonzero(arr)
        if arr.ndim != 1:
            raise ValueError(f"Item indices must be 1-D, got shape {arr.shape}.")
        if arr.size == 0:
            raise ValueError("No items given: pass at least one item index.")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(
                f"Item indices must be integers (positions in the source), got {arr.dtype}; "
                "use session.indices_of(ids) for item ids."
            )
        bad = arr[(arr < 0) | (arr >= n)]
        if bad.size:
            raise IndexError(f"Item index {int(bad[0])} is out of range: the source has {n} items.")
        arr = arr.astype(np.int64)
        return np.unique(arr) if unique else arr

    def _write(self, idx: np.ndarray | None, action: Callable[[list[str]], int]) -> int:
        """Run a store write, then sync the cache, emit events, schedule a refit."""
        ids = [] if idx is None else self.ids[idx].tolist()
        with self._write_lock:
            n = action(ids)
            self._sync()
        return n

    def _sync_if_moved(self, *, wait: float = _SYNC_WAIT) -> None:
        """Sync (and emit) if the store changed since the last sync: one cheap query.

        Waits at most ``wait`` s for a write in progress in another thread (it emits its
        own events); after that, or once closed, the cache is used as it is."""
        if self._closed:
            return
        try:
            if self.store.version() == self._synced_version:
                return
        except sqlite3.ProgrammingError:  # store closed under us
            return
        if not self._write_lock.acquire(timeout=wait):
            log.debug("sync skipped: another thread is writing")
            return
        try:
            if not self._closed:
                self._sync()
        finally:
            self._write_lock.release()

    def _sync(self, *, emit: bool = True) -> bool:
        """Bring the label cache up to date with the store (incrementally: only items
        with new events, unless classes changed); emit what changed."""
        with self._lock, self.store.snapshot():
            version = self.store.version()
            if version == self._synced_version:
                return False
            classes = self.store.classes()
            items, last_event = self.store.changed_since(self._last_event)
            if classes == self._classes and len(items) <= 20_000:
                mapping = self.store.labels_of(items)
                codes = self._codes.copy()
                known = [self._index_of[i] for i in items if i in self._index_of]
                codes[known] = -1
            else:
                mapping = self.store.label_map()
                codes = np.full(len(self.ids), -1, dtype=np.int64)
            self._last_event = last_event
            lookup = {c: i for i, c in enumerate(classes)}
            unknown = 0
            for item, name in mapping.items():
                i = self._index_of.get(item)
                if i is None:
                    unknown += 1
                else:
                    codes[i] = lookup[name]
            if unknown:
                log.debug("%d labeled ids in the store are not in this source", unknown)
            if classes == self._classes:
                changed = np.flatnonzero(codes != self._codes).astype(np.int64)
            else:  # compare by name: a rename changes no label, a merge does
                old_names = np.asarray(self._classes + [None], dtype=object)[self._codes]
                new_names = np.asarray(classes + [None], dtype=object)[codes]
                changed = np.flatnonzero(old_names != new_names).astype(np.int64)
            classes_changed = classes != self._classes
            self._codes, self._classes = codes, classes
            self._synced_version = version
            if len(changed):
                self._label_seq += 1
        if emit and classes_changed:
            self._emit("classes_changed", list(classes))
        if emit and len(changed):
            self._emit("labels_changed", changed)
        if emit and (len(changed) or classes_changed) and self.auto_fit:
            self._request_fit(delay=self.fit_delay)
        return bool(len(changed) or classes_changed)

    # ================================================================== fitting
    def _can_fit(self, codes: np.ndarray | None = None,
                 classes: list[str] | None = None) -> tuple[bool, str]:
        """(True, "") if a model can be trained, else (False, why)."""
        if codes is None or classes is None:
            codes, classes = self.label_array(), self.classes
        if len(classes) >= 2 and self._text_embedder() is not None:
            return True, ""  # zero-shot from the class names needs no labels
        train = codes[(codes >= 0) & ~self._audit_mask()]
        counts = np.bincount(train, minlength=len(classes))
        if int((counts > 0).sum()) >= 2:
            return True, ""
        if len(train) == 0:
            return False, "No labels yet: label items of at least 2 classes to train a model."
        only = classes[int(np.argmax(counts))]
        return False, (f"Only one class has labels ({only!r}, {int(counts.max())}); label "
                       "items of a second class to train a model.")

    def fit(self, *, background: bool = False) -> Session:
        """Train on the labels given so far; sets ``model_``, ``probs_`` (N, K),
        ``uncertainty_`` (N,), ``predictions_`` (N,) and appends a learning-curve record.

        Audit items (see :meth:`next_batch`) are never trained on. With fewer than two
        labeled classes nothing is trained: ``probs_`` stays None and ``fit_status_`` says
        why. ``background=True`` returns at once and emits ``"model_updated"`` when done.
        """
        if background:
            self._request_fit(delay=0.0)
            return self
        self._fit_now()
        return self

    def wait_for_fit(self, timeout: float | None = None) -> bool:
        """Block until no fit is pending or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._fit_requested or self._fitting:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def fitting(self) -> bool:
        """True while a fit is pending or running in the background."""
        with self._cond:
            return self._fit_requested or self._fitting

    def _request_fit(self, *, delay: float) -> None:
        with self._cond:
            if self._closed:
                return
            self._fit_requested = True
            self._fit_due = time.monotonic() + delay
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._fit_loop, daemon=True,
                                                name=f"dfw-fit-{self.path.name}")
                self._worker.start()
            self._cond.notify_all()

    def _fit_loop(self) -> None:
        """Background worker: debounce requests, one fit at a time, newest labels win."""
        while True:
            with self._cond:
                while not self._fit_requested and not self._closed:
                    if not self._cond.wait(_IDLE_SECONDS) and not self._fit_requested:
                        self._worker = None
                        return
                if self._closed:
                    self._worker = None
                    self._cond.notify_all()
                    return
                while (left := self._fit_due - time.monotonic()) > 0 and not self._closed:
                    self._cond.wait(left)  # a newer request moves _fit_due later
                self._fit_requested = False
                self._fitting = True
            try:
                self._fit_now()
            except Exception as exc:  # keep the worker alive; the widgets show fit_error_
                self.fit_error_ = f"{type(exc).__name__}: {exc}"
                log.exception("background fit failed")
            finally:
                with self._cond:
                    self._fitting = False
                    self._cond.notify_all()

    def _fit_now(self) -> None:
        with self._fit_lock:
            self._sync_if_moved()
            with self._lock:
                seq = self._label_seq
                codes = self._codes.copy()
                classes = list(self._classes)
            ok, why = self._can_fit(codes, classes)
            started = time.perf_counter()
            if not ok:
                if self._publish(seq, None, None, classes, why):
                    self._remove_saved_model()
                    self._emit("model_updated", self)
                return
            train = np.flatnonzero((codes >= 0) & ~self._audit_mask())
            features = self.model_features
            X = features[train]
            y = np.asarray(classes, dtype=object)[codes[train]]
            model, kind = self._make_model(y, classes)
            self._fit_model(model, X, y)
            probs = _align_columns(model.predict_proba(features),
                                   list(model.classes_), classes)
            seconds = time.perf_counter() - started
            self.fit_error_ = None
            published = self._publish(seq, model, probs, classes,
                                       f"{kind} on {len(train)} labels ({seconds:.2f} s)")
            if published:  # the curve record first, so listeners see it
                self._save_model(model, kind=kind, train=train, y=y)
                self._record_curve(kind=kind, n_train=len(train), seconds=seconds)
                self._emit("model_updated", self)

    def _make_model(self, y: np.ndarray, classes: list[str]) -> tuple[Any, str]:
        """LinearProbe (warm-started), or prototypes while some class has < 2 labels;
        blended with a zero-shot prior from the class names when the embedder reads text."""
        from .learn import models

        present = [c for c in classes if c in set(y.tolist())]
        counts = pd.Series(y).value_counts() if len(y) else pd.Series([0])
        if len(present) < 2 or int(counts.min()) < 2:
            base, kind = models.PrototypeClassifier(classes=present or None), "prototype"
        else:
            if self._probe is None:
                self._probe = models.LinearProbe(warm_start=True)
            self._probe.set_params(classes=present)
            base, kind = self._probe, "linear probe"
        text = self._text_embedder()
        if text is None or len(classes) < 2:
            return base, kind
        key = tuple(classes)
        if self._zero_shot is None or self._zero_shot[0] != key:
            self._zero_shot = (key, models.ZeroShotClassifier(classes, text_embedder=text))
        blend = models.BlendedClassifier(zero_shot=self._zero_shot[1],
                                         supervised=base if len(present) >= 2 else None)
        return blend, f"zero-shot + {kind}" if len(present) >= 2 else "zero-shot"

    def _fit_model(self, model: Any, X: np.ndarray, y: np.ndarray) -> None:
        """Fit; prototypes also get the store's hard negatives ("not this class")."""
        from .learn.models import PrototypeClassifier

        if isinstance(model, PrototypeClassifier):
            neg = self.store.negatives()
            neg = neg[neg["item_id"].isin(self._index_of) & neg["label"].isin(set(y.tolist()))]
            if len(neg):
                idx = self.indices_of(neg["item_id"])
                model.fit(X, y, X_negative=self.model_features[idx],
                          y_negative=neg["label"].to_numpy(dtype=object))
                return
        model.fit(X, y)

    def _text_embedder(self) -> Any:
        """The embedder if it embeds text (CLIP) and is loadable, else None (cached)."""
        if self._embedder is None:
            name = self.model_name
            if not name or name in ("efficientnet_lite0", "pixels"):
                self._embedder = False
            else:
                try:
                    from .embed import get_embedder

                    self._embedder = get_embedder(name)
                except Exception as exc:  # noqa: BLE001 - any load failure: no zero-shot
                    log.warning("zero-shot off: cannot load embedder %r (%s)", name, exc)
                    self._embedder = False
        emb = self._embedder
        return emb if emb is not False and getattr(emb, "supports_text", False) else None

    def _publish(self, seq: int, model: Any, probs: np.ndarray | None, classes: list[str],
                 status: str) -> bool:
        """Swap in a fit result unless a newer one is already out (caller emits)."""
        with self._lock:
            if seq < self._published_seq:
                return False
            self._published_seq = seq
            self.model_ = model
            self.model_classes_ = classes
            self.fit_status_ = status
            if probs is None:
                self.probs_ = self.uncertainty_ = self.predictions_ = None
            else:
                self.probs_ = probs
                self.predictions_ = probs.argmax(axis=1).astype(np.int64)
                self.uncertainty_ = (1.0 - probs.max(axis=1)).astype(np.float32)
        return True

    # ================================================================== model on disk
    def _model_files(self) -> tuple[Path, Path]:
        folder = self.path / MODEL_DIR
        return folder / MODEL_FILE, folder / MODEL_META_FILE

    def _label_fingerprint(self, train: np.ndarray, y: np.ndarray, *,
                           negatives: bool) -> str:
        """Hash of the sorted (item id, class name) pairs trained on (and of the store's
        hard negatives when ``negatives``, as prototypes use them)."""
        h = hashlib.blake2b(digest_size=16)
        h.update(json.dumps(sorted(zip(self.ids[train].tolist(),
                                       [str(v) for v in y.tolist()]))).encode())
        if negatives:
            neg = self.store.negatives()
            h.update(json.dumps(sorted(zip(neg["item_id"].astype(str).tolist(),
                                           neg["label"].astype(str).tolist()))).encode())
        return h.hexdigest()

    def _save_model(self, model: Any, *, kind: str, train: np.ndarray, y: np.ndarray) -> None:
        """Write ``model/last_model.npz`` (+ ``.json``) atomically; never raises (logs)."""
        from . import __version__
        from .learn.models import LinearProbe, PrototypeClassifier

        if not isinstance(model, (LinearProbe, PrototypeClassifier)):
            log.info("not saving the %s model (its zero-shot part is rebuilt from the class "
                     "names); reopening the project refits it", kind)
            self._remove_saved_model()
            return
        npz, meta_file = self._model_files()
        try:
            arrays, state = model.get_state()
            meta = {
                "format": _MODEL_FORMAT, "kind": kind, "model": type(model).__name__,
                "state": state, "classes": list(self.model_classes_),
                "label_fingerprint": self._label_fingerprint(
                    train, y, negatives=isinstance(model, PrototypeClassifier)),
                "n_train": len(train), "embeddings_hash": self._embeddings_hash,
                "smoothing": self.smoothing,
                "dfwidgets_version": __version__, "time": time.time(),
            }
            text = json.dumps(meta, indent=1)
            npz.parent.mkdir(exist_ok=True)
            tag = f"{os.getpid()}.{threading.get_ident()}.tmp"
            tmp = npz.with_name(f".{npz.name}.{tag}")
            with open(tmp, "wb") as f:
                np.savez(f, __meta__=np.array(text), **arrays)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, npz)
            tmp = meta_file.with_name(f".{meta_file.name}.{tag}")
            tmp.write_text(text)
            os.replace(tmp, meta_file)
        except Exception as exc:  # noqa: BLE001 - a full disk must not break labeling
            log.warning("could not save the model to %s (%s: %s); reopening will refit",
                        npz, type(exc).__name__, exc)

    def _remove_saved_model(self) -> None:
        for file in self._model_files():
            try:
                file.unlink(missing_ok=True)
            except OSError as exc:
                log.warning("could not remove %s (%s)", file, exc)

    def _read_saved_model(self, npz: Path) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(arrays, meta) of a saved model that fits this project; ValueError saying why
        it does not (unreadable, other embeddings or dimensions, unknown classes)."""
        try:
            with np.load(npz, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            meta = json.loads(str(arrays.pop("__meta__")))
        except Exception as exc:  # noqa: BLE001 - any damage: refit
            raise ValueError(f"unreadable ({type(exc).__name__}: {exc})") from None
        if not isinstance(meta, dict) or meta.get("format") != _MODEL_FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
            raise ValueError(f"unknown format {found!r} (this dfwidgets writes {_MODEL_FORMAT})")
        if meta.get("model") not in ("LinearProbe", "PrototypeClassifier"):
            raise ValueError(f"unsupported model {meta.get('model')!r}")
        state = meta.get("state") or {}
        dim = self.embeddings.shape[1]
        if state.get("n_features_in_") != dim:
            raise ValueError(f"it was fitted on {state.get('n_features_in_')}-dim embeddings, "
                             f"the project's have {dim}")
        if meta.get("embeddings_hash") != self._embeddings_hash:
            raise ValueError("it was fitted on other embeddings than the project's")
        if float(meta.get("smoothing", 0.0)) != self.smoothing:
            raise ValueError(f"it was fitted with smoothing={meta.get('smoothing', 0.0)}, "
                             f"this Session uses {self.smoothing}")
        unknown = set(map(str, state.get("classes_", []))) - set(self._classes)
        if unknown:
            raise ValueError(f"its classes {sorted(unknown)} are not in the project "
                             "(renamed or merged since?)")
        return arrays, meta

    def _restore_model(self) -> bool:
        """Load the saved model at open. True when it was trained on exactly the current
        labels: it is published as it was, no refit needed. Otherwise a LinearProbe
        becomes the warm start of the next fit (and is shown until then); a damaged or
        mismatched file is ignored with a warning."""
        from .learn.models import LinearProbe, PrototypeClassifier

        npz = self._model_files()[0]
        if not npz.exists():
            return False
        try:
            arrays, meta = self._read_saved_model(npz)
            kind, state = str(meta.get("kind", meta["model"])), meta["state"]
            with self._lock:
                seq, codes, classes = self._label_seq, self._codes.copy(), list(self._classes)
            train = np.flatnonzero((codes >= 0) & ~self._audit_mask())
            y = np.asarray(classes, dtype=object)[codes[train]]
            is_probe = meta["model"] == "LinearProbe"
            fresh = meta.get("label_fingerprint") == self._label_fingerprint(
                train, y, negatives=not is_probe)
            if is_probe:  # training data back: predict_proba_mc (BALD) works as before
                model = LinearProbe.from_state(arrays, state, **(
                    {"X": self.model_features[train], "y": y} if fresh else {}))
            else:
                model = PrototypeClassifier.from_state(arrays, state)
            probs = _align_columns(model.predict_proba(self.model_features),
                                   list(model.classes_), classes)
        except Exception as exc:  # noqa: BLE001 - never fail open over the model file
            log.warning("ignoring the saved model %s: %s; the model is refitted", npz, exc)
            return False
        if is_probe:
            self._probe = model  # the next fit continues from it
        n_train = int(meta.get("n_train", 0))
        if fresh:
            status = f"{kind} on {n_train} labels (restored)"
        elif len(set(y.tolist())) >= 2:
            status = (f"{kind} on {n_train} labels (restored; the labels changed since, "
                      + ("refitting)" if self.auto_fit else "call fit() to update)"))
        else:
            log.info("saved model %s is out of date and cannot be refitted yet", npz)
            return False
        self._publish(seq, model, probs, classes, status)
        log.info("model restored from %s (%s)", npz, status)
        return fresh

    # ================================================================== next batch, audit
    def _audit_sampler(self) -> Any:
        """The AuditSampler, restored from the store's meta "audit" (item ids)."""
        if self._audit is None:
            from .learn.evaluate import AuditSampler

            state = self.store.get_meta("audit")
            self._audit = AuditSampler(share=AUDIT_SHARE, random_state=0)
            if state:
                self._audit = AuditSampler.from_json({
                    **state, "items": self._known_indices(state.get("ids", []))})
        return self._audit

    def _known_indices(self, ids: Iterable[str]) -> np.ndarray:
        return np.fromiter((self._index_of[i] for i in ids if i in self._index_of),
                           dtype=np.int64)

    def _audit_mask(self) -> np.ndarray:
        """(N,) bool: items served as audit items (never trained on)."""
        mask = np.zeros(len(self.ids), dtype=bool)
        mask[self._known_indices((self.store.get_meta("audit") or {}).get("ids", []))] = True
        return mask

    def _remember_audit(self) -> None:
        """Save the sampler state (audit items as ids), merged with what others saved."""
        state = self._audit.to_json()
        saved = self.store.get_meta("audit") or {}
        ids = list(dict.fromkeys(saved.get("ids", []) + self.ids[state.pop("items")].tolist()))
        state["asked"] = max(state["asked"], int(saved.get("asked", 0)))
        self.store.set_meta("audit", {**state, "ids": ids})

    def next_batch(self, k: int, *, strategy: str | None = None,
                   exclude: Iterable[int] = ()) -> np.ndarray:
        """(<= k,) int64 indices of unlabeled items to ask next.

        ``strategy`` (default: the Session's) picks most items; while there is no model,
        strategies that need one fall back to ``"typiclust"`` (diverse, typical items).
        About 10% are audit items drawn at random (never by uncertainty), remembered in
        the store and used only for :meth:`accuracy_estimate`. Never returns labeled items
        or ``exclude``; returns fewer than ``k`` only when the pool runs out.
        """
        from .learn import strategies

        strategy = strategy or self.strategy
        _check_strategy_name(strategy)
        if int(k) < 1:
            raise ValueError(f"k must be at least 1, got {k!r}.")
        codes = self.label_array()
        blocked = codes >= 0
        ex = np.asarray(list(exclude), dtype=np.int64)
        if ex.size:
            if ((ex < 0) | (ex >= len(self.ids))).any():
                raise IndexError(f"exclude has indices outside 0..{len(self.ids) - 1}.")
            blocked[ex] = True
        pool = np.flatnonzero(~blocked)
        if pool.size == 0:
            raise ValueError(
                "No items left to ask: every item is labeled or excluded. Unlabel or add items."
            )
        k = min(int(k), pool.size)
        with self._lock:
            probs = self.probs_
        rng = np.random.default_rng([int(self.store.version()), len(pool)])
        with self._lock:
            audit = self._audit_sampler()
            audit_idx = np.asarray(audit.sample(pool, k, rng=rng), dtype=np.int64)[:k]
            self._remember_audit()
        blocked[audit_idx] = True
        rest = k - audit_idx.size
        chosen = np.empty(0, dtype=np.int64)
        if rest > 0:
            name = strategy
            if probs is None and name not in ("random", "coreset", "typiclust"):
                name = "typiclust"
            elif name == "bald":
                mc = getattr(self.model_, "predict_proba_mc", None)
                if mc is None:
                    log.info("bald needs a linear probe (MC samples); using entropy")
                    name = "entropy"
                else:
                    probs = mc(self.model_features)  # (S, N, K)
            chosen = np.asarray(strategies.select(name, probs, self.embeddings, blocked, rest,
                                                  rng), dtype=np.int64)
        out = np.concatenate([chosen, audit_idx])
        # audit items go at random positions so the user cannot tell them apart
        out = out[rng.permutation(out.size)]
        return out

    def accuracy_estimate(self) -> dict[str, Any]:
        """Estimated accuracy of the current model on the unlabeled items, with a 95%
        interval: dict(estimate, low, high, n, expected, correction, audit_estimate,
        audit_low, audit_high).

        ``estimate``: the model's mean confidence over all unlabeled items, corrected by
        the answered audit items (random, never trained on; ``n`` of them), see
        :func:`dfwidgets.learn.evaluate.confidence_accuracy`: with few answers it leans on
        the model's confidence, with many on the audit. ``audit_*``: the audit answers
        alone (Wilson interval), the plain unbiased check. None values before a model.
        """
        from .learn.evaluate import confidence_accuracy

        self._sync_if_moved()
        with self._lock:
            probs, pred, model_classes = self.probs_, self.predictions_, list(self.model_classes_)
            codes = self._codes.copy()
            given = np.asarray(self._classes + [None], dtype=object)[codes]
            sampler = self._audit_sampler()
        empty = {"estimate": None, "low": None, "high": None, "expected": None,
                 "correction": None, "audit_estimate": None, "audit_low": None,
                 "audit_high": None}
        audit = sampler.items
        answered = audit[codes[audit] >= 0] if len(audit) else audit
        if pred is None or probs is None:
            return {**empty, "n": int(len(answered))}
        # compare class names: classes may have been added or merged since the fit
        guessed = np.asarray(model_classes, dtype=object)[pred]
        audit_only = sampler.estimate(guessed, given)
        pool = np.flatnonzero(codes < 0)
        if pool.size == 0:  # everything labeled: only the audit answers are left
            pool = answered
        if pool.size == 0:
            return {**empty, "n": 0}
        est = confidence_accuracy(probs[pool], probs[answered],
                                  guessed[answered] == given[answered])
        return {**est, "audit_estimate": audit_only["estimate"],
                "audit_low": audit_only["low"], "audit_high": audit_only["high"]}

    def true_accuracy(self) -> dict[str, Any] | None:
        """Accuracy on a fixed random holdout of up to 2,000 unlabeled items with ground
        truth in the source (built-in datasets); None when the source has no labels."""
        gt = getattr(self.source, "labels", None)
        names = getattr(self.source, "classes", None)
        with self._lock:
            pred, classes = self.predictions_, list(self.model_classes_)
        if gt is None or not names or pred is None:
            return None
        holdout = self._holdout_indices()
        codes = self.label_array()
        holdout = holdout[codes[holdout] < 0]
        if holdout.size == 0:
            return None
        truth = np.asarray(names, dtype=object)[gt[holdout]]
        guess = np.asarray(classes, dtype=object)[pred[holdout]]
        return {"accuracy": float((truth == guess).mean()), "n": int(holdout.size)}

    def _holdout_indices(self) -> np.ndarray:
        if self._holdout is None:
            ids = self.store.get_meta("holdout")
            if ids is None:
                candidates = np.flatnonzero(np.asarray(self.source.labels) >= 0)
                rng = np.random.default_rng(12345)
                pick = rng.choice(candidates, size=min(HOLDOUT_SIZE, candidates.size),
                                  replace=False)
                ids = self.ids[np.sort(pick)].tolist()
                self.store.set_meta("holdout", ids)
            self._holdout = self.indices_of([i for i in ids if i in self._index_of])
        return self._holdout

    def _record_curve(self, *, kind: str, n_train: int, seconds: float) -> None:
        est = self.accuracy_estimate()
        true = self.true_accuracy()
        record = {
            "n_labels": int((self.label_array() >= 0).sum()),
            "n_train": int(n_train),
            "n_classes": len(self.model_classes_),
            "accuracy": est["estimate"], "low": est["low"], "high": est["high"],
            "n_audit": est["n"], "audit_accuracy": est.get("audit_estimate"),
            "true_accuracy": None if true is None else true["accuracy"],
            "strategy": self.strategy, "model": kind,
            "fit_seconds": round(seconds, 4), "time": time.time(),
        }
        self.store.add_curve_point(record)

    @property
    def curve(self) -> pd.DataFrame:
        """Learning-curve records, one per fit: n_labels, n_train, accuracy, low, high,
        n_audit, true_accuracy, strategy, model, fit_seconds, time."""
        return self.store.curve()

    @property
    def model_features(self) -> np.ndarray:
        """(N, D) float32 what the model is fitted on: the embeddings, neighbour-smoothed
        when ``smoothing`` > 0 (the kNN graph is built on first use, then cached on disk)."""
        if self._features is None:
            with self._features_lock:
                if self._features is None:
                    if self.smoothing > 0 and len(self.embeddings) > 2:
                        from .learn.neighbour_smoothing import NeighbourSmoothing

                        self._features = NeighbourSmoothing(
                            alpha=self.smoothing).fit_transform(self.embeddings)
                    else:
                        self._features = self.embeddings
        return self._features

    def label_issues(self) -> pd.DataFrame:
        """Suspected label errors, most suspicious first: DataFrame[index, item_id, given,
        suggested, score] (class names); empty with fewer than two labeled classes."""
        from .learn.issues import find_label_issues

        codes = self.label_array()
        labeled = np.flatnonzero(codes >= 0)
        cols = ["index", "item_id", "given", "suggested", "score"]
        if labeled.size == 0 or np.unique(codes[labeled]).size < 2:
            return pd.DataFrame(columns=cols)
        names = np.asarray(self._classes, dtype=object)
        found = find_label_issues(self.model_features[labeled], names[codes[labeled]])
        found = found.copy()
        found["index"] = labeled[found["index"].to_numpy(dtype=np.int64)]
        found.insert(1, "item_id", self.ids[found["index"].to_numpy()])
        return found.reset_index(drop=True)


    # ================================================================== proposals (issue 7)
    def propose(self, *, method: str = "prototype", prompts: Any = None,
                examples: Any = None) -> pd.DataFrame:
        """Proposed label + confidence for every unlabeled item, DataFrame[index, label,
        confidence]; kept as ``proposal_``; nothing written (see learn/proposals.py)."""
        from .learn.proposals import propose

        return propose(self, method=method, prompts=prompts, examples=examples)

    def commit_proposal(self, *, min_confidence: float = 0.9,
                        labels: Sequence[str] | None = None) -> int:
        """Label the last proposal's items with confidence >= ``min_confidence`` (source
        "prototype"/"zero-shot", undoable by source); returns the items written."""
        from .learn.proposals import commit_proposal

        return commit_proposal(self, min_confidence=min_confidence, labels=labels)


# ====================================================================== helpers
def _check_strategy_name(name: str) -> None:
    from .learn.strategies import STRATEGIES

    if name not in STRATEGIES:
        raise ValueError(f"Unknown strategy {name!r}; use one of {', '.join(STRATEGIES)}.")


def _poll_store(ref: weakref.ReferenceType[Session], stop: threading.Event) -> None:
    """Poller thread body: sync the Session ``ref`` whenever the store changes, until it
    is closed, garbage, or has no callbacks left (a weak reference keeps it collectable)."""
    while not stop.wait(_POLL_SECONDS):
        session = ref()
        if session is None:
            return
        with session._lock:
            if session._closed or not session._callbacks:
                session._poller = None
                return
        try:
            session._sync_if_moved(wait=0.0)
        except Exception:
            log.warning("polling the label store failed", exc_info=True)
        del session


def _model_name(model: Any) -> str:
    return model if isinstance(model, str) else str(getattr(model, "name", model))


def _array_hash(arr: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((arr.shape, str(arr.dtype))).encode())
    h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return h.hexdigest()


def _load_or_make_embeddings(path: Path, store: LabelStore, source: Any, fingerprint: str,
                             embeddings: Any, model: Any) -> np.ndarray:
    """Validate given embeddings (and save them), load saved ones, or compute them."""
    from .learn._checks import check_embeddings

    file = path / EMBEDDINGS_FILE
    meta = store.get_meta("embeddings")
    same_model = model is None or (meta or {}).get("model") in (None, _model_name(model))
    if embeddings is None and file.exists() and meta is not None and same_model:
        if meta.get("source_fingerprint") != fingerprint:
            raise ValueError(
                f"{file} was computed for other images than this source; pass embeddings= "
                "or model= to Session.open to recompute them."
            )
        emb = np.load(file)
        if emb.shape[0] != len(source):
            raise ValueError(f"{file} has {emb.shape[0]} rows but the source has "
                             f"{len(source)} items; pass embeddings= to replace it.")
        return emb
    if embeddings is None:
        if model is None:
            model = store.get_meta("model") or "ViT-B-32"
        from .embed import embed

        log.info("computing embeddings with %s", _model_name(model))
        embeddings = embed(source, model=model)
        store.set_meta("model", _model_name(model))
    emb = check_embeddings(embeddings, name="embeddings")
    if emb.shape[0] != len(source):
        raise ValueError(
            f"embeddings have {emb.shape[0]} rows but the source has {len(source)} items; "
            "pass one embedding row per item, in source order."
        )
    digest = _array_hash(emb)
    if meta is None or meta.get("hash") != digest or not file.exists():
        tmp = file.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        os.replace(tmp, file)
        store.set_meta("embeddings", {"source_fingerprint": fingerprint, "hash": digest,
                                      "shape": list(emb.shape), "dtype": "float32",
                                      "model": None if model is None else _model_name(model)})
    return emb


def _align_columns(probs: np.ndarray, model_classes: list[Any], classes: list[str]) -> np.ndarray:
    """(N, K_model) probabilities -> (N, len(classes)) in ``classes`` order, zeros for
    classes the model has no column for."""
    out = np.zeros((probs.shape[0], len(classes)), dtype=np.float32)
    col = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        if c in col:
            out[:, col[c]] = probs[:, j]
    return out

"""Model training for a Session: the model choice, the background fit thread, the results.

A fit trains on :meth:`FitWorker.training_set` (every label except audit items): a
warm-started LinearProbe over every class with at least one label (no prototype fallback:
measured on Fashion-MNIST at 1-8 labels per class the probe is as good or better than
prototypes and than a prototype blend), blended with a zero-shot prior from the class
names when the embedder reads text. ``request`` debounces bursts of labels; one fit
runs at a time and the newest labels win (an older result never replaces a newer one).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from .session import Session

__all__ = ["FitWorker", "align_columns"]

log = logging.getLogger(__name__)

IDLE_SECONDS = 30.0  # the background fit thread exits after this long without work


class FitWorker:
    """Fits models for ``session`` and holds the current one (``model_``, ``probs_`` ...)."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self.lock = threading.RLock()  # guards the published results below
        self.model_: Any = None
        self.probs_: np.ndarray | None = None  # (N, K) float32, columns model_classes_
        self.uncertainty_: np.ndarray | None = None  # (N,) float32, 1 - max prob
        self._confidence: np.ndarray | None = None  # (N,) float32, max prob
        self.predictions_: np.ndarray | None = None  # (N,) int64 into model_classes_
        self.model_classes_: list[str] = []
        self.evidence_: tuple[np.ndarray, np.ndarray] | None = None  # see publish
        self.fit_status_: str = "not fitted yet"
        self.fit_error_: str | None = None
        self._published_seq = -1
        self.probe: Any = None  # LinearProbe kept between fits (warm start)
        self._zero_shot: tuple[tuple[str, ...], Any] | None = None  # (classes, classifier)
        self._fit_lock = threading.Lock()
        self._cond = threading.Condition()
        self._requested = False
        self._due = 0.0
        self._fitting = False
        self._worker: threading.Thread | None = None
        self._closed = False
        self._features: np.ndarray | None = None
        self._features_lock = threading.Lock()

    # ------------------------------------------------------------------ features
    def model_features(self) -> np.ndarray:
        """(N, D) float32: the embeddings, neighbour-smoothed when smoothing > 0."""
        if self._features is None:
            with self._features_lock:
                if self._features is None:
                    s = self._s
                    if s.smoothing > 0 and len(s.embeddings) > 2:
                        from ..learn.neighbour_smoothing import NeighbourSmoothing

                        self._features = NeighbourSmoothing(
                            alpha=s.smoothing).fit_transform(s.embeddings)
                    else:
                        self._features = s.embeddings
        return self._features

    # ------------------------------------------------------------------ scheduling
    def request(self, *, delay: float) -> None:
        """Fit in the background ``delay`` s from now (a newer request moves it later)."""
        with self._cond:
            if self._closed:
                return
            self._requested = True
            self._due = time.monotonic() + delay
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(target=self._loop, daemon=True,
                                                name=f"dfw-fit-{self._s.path.name}")
                self._worker.start()
            self._cond.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no fit is pending or running; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._requested or self._fitting:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
        return True

    @property
    def fitting(self) -> bool:
        """True while a fit is pending or running in the background."""
        with self._cond:
            return self._requested or self._fitting

    def close(self) -> None:
        """Cancel pending fits; wait (up to 60 s) for a running one."""
        with self._cond:
            self._closed = True
            self._requested = False
            self._cond.notify_all()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(timeout=60)

    def _loop(self) -> None:
        """Background worker: debounce requests, one fit at a time, newest labels win."""
        while True:
            with self._cond:
                while not self._requested and not self._closed:
                    if not self._cond.wait(IDLE_SECONDS) and not self._requested:
                        self._worker = None
                        return
                if self._closed:
                    self._worker = None
                    self._cond.notify_all()
                    return
                while (left := self._due - time.monotonic()) > 0 and not self._closed:
                    self._cond.wait(left)  # a newer request moves _due later
                self._requested = False
                self._fitting = True
            try:
                self.fit_now()
            except Exception as exc:  # keep the worker alive; the views show fit_error_
                self.fit_error_ = f"{type(exc).__name__}: {exc}"
                log.exception("background fit failed")
                # never silent: views refresh on "model_updated" and show fit_error_
                self._s._events.emit("model_updated", self._s)
            finally:
                with self._cond:
                    self._fitting = False
                    self._cond.notify_all()

    # ------------------------------------------------------------------ fitting
    def hand_training_mask(self, codes: np.ndarray) -> np.ndarray:
        """(N,) bool: items whose hand label is trained on (``codes`` (N,) label codes):
        labeled, not an audit item, not excluded."""
        s = self._s
        return (codes >= 0) & ~s._evaluation.audit_mask() & ~s.excluded_mask()

    def training_set(self, codes: np.ndarray | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The one place the training set is built: ``(idx (M,) int64 items, y (M,) int64
        class codes into the label classes, weight (M,) float32 sample weights)``.
        Every labeled item except audit items (kept unseen for an unbiased estimate),
        weight 1. ``codes`` (N,): the label codes (default: the current labels)."""
        codes = self._s._labels.codes() if codes is None else codes
        idx = np.flatnonzero(self.hand_training_mask(codes))
        # issue 18: + confident weak labels of the rules after fit(weak=True)
        return self._s.rules.weak_training_set(idx, codes[idx].astype(np.int64),
                                               np.ones(len(idx), dtype=np.float32))

    def can_fit(self, codes: np.ndarray, classes: list[str]) -> tuple[bool, str]:
        """(True, "") if a model can be trained on ``codes`` (N,), else (False, why)."""
        if len(classes) >= 2 and self._s._embedders.text_embedder() is not None:
            return True, ""  # zero-shot from the class names needs no labels
        _, train, weight = self.training_set(codes)
        train = train[weight > 0]
        counts = np.bincount(train, minlength=len(classes))
        if int((counts > 0).sum()) >= 2:
            return True, ""
        if len(train) == 0:
            return False, "No labels yet: label items of at least 2 classes to train a model."
        only = classes[int(np.argmax(counts))]
        return False, (f"Only one class has labels ({only!r}, {int(counts.max())}); label "
                       "items of a second class to train a model.")

    def fit_now(self) -> None:
        """Train on the current labels and publish (emits ``"model_updated"``)."""
        s = self._s
        with self._fit_lock:
            s._labels.sync_if_moved()
            seq, codes, classes = s._labels.snapshot()
            ok, why = self.can_fit(codes, classes)
            started = time.perf_counter()
            if not ok:
                if self.publish(seq, None, None, classes, why):
                    s._model_file.remove()
                    s._events.emit("model_updated", s)
                return
            train, y_codes, weight = self.training_set(codes)
            keep = weight > 0
            train, y_codes, weight = train[keep], y_codes[keep], weight[keep]
            y = np.asarray(classes, dtype=object)[y_codes]
            model, kind = self._make_model(y, classes)
            features = self.model_features()
            model.fit(features[train], y, sample_weight=weight)
            probs = align_columns(model.predict_proba(features), list(model.classes_), classes)
            seconds = time.perf_counter() - started
            # out-of-fold evidence for the estimate, here in the fit thread (5 refits)
            evidence = s._evaluation.random_evidence(model, train, y, weight, classes)
            self.fit_error_ = None
            aside = int(((codes >= 0) & s._evaluation.audit_mask() & ~s.excluded_mask()).sum())
            why = f"{aside} more are kept aside to check its accuracy; " if aside else ""
            if self.publish(seq, model, probs, classes,
                            f"{kind} on {len(train)} labels ({why}{seconds:.2f} s)",
                            evidence=evidence):
                s._model_file.save(model, kind=kind, train=train, y=y)
                s._evaluation.record_curve(kind=kind, n_train=len(train), seconds=seconds)
                s._events.emit("model_updated", s)  # after the curve record

    def _make_model(self, y: np.ndarray, classes: list[str]) -> tuple[Any, str]:
        """LinearProbe (warm-started) over every class with >= 1 label, blended with a
        zero-shot prior from the class names when the embedder reads text."""
        from ..learn import models

        present = [c for c in classes if c in set(y.tolist())]
        if self.probe is None:
            self.probe = models.LinearProbe(warm_start=True)
        self.probe.set_params(classes=present or None)
        base, kind = self.probe, "linear probe"
        text = self._s._embedders.text_embedder()
        if text is None or len(classes) < 2:
            return base, kind
        key = tuple(classes)
        if self._zero_shot is None or self._zero_shot[0] != key:
            self._zero_shot = (key, models.ZeroShotClassifier(classes, text_embedder=text))
        blend = models.BlendedClassifier(zero_shot=self._zero_shot[1],
                                         supervised=base if len(present) >= 2 else None)
        return blend, f"zero-shot + {kind}" if len(present) >= 2 else "zero-shot"

    def publish(self, seq: int, model: Any, probs: np.ndarray | None, classes: list[str],
                status: str, *, evidence: tuple[np.ndarray, np.ndarray] | None = None) -> bool:
        """Swap in a fit result unless a newer one is already out (caller emits).
        ``evidence``: the model's out-of-fold (probs (R, K), correct (R,)) on random picks."""
        with self.lock:
            if seq < self._published_seq:
                return False
            self._published_seq = seq
            self.model_, self.evidence_ = model, evidence
            self.model_classes_ = classes
            self.fit_status_ = status
            if probs is None:
                self.probs_ = self.uncertainty_ = self.predictions_ = self._confidence = None
            else:
                self.probs_ = probs
                self.predictions_ = probs.argmax(axis=1).astype(np.int64)
                self._confidence = probs.max(axis=1).astype(np.float32)
                self.uncertainty_ = (1.0 - self._confidence).astype(np.float32)
        return True

    def rename_class(self, old: str, new: str) -> None:
        """Rename a model column (the store renamed the class)."""
        with self.lock:
            self.model_classes_ = [new if c == old else c for c in self.model_classes_]

    # ------------------------------------------------------------------ views of results
    def predicted_labels(self) -> np.ndarray | None:
        """(N,) object class name predicted per item (model_classes_), None before a model."""
        with self.lock:
            pred, classes = self.predictions_, list(self.model_classes_)
        return None if pred is None else np.asarray(classes, dtype=object)[pred]

    def confidence(self) -> np.ndarray | None:
        """(N,) float32 top probability per item, None before a model."""
        with self.lock:
            conf = self._confidence
        return None if conf is None else conf.copy()


def align_columns(probs: np.ndarray, model_classes: list[Any], classes: list[str]) -> np.ndarray:
    """(N, K_model) probabilities -> (N, len(classes)) in ``classes`` order, zeros for
    classes the model has no column for."""
    out = np.zeros((probs.shape[0], len(classes)), dtype=np.float32)
    col = {c: i for i, c in enumerate(classes)}
    for j, c in enumerate(model_classes):
        if c in col:
            out[:, col[c]] = probs[:, j]
    return out

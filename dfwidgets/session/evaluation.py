"""How good is the Session's model: audit items, the accuracy estimate, the ground-truth
holdout, learning-curve records, items to score models on, and suspected label errors.

Audit items are drawn at random by ``next_batch`` (never by uncertainty), remembered in the
store's meta ``"audit"`` as item ids and never trained on; the holdout (meta ``"holdout"``)
is a fixed random set of up to 2,000 items with ground truth in the source.

Uniform draws served by a strategy (all of ``random``'s picks, hybrid's exploration
share; meta ``"random_picks"``) are trained on, but they are
draws from the pool like audit items: their out-of-fold predictions (computed by the fit
thread, published with the model) are unbiased evidence for the accuracy estimate too
(items picked by uncertainty are not).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .session import Session

__all__ = ["AUDIT_SHARE", "HOLDOUT_SIZE", "Evaluation"]

log = logging.getLogger(__name__)

AUDIT_SHARE = 0.1    # share of next_batch items drawn at random for the audit
HOLDOUT_SIZE = 2000  # ground-truth items kept for the true accuracy (when available)
OOF_FOLDS = 5        # folds for the out-of-fold predictions on randomly picked labels
MIN_RANDOM = 20      # randomly picked training labels needed to use them as evidence
# The accuracy estimate's prior on the model's calibration gap (accuracy - mean confidence).
# A linear probe fitted on labels drawn at random is over-confident by ~3 points (Fashion-
# MNIST, offline backbone: -3.0 +- 0.5 at 100-600 labels over 6 draws each); on labels
# picked by uncertainty it is close to calibrated (-0.5 to -1). The prior's centre is the
# mix of the two by the share of training labels that were uniform random picks.
RANDOM_GAP = -0.025
ACTIVE_GAP = -0.005
# Out-of-fold answers score models fitted on 4/5 of the labels, not the published model:
# they come out ~0.5-0.8 points closer to calibrated than it is, so each counts half.
OOF_WEIGHT = 0.5


class Evaluation:
    """Audit sampler, holdout and estimates of ``session``'s model."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self.lock = threading.RLock()  # guards the audit sampler
        self._audit: Any = None
        self._holdout: np.ndarray | None = None
        self._oof: tuple[Any, ...] | None = None  # (training set key, out-of-fold evidence)

    # ------------------------------------------------------------------ audit
    def audit_sampler(self) -> Any:
        """The AuditSampler, restored from the store's meta "audit" (item ids)."""
        with self.lock:
            if self._audit is None:
                from ..learn.evaluate import AuditSampler

                state = self._s.store.get_meta("audit")
                self._audit = AuditSampler(share=AUDIT_SHARE, random_state=0)
                if state:
                    self._audit = AuditSampler.from_json({
                        **state, "items": self._s._labels.known_indices(state.get("ids", []))})
            return self._audit

    def reset_audit(self) -> None:
        """Reload the sampler from the store on next use (others may have served items)."""
        with self.lock:
            self._audit = None

    def audit_mask(self) -> np.ndarray:
        """(N,) bool: items served as audit items (never trained on)."""
        s = self._s
        mask = np.zeros(len(s.ids), dtype=bool)
        mask[s._labels.known_indices((s.store.get_meta("audit") or {}).get("ids", []))] = True
        return mask

    def sample_audit(self, pool: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
        """Up to ``k`` audit items from ``pool`` (about AUDIT_SHARE of them), remembered
        in the store merged with what other Sessions saved."""
        s = self._s
        with self.lock:
            audit = self.audit_sampler()
            idx = np.asarray(audit.sample(pool, k, rng=rng), dtype=np.int64)[:k]
            state = audit.to_json()
            saved = s.store.get_meta("audit") or {}
            ids = list(dict.fromkeys(saved.get("ids", []) + s.ids[state.pop("items")].tolist()))
            state["asked"] = max(state["asked"], int(saved.get("asked", 0)))
            s.store.set_meta("audit", {**state, "ids": ids})
        return idx

    def record_random(self, idx: np.ndarray) -> None:
        """Remember items served as uniform random draws from the pool (see the module)."""
        s = self._s
        if len(idx) == 0:
            return
        with self.lock:
            saved = s.store.get_meta("random_picks") or []
            s.store.set_meta("random_picks",
                             list(dict.fromkeys(saved + s.ids[np.asarray(idx)].tolist())))

    def random_mask(self) -> np.ndarray:
        """(N,) bool: items served as uniform random picks (see :meth:`record_random`)."""
        s = self._s
        mask = np.zeros(len(s.ids), dtype=bool)
        mask[s._labels.known_indices(s.store.get_meta("random_picks") or [])] = True
        return mask

    def random_evidence(self, model: Any, train: np.ndarray, y: np.ndarray,
                        weight: np.ndarray, classes: list[str]
                        ) -> tuple[np.ndarray, np.ndarray] | None:
        """Out-of-fold evidence for a fit, computed by the fit thread beside the model it
        checks (5 refits) and published with it; ``accuracy_estimate`` only reads it.

        ``train`` (M,) items, ``y`` (M,) class names, ``weight`` (M,): the training set of
        the fitted ``model``. Returns (probs (R, K) in ``classes`` columns, correct (R,) bool)
        for the training labels served as uniform random picks; None when fewer than
        MIN_RANDOM or the model cannot be refitted per fold (only a LinearProbe is)."""
        from ..learn.evaluate import out_of_fold_probs
        from ..learn.linear_probe import LinearProbe
        from .fit_worker import align_columns

        if not isinstance(model, LinearProbe):
            return None
        marked = self.random_mask()[train]
        if marked.sum() < MIN_RANDOM:
            return None
        key = (train.tobytes(), y.astype(str).tobytes(), weight.tobytes(), marked.tobytes(),
               tuple(classes))
        if self._oof is not None and self._oof[0] == key:
            return self._oof[1]
        try:
            P = out_of_fold_probs(model, self._s._fit.model_features()[train], y, marked,
                                  sample_weight=weight, folds=OOF_FOLDS)
        except ValueError as exc:  # e.g. a fold left with one class
            log.info("no out-of-fold evidence: %s", exc)
            return None
        P = align_columns(P, list(model.classes_), classes)
        out = (P, np.asarray(classes, dtype=object)[P.argmax(axis=1)] == y[marked])
        self._oof = (key, out)
        return out

    # ------------------------------------------------------------------ estimates
    def accuracy_estimate(self) -> dict[str, Any]:
        """See :meth:`Session.accuracy_estimate`."""
        from ..learn.evaluate import confidence_accuracy

        s = self._s
        s._labels.sync_if_moved()
        with s._fit.lock:  # the fit thread published the model and its evidence together
            probs, pred, extra = s._fit.probs_, s._fit.predictions_, s._fit.evidence_
            model_classes = list(s._fit.model_classes_)
        _, codes, classes = s._labels.snapshot()
        given = np.asarray(classes + [None], dtype=object)[codes]
        sampler = self.audit_sampler()
        empty = {"estimate": None, "low": None, "high": None, "expected": None,
                 "correction": None, "prior_gap": None, "audit_estimate": None,
                 "audit_low": None, "audit_high": None}
        audit = sampler.items
        answered = audit[codes[audit] >= 0] if len(audit) else audit
        if pred is None or probs is None:
            return {**empty, "n": len(answered)}
        # compare class names: classes may have been added or merged since the fit
        guessed = np.asarray(model_classes, dtype=object)[pred]
        audit_only = sampler.estimate(guessed, given)
        pool = np.flatnonzero((codes < 0) & ~s.excluded_mask())
        if pool.size == 0:  # everything labeled: only the audit answers are left
            pool = answered
        if pool.size == 0:
            return {**empty, "n": 0}
        ev_probs, ev_ok = probs[answered], guessed[answered] == given[answered]
        weight = np.ones(len(ev_ok))
        if extra is not None:  # randomly picked training labels, scored out of fold
            ev_probs = np.concatenate([ev_probs, extra[0].astype(ev_probs.dtype)])
            ev_ok = np.concatenate([ev_ok, extra[1]])
            weight = np.concatenate([weight, np.full(len(extra[1]), OOF_WEIGHT)])
        hand = s._fit.hand_training_mask(codes)
        share = float(self.random_mask()[hand].mean()) if hand.any() else 0.0
        prior = share * RANDOM_GAP + (1 - share) * ACTIVE_GAP
        est = confidence_accuracy(probs[pool], ev_probs, ev_ok, weights=weight,
                                  prior_mean=prior)
        return {**est, "n": len(answered), "n_random": len(ev_ok) - len(answered),
                "prior_gap": prior,
                "audit_estimate": audit_only["estimate"],
                "audit_low": audit_only["low"], "audit_high": audit_only["high"]}

    def _ground_truth(self) -> tuple[np.ndarray, list[str]] | None:
        gt = getattr(self._s.source, "labels", None)
        names = getattr(self._s.source, "classes", None)
        return None if gt is None or not names else (np.asarray(gt), list(names))

    def holdout_indices(self) -> np.ndarray:
        """(M,) int64 holdout items (sorted); empty when the source has no labels."""
        s = self._s
        if self._ground_truth() is None:
            return np.empty(0, dtype=np.int64)
        if self._holdout is None:
            ids = s.store.get_meta("holdout")
            if ids is None:
                candidates = np.flatnonzero(np.asarray(s.source.labels) >= 0)
                rng = np.random.default_rng(12345)
                pick = rng.choice(candidates, size=min(HOLDOUT_SIZE, candidates.size),
                                  replace=False)
                ids = s.ids[np.sort(pick)].tolist()
                s.store.set_meta("holdout", ids)
            self._holdout = s._labels.indices_of([i for i in ids if i in s._labels.index_of])
        return self._holdout.copy()

    def true_accuracy(self) -> dict[str, Any] | None:
        """See :meth:`Session.true_accuracy`."""
        s = self._s
        truth_of = self._ground_truth()
        pred = s._fit.predicted_labels()
        if truth_of is None or pred is None:
            return None
        holdout = self.holdout_indices()
        holdout = holdout[s._labels.codes()[holdout] < 0]
        if holdout.size == 0:
            return None
        gt, names = truth_of
        truth = np.asarray(names, dtype=object)[gt[holdout]]
        return {"accuracy": float((truth == pred[holdout]).mean()), "n": int(holdout.size)}

    def record_curve(self, *, kind: str, n_train: int, seconds: float) -> None:
        """Append a learning-curve record for the fit just published."""
        s = self._s
        est = self.accuracy_estimate()
        true = self.true_accuracy()
        s.store.add_curve_point({
            "n_labels": int((s._labels.codes() >= 0).sum()),
            "n_train": int(n_train),
            "n_classes": len(s._fit.model_classes_),
            "accuracy": est["estimate"], "low": est["low"], "high": est["high"],
            "n_audit": est["n"], "audit_accuracy": est.get("audit_estimate"),
            "true_accuracy": None if true is None else true["accuracy"],
            "strategy": s.strategy, "model": kind,
            "weak": int(s.rules.n_weak_trained),  # weak-labeled items trained on (issue 18)
            "fit_seconds": round(seconds, 4), "time": time.time(),
        })

    # ------------------------------------------------------------------ items for views
    def eval_items(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """See :meth:`Session.eval_items`."""
        s = self._s
        codes = s._labels.codes()
        truth_of = self._ground_truth()
        if truth_of is not None and (truth_of[0] >= 0).any():
            gt, names = truth_of
            idx = self.holdout_indices()
            idx = idx[codes[idx] < 0]
            lookup = {c: i for i, c in enumerate(s._labels.classes())}
            truth = np.asarray([lookup.get(str(names[g]), -1) if g >= 0 else -1
                                for g in gt[idx]], dtype=np.int64)
            keep = truth >= 0
            return idx[keep], truth[keep], "ground truth"
        idx = np.flatnonzero(self.audit_mask() & (codes >= 0))
        if idx.size == 0:
            return None
        return idx, codes[idx], "audit labels"

    def label_issues(self) -> pd.DataFrame:
        """See :meth:`Session.label_issues`."""
        from ..learn.issues import find_label_issues

        s = self._s
        s._labels.sync_if_moved()
        _, codes, classes = s._labels.snapshot()
        labeled = np.flatnonzero(codes >= 0)
        cols = ["index", "item_id", "given", "suggested", "score"]
        if labeled.size == 0 or np.unique(codes[labeled]).size < 2:
            return pd.DataFrame(columns=cols)
        names = np.asarray(classes, dtype=object)
        found = find_label_issues(s._fit.model_features()[labeled], names[codes[labeled]])
        found = found.copy()
        found["index"] = labeled[found["index"].to_numpy(dtype=np.int64)]
        found.insert(1, "item_id", s.ids[found["index"].to_numpy()])
        return found.reset_index(drop=True)

    def review_items(self, issues: pd.DataFrame | None = None) -> np.ndarray:
        """See :meth:`Session.review_items`."""
        s = self._s
        if issues is None:
            issues = self.label_issues()
        if issues is None or len(issues) == 0:
            return np.empty(0, dtype=np.int64)
        current = s.store.current()
        reviewed = set(current.loc[current["source"] == "review", "item_id"].astype(str))
        return np.asarray([int(i) for i in issues["index"]
                           if str(s.ids[int(i)]) not in reviewed], dtype=np.int64)

    def difficulty(self) -> pd.Series | None:
        """See :meth:`Session.difficulty`."""
        from ..learn.issues import difficulty

        s = self._s
        with s._fit.lock:
            probs, model_classes = s._fit.probs_, list(s._fit.model_classes_)
        if probs is None:
            return None
        s._labels.sync_if_moved()
        _, codes, classes = s._labels.snapshot()
        col = {c: j for j, c in enumerate(model_classes)}
        remap = np.asarray([col.get(c, -1) for c in classes] + [-1], dtype=np.int64)
        return difficulty(probs, remap[codes])

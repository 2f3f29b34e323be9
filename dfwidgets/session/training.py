"""Training: the Session's part for training runs (owner: helper "trainer").

Trains the linear probe or fine-tunes the backbone's last blocks on the Session's labels,
keeps the better model for export, records fine-tuning runs (store meta
``"trainer_runs"``) and computes the numbers the Trainer draws (learning-curve points, the
random-sampling baseline, when to stop, the confusion matrix) with the pure functions of
:mod:`dfwidgets.learn.training_report`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..learn import training_report as report

if TYPE_CHECKING:
    from .session import Session

__all__ = ["FineTuneResult", "Training"]

log = logging.getLogger(__name__)

RUNS_META = "trainer_runs"
BASELINE_POOL = 5000   # items sampled from the ground-truth pool for the random baseline
MIN_BASELINE_LABELS = 25
MIN_VAL_AUDIT = 20     # answered audit items needed to early-stop on them


@dataclass
class FineTuneResult:
    """What :meth:`Training.fine_tune` returns: the FineTuner, the kept model ("finetune" /
    "probe") and why, the fine-tuned model on the evaluation items (or None), the recorded
    run (None when cancelled before training started), cancelled, seconds."""

    finetuner: Any
    kept: str
    verdict: str
    evaluation: dict[str, Any] | None
    run: dict[str, Any] | None
    cancelled: bool
    seconds: float


class Training:
    """Training runs of a Session: ``session.training``.

    Attributes: ``model_`` (the kept :class:`~dfwidgets.exported_model.ExportedModel` or
    None), ``kept_`` ("probe" / "finetune" / None), ``verdict_`` (why), ``finetuner_`` (the
    last FineTuner), ``finetune_eval_`` (the fine-tuned model on the evaluation items).
    """

    def __init__(self, session: Session) -> None:
        self._session = session
        self._lock = threading.RLock()
        self._embedders: dict[str, Any] = {}
        self._baseline: Any = None
        self._baseline_key: tuple[str, int] | None = None
        self.model_: Any = None
        self.kept_: str | None = None
        self.verdict_: str = ""
        self.finetuner_: Any = None
        self.finetune_eval_: dict[str, Any] | None = None

    # ------------------------------------------------------------------ runs
    def runs(self) -> list[dict[str, Any]]:
        """Recorded fine-tuning runs, oldest first."""
        return list(self._session.store.get_meta(RUNS_META) or [])

    def record(self, run: dict[str, Any]) -> None:
        """Append ``run`` (a JSON-able dict) to the recorded runs."""
        with self._lock:
            self._session.store.set_meta(RUNS_META, [*self.runs(), dict(run)])

    # ------------------------------------------------------------------ models
    def embedder(self, embedder: Any = None) -> Any:
        """The Embedder to use: ``embedder`` itself, loaded by name (cached), or (None)
        ``session.embedder()``."""
        if embedder is None:
            return self._session.embedder()
        if not isinstance(embedder, str):
            return embedder
        with self._lock:
            if embedder not in self._embedders:
                from ..embed import get_embedder

                self._embedders[embedder] = get_embedder(embedder)
            return self._embedders[embedder]

    def train_probe(self, *, embedder: Any = None) -> dict[str, Any]:
        """Fit the Session's model now and keep it: dict(seconds, status, exported).

        Raises ValueError (the Session's fit status) when no model can be fitted yet.
        ``exported`` is False when no embedder is known (``model_`` stays None).
        """
        s = self._session
        t0 = time.perf_counter()
        s.fit()
        if s.probs_ is None:
            raise ValueError(s.fit_status_)
        model = self.export_probe(embedder)
        with self._lock:
            self.kept_, self.verdict_ = "probe", f"Trained a {s.fit_status_}."
            self.model_, self.finetune_eval_ = model, None
        return {"seconds": time.perf_counter() - t0, "status": s.fit_status_,
                "exported": model is not None}

    def export_probe(self, embedder: Any = None) -> Any:
        """The Session's current model as an ExportedModel (backbone + linear head), or
        None without an embedder. A probe fitted on raw embeddings is exported as is;
        other models (prototypes, blended, neighbour-smoothed features: a new image has no
        neighbours) are replaced by a linear probe on the raw embeddings, same labels."""
        from ..exported_model import ExportedModel, describe_transform
        from ..learn.finetune import head_from_coef, probe_head

        emb = self.embedder(embedder)
        if emb is None:
            return None
        s = self._session
        classes = list(s.model_classes_ or s.classes)
        model = s.model_
        if (hasattr(model, "coef_") and [str(c) for c in model.classes_] == classes
                and not s.smoothing):
            head = head_from_coef(model.coef_, model.intercept_)
        else:
            codes = s.label_array()
            train = np.flatnonzero(codes >= 0)
            head = probe_head(s.embeddings[train], codes[train], len(s.classes))
            classes = list(s.classes)
        return ExportedModel(
            emb.module, head, classes=classes,
            preprocessing=describe_transform(emb.transform, image_size=int(emb.image_size)),
            architecture={"embedder": emb.name, "mode": "probe"})

    def export(self, *, embedder: Any = None) -> Any:
        """The kept model (fine-tuned or probe) as an ExportedModel; ValueError when there
        is none and no embedder to export the Session's model with."""
        if self.model_ is not None:
            return self.model_
        model = self.export_probe(embedder) if self._session.model_ is not None else None
        if model is None:
            raise ValueError("No model to export: train first, with the embedder that made "
                             "the embeddings (e.g. embedder='efficientnet_lite0').")
        return model

    def predictions(self, *, progress: bool = True) -> pd.DataFrame:
        """Predictions of the kept model for every item: DataFrame[item, prediction,
        confidence, p_<class>...] (probe: from the cached embeddings, at once)."""
        from ..exported_model import frame_from_probs

        s = self._session
        if self.kept_ == "finetune" and self.model_ is not None:
            return self.model_.predict_frame(s.source, progress=progress)
        if s.probs_ is None:
            s.fit()
        if s.probs_ is None:
            raise ValueError(f"No model yet: {s.fit_status_}")
        return frame_from_probs(s.probs_, s.model_classes_ or s.classes, list(s.ids))

    # ------------------------------------------------------------------ fine-tuning
    @property
    def fine_tuning(self) -> bool:
        """True while a fine-tuning run is going."""
        ft = self.finetuner_
        return ft is not None and bool(getattr(ft, "running", False))

    def cancel(self) -> bool:
        """Stop fine-tuning (within a second; the best weights so far are kept). True when
        a run was going."""
        ft = self.finetuner_
        if ft is not None and ft.running:
            ft.cancel()
            return True
        return False

    def fine_tune(self, *, blocks: int, epochs: int, hflip: bool, batch_size: int,
                  threads: int | None, on_epoch: Callable[[dict], None] | None = None,
                  on_step: Callable[[int, int], None] | None = None, embedder: Any = None,
                  on_status: Callable[[str], None] | None = None) -> FineTuneResult:
        """Fine-tune the last ``blocks`` of the embedder's backbone on the labels (audit
        items are never trained on), evaluate on :meth:`Session.eval_items`, keep the
        better of probe and fine-tuned model, record the run. Blocks until done (cancel
        from another thread with :meth:`cancel`).

        Early stopping uses the answered audit items when there are at least 20, else a
        held-out 20% of the labels. ``on_epoch(row)``, ``on_step(done, total)``: see
        :meth:`~dfwidgets.learn.finetune.FineTuner.fit`; ``on_status(text)``: progress in
        words. Raises ValueError without an embedder or with too few labels.
        """
        from ..learn.finetune import FineTuner

        s = self._session
        emb = self.embedder(embedder)
        if emb is None:
            raise ValueError("Fine-tuning needs the embedder that made the embeddings: create "
                             "the Trainer with embedder='efficientnet_lite0' (or your CLIP "
                             "model).")
        if self.fine_tuning:
            raise ValueError("Already fine-tuning: wait for it to finish or cancel it.")
        codes = s.label_array()
        audit = s.audit_mask()
        train = np.flatnonzero((codes >= 0) & ~audit)
        answered_audit = np.flatnonzero((codes >= 0) & audit)
        counts = np.bincount(codes[train], minlength=len(s.classes))
        if (counts >= 2).sum() < 2 or len(train) < 10:
            raise ValueError("Fine-tuning needs at least 10 labels, with 2 or more in at least "
                             "two classes. Label a few more items first.")
        ft = FineTuner(emb, blocks=int(blocks), epochs=int(epochs), hflip=bool(hflip),
                       batch_size=int(batch_size), threads=threads, progress=False)
        self.finetuner_ = ft
        val = None
        where = "a held-out 20% of your labels"
        if len(answered_audit) >= MIN_VAL_AUDIT:  # random items, never trained on
            val = (s.source.subset(answered_audit), codes[answered_audit])
            where = f"the {len(answered_audit)} audit items"
        if on_status:
            on_status(f"{self.finetune_advice()['text']} Fine-tuning {ft.blocks} block(s) for "
                      f"up to {ft.epochs} epochs on {len(train)} labels; early stopping on "
                      f"{where}...")
        ft.fit(s.source.subset(train), codes[train], classes=s.classes, val=val,
               on_epoch=on_epoch, on_step=on_step)
        if ft.model_ is None:  # cancelled before the first epoch: the probe stays
            return FineTuneResult(ft, self.kept_ or "probe", self.verdict_, None, None,
                                  True, float(ft.seconds_))
        if on_status:
            on_status("Measuring the fine-tuned model...")
        evaluation = self.evaluate_model(ft.model_)
        with self._lock:
            self.finetune_eval_ = evaluation
            if ft.improved_:
                self.model_, self.kept_ = ft.model_, "finetune"
            self.verdict_ = ft.verdict_
            run = report.finetune_run(ft, n_labels=int((codes >= 0).sum()),
                                      n_train=len(train), evaluation=evaluation,
                                      kept=self.kept_)
            run.update(cache_seconds=round(float(getattr(ft, "cache_seconds_", 0.0)), 2),
                       epoch_seconds=[round(float(x), 2) for x in ft.history_["seconds"][1:]])
            self.record(run)
        return FineTuneResult(ft, self.kept_ or "probe", ft.verdict_, evaluation, run,
                              bool(ft.cancelled_), float(ft.seconds_))

    def finetune_advice(self) -> dict[str, Any]:
        """Whether fine-tuning is likely to pay at the current label count, from this
        project's runs, else the benchmark (:func:`~dfwidgets.learn.finetune_advice.
        finetune_advice`): dict(pays, from_labels, source, text)."""
        from ..learn.finetune_advice import finetune_advice

        return finetune_advice(int((self._session.label_array() >= 0).sum()), self.runs())

    # ------------------------------------------------------------------ evaluation
    def _class_codes(self, names: Any) -> np.ndarray:
        lookup = {c: i for i, c in enumerate(self._session.classes)}
        return np.asarray([lookup.get(str(c), -1) for c in names], dtype=np.int64)

    def evaluate_model(self, model: Any) -> dict[str, Any] | None:
        """An ExportedModel's predictions on the evaluation items: dict(indices (M,),
        truth (M,), pred (M,) codes into ``session.classes`` (-1: unknown), kind)."""
        items = self._session.eval_items()
        if items is None:
            return None
        idx, truth, kind = items
        probs = model.predict_proba(self._session.source.subset(idx))
        pred = self._class_codes(np.asarray(model.classes, dtype=object)[probs.argmax(1)])
        return {"indices": idx, "truth": truth, "pred": pred, "kind": kind}

    def evaluation(self) -> dict[str, Any] | None:
        """The kept model on the evaluation items (see :meth:`evaluate_model`): the
        fine-tuned model's predictions when it is kept, else the Session's; None before a
        model or without evaluation items."""
        if self.kept_ == "finetune" and self.finetune_eval_ is not None:
            return self.finetune_eval_
        s = self._session
        items = s.eval_items()
        names = s.predicted_labels()
        if items is None or names is None:
            return None
        idx, truth, kind = items
        return {"indices": idx, "truth": truth, "pred": self._class_codes(names[idx]),
                "kind": kind}

    def confusion(self, evaluation: dict[str, Any] | None = None) -> dict[str, Any] | None:
        """Confusion matrix of :meth:`evaluation` (or ``evaluation``): dict(classes,
        matrix (K, K) int64 rows = true, per_class DataFrame[class, accuracy, n], kind, n,
        evaluation); None without evaluation items."""
        ev = self.evaluation() if evaluation is None else evaluation
        if ev is None or not len(ev["truth"]):
            return None
        classes = list(self._session.classes)
        cm = report.confusion(ev["truth"], ev["pred"], len(classes))
        per = report.per_class_accuracy(cm)
        per.insert(0, "class", [classes[i] for i in per["class_code"]])
        return {"classes": classes, "matrix": cm, "per_class": per, "kind": ev["kind"],
                "n": int(cm.sum()), "evaluation": ev}

    def confused_items(self, true: str, predicted: str, *,
                       evaluation: dict[str, Any] | None = None) -> np.ndarray:
        """(M,) int64 evaluation items of class ``true`` predicted as ``predicted``
        (``evaluation``: the one drawn; default the current). ValueError before a model
        or for an unknown class."""
        ev = self.evaluation() if evaluation is None else evaluation
        if ev is None:
            raise ValueError("Train first: there is no confusion matrix yet.")
        classes = list(self._session.classes)
        if true not in classes or predicted not in classes:
            raise ValueError(f"Unknown class {true!r} or {predicted!r}.")
        t, p = classes.index(true), classes.index(predicted)
        return np.asarray(ev["indices"][(ev["truth"] == t) & (ev["pred"] == p)],
                          dtype=np.int64)

    # ------------------------------------------------------------------ curve numbers
    def curve_points(self) -> pd.DataFrame:
        """The learning curve: DataFrame[n_labels, accuracy, low, high, measured], one
        point per label count (ground truth where the source has it, else the Session's
        accuracy estimate with its 95% interval)."""
        return report.curve_points(self._session.curve)

    def random_baseline(self, n_max: int) -> Any:
        """SimulationResult of random sampling up to about 2 x ``n_max`` labels, or None
        (no ground truth and fewer than 25 labels or one class). Cached: by the simulated
        range with ground truth, else by ``session.version``."""
        s = self._session
        gt = getattr(s.source, "labels", None)
        names = getattr(s.source, "classes", None)
        if gt is not None and names:
            top = int(max(100, 2 * n_max))
            with self._lock:
                key = self._baseline_key
                if key is not None and key[0] == "truth" and key[1] >= top:
                    return self._baseline
            grid = report.baseline_grid_top(top)
            holdout = s.holdout_indices()
            gt = np.asarray(gt)
            pool = report.baseline_pool(gt, holdout, size=BASELINE_POOL)
            y_names = np.asarray(names, dtype=object)
            sim = report.random_baseline(
                s.embeddings[pool], y_names[gt[pool]], top=min(grid, pool.size),
                test=(s.embeddings[holdout], y_names[gt[holdout]]))
            new_key = ("truth", grid)
        else:
            version = int(s.version)
            with self._lock:
                if self._baseline_key == ("labels", version):
                    return self._baseline
            codes = s.label_array()
            labeled = np.flatnonzero(codes >= 0)
            if labeled.size < MIN_BASELINE_LABELS or np.unique(codes[labeled]).size < 2:
                return None
            top = labeled.size - max(1, labeled.size // 5)
            sim = report.random_baseline(
                s.embeddings[labeled], np.asarray(s.classes, dtype=object)[codes[labeled]],
                top=top)
            new_key = ("labels", version)
        with self._lock:
            self._baseline, self._baseline_key = sim, new_key
        return sim

    def stop_estimate(self, target: float, *, points: pd.DataFrame | None = None
                      ) -> dict[str, Any]:
        """When to stop: labels needed for accuracy ``target`` from a power-law fit to the
        curve points (see :func:`dfwidgets.learn.training_report.stop_estimate`)."""
        return report.stop_estimate(self.curve_points() if points is None else points,
                                    float(target))

    def finetune_points(self) -> tuple[list[int], list[float]]:
        """(labels at the time, measured accuracy) of the recorded fine-tuning runs."""
        runs = [r for r in self.runs() if r.get("accuracy") is not None]
        return [int(r["n_labels"]) for r in runs], [float(r["accuracy"]) for r in runs]

    def curve_report(self, *, target: float) -> dict[str, Any]:
        """Everything the accuracy-vs-labels plot shows: dict(points, baseline (x, y),
        stop (:meth:`stop_estimate`), saving (:func:`~dfwidgets.learn.training_report.
        saving`), finetune (x, y), x_max). The baseline is a bonus: when it fails it is
        left out (logged), never blocking the curve."""
        points = self.curve_points()
        sim = None
        if len(points):
            try:
                sim = self.random_baseline(int(points["n_labels"].max()))
            except Exception as exc:  # noqa: BLE001
                log.warning("random baseline failed: %s", exc)
        stop = report.stop_estimate(points, float(target))
        base_x, base_y = report.baseline_curve(sim)
        x_max = max([float(points["n_labels"].max()) if len(points) else 10.0]
                    + list(stop["fit_x"]) + [float(x) for x in base_x])
        return {"points": points, "baseline": (base_x, base_y), "stop": stop,
                "saving": report.saving(points, sim), "finetune": self.finetune_points(),
                "x_max": x_max, "target": float(target)}

"""Trainer: train a linear probe or fine-tune the backbone, with live accuracy-vs-labels
curves, a random-sampling baseline, per-class accuracy, a clickable confusion matrix and
an estimate of how many labels are still needed.

An ipywidgets container around plotly ``FigureWidget``s (updated in place with
``batch_update``, never re-created). All state lives in the Session (labels, learning
curve, fine-tuning runs in the store's metadata); the widget is a view.
"""

from __future__ import annotations

import html
import io
import logging
import threading
import time
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from ._common import resolve_session

__all__ = ["Trainer"]

log = logging.getLogger(__name__)

MODES = ("probe", "finetune")
META_KEY = "trainer_runs"
SIM_POOL = 5000        # items sampled from the ground-truth pool for the random baseline
SIM_SEEDS = (0, 1)
MAX_THUMBS = 24
COLORS = {"you": "#1f77b4", "random": "#7f7f7f", "fit": "#2ca02c", "finetune": "#d62728",
          "target": "#ff7f0e"}

_CSS = """
<style>
.dfw-trainer { font-family: var(--jp-ui-font-family); color: var(--jp-ui-font-color1);
  background: var(--jp-layout-color0); padding: 8px 10px; border: 1px solid var(--jp-border-color2);
  border-radius: 6px; gap: 6px; }
.dfw-trainer .dfw-tr-title { font-size: 15px; font-weight: 600; }
.dfw-trainer .dfw-tr-note { font-size: 13px; line-height: 1.45; color: var(--jp-ui-font-color1); }
.dfw-trainer .dfw-tr-muted { color: var(--jp-ui-font-color2); }
.dfw-trainer .dfw-tr-error { color: var(--jp-error-color1); font-weight: 600; }
.dfw-trainer .dfw-tr-ok { color: var(--jp-success-color1); font-weight: 600; }
.dfw-trainer .widget-label { color: var(--jp-ui-font-color1); }
.dfw-trainer .widget-hbox, .dfw-trainer .widget-box { gap: 6px; }
.dfw-trainer .js-plotly-plot .plotly .main-svg { background: transparent !important; }
.dfw-trainer .js-plotly-plot .plotly :is(.xtick, .ytick, .y2tick) text,
.dfw-trainer .js-plotly-plot .plotly :is(.xtitle, .ytitle, .y2title, .gtitle, .legendtext) {
  fill: var(--jp-ui-font-color1) !important; }
.dfw-trainer .js-plotly-plot .plotly .gridlayer path,
.dfw-trainer .js-plotly-plot .plotly .zerolinelayer path { stroke: var(--jp-border-color2) !important; }
.dfw-trainer .js-plotly-plot .plotly .legend .bg { fill: transparent !important; }
.dfw-trainer .dfw-tr-thumbs img { border: 1px solid var(--jp-border-color2); border-radius: 3px;
  image-rendering: pixelated; }
</style>
"""


def _style(fig: Any, title: str, *, height: int = 300, **layout: Any) -> Any:
    """Shared look: transparent backgrounds (the theme shows through), readable fonts."""
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.02},
        height=height, margin={"l": 55, "r": 20, "t": 40, "b": 45},
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12, "color": "#888"},
        legend={"orientation": "h", "y": -0.25, "x": 0},
        **layout,
    )
    fig.update_xaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    fig.update_yaxes(gridcolor="rgba(128,128,128,0.25)", zerolinecolor="rgba(128,128,128,0.4)")
    return fig


def _sync_state(fig: Any) -> None:
    """Copy a FigureWidget's data and layout into its synced state.

    plotly sends later edits (add_trace, batch_update) as one-shot messages that a view
    created afterwards, or a frontend model still loading, never sees; a FigureWidget
    nested in a container is not refreshed by ``_repr_mimebundle_`` either. Keeping
    ``_widget_data`` / ``_widget_layout`` current makes every view start from the truth.
    """
    import copy

    fig._widget_data = copy.deepcopy(fig._data)
    fig._widget_layout = copy.deepcopy(fig._layout_obj._props)


def _figure(title: str, *, height: int = 300, **layout: Any) -> Any:
    import plotly.graph_objects as go

    return _style(go.FigureWidget(), title, height=height, **layout)


class Trainer(W.VBox):
    """Train on a Session's labels and watch accuracy grow with data.

    ``Trainer(session, embedder="efficientnet_lite0")`` (or ``Trainer(source, embeddings)``)
    shows a Train button, the mode (linear probe / fine-tune), options, a target accuracy,
    Cancel, progress and these live plots: accuracy vs labels with the simulated random-
    sampling curve and a fitted learning curve; loss and accuracy per fine-tuning epoch;
    per-class accuracy; a confusion matrix whose cells show the confused items.

    Args:
        embedder: the embedder that made the Session's embeddings (default: the Session's
            model name); needed for fine-tuning and for ``model_``.
        mode: "probe" or "finetune" preselected.
        target: target accuracy for the when-to-stop estimate.
        epochs, blocks, hflip, batch_size, threads: fine-tuning options
            (see :class:`~dfwidgets.learn.finetune.FineTuner`).

    Attributes: ``model_`` (:class:`~dfwidgets.exported_model.ExportedModel`, the kept
    model), ``kept_`` ("probe" / "finetune"), ``verdict_`` (why), ``finetuner_`` (the last
    FineTuner), ``curve_fig``, ``epoch_fig``, ``class_fig``, ``confusion_fig``.
    """

    def __init__(
        self,
        session: Any,
        embeddings: np.ndarray | None = None,
        *,
        embedder: Any = None,
        mode: str = "probe",
        target: float = 0.9,
        epochs: int = 3,
        blocks: int = 1,
        hflip: bool = True,
        batch_size: int = 16,
        threads: int | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if not 0 < float(target) < 1:
            raise ValueError(f"target is an accuracy in (0, 1), got {target!r}.")
        self.session = resolve_session(session, embeddings)
        self._embedder_arg = embedder if embedder is not None else self.session.model_name
        self._embedder: Any = None
        self.batch_size = int(batch_size)
        self.threads = threads
        self.model_: Any = None
        self.kept_: str | None = None
        self.verdict_: str = ""
        self.finetuner_: Any = None
        self._thread: threading.Thread | None = None
        self._lock = threading.RLock()
        self._sim: Any = None
        self._sim_key: Any = None
        self._eval: dict[str, Any] | None = None
        self._ft_eval: dict[str, Any] | None = None
        self._busy = False
        self._refresher: threading.Thread | None = None

        # ---- controls
        self.mode_toggle = W.ToggleButtons(
            options=[("Linear probe", "probe"), ("Fine-tune", "finetune")], value=mode,
            tooltips=["Logistic regression on the cached embeddings (seconds)",
                      "Train the backbone's last blocks on the labeled images (minutes)"],
            style={"button_width": "110px"})
        self.epochs_input = W.BoundedIntText(value=epochs, min=1, max=50, description="epochs",
                                             layout=W.Layout(width="140px"),
                                             style={"description_width": "50px"})
        self.blocks_input = W.BoundedIntText(value=blocks, min=1, max=6, description="blocks",
                                             layout=W.Layout(width="140px"),
                                             style={"description_width": "50px"})
        self.flip_box = W.Checkbox(value=hflip, description="flips", indent=False,
                                   layout=W.Layout(width="70px"))
        self.target_input = W.BoundedFloatText(value=float(target), min=0.05, max=0.999,
                                               step=0.01, description="target accuracy",
                                               layout=W.Layout(width="210px"),
                                               style={"description_width": "110px"})
        self.train_button = W.Button(description="Train", button_style="primary", icon="play",
                                     layout=W.Layout(width="100px"))
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True,
                                      layout=W.Layout(width="100px"))
        self.progress = W.IntProgress(value=0, min=0, max=100, layout=W.Layout(width="180px"))
        self.status = W.HTML()
        self.status.add_class("dfw-tr-note")
        self.verdict_html = W.HTML()
        self.verdict_html.add_class("dfw-tr-note")
        self.saving_html = W.HTML()
        self.saving_html.add_class("dfw-tr-note")
        self.stop_html = W.HTML()
        self.stop_html.add_class("dfw-tr-note")
        self.items_caption = W.HTML()
        self.items_caption.add_class("dfw-tr-note")
        self.items_box = W.Box(layout=W.Layout(flex_flow="row wrap"))
        self.items_box.add_class("dfw-tr-thumbs")

        self.train_button.add_class("dfw-tr-train")
        self.cancel_button.add_class("dfw-tr-cancel")
        self.train_button.on_click(lambda _b: self.train(wait=False))
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.target_input.observe(lambda _c: self._safe(self._refresh_curve), names="value")
        self.mode_toggle.observe(lambda _c: self._sync_option_state(), names="value")

        # ---- figures
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots

        self.curve_fig = _figure("Accuracy vs labels", xaxis_title="labels",
                                 yaxis_title="accuracy")
        self.curve_fig.add_scatter(name="your labels", mode="lines+markers",
                                   line={"color": COLORS["you"]}, x=[], y=[])
        self.curve_fig.add_scatter(name="random sampling (simulated)", mode="lines",
                                   line={"color": COLORS["random"], "dash": "dot"}, x=[], y=[])
        self.curve_fig.add_scatter(name="fitted curve", mode="lines",
                                   line={"color": COLORS["fit"], "dash": "dash"}, x=[], y=[])
        self.curve_fig.add_scatter(name="fine-tuned", mode="markers",
                                   marker={"color": COLORS["finetune"], "symbol": "diamond",
                                           "size": 10}, x=[], y=[])
        self.curve_fig.add_scatter(name="target", mode="lines",
                                   line={"color": COLORS["target"], "width": 1}, x=[], y=[])
        self.curve_fig.update_yaxes(tickformat=".0%")

        base = make_subplots(specs=[[{"secondary_y": True}]])
        self.epoch_fig = _style(go.FigureWidget(base), "Fine-tuning: loss and accuracy per epoch")
        for name, col, dash, sec in (("train loss", "#9467bd", "dot", False),
                                     ("held-out loss", "#9467bd", "solid", False),
                                     ("train accuracy", "#17becf", "dot", True),
                                     ("held-out accuracy", "#17becf", "solid", True)):
            self.epoch_fig.add_scatter(name=name, mode="lines+markers", x=[], y=[],
                                       line={"color": col, "dash": dash}, secondary_y=sec)
        self.epoch_fig.update_xaxes(title_text="epoch (0 = linear probe)", dtick=1)
        self.epoch_fig.update_xaxes(rangemode="tozero")
        self.epoch_fig.update_yaxes(title_text="loss", rangemode="tozero", secondary_y=False)
        self.epoch_fig.update_yaxes(title_text="accuracy", tickformat=".0%", secondary_y=True,
                                    showgrid=False, range=[0, 1.02])

        self.class_fig = _figure("Per-class accuracy", yaxis_title="accuracy")
        self.class_fig.add_bar(x=[], y=[], marker={"color": COLORS["you"]}, name="accuracy",
                               hovertemplate="%{x}: %{y:.1%} (%{customdata} items)<extra></extra>")
        self.class_fig.update_yaxes(range=[0, 1], tickformat=".0%")
        self.class_fig.update_layout(showlegend=False)

        self.confusion_fig = _figure("Confusion matrix (click a cell)", height=360,
                                     xaxis_title="predicted", yaxis_title="true")
        self.confusion_fig.add_heatmap(z=[[0]], x=[""], y=[""], colorscale="Blues",
                                       texttemplate="%{z}", showscale=False,
                                       hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
        self.confusion_fig.update_yaxes(autorange="reversed")
        self.confusion_fig.data[0].on_click(self._on_confusion_click)

        options = W.HBox([self.epochs_input, self.blocks_input, self.flip_box],
                         layout=W.Layout(align_items="center"))
        self._options = options
        controls = W.HBox(
            [self.mode_toggle, options, self.target_input, self.train_button,
             self.cancel_button, self.progress],
            layout=W.Layout(flex_flow="row wrap", align_items="center"))
        title = W.HTML('<div class="dfw-tr-title">Trainer</div>')
        row1 = W.HBox([self.curve_fig, self.epoch_fig],
                      layout=W.Layout(width="100%"))
        row2 = W.HBox([self.class_fig, self.confusion_fig],
                      layout=W.Layout(width="100%"))
        for fig in (self.curve_fig, self.epoch_fig, self.class_fig, self.confusion_fig):
            fig.layout.width = 415
        super().__init__([W.HTML(_CSS), title, controls, self.status, self.verdict_html,
                          row1, self.saving_html, self.stop_html, row2, self.items_caption,
                          self.items_box])
        self.add_class("dfw-root")
        self.add_class("dfw-trainer")
        self._sync_option_state()
        self._handle = self.session.on("model_updated", self._on_model_updated)
        self._safe(self._refresh_all)
        for fig in (self.curve_fig, self.epoch_fig, self.class_fig, self.confusion_fig):
            _sync_state(fig)

    # ================================================================== public API
    @property
    def mode(self) -> str:
        """The selected mode: "probe" or "finetune"."""
        return self.mode_toggle.value

    @property
    def target(self) -> float:
        """Target accuracy for the when-to-stop estimate."""
        return float(self.target_input.value)

    @property
    def training(self) -> bool:
        """True while a training run is going."""
        return self._thread is not None and self._thread.is_alive()

    def train(self, *, mode: str | None = None, wait: bool | None = None) -> Trainer:
        """Train now. ``mode``: "probe" (seconds) or "finetune" (background, cancellable);
        default the selected one. ``wait``: block until done (default: True for the probe,
        False for fine-tuning). Problems are shown in the widget, not raised."""
        if mode is not None:
            if mode not in MODES:
                self._message(f"Unknown mode {mode!r}: choose 'probe' or 'finetune'.", error=True)
                return self
            self.mode_toggle.value = mode
        mode = self.mode
        if self.training:
            self._message("Already training: wait for it to finish or press Cancel.", error=True)
            return self
        self._thread = threading.Thread(target=self._run, args=(mode,), daemon=True,
                                        name="dfw-trainer")
        self._set_busy(True)
        self._thread.start()
        if wait if wait is not None else mode == "probe":
            self._thread.join()
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for a running training (and plot refresh); True when none is running."""
        for thread in (self._thread, self._refresher):
            if thread is not None:
                thread.join(timeout)
        return not self.training and not (self._refresher and self._refresher.is_alive())

    def cancel(self) -> None:
        """Stop fine-tuning (within a second); the best weights so far are kept."""
        ft = getattr(self, "finetuner_", None)  # None too when __init__ failed early
        if ft is not None and ft.running:
            ft.cancel()
            self._message("Cancelling...")

    def predictions(self) -> pd.DataFrame:
        """Predictions of the kept model for the whole dataset: DataFrame[item, prediction,
        confidence, p_<class>...] (probe: from the cached embeddings, at once)."""
        from ..exported_model import frame_from_probs

        if self.kept_ == "finetune" and self.model_ is not None:
            return self.model_.predict_frame(self.session.source, progress=True)
        s = self.session
        if s.probs_ is None:
            s.fit()
        if s.probs_ is None:
            raise ValueError(f"No model yet: {s.fit_status_}")
        return frame_from_probs(s.probs_, s.model_classes_ or s.classes, list(s.ids))

    def close(self) -> None:
        """Stop listening to the Session, cancel training, close the widget."""
        try:
            self.session.off(self._handle)
        except Exception:  # already removed, or __init__ failed before listening
            pass
        if hasattr(self, "_thread"):
            self.cancel()
            self.wait(timeout=60)
        super().close()

    # ================================================================== training
    def _run(self, mode: str) -> None:
        try:
            self._train_probe()
            if mode == "finetune":
                self._train_finetune()
        except Exception as exc:  # shown inline; the traceback goes to the log
            log.exception("training failed")
            self._message(f"Training failed: {html.escape(str(exc))}", error=True)
        finally:
            self._set_busy(False)

    def _train_probe(self) -> None:
        s = self.session
        self._message("Training the linear probe on the cached embeddings...")
        t0 = time.perf_counter()
        s.fit()
        if s.probs_ is None:
            self._message(s.fit_status_, error=True)
            return
        self.kept_ = "probe"
        self.verdict_ = f"Trained a {s.fit_status_}."
        self.model_ = self._export_probe()
        self._ft_eval = None
        self._refresh_all()
        extra = "" if self.model_ is not None else (
            " (No exported model: pass embedder= the model that made the embeddings.)")
        self._message(f"Linear probe trained in {time.perf_counter() - t0:.1f} s.{extra}",
                      ok=True)

    def _embedder_obj(self) -> Any:
        if self._embedder is None:
            if self._embedder_arg is None:
                return None
            from ..embed import get_embedder

            self._embedder = get_embedder(self._embedder_arg)
        return self._embedder

    def _export_probe(self) -> Any:
        from ..exported_model import ExportedModel, describe_transform
        from ..learn.finetune import head_from_coef, probe_head

        emb = self._embedder_obj()
        if emb is None:
            return None
        s = self.session
        classes = list(s.model_classes_ or s.classes)
        model = s.model_
        if (hasattr(model, "coef_") and [str(c) for c in model.classes_] == classes
                and not s.smoothing):
            head = head_from_coef(model.coef_, model.intercept_)
        else:  # prototypes / blended / a probe on neighbour-smoothed features (a new image
            # has no neighbours): export a LinearProbe on the raw embeddings, same labels
            codes = s.label_array()
            train = np.flatnonzero(codes >= 0)
            head = probe_head(s.embeddings[train], codes[train], len(s.classes))
            classes = list(s.classes)
        return ExportedModel(
            emb.module, head, classes=classes,
            preprocessing=describe_transform(emb.transform, image_size=int(emb.image_size)),
            architecture={"embedder": emb.name, "mode": "probe"})

    def _train_finetune(self) -> None:
        from ..learn.finetune import FineTuner

        s = self.session
        emb = self._embedder_obj()
        if emb is None:
            self._message("Fine-tuning needs the embedder that made the embeddings: create the "
                          "Trainer with embedder='efficientnet_lite0' (or your CLIP model).",
                          error=True)
            return
        codes = s.label_array()
        audit = s._audit_mask()
        train = np.flatnonzero((codes >= 0) & ~audit)
        answered_audit = np.flatnonzero((codes >= 0) & audit)
        counts = np.bincount(codes[train], minlength=len(s.classes))
        if (counts >= 2).sum() < 2 or len(train) < 10:
            self._message("Fine-tuning needs at least 10 labels, with 2 or more in at least two "
                          "classes. Label a few more items first.", error=True)
            return
        with self.epoch_fig.batch_update():
            for trace in self.epoch_fig.data:
                trace.x, trace.y = [], []
        _sync_state(self.epoch_fig)
        ft = FineTuner(emb, blocks=int(self.blocks_input.value),
                       epochs=int(self.epochs_input.value), hflip=bool(self.flip_box.value),
                       batch_size=self.batch_size, threads=self.threads, progress=False)
        self.finetuner_ = ft
        val = None
        where = "a held-out 20% of your labels"
        if len(answered_audit) >= 20:  # the audit items: random, never trained on
            val = (s.source.subset(answered_audit), codes[answered_audit])
            where = f"the {len(answered_audit)} audit items"
        self._message(f"Fine-tuning {ft.blocks} block(s) for up to {ft.epochs} epochs on "
                      f"{len(train)} labels; early stopping on {where}...")
        self.progress.value = 0
        ft.fit(s.source.subset(train), codes[train], classes=s.classes, val=val,
               on_epoch=self._on_epoch, on_step=self._on_step)
        if ft.model_ is None:
            self._message("Cancelled before fine-tuning started; the linear probe is kept.")
            return
        self._message("Measuring the fine-tuned model...")
        self._ft_eval = self._evaluate_finetuned(ft.model_)
        if ft.improved_:
            self.model_ = ft.model_
            self.kept_ = "finetune"
        self.verdict_ = ft.verdict_
        self._record_run(ft, len(train))
        self._refresh_all()
        self._message(("Cancelled. " if ft.cancelled_ else "") +
                      f"Fine-tuning took {ft.seconds_:.0f} s.", ok=not ft.cancelled_)

    def _on_epoch(self, row: dict) -> None:
        fig = self.epoch_fig
        with fig.batch_update():
            for trace, key in zip(fig.data, ("train_loss", "val_loss", "train_acc", "val_acc")):
                value = row[key]
                if value is None or not np.isfinite(value):
                    continue
                trace.x = tuple(trace.x or ()) + (row["epoch"],)
                trace.y = tuple(trace.y or ()) + (float(value),)
        _sync_state(fig)

    def _on_step(self, done: int, total: int) -> None:
        self.progress.max = max(int(total), 1)
        self.progress.value = int(done)

    def _evaluate_finetuned(self, model: Any) -> dict[str, Any] | None:
        """Predictions of a fine-tuned model on the evaluation items (ground-truth holdout
        or answered audit items)."""
        items = self._eval_items()
        if items is None:
            return None
        idx, truth, kind = items
        probs = model.predict_proba(self.session.source.subset(idx))
        lookup = {c: i for i, c in enumerate(self.session.classes)}
        pred = np.asarray([lookup.get(model.classes[k], -1) for k in probs.argmax(1)])
        return {"indices": idx, "truth": truth, "pred": pred, "kind": kind}

    def _record_run(self, ft: Any, n_train: int) -> None:
        s = self.session
        runs = list(s.store.get_meta(META_KEY) or [])
        acc = None
        if self._ft_eval is not None and len(self._ft_eval["truth"]):
            acc = float((self._ft_eval["truth"] == self._ft_eval["pred"]).mean())
        runs.append({
            "n_labels": int((s.label_array() >= 0).sum()), "n_train": int(n_train),
            "accuracy": acc, "eval": None if self._ft_eval is None else self._ft_eval["kind"],
            "held_out_finetune": float(ft.best_accuracy_ if ft.improved_ else
                                       ft.history_["val_acc"].iloc[1:].max()
                                       if len(ft.history_) > 1 else float("nan")),
            "held_out_probe": float(ft.probe_accuracy_), "kept": self.kept_,
            "epochs": int(len(ft.history_) - 1), "blocks": ft.blocks_,
            "seconds": round(float(ft.seconds_), 2), "cancelled": bool(ft.cancelled_),
            "verdict": ft.verdict_, "time": time.time(),
        })
        s.store.set_meta(META_KEY, runs)

    # ================================================================== evaluation data
    def _eval_items(self) -> tuple[np.ndarray, np.ndarray, str] | None:
        """(indices, true class codes in session.classes, kind) to score models on:
        the Session's ground-truth holdout (unlabeled items) when the source has labels,
        else the answered audit items."""
        s = self.session
        codes = s.label_array()
        gt = getattr(s.source, "labels", None)
        names = getattr(s.source, "classes", None)
        if gt is not None and names and (np.asarray(gt) >= 0).any():
            idx = s._holdout_indices()
            idx = idx[codes[idx] < 0]
            lookup = {c: i for i, c in enumerate(s.classes)}
            truth = np.asarray([lookup.get(str(names[g]), -1) if g >= 0 else -1
                                for g in np.asarray(gt)[idx]])
            keep = truth >= 0
            return idx[keep], truth[keep], "ground truth"
        idx = np.flatnonzero(s._audit_mask() & (codes >= 0))
        if idx.size == 0:
            return None
        return idx, codes[idx], "audit labels"

    def curve_points(self) -> pd.DataFrame:
        """The learning curve shown: DataFrame[n_labels, accuracy, low, high, measured]
        (one point per label count, the latest fit; ground truth where the source has it,
        else Session.accuracy_estimate: the model's confidence corrected by the audit
        answers, with its 95% interval)."""
        cols = ["n_labels", "accuracy", "low", "high", "measured"]
        curve = self.session.curve
        if curve is None or len(curve) == 0:
            return pd.DataFrame(columns=cols)
        curve = curve.copy()
        has_truth = "true_accuracy" in curve and curve["true_accuracy"].notna().any()
        if has_truth:
            curve["acc"] = curve["true_accuracy"]
            curve["lo"] = curve["hi"] = np.nan
            measured = "ground truth"
        else:
            curve["acc"] = curve.get("accuracy")
            curve["lo"], curve["hi"] = curve.get("low"), curve.get("high")
            measured = "estimated: confidence + audit"
        curve = curve[curve["acc"].notna()]
        curve = curve.groupby("n_labels", as_index=False).last().sort_values("n_labels")
        return pd.DataFrame({
            "n_labels": curve["n_labels"].astype(int).to_numpy(),
            "accuracy": curve["acc"].astype(float).to_numpy(),
            "low": pd.to_numeric(curve["lo"], errors="coerce").to_numpy(dtype=float),
            "high": pd.to_numeric(curve["hi"], errors="coerce").to_numpy(dtype=float),
            "measured": measured,
        }, columns=cols)

    def _random_baseline(self, n_max: int) -> Any:
        """SimulationResult of random sampling up to ~2x the labels so far (cached)."""
        from ..learn.evaluate import simulate

        s = self.session
        gt = getattr(s.source, "labels", None)
        names = getattr(s.source, "classes", None)
        if gt is not None and names:
            top = int(max(100, 2 * n_max))
            key = ("truth", _grid_top(top))
            if self._sim_key is not None and self._sim_key[0] == "truth" and \
                    self._sim_key[1] >= top:
                return self._sim
            holdout = s._holdout_indices()
            gt = np.asarray(gt)
            pool = np.setdiff1d(np.flatnonzero(gt >= 0), holdout)
            rng = np.random.default_rng(7)
            pool = np.sort(rng.choice(pool, size=min(SIM_POOL, pool.size), replace=False))
            budgets = _budgets(min(key[1], pool.size))
            y_names = np.asarray(names, dtype=object)
            sim = simulate(s.embeddings[pool], y_names[gt[pool]], strategies=("random",),
                           budgets=budgets, seeds=SIM_SEEDS, initial="random",
                           test=(s.embeddings[holdout], y_names[gt[holdout]]), progress=False)
        else:
            codes = s.label_array()
            labeled = np.flatnonzero(codes >= 0)
            key = ("labels", s.store.version())
            if self._sim_key == key:
                return self._sim
            if labeled.size < 25 or np.unique(codes[labeled]).size < 2:
                return None
            pool_n = labeled.size - max(1, labeled.size // 5)
            budgets = _budgets(pool_n)
            sim = simulate(s.embeddings[labeled], np.asarray(s.classes, dtype=object)[
                codes[labeled]], strategies=("random",), budgets=budgets, seeds=SIM_SEEDS,
                initial="random", progress=False)
        self._sim, self._sim_key = sim, key
        return sim

    # ================================================================== refresh
    def _refresh_all(self) -> None:
        with self._lock:
            self._refresh_curve()
            self._refresh_classes()
            self._refresh_verdict()

    def _refresh_verdict(self) -> None:
        text = html.escape(self.verdict_) if self.verdict_ else ""
        kept = {"probe": "linear probe", "finetune": "fine-tuned model"}.get(self.kept_ or "")
        if kept:
            text = f"<b>Kept: {kept}.</b> {text}"
        self.verdict_html.value = text

    def _refresh_curve(self) -> None:
        pts = self.curve_points()
        target = self.target
        runs = [r for r in (self.session.store.get_meta(META_KEY) or [])
                if r.get("accuracy") is not None]
        sim = None
        if len(pts):
            try:
                sim = self._random_baseline(int(pts["n_labels"].max()))
            except Exception as exc:  # the baseline is a bonus; never block the curve
                log.warning("random baseline failed: %s", exc)
        fit_x: list[float] = []
        fit_y: list[float] = []
        stop_text = self._stop_text(pts, target, fit_x, fit_y)
        x_hi = max([float(pts["n_labels"].max()) if len(pts) else 10.0] + fit_x)
        if sim is not None:
            x_hi = max(x_hi, float(sim.mean_curves().index.max()))
        fig = self.curve_fig
        with fig.batch_update():
            you = fig.data[0]
            you.x = pts["n_labels"].tolist()
            you.y = pts["accuracy"].tolist()
            if len(pts) and pts["low"].notna().any():
                you.error_y = {"type": "data", "symmetric": False, "visible": True,
                               "array": (pts["high"] - pts["accuracy"]).fillna(0).tolist(),
                               "arrayminus": (pts["accuracy"] - pts["low"]).fillna(0).tolist()}
            else:
                you.error_y = {"visible": False}
            you.name = f"your labels ({pts['measured'].iloc[0]})" if len(pts) else "your labels"
            if sim is not None:
                mean = sim.mean_curves()["random"]
                fig.data[1].x, fig.data[1].y = mean.index.tolist(), mean.tolist()
            else:
                fig.data[1].x, fig.data[1].y = [], []
            fig.data[2].x, fig.data[2].y = fit_x, fit_y
            fig.data[3].x = [r["n_labels"] for r in runs]
            fig.data[3].y = [r["accuracy"] for r in runs]
            fig.data[4].x, fig.data[4].y = [0, x_hi], [target, target]
        _sync_state(fig)
        self.saving_html.value = self._saving_text(pts, sim)
        self.stop_html.value = stop_text

    def _saving_text(self, pts: pd.DataFrame, sim: Any) -> str:
        if not len(pts):
            return ('<span class="dfw-tr-muted">Train to see accuracy against the number of '
                    "labels.</span>")
        n = int(pts["n_labels"].iloc[-1])
        acc = float(pts["accuracy"].iloc[-1])
        head = f"<b>{n} labels so far</b>, accuracy {acc:.1%} ({pts['measured'].iloc[0]})"
        if sim is None:
            return head + ('; <span class="dfw-tr-muted">the random-sampling baseline needs '
                           "ground truth or at least 25 labels.</span>")
        if not 0 < acc < 1:
            return head + "."
        need = float(sim.labels_needed(acc)["random"])
        top = int(sim.mean_curves().index.max())
        if not np.isfinite(need):
            return head + (f"; random sampling did not reach that accuracy within {top} labels "
                           "in the simulation, so it would need more than "
                           f"{top} ({top / n:.1f}x as many).")
        ratio = need / n
        verdict = (f"your labels saved about {1 - 1 / ratio:.0%}" if ratio > 1.05 else
                   "no saving over random so far" if ratio >= 0.95 else
                   "random sampling did better so far")
        return head + (f"; random would need about <b>{need:.0f}</b> for the same accuracy "
                       f"({verdict}).")

    def _stop_text(self, pts: pd.DataFrame, target: float, fit_x: list, fit_y: list) -> str:
        from ..learn.evaluate import LearningCurveFit

        if len(pts) < 3:
            return ('<span class="dfw-tr-muted">When to stop: train at 3 or more label counts '
                    f"to fit a learning curve (have {len(pts)}).</span>")
        n_now = int(pts["n_labels"].iloc[-1])
        try:
            lc = LearningCurveFit(n_bootstrap=100).fit(pts["n_labels"], pts["accuracy"])
        except Exception as exc:
            return f'<span class="dfw-tr-muted">When to stop: no curve fit yet ({html.escape(str(exc))}).</span>'
        need = lc.labels_needed(target)
        x_end = n_now * 2.0
        if need["reachable"] and np.isfinite(need["estimate"]):
            x_end = max(x_end, min(need["estimate"] * 1.2, n_now * 20.0))
        xs = np.unique(np.geomspace(max(1, pts["n_labels"].min()), x_end, 40).round())
        fit_x += xs.tolist()
        fit_y += np.clip(lc.predict(xs), 0, 1).tolist()
        plateau = (f"the curve levels off near {need['asymptote']:.1%} (range "
                   f"{need['asymptote_low']:.1%}-{need['asymptote_high']:.1%})")
        if float(pts["accuracy"].iloc[-1]) >= target:
            return f"<b>When to stop:</b> the target {target:.0%} is reached; {plateau}."
        if not need["reachable"]:
            return (f"<b>When to stop:</b> the target {target:.0%} looks out of reach with this "
                    f"model: {plateau}. Fine-tuning or a stronger embedder may help.")
        est, low, high = need["estimate"], need["low"], need["high"]
        more = max(0, round(est) - n_now)
        hi_text = "unbounded" if not np.isfinite(high) else f"{high:,.0f}"
        return (f"<b>When to stop:</b> about <b>{est:,.0f}</b> labels in total for "
                f"{target:.0%} (80% range {low:,.0f}-{hi_text}), i.e. about {more:,} more; "
                f"{plateau}.")

    def _current_eval(self) -> dict[str, Any] | None:
        if self.kept_ == "finetune" and self._ft_eval is not None:
            return self._ft_eval
        items = self._eval_items()
        pred = self.session.predictions_
        if items is None or pred is None:
            return None
        idx, truth, kind = items
        model_classes = list(self.session.model_classes_ or self.session.classes)
        lookup = {c: i for i, c in enumerate(self.session.classes)}
        remap = np.asarray([lookup.get(c, -1) for c in model_classes])
        return {"indices": idx, "truth": truth, "pred": remap[pred[idx]], "kind": kind}

    def _refresh_classes(self) -> None:
        ev = self._current_eval()
        self._eval = ev
        classes = list(self.session.classes)
        if ev is None or not len(ev["truth"]):
            return
        k = len(classes)
        truth, pred = ev["truth"], ev["pred"]
        ok = pred >= 0
        cm = np.zeros((k, k), dtype=np.int64)
        np.add.at(cm, (truth[ok], pred[ok]), 1)
        per_n = cm.sum(1)
        shown = np.flatnonzero(per_n > 0)
        acc = np.diag(cm)[shown] / per_n[shown]
        with self.class_fig.batch_update():
            bar = self.class_fig.data[0]
            bar.x = [classes[i] for i in shown]
            bar.y = acc.tolist()
            bar.customdata = per_n[shown].tolist()
            self.class_fig.layout.title.text = (
                f"Per-class accuracy ({ev['kind']}, {int(per_n.sum())} items)")
        with self.confusion_fig.batch_update():
            hm = self.confusion_fig.data[0]
            hm.z = cm.tolist()
            hm.x = classes
            hm.y = classes
        _sync_state(self.class_fig)
        _sync_state(self.confusion_fig)

    # ================================================================== confusion items
    def _on_confusion_click(self, trace: Any, points: Any, selector: Any) -> None:
        if not points.xs:
            return
        self._safe(self.show_confused, str(points.ys[0]), str(points.xs[0]))

    def show_confused(self, true: str, predicted: str) -> np.ndarray:
        """Show thumbnails of evaluation items of class ``true`` predicted as ``predicted``;
        returns their item indices (N,)."""
        ev = self._eval
        classes = list(self.session.classes)
        if ev is None:
            self._message("Train first: there is no confusion matrix yet.", error=True)
            return np.empty(0, dtype=np.int64)
        if true not in classes or predicted not in classes:
            self._message(f"Unknown class {true!r} or {predicted!r}.", error=True)
            return np.empty(0, dtype=np.int64)
        t, p = classes.index(true), classes.index(predicted)
        hits = ev["indices"][(ev["truth"] == t) & (ev["pred"] == p)]
        what = "correct" if t == p else "confused"
        self.items_caption.value = (
            f"<b>{len(hits)}</b> {what} item(s): true <b>{html.escape(true)}</b>, predicted "
            f"<b>{html.escape(predicted)}</b> ({ev['kind']})"
            + (f"; showing the first {MAX_THUMBS}." if len(hits) > MAX_THUMBS else "."))
        self.items_box.children = [self._thumb(int(i)) for i in hits[:MAX_THUMBS]]
        return hits

    def _thumb(self, index: int) -> W.Widget:
        img = self.session.source[index]
        img = img.resize((64, 64)) if max(img.size) < 64 else img
        img.thumbnail((96, 96))
        buf = io.BytesIO()
        img.save(buf, format="PNG")
        pic = W.Image(value=buf.getvalue(), format="png", width=64, height=64)
        pic.layout.object_fit = "contain"
        return W.VBox([pic, W.HTML(f'<span class="dfw-tr-muted" style="font-size:11px">'
                                   f"#{index}</span>")], layout=W.Layout(align_items="center"))

    # ================================================================== plumbing
    def _on_model_updated(self, session: Any) -> None:
        if self._busy:
            return  # the training run refreshes when it is done
        version = session.store.version()

        def refresh() -> None:
            # the Session writes the curve point just after announcing the model
            deadline = time.monotonic() + 2.0
            while time.monotonic() < deadline and session.store.version() == version:
                time.sleep(0.05)
            self._safe(self._refresh_all)

        self._refresher = threading.Thread(target=refresh, daemon=True,
                                           name="dfw-trainer-refresh")
        self._refresher.start()

    def _safe(self, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except Exception as exc:
            log.exception("trainer refresh failed")
            self._message(f"Could not update the plots: {html.escape(str(exc))}", error=True)
            return None

    def _message(self, text: str, *, error: bool = False, ok: bool = False) -> None:
        cls = "dfw-tr-error" if error else "dfw-tr-ok" if ok else "dfw-tr-muted"
        self.status.value = f'<span class="{cls}">{text}</span>'

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.train_button.disabled = busy
        self.cancel_button.disabled = not busy or self.mode != "finetune"
        if not busy:
            self.progress.value = self.progress.max

    def _sync_option_state(self) -> None:
        tune = self.mode == "finetune"
        for w in (self.epochs_input, self.blocks_input, self.flip_box):
            w.disabled = not tune


def _budgets(top: int) -> list[int]:
    """Label counts for the random baseline: 10 .. top, 8 steps, geometric."""
    top = int(max(top, 2))
    start = min(10, top)
    grid = np.unique(np.geomspace(start, top, 8).round().astype(int))
    return [int(b) for b in grid if b >= 1]


def _grid_top(top: int) -> int:
    """Round the simulated range up (64 * 4^k) so it is not recomputed after every label."""
    return int(64 * 4 ** max(0, np.ceil(np.log(max(top, 2) / 64) / np.log(4))))

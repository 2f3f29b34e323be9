"""Trainer: train a linear probe or fine-tune the backbone, with live accuracy-vs-labels
curves, a random-sampling baseline, per-class accuracy, a clickable confusion matrix and
an estimate of how many labels are still needed.

An ipywidgets container around one chart widget (:mod:`.trainer_plots`,
:mod:`.trainer_charts`: plotly figures drawn by plotly.js on the page). All
state lives in the Session (labels, learning curve, ``session.training``: the kept model
and the fine-tuning runs); the numbers come from ``session.training``; the widget draws.
"""

from __future__ import annotations

import html
import logging
import threading
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from ._common import resolve_session
from .base import SessionView
from .trainer_items import TrainerItems
from .trainer_plots import TRAINER_CSS, TrainerPlots, saving_text, stop_text, weak_text

__all__ = ["Trainer"]

log = logging.getLogger(__name__)

MODES = ("probe", "finetune")


_MESSAGE_CLASS = {"error": "dfw-tr-error", "ok": "dfw-tr-ok"}


def _note() -> W.HTML:
    out = W.HTML()
    out.add_class("dfw-tr-note")
    return out


class Trainer(TrainerItems, SessionView, W.VBox):
    """Train on a Session's labels and watch accuracy grow with data.

    ``Trainer(session, embedder="efficientnet_lite0")`` (or ``Trainer(source, embeddings)``)
    shows a Train button, the mode (linear probe / fine-tune), options, a target accuracy,
    Cancel, progress and these live plots: accuracy vs labels with the simulated random-
    sampling curve and a fitted learning curve; loss and accuracy per fine-tuning epoch
    (shown once a fine-tuning run reports its first epoch); per-class accuracy whose bars,
    and a confusion matrix whose cells, show (and select in the Session) the items.

    Args:
        embedder: the embedder that made the Session's embeddings (default: the Session's
            ``embedder()``); needed for fine-tuning and for ``model_``.
        mode: "probe" or "finetune" preselected.
        target: target accuracy for the when-to-stop estimate.
        epochs, blocks, hflip, batch_size, threads: fine-tuning options
            (see ``session.training.fine_tune``).

    Attributes (from ``session.training``): ``model_`` (the kept ExportedModel),
    ``kept_`` ("probe" / "finetune"), ``verdict_`` (why), ``finetuner_`` (the last
    FineTuner); figures ``curve_fig``, ``epoch_fig``, ``class_fig``, ``confusion_fig``
    (plotly ``go.Figure``), shown on the page by ``charts`` (a TrainerCharts widget).
    """

    def __init__(self, session: Any, embeddings: np.ndarray | None = None, *,
                 embedder: Any = None, mode: str = "probe", target: float = 0.9,
                 epochs: int = 8, blocks: int = 1, hflip: bool = True, batch_size: int = 32,
                 threads: int | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if not 0 < float(target) < 1:
            raise ValueError(f"target is an accuracy in (0, 1), got {target!r}.")
        self.init_view(resolve_session(session, embeddings))
        self.embedder = embedder
        self.batch_size = int(batch_size)
        self.threads = threads
        self._thread: threading.Thread | None = None
        self._refresher: threading.Thread | None = None
        self._refresh_due = False
        self._lock = threading.RLock()
        self._busy = False
        self._confusion: dict[str, Any] | None = None

        # ---- controls
        self.mode_toggle = W.ToggleButtons(
            options=[("Linear probe", "probe"), ("Fine-tune", "finetune")], value=mode,
            tooltips=["Logistic regression on the cached embeddings (seconds)",
                      ("A head on the frozen features and stage maps, then the backbone's last "
                      "blocks, on cached activations (seconds per epoch)")],
            style={"button_width": "110px"})
        small = {"layout": W.Layout(width="140px"), "style": {"description_width": "50px"}}
        self.epochs_input = W.BoundedIntText(value=epochs, min=1, max=50, description="epochs",
                                             tooltip="Passes over the labeled images", **small)
        self.blocks_input = W.BoundedIntText(value=blocks, min=1, max=6, description="blocks",
                                             tooltip="How many of the backbone's last blocks "
                                             "learn too (more: slower)", **small)
        self.flip_box = W.Checkbox(value=hflip, description="mirror", indent=False,
                                   tooltip="Also train on left-right mirrored images",
                                   layout=W.Layout(width="80px"))
        self.target_input = W.BoundedFloatText(value=float(target), min=0.05, max=0.999,
                                               step=0.01, description="target accuracy",
                                               layout=W.Layout(width="210px"),
                                               style={"description_width": "110px"})
        self.train_button = W.Button(description="Train", button_style="primary", icon="play",
                                     layout=W.Layout(width="100px"))
        self.cancel_button = W.Button(description="Cancel", icon="stop", disabled=True,
                                      layout=W.Layout(width="100px"))
        self.progress = W.IntProgress(value=0, min=0, max=100, layout=W.Layout(width="180px"))
        self.status = _note()
        self.verdict_html = _note()
        self.saving_html = _note()
        self.stop_html = _note()
        self.items_caption = _note()
        self.items_box = W.Box(layout=W.Layout(flex_flow="row wrap"))
        self.items_box.add_class("dfw-tr-thumbs")
        self.train_button.add_class("dfw-tr-train")
        self.cancel_button.add_class("dfw-tr-cancel")
        self.train_button.on_click(lambda _b: self.train(wait=False))
        self.cancel_button.on_click(lambda _b: self.cancel())
        self.target_input.observe(lambda _c: self._refresh(self._refresh_curve), names="value")
        self.mode_toggle.observe(lambda _c: self._sync_option_state(), names="value")

        # ---- figures (the epoch chart appears with a fine-tuning run's first epoch)
        self.plots = TrainerPlots(on_cell=self._on_cell, on_bar=self._on_bar)
        self.charts = self.plots.charts
        options = W.HBox([self.epochs_input, self.blocks_input, self.flip_box],
                         layout=W.Layout(align_items="center"))
        controls = W.HBox([self.mode_toggle, options, self.target_input, self.train_button,
                           self.cancel_button, self.progress],
                          layout=W.Layout(flex_flow="row wrap", align_items="center"))
        super().__init__([W.HTML(TRAINER_CSS), W.HTML('<div class="dfw-tr-title">Trainer</div>'),
                          controls, self.status, self.verdict_html, self.saving_html,
                          self.stop_html, self.charts, self.items_caption, self.items_box])
        self.add_class("dfw-root")
        self.add_class("dfw-trainer")
        self._sync_option_state()
        history = getattr(self.finetuner_, "history_", None)
        for row in [] if history is None else history.to_dict("records"):
            self._on_epoch(row)  # a run made before this widget: show its epochs
        self.listen("model_updated", self._on_model_updated)
        self._refresh(self._refresh_all)

    # ================================================================== public API
    # the figures (plotly go.Figure objects; ``charts`` shows them on the page)
    curve_fig = property(lambda self: self.plots.curve_fig)
    epoch_fig = property(lambda self: self.plots.epoch_fig)
    class_fig = property(lambda self: self.plots.class_fig)
    confusion_fig = property(lambda self: self.plots.confusion_fig)

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

    @property
    def model_(self) -> Any:
        """The kept model (ExportedModel) or None: ``session.training.model_``."""
        return self.session.training.model_

    @property
    def kept_(self) -> str | None:
        """"probe" or "finetune": which model is kept (None before training)."""
        return self.session.training.kept_

    @property
    def verdict_(self) -> str:
        """Why that model is kept."""
        return self.session.training.verdict_

    @property
    def finetuner_(self) -> Any:
        """The last FineTuner (history_, improved_, ...) or None."""
        return self.session.training.finetuner_

    def train(self, *, mode: str | None = None, wait: bool | None = None) -> Trainer:
        """Train now. ``mode``: "probe" (seconds) or "finetune" (background, cancellable);
        default the selected one. ``wait``: block until done (default: True for the probe,
        False for fine-tuning). Problems are shown in the widget, not raised."""
        if mode is not None:
            if mode not in MODES:
                self.show_message(f"Unknown mode {mode!r}: choose 'probe' or 'finetune'.",
                                  kind="error")
                return self
            self.mode_toggle.value = mode
        mode = self.mode
        if self.training:
            self.show_message("Already training: wait for it to finish or press Cancel.",
                              kind="error")
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
        if self.session.training.cancel():
            self.show_message("Cancelling...")

    def curve_points(self) -> pd.DataFrame:
        """The learning curve shown: ``session.training.curve_points()``."""
        return self.session.training.curve_points()

    def predictions(self) -> pd.DataFrame:
        """Predictions of the kept model for the whole dataset: DataFrame[item, prediction,
        confidence, p_<class>...] (probe: from the cached embeddings, at once)."""
        return self.session.training.predictions()

    def close(self) -> None:
        """Stop listening to the Session, cancel training, close the widget."""
        if getattr(self, "_thread", None) is not None:
            self.cancel()
            self.wait(timeout=60)
        if getattr(self, "plots", None) is not None:
            self.plots.charts.close()
        super().close()

    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` (plain text) in the status line; ``kind``: info, ok, error."""
        cls = _MESSAGE_CLASS.get(kind, "dfw-tr-muted")
        self.status.value = f'<span class="{cls}">{html.escape(str(text))}</span>'

    # ================================================================== training
    def _run(self, mode: str) -> None:
        training = self.session.training
        try:
            self.show_message("Training the linear probe on the cached embeddings...")
            done = training.train_probe(embedder=self.embedder)
            self._refresh_all()
            extra = "" if done["exported"] else (
                " (No exported model: pass embedder= the model that made the embeddings.)")
            self.show_message(f"Trained in {done['seconds']:.1f} s: the model's guess for "
                              f"every image and its accuracy are up to date.{extra}",
                              kind="ok")
            if mode == "finetune":
                self._fine_tune()
        except ValueError as exc:  # the labels or the setup are not ready: say what to do
            self.show_message(str(exc), kind="error")
        except Exception as exc:  # shown inline; the traceback goes to the log
            log.exception("training failed")
            self.show_message(f"Training failed: {exc}", kind="error")
        finally:
            self._set_busy(False)

    def _fine_tune(self) -> None:
        self.progress.value = 0
        result = self.session.training.fine_tune(
            blocks=int(self.blocks_input.value), epochs=int(self.epochs_input.value),
            hflip=bool(self.flip_box.value), batch_size=self.batch_size, threads=self.threads,
            on_epoch=self._on_epoch, on_step=self._on_step, embedder=self.embedder,
            on_status=self.show_message)
        if result.run is None:
            self.show_message("Cancelled before fine-tuning started; the linear probe is kept.")
            return
        self._refresh_all()
        self.show_message(("Cancelled. " if result.cancelled else "") +
                          f"Fine-tuning took {result.seconds:.0f} s.",
                          kind="info" if result.cancelled else "ok")

    def _on_epoch(self, row: dict) -> None:
        """One fine-tuning history row: draw it; the epoch chart shows from the first."""
        self.plots.add_epoch(row)
        self.plots.show_epochs()

    @property
    def epochs_shown(self) -> bool:
        """True once the fine-tuning (epoch) chart is shown."""
        return self.plots.epochs_shown

    def _on_step(self, done: int, total: int) -> None:
        self.progress.max = max(int(total), 1)
        self.progress.value = int(done)

    # ================================================================== refresh
    def _refresh(self, fn: Any) -> None:
        self.run_safely(fn, what="Updating the plots")

    def _refresh_all(self) -> None:
        with self._lock:
            self._refresh_curve()
            self._refresh_classes()
            self._refresh_verdict()

    def _refresh_verdict(self) -> None:
        text = html.escape(self.verdict_) if self.verdict_ else ""
        kept = {"probe": "linear probe", "finetune": "fine-tuned model"}.get(self.kept_ or "")
        self.verdict_html.value = f"<b>Kept: {kept}.</b> {text}" if kept else text

    def _refresh_curve(self) -> None:
        rep = self.session.training.curve_report(target=self.target)
        self.plots.draw_curve(rep)
        weak = weak_text(rep["points"]["n_labels"].tolist(), self._weak_per_point(rep["points"]))
        self.saving_html.value = (saving_text(rep["saving"]) + weak
                                  + getattr(self, "_advice", ""))
        self.stop_html.value = stop_text(rep["stop"])

    def _weak_per_point(self, points: Any) -> list[int]:
        """Weak-labeled items trained on at each curve point (the latest record per label
        count, as the points); 0 where the records have none."""
        curve = self.session.curve
        if curve is None or not len(curve) or "weak" not in curve or not len(points):
            return [0] * len(points)
        last = curve.groupby("n_labels")["weak"].last().fillna(0)
        return [int(last.get(n, 0)) for n in points["n_labels"].tolist()]

    def show_recommendation(self, result: Any, *, target: float | None = None) -> str:
        """Say which strategy to use, in words under the curve, from a simulation
        (``dfw.simulate(...)``: its ``recommend(target)``; issue 16). Returns the text."""
        text = result.recommend(target=target).text
        self._advice = f"<br><b>Strategy:</b> {html.escape(text)}"
        self._refresh(self._refresh_curve)
        return text

    def _refresh_classes(self) -> None:
        conf = self.session.training.confusion()
        self._confusion = conf
        if conf is not None:
            self.plots.draw_confusion(conf)

    def _on_model_updated(self, _session: Any) -> None:
        """A fit made elsewhere (e.g. the Labeler's auto-fit): redraw in the background
        (the Session records the curve point before it announces the model). A failed
        background fit is said in the status line (and cleared by the next good fit)."""
        error = self.session.fit_error_
        if error or getattr(self, "_fit_failed", False):
            self._fit_failed = bool(error)
            self.show_message(f"The model fit failed: {error}" if error else
                              "The model fits again.", kind="error" if error else "ok")
        if self._busy:
            return  # the training run refreshes when it is done
        with self._lock:
            self._refresh_due = True
            if self._refresher is not None and self._refresher.is_alive():
                return  # the running refresher picks this one up

            def refresh() -> None:
                while True:
                    with self._lock:
                        if not self._refresh_due:
                            return
                        self._refresh_due = False
                    self._refresh(self._refresh_all)

            self._refresher = threading.Thread(target=refresh, daemon=True,
                                               name="dfw-trainer-refresh")
            self._refresher.start()

    # ================================================================== plumbing
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
        # epoch progress means nothing for the probe (seconds): no full bar standing there
        self.progress.layout.display = "" if tune else "none"
        if tune and not self._busy:  # say whether it pays before the user waits
            self._refresh(self._refresh_advice)

    def _refresh_advice(self) -> None:
        self.show_message(self.session.training.finetune_advice()["text"])

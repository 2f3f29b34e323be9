"""The Trainer's figures and texts: accuracy vs labels, loss and accuracy per epoch,
per-class accuracy, the confusion matrix, and the "saving" / "when to stop" sentences.

Draws numbers computed by ``session.training`` (see
:mod:`dfwidgets.learn.training_report`); computes nothing itself. Figures are plotly
``FigureWidget``s (:func:`.plot_style.new_figure`) updated in place (``batch_update``);
edits take turns with the kernel's handling of the page's messages, and a figure whose
page stopped taking its edits is replaced by a new one with the same data
(:func:`.plot_style.editing`, :func:`.plot_style.renew`).
"""

from __future__ import annotations

import contextlib
import html
import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

from .plot_style import (
    COLORS,
    PAGE_LAG,
    editing,
    new_figure,
    page_state,
    plot_css,
    renew,
    sync_state,
)

__all__ = ["TRAINER_CSS", "TrainerPlots", "saving_text", "stop_text", "weak_text"]

EPOCH_TRACES = (("train loss", "train_loss", COLORS["loss"], "dot", False),
                ("held-out loss", "val_loss", COLORS["loss"], "solid", False),
                ("train accuracy", "train_acc", COLORS["accuracy"], "dot", True),
                ("held-out accuracy", "val_acc", COLORS["accuracy"], "solid", True))
#: confusion cells: from see-through to blue, so the page (light or dark) shows through and
#: the cell text takes the theme's font colour (TRAINER_CSS)
CONFUSION_SCALE = [[0.0, "rgba(31,119,180,0)"], [1.0, "rgba(31,119,180,0.85)"]]
FIG_NAMES = ("curve_fig", "epoch_fig", "class_fig", "confusion_fig")
FIG_MIN_WIDTH = 300  #: px (.dfw-tr-fig's flex basis): figures fill their box and wrap below it

#: the Trainer's look (JupyterLab CSS variables: light and dark themes)
TRAINER_CSS = """
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
.dfw-trainer .dfw-tr-fig { flex: 1 1 300px; min-width: 0; max-width: 100%; }
.dfw-trainer .dfw-tr-fig > * { flex: 1 1 auto; min-width: 0; width: 100%; }
.dfw-trainer .js-plotly-plot .modebar-container { display: none !important; }
.dfw-trainer .js-plotly-plot .heatmaplayer text { fill: var(--jp-ui-font-color1) !important; }
{plots}.dfw-trainer .dfw-tr-thumbs img { border: 1px solid var(--jp-border-color2); border-radius: 3px;
  image-rendering: pixelated; }
</style>
""".replace("{plots}", plot_css("dfw-trainer"))


def _muted(text: str) -> str:
    return f'<span class="dfw-tr-muted">{text}</span>'


class TrainerPlots:
    """The four figures: ``curve_fig`` (traces: your labels, random sampling (simulated),
    fitted curve, fine-tuned, target), ``epoch_fig``, ``class_fig``, ``confusion_fig``.

    ``on_cell(true, predicted)`` is called with class names when a confusion cell is
    clicked, ``on_bar(true)`` when a per-class accuracy bar is.
    """

    def __init__(self, *, on_cell: Callable[[str, str], None],
                 on_bar: Callable[[str], None] | None = None) -> None:
        from plotly.subplots import make_subplots

        self.curve_fig = new_figure("Accuracy vs labels", xaxis_title="labels",
                                    yaxis_title="accuracy")
        fig = self.curve_fig
        fig.add_scatter(name="your labels", mode="lines+markers",
                        line={"color": COLORS["you"]}, x=[], y=[])
        fig.add_scatter(name="random sampling (simulated)", mode="lines",
                        line={"color": COLORS["random"], "dash": "dot"}, x=[], y=[])
        fig.add_scatter(name="fitted curve", mode="lines",
                        line={"color": COLORS["fit"], "dash": "dash"}, x=[], y=[])
        fig.add_scatter(name="fine-tuned", mode="markers",
                        marker={"color": COLORS["finetune"], "symbol": "diamond", "size": 10},
                        x=[], y=[])
        fig.add_scatter(name="target", mode="lines",
                        line={"color": COLORS["target"], "width": 1}, x=[], y=[])
        fig.update_yaxes(tickformat=".0%")

        self.epoch_fig = new_figure("Fine-tuning: loss and accuracy per epoch",
                                    base=make_subplots(specs=[[{"secondary_y": True}]]))
        for name, _key, color, dash, secondary in EPOCH_TRACES:
            self.epoch_fig.add_scatter(name=name, mode="lines+markers", x=[], y=[],
                                       line={"color": color, "dash": dash},
                                       secondary_y=secondary)
        self.epoch_fig.update_xaxes(title_text="epoch (0 = head on frozen features)", dtick=1)
        self.epoch_fig.update_xaxes(rangemode="tozero")
        self.epoch_fig.update_yaxes(title_text="loss", rangemode="tozero", secondary_y=False)
        self.epoch_fig.update_yaxes(title_text="accuracy", tickformat=".0%", secondary_y=True,
                                    showgrid=False, range=[0, 1.02])

        self.class_fig = new_figure("Per-class accuracy (click a bar)", yaxis_title="accuracy",
                                    margin={"t": 55})
        self.class_fig.add_bar(
            x=[], y=[], marker={"color": COLORS["you"]}, name="accuracy",
            hovertemplate="%{x}: %{y:.1%} (%{customdata} items)<extra></extra>")
        self.class_fig.update_yaxes(range=[0, 1], tickformat=".0%")
        self.class_fig.update_layout(showlegend=False)

        self.confusion_fig = new_figure("Confusion matrix (click a cell)", height=360,
                                        xaxis_title="predicted", yaxis_title="true")
        self.confusion_fig.add_heatmap(
            z=[[0]], x=[""], y=[""], colorscale=CONFUSION_SCALE, texttemplate="%{z}",
            showscale=False, hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
        self.confusion_fig.update_yaxes(autorange="reversed")

        def clicked(_trace: Any, points: Any, _selector: Any) -> None:
            if points.xs:
                on_cell(str(points.ys[0]), str(points.xs[0]))

        self._clicks = {"confusion_fig": clicked}
        if on_bar is not None:
            self._clicks["class_fig"] = (
                lambda _t, points, _s: on_bar(str(points.xs[0])) if points.xs else None)
        for name, on_click in self._clicks.items():
            getattr(self, name).data[0].on_click(on_click)
        self._boxes: dict[str, Any] = {}
        self._renewing = threading.RLock()  # draws and renewals, one at a time
        self._checks: set[str] = set()  # figures with a PAGE_LAG check pending
        self.closed = False  # the Trainer closed: renew nothing
        self.renewed = 0  #: figures replaced because their page stopped taking edits
        for f in self.figures:  # no fixed width: autosize to the box (see boxed)
            f.layout.autosize = True
            sync_state(f)  # opens the figure's comm: the page's model is born with the traces
            self._watch(f)

    @contextlib.contextmanager
    def editing(self, *figs: Any) -> Iterator[None]:
        """Edit ``figs`` in turn with the page's messages (:func:`.plot_style.editing`);
        a figure whose page stopped taking edits is replaced by a new one, now or (the
        last edit not confirmed) ``PAGE_LAG`` s later."""
        with self._renewing, editing(*figs) as behind:
            yield
            for fig in behind:
                self._renew(fig)
            for fig in figs:
                self._check_later(fig)

    def _check_later(self, fig: Any) -> None:
        name = self._name(fig)
        if name is None or name in self._checks or not page_state(fig).seen:
            return

        def check() -> None:
            with self._renewing:
                self._checks.discard(name)
                with editing(getattr(self, name)) as behind:
                    for stale in behind:
                        self._renew(stale)

        self._checks.add(name)
        timer = threading.Timer(PAGE_LAG + 1.0, check)
        timer.daemon = True
        timer.start()

    def _watch(self, fig: Any) -> None:
        """Check ``fig`` ``PAGE_LAG`` s after a page shows it: an edit made before it was
        shown (a Trainer trained, then displayed) is confirmed by then, or ``fig`` renewed."""
        fig.observe(lambda _change: self._check_later(fig),
                    names=["_js2py_layoutDelta", "_js2py_traceDeltas"])

    def _name(self, fig: Any) -> str | None:
        return next((n for n in FIG_NAMES if getattr(self, n) is fig), None)

    def _renew(self, fig: Any) -> None:
        name = self._name(fig)
        if name is None or getattr(self, "closed", False):
            return
        new = renew(fig)
        self._watch(new)
        self.renewed += 1
        setattr(self, name, new)
        if name in self._clicks:
            new.data[0].on_click(self._clicks[name])
        if name in self._boxes:
            self._boxes[name].children = (new,)
        fig.close()

    def boxed(self, fig: Any, **layout: Any) -> Any:
        """``fig`` in a flex box that shares its row with others and wraps below
        ``FIG_MIN_WIDTH`` (plotly autosizes to the box when shown or resized); a renewed
        figure takes its place in the box."""
        import ipywidgets as W

        box = W.Box([fig], layout=W.Layout(**layout))
        box.add_class("dfw-tr-fig")
        for name in FIG_NAMES:
            if getattr(self, name) is fig:
                self._boxes[name] = box
        return box

    @property
    def figures(self) -> tuple[Any, ...]:
        """(curve_fig, epoch_fig, class_fig, confusion_fig)."""
        return tuple(getattr(self, name) for name in FIG_NAMES)

    # ------------------------------------------------------------------ curve
    def draw_curve(self, rep: dict[str, Any]) -> None:
        """Draw ``session.training.curve_report(target=...)``."""
        pts, fig = rep["points"], self.curve_fig
        base_x, base_y = rep["baseline"]
        ft_x, ft_y = rep["finetune"]
        stop = rep["stop"]
        with self.editing(fig):
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
                fig.data[1].x, fig.data[1].y = base_x, base_y
                fig.data[2].x, fig.data[2].y = list(stop["fit_x"]), list(stop["fit_y"])
                fig.data[3].x, fig.data[3].y = ft_x, ft_y
                fig.data[4].x = [0, rep["x_max"]]
                fig.data[4].y = [rep["target"], rep["target"]]
                fig.data[4].name = f"target ({rep['target']:.0%})"
            sync_state(fig)

    # ------------------------------------------------------------------ epochs
    def clear_epochs(self) -> None:
        """Empty the per-epoch figure (a new fine-tuning run starts)."""
        with self.editing(self.epoch_fig):
            with self.epoch_fig.batch_update():
                for trace in self.epoch_fig.data:
                    trace.x, trace.y = [], []
            sync_state(self.epoch_fig)

    def add_epoch(self, row: dict[str, Any]) -> None:
        """Append one FineTuner history row (epoch 0, the probe start, clears first)."""
        if int(row["epoch"]) == 0:
            self.clear_epochs()
        fig = self.epoch_fig
        with self.editing(fig):
            with fig.batch_update():
                for trace, (_n, key, _c, _d, _s) in zip(fig.data, EPOCH_TRACES):
                    value = row.get(key)
                    if value is None or not math.isfinite(float(value)):
                        continue
                    trace.x = tuple(trace.x or ()) + (row["epoch"],)
                    trace.y = tuple(trace.y or ()) + (float(value),)
            sync_state(fig)

    # ------------------------------------------------------------------ classes
    def draw_confusion(self, conf: dict[str, Any]) -> None:
        """Draw ``session.training.confusion()``: per-class bars and the matrix."""
        per, classes = conf["per_class"], conf["classes"]
        with self.editing(self.class_fig, self.confusion_fig):
            with self.class_fig.batch_update():
                bar = self.class_fig.data[0]
                bar.x = per["class"].tolist()
                bar.y = per["accuracy"].tolist()
                bar.customdata = per["n"].tolist()
                self.class_fig.layout.title.text = (  # two lines: fits a 300 px figure
                    f"Per-class accuracy (click a bar)<br><sup>{conf['kind']}, "
                    f"{conf['n']:,} items</sup>")
            with self.confusion_fig.batch_update():
                heat = self.confusion_fig.data[0]
                heat.z = conf["matrix"].tolist()
                heat.x = classes
                heat.y = classes
            sync_state(self.class_fig)
            sync_state(self.confusion_fig)


def saving_text(saving: dict[str, Any]) -> str:
    """HTML: labels so far, accuracy, and how many random sampling would need."""
    n = saving["n_labels"]
    if n is None:
        return _muted("Train to see accuracy against the number of labels.")
    head = (f"<b>{n} labels so far</b>, accuracy {saving['accuracy']:.1%} "
            f"({html.escape(saving['measured'])})")
    top = saving["simulated_up_to"]
    if top is None:
        return head + "; " + _muted("the random-sampling baseline needs ground truth or at "
                                    "least 25 labels.")
    need = saving["random_needed"]
    if need is None:
        return head + "."
    if not math.isfinite(need):
        return head + (f"; random sampling did not reach that accuracy within {top} labels "
                       "in the simulation, so it would need more than "
                       f"{top} ({top / n:.1f}x as many).")
    ratio = saving["ratio"]
    verdict = {"saved": f"your labels saved about {1 - 1 / ratio:.0%}",
               "same": "no saving over random so far",
               "worse": "random sampling did better so far"}[saving["verdict"]]
    return head + (f"; random would need about <b>{need:.0f}</b> for the same accuracy "
                   f"({verdict}).")


def weak_text(n_labels: list[int], weak: list[int]) -> str:
    """HTML: which curve points were trained with the rules' weak labels ("" if none).
    (Per-point marker arrays or an extra trace on the curve made the plot come up empty
    in JupyterLab's plotly FigureWidget, so the marks are words under the curve.)"""
    made = [f"{n} (+{w:,} weak)" for n, w in zip(n_labels, weak) if w]
    if not made:
        return ""
    return ("<br>" + _muted(f"Points made with weak labels (rules): at {', '.join(made)} "
                            "labels."))


def stop_text(stop: dict[str, Any]) -> str:
    """HTML: when to stop labeling, from ``session.training.stop_estimate``."""
    target = stop["target"]
    if stop["status"] == "too_few":
        return _muted("When to stop: train at 3 or more label counts to fit a learning "
                      f"curve (have {stop['n_points']}).")
    if stop["status"] == "no_fit":
        return _muted(f"When to stop: no curve fit yet ({html.escape(str(stop['error']))}).")
    low, high = stop["asymptote_low"], stop["asymptote_high"]
    plateau = (f"the curve levels off near {stop['asymptote']:.1%} " + (
        f"(range {low:.1%}-{high:.1%})" if round(high - low, 3) > 0 else
        "(too few label counts yet to say how sure)"))
    if stop["status"] == "reached":
        return f"<b>When to stop:</b> the target {target:.0%} is reached; {plateau}."
    if stop["status"] == "unreachable":
        return (f"<b>When to stop:</b> the target {target:.0%} looks out of reach with this "
                f"model: {plateau}. Fine-tuning or a stronger embedder may help.")
    high = stop["high"]
    hi_text = "unbounded" if not math.isfinite(high) else f"{high:,.0f}"
    return (f"<b>When to stop:</b> about <b>{stop['estimate']:,.0f}</b> labels in total for "
            f"{target:.0%} (80% range {stop['low']:,.0f}-{hi_text}), i.e. about "
            f"{stop['more']:,} more; {plateau}.")

"""The Trainer's figures and texts: accuracy vs labels, loss and accuracy per epoch,
per-class accuracy, the confusion matrix, and the "saving" / "when to stop" sentences.

Draws numbers computed by ``session.training`` (see
:mod:`dfwidgets.learn.training_report`); computes nothing itself. The figures are plain
plotly ``go.Figure`` objects, edited in place and sent whole to ONE page widget
(:class:`.trainer_charts.TrainerCharts`) after every edit, under its lock (edits come from
the training and refresh threads).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from typing import Any

from .plot_style import COLORS, new_figure, plot_css, short_names
from .trainer_charts import TrainerCharts

__all__ = ["TRAINER_CSS", "TrainerPlots", "saving_text", "stop_text", "weak_text"]

EPOCH_TRACES = (("train loss", "train_loss", COLORS["loss"], "dot", False),
                ("held-out loss", "val_loss", COLORS["loss"], "solid", False),
                ("train accuracy", "train_acc", COLORS["accuracy"], "dot", True),
                ("held-out accuracy", "val_acc", COLORS["accuracy"], "solid", True))
#: confusion cells: from see-through to blue, so the page (light or dark) shows through and
#: the cell text takes the theme's font colour (TRAINER_CSS)
CONFUSION_SCALE = [[0.0, "rgba(31,119,180,0)"], [1.0, "rgba(31,119,180,0.85)"]]
#: figure attribute -> chart name on the page (TrainerCharts)
FIG_NAMES = {"curve_fig": "curve", "epoch_fig": "epoch", "class_fig": "classes",
             "confusion_fig": "confusion"}
FIG_MIN_WIDTH = 300  #: px (a chart's flex basis): charts fill their row and wrap below it
ROWS = (("curve", "epoch"), ("classes", "confusion"))

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
    fitted curve, fine-tuned, target), ``epoch_fig``, ``class_fig``, ``confusion_fig``
    (``go.Figure``), and ``charts``: the page widget that shows them (epoch chart hidden
    until :meth:`show_epochs`).

    ``on_cell(true, predicted)`` is called with class names when a confusion cell is
    clicked, ``on_bar(true)`` when a per-class accuracy bar is (on the page, or through
    the figures' own plotly ``on_click`` callbacks).
    """

    def __init__(self, *, on_cell: Callable[[str, str], None],
                 on_bar: Callable[[str], None] | None = None) -> None:
        from plotly.subplots import make_subplots

        self._on_cell, self._on_bar = on_cell, on_bar
        self.curve_fig = new_figure("Accuracy vs number of labels", height=340,
                                    xaxis_title="labels", yaxis_title="accuracy")
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
                                    margin={"t": 64})
        self.class_fig.add_bar(
            x=[], y=[], marker={"color": COLORS["you"], "line": {"width": 0}}, name="accuracy",
            hovertemplate="%{x}: %{y:.1%} (%{customdata} items)<extra></extra>")
        self.class_fig.update_yaxes(range=[0, 1], tickformat=".0%")
        self.class_fig.update_layout(showlegend=False)

        self.confusion_fig = new_figure("Confusion matrix (click a cell)",
                                        height=confusion_height(10),
                                        xaxis_title="predicted class",
                                        yaxis_title="true class", margin={"r": 8})
        self.confusion_fig.add_heatmap(
            z=[[0]], x=[""], y=[""], colorscale=CONFUSION_SCALE, texttemplate="%{z}",
            showscale=False, hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>")
        self.confusion_fig.update_yaxes(autorange="reversed")
        # the figures' own click callbacks (plotly's API) call the same handlers as the page
        self.confusion_fig.data[0].on_click(
            lambda _t, points, _s: self._clicked("confusion", *_first(points)))
        self.class_fig.data[0].on_click(
            lambda _t, points, _s: self._clicked("classes", *_first(points)))

        self.charts = TrainerCharts(ROWS, on_click=self._clicked, min_width=FIG_MIN_WIDTH)
        self.charts.add_class("dfw-tr-charts")
        self.charts.set_hidden("epoch", True)  # no empty panel: shown with the first epoch
        for attr in FIG_NAMES:
            self._send(attr)

    def _clicked(self, chart: str, x: Any, y: Any) -> None:
        """A click on chart ``chart`` at (x, y): a confusion cell or a per-class bar."""
        if x is None:
            return
        if chart == "confusion":
            self._on_cell(str(y), str(x))
        elif chart == "classes" and self._on_bar is not None:
            self._on_bar(str(x))

    def _send(self, attr: str) -> int:
        """Send figure ``attr`` (e.g. "curve_fig") to the page; returns its version."""
        return self.charts.show(FIG_NAMES[attr], getattr(self, attr))

    @property
    def figures(self) -> tuple[Any, ...]:
        """(curve_fig, epoch_fig, class_fig, confusion_fig)."""
        return tuple(getattr(self, name) for name in FIG_NAMES)

    def show_epochs(self) -> None:
        """Show the per-epoch chart (a fine-tuning run reported an epoch)."""
        self.charts.set_hidden("epoch", False)

    @property
    def epochs_shown(self) -> bool:
        """True once the per-epoch chart is shown."""
        return "epoch" not in self.charts.hidden

    # ------------------------------------------------------------------ curve
    def draw_curve(self, rep: dict[str, Any]) -> None:
        """Draw ``session.training.curve_report(target=...)``."""
        pts, fig = rep["points"], self.curve_fig
        base_x, base_y = rep["baseline"]
        ft_x, ft_y = rep["finetune"]
        stop = rep["stop"]
        with self.charts.lock:
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
            fig.data[1].x, fig.data[1].y = list(base_x), list(base_y)
            fig.data[2].x, fig.data[2].y = list(stop["fit_x"]), list(stop["fit_y"])
            fig.data[3].x, fig.data[3].y = list(ft_x), list(ft_y)
            fig.data[4].x = [0, rep["x_max"]]
            fig.data[4].y = [rep["target"], rep["target"]]
            fig.data[4].name = f"target ({rep['target']:.0%})"
            self._send("curve_fig")

    # ------------------------------------------------------------------ epochs
    def clear_epochs(self) -> None:
        """Empty the per-epoch figure (a new fine-tuning run starts)."""
        with self.charts.lock:
            for trace in self.epoch_fig.data:
                trace.x, trace.y = [], []
            self._send("epoch_fig")

    def add_epoch(self, row: dict[str, Any]) -> None:
        """Append one FineTuner history row (epoch 0, the probe start, clears first)."""
        with self.charts.lock:
            if int(row["epoch"]) == 0:
                self.clear_epochs()
            for trace, (_n, key, _c, _d, _s) in zip(self.epoch_fig.data, EPOCH_TRACES):
                value = row.get(key)
                if value is None or not math.isfinite(float(value)):
                    continue
                trace.x = tuple(trace.x or ()) + (row["epoch"],)
                trace.y = tuple(trace.y or ()) + (float(value),)
            self._send("epoch_fig")

    # ------------------------------------------------------------------ classes
    def draw_confusion(self, conf: dict[str, Any]) -> None:
        """Draw ``session.training.confusion()``: per-class bars and the matrix."""
        per, classes = conf["per_class"], conf["classes"]
        with self.charts.lock:
            bar = self.class_fig.data[0]
            bar.x = per["class"].tolist()
            bar.y = per["accuracy"].tolist()
            bar.customdata = per["n"].tolist()
            self.class_fig.layout.title.text = (  # two lines: fits a 300 px figure
                f"Per-class accuracy (click a bar)<br><span style='font-size:12px'>on "
                f"{conf['n']:,} held-out items with {html.escape(str(conf['kind']))}</span>")
            heat = self.confusion_fig.data[0]
            heat.z = conf["matrix"].tolist()
            heat.x = list(classes)
            heat.y = list(classes)
            # short names on the ticks (full names on hover): wider cells in a narrow pane
            ticks = {"tickmode": "array", "tickvals": list(classes),
                     "ticktext": short_names(classes)}
            self.confusion_fig.update_xaxes(**ticks)
            self.confusion_fig.update_yaxes(**ticks)
            self.confusion_fig.layout.height = confusion_height(len(classes))
            self.class_fig.update_xaxes(tickmode="array", tickvals=bar.x,
                                        ticktext=short_names(bar.x))
            self._send("class_fig")
            self._send("confusion_fig")


def confusion_height(n_classes: int) -> int:
    """px height of the confusion matrix figure: about 30 px per class row plus the
    title, tick names and axis titles (300 to 640)."""
    return int(min(640, max(300, 130 + 30 * int(n_classes))))


def _first(points: Any) -> tuple[Any, Any]:
    """(x, y) of the first clicked point of a plotly ``Points`` ((None, None) if none)."""
    xs, ys = list(points.xs or []), list(points.ys or [])
    return (xs[0], ys[0]) if xs else (None, None)


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
    spread = ("" if hi_text == f"{stop['low']:,.0f}"  # a range of one value says nothing
              else f" (80% range {stop['low']:,.0f}-{hi_text})")
    return (f"<b>When to stop:</b> about <b>{stop['estimate']:,.0f}</b> labels in total for "
            f"{target:.0%}{spread}, i.e. about {stop['more']:,} more; {plateau}.")

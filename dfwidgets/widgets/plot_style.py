"""Plotly styling shared by the widgets: one look (transparent backgrounds so the
JupyterLab theme shows through, theme colours for text and grid lines) and trace colours.
Figures are plain ``go.Figure`` objects; :mod:`.trainer_charts` draws them on the page.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

__all__ = ["COLORS", "new_figure", "plot_css", "short_names", "style_figure"]

#: trace colours: your labels, simulated random sampling, the fitted curve, fine-tuned
#: runs, the target line, loss and accuracy per epoch
COLORS = {"you": "#1f77b4", "random": "#7f7f7f", "fit": "#2ca02c", "finetune": "#d62728",
          "target": "#ff7f0e", "loss": "#9467bd", "accuracy": "#17becf"}

GRID = "rgba(128,128,128,0.25)"
ZERO_LINE = "rgba(128,128,128,0.4)"


def plot_css(root: str) -> str:
    """CSS (no ``<style>`` tag) that lets plots under ``.{root}`` follow the JupyterLab
    theme: transparent backgrounds, theme font colour for ticks, titles and legends."""
    scope = f".{root} .js-plotly-plot .plotly"
    return (
        f"{scope} .main-svg {{ background: transparent !important; }}\n"
        f"{scope} :is(.xtick, .ytick, .y2tick) text,\n"
        f"{scope} :is(.xtitle, .ytitle, .y2title, .gtitle, .legendtext) {{\n"
        "  fill: var(--jp-ui-font-color1) !important; }\n"
        f"{scope} .gridlayer path,\n"
        f"{scope} .zerolinelayer path {{ stroke: var(--jp-border-color2) !important; }}\n"
        f"{scope} .legend .bg {{ fill: transparent !important; }}\n"
    )


def style_figure(fig: Any, title: str, *, height: int = 300, **layout: Any) -> Any:
    """Apply the shared look to ``fig`` (title, height, transparent backgrounds, readable
    fonts, a legend below); extra ``layout`` keys go to ``update_layout`` (``margin``: the
    sides given replace the default ones). Returns ``fig``."""
    margin = {"l": 55, "r": 20, "t": 40, "b": 45} | layout.pop("margin", {})
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.02},
        height=height, margin=margin,
        paper_bgcolor="rgba(0,0,0,0)", plot_bgcolor="rgba(0,0,0,0)",
        font={"size": 12, "color": "#888"},
        # at the figure's bottom edge (container coordinates): plotly then stacks the tick
        # labels, the x-axis title and the legend instead of drawing one over the other
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom", "x": 0},
        **layout,
    )
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=ZERO_LINE)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=ZERO_LINE)
    return fig


def new_figure(title: str, *, height: int = 300, base: Any = None, **layout: Any) -> Any:
    """A styled plotly ``go.Figure`` (from ``base``, e.g. ``make_subplots(...)``); see
    :func:`style_figure`. Shown on the page by :class:`.trainer_charts.TrainerCharts`."""
    import plotly.graph_objects as go

    fig = base if base is not None else go.Figure()
    return style_figure(fig, title, height=height, **layout)


def short_names(names: Sequence[str], *, max_len: int = 8) -> list[str]:
    """Axis-tick names of at most about ``max_len`` characters, one per name, all distinct
    (hover texts keep the full names): a name that fits stays; else its first word
    ("T-shirt/top" -> "T-shirt", "Ankle boot" -> "Ankle"); else its start and "…"; a
    name whose short form would repeat another's stays whole."""
    def short(name: str) -> str:
        if len(name) <= max_len:
            return name
        word = re.split(r"[\s/_,;]+", name.strip())[0]
        return word if 3 <= len(word) <= max_len else name[:max_len - 1].rstrip() + "…"

    full = [str(n) for n in names]
    out = [short(n) for n in full]
    seen: dict[str, int] = {}
    for s in out:
        seen[s] = seen.get(s, 0) + 1
    return [s if seen[s] == 1 else n for s, n in zip(out, full)]

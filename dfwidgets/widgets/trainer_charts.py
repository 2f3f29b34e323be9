"""TrainerCharts: the Trainer's plotly charts in ONE anywidget (js/src/charts.js).

Python builds each figure with plotly (``go.Figure``); :meth:`TrainerCharts.show` puts its
JSON and a new version number in the chart's synced trait. The page draws it with
``Plotly.react`` (plotly.js's cartesian partial bundle, inside our ES module, evaluated on
the first render) and marks the chart's element ``data-version`` once drawn. The latest
drawing lives in the model's state, so a view made later (or a page that reloads) starts
from it; nothing depends on one-shot messages reaching the page.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from typing import Any

import anywidget
import traitlets as t

from ._common import bundle

__all__ = ["TrainerCharts"]

log = logging.getLogger(__name__)


class TrainerCharts(anywidget.AnyWidget):
    """Named plotly charts laid out in rows that wrap below ``min_width`` px per chart.

    Args:
        rows: chart names per row, e.g. ``[["curve", "epoch"], ["classes", "confusion"]]``.
        on_click: ``on_click(chart, x, y)`` when a point (a bar, a heatmap cell) is clicked
            on the page (x, y: the point's axis values, category names on category axes).
        min_width: px below which a row's charts wrap onto the next line.

    Attributes: ``versions`` (chart -> version of the last drawing sent), ``drawn`` (chart
    -> last version the page said it drew), ``errors`` (chart -> the page's last drawing
    error, if any).
    """

    _esm = bundle("charts")

    rows = t.List(t.List(t.Unicode())).tag(sync=True)
    """Chart names per row."""
    min_width = t.Int(300).tag(sync=True)
    """px: a chart's flex basis (charts wrap below it)."""
    hidden = t.List(t.Unicode()).tag(sync=True)
    """Charts not shown now."""
    curve = t.Dict().tag(sync=True)
    epoch = t.Dict().tag(sync=True)
    classes = t.Dict().tag(sync=True)
    confusion = t.Dict().tag(sync=True)
    # one trait per chart: {"figure": {"data": [...], "layout": {...}}, "version": int}

    NAMES = ("curve", "epoch", "classes", "confusion")

    def __init__(self, rows: Sequence[Sequence[str]], *,
                 on_click: Callable[[str, Any, Any], None] | None = None,
                 min_width: int = 300) -> None:
        unknown = sorted({n for row in rows for n in row} - set(self.NAMES))
        if unknown:
            raise ValueError(f"unknown chart(s) {unknown}: choose among {self.NAMES}.")
        super().__init__(rows=[list(r) for r in rows], min_width=int(min_width))
        self._on_click = on_click
        self._lock = threading.RLock()
        self.versions: dict[str, int] = {}
        self.drawn: dict[str, int] = {}
        self.errors: dict[str, str] = {}
        self.on_msg(self._on_page_msg)

    @property
    def lock(self) -> threading.RLock:
        """Held while a figure is sent: hold it around building one too (worker threads)."""
        return self._lock

    def show(self, name: str, fig: Any) -> int:
        """Send plotly figure ``fig`` as chart ``name``; returns its new version."""
        if name not in self.NAMES:
            raise ValueError(f"unknown chart {name!r}: choose among {self.NAMES}.")
        figure = json.loads(fig.to_json())  # plotly's encoder: numpy, NaN -> null
        with self._lock:
            version = self.versions.get(name, 0) + 1
            self.versions[name] = version
            setattr(self, name, {"figure": figure, "version": version})
        return version

    def figure(self, name: str) -> dict[str, Any]:
        """The JSON figure (data, layout) of chart ``name`` as sent ({} before any)."""
        return dict(getattr(self, name).get("figure", {}))

    def set_hidden(self, name: str, hidden: bool) -> None:
        """Hide or show chart ``name``."""
        with self._lock:
            rest = [n for n in self.hidden if n != name]
            self.hidden = rest + [name] if hidden else rest

    def _on_page_msg(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        kind = content.get("type")
        chart = str(content.get("chart", ""))
        if kind == "click" and self._on_click is not None:
            self._on_click(chart, content.get("x"), content.get("y"))
        elif kind == "drawn":
            self.drawn[chart] = int(content.get("version", 0))
            self.errors.pop(chart, None)
        elif kind == "error":
            self.errors[chart] = str(content.get("message", ""))
            log.warning("chart %s (version %s) was not drawn on the page: %s", chart,
                        content.get("version"), self.errors[chart])

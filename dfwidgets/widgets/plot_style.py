"""Plotly styling shared by the widgets: one look (transparent backgrounds so the
JupyterLab theme shows through, theme colours for text and grid lines), trace colours,
and plotly ``FigureWidget``s that reach the page reliably.

Two ways an edit never reached the page, both handled here:

- ipywidgets' ``set_state`` (a page message, on the kernel's thread) holds the figure's
  trait notifications, and an edit made from another thread meanwhile was merged into
  plotly's ``None`` reset: every figure from :func:`new_figure` has a lock that
  ``set_state`` takes and :func:`editing` takes too.
- anywidget (0.11) drops every message to a model whose ES module (plotly's 5 MB bundle,
  loaded once per figure) took more than 2 s to load ("[anywidget] Failed to initialize
  model"): on a busy machine the page then shows only the state the figure's comm was
  opened with. So the comm opens only once the figure has its traces and layout
  (:func:`sync_state`), and a figure whose page shows it but has not confirmed an edit
  for ``PAGE_LAG`` s is :func:`page_behind`: the owner replaces it (:func:`renew`).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COLORS",
    "PageState",
    "edit_pending",
    "editing",
    "new_figure",
    "page_behind",
    "page_state",
    "plot_css",
    "renew",
    "style_figure",
    "sync_state",
    "take_turns",
]

log = logging.getLogger(__name__)
EDIT_WAIT = 10.0  #: s a worker thread waits for its turn before editing anyway
PAGE_LAG = 10.0  #: s without the page confirming an edit before a figure is renewed
_HOLD = threading.local()  # .on: widgets made now open their comm only in sync_state

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
        legend={"orientation": "h", "y": -0.25, "x": 0},
        **layout,
    )
    fig.update_xaxes(gridcolor=GRID, zerolinecolor=ZERO_LINE)
    fig.update_yaxes(gridcolor=GRID, zerolinecolor=ZERO_LINE)
    return fig


@dataclass
class PageState:
    """What the kernel knows of a figure's page model: ``turn`` (the :func:`take_turns`
    lock), ``seen`` (the page sent something: a view exists), ``answers`` (it confirmed an
    edit), ``unconfirmed`` (monotonic time of the oldest edit not yet confirmed, or None),
    ``opened`` (its comm was opened by :func:`sync_state`)."""

    turn: threading.RLock | None = None
    seen: bool = False
    answers: bool = False
    unconfirmed: float | None = None
    opened: bool = False


def page_state(fig: Any) -> PageState:
    """``fig``'s :class:`PageState` (a figure not made by :func:`new_figure`: a fresh,
    untracked one)."""
    state = getattr(fig, "dfw_page", None)
    return state if state is not None else PageState()


def edit_pending(fig: Any) -> bool:
    """True while plotly waits for the page to acknowledge an edit it sent (plotly keeps
    this in two private flags; it has no public API for it)."""
    return bool(fig._trace_edit_in_process or fig._layout_edit_in_process)


_FIGURE_CLASS: list[type] = []


def _figure_class() -> type:
    """``FigureWidget`` whose comm (the page's model) does not open while ``_HOLD.on``."""
    if not _FIGURE_CLASS:
        import plotly.graph_objects as go

        class Figure(go.FigureWidget):
            dfw_page: PageState | None = None  # declared: plotly refuses unknown attributes

            def open(self) -> None:
                if not getattr(_HOLD, "on", False):
                    super().open()

        _FIGURE_CLASS.append(Figure)
    return _FIGURE_CLASS[0]


def _unopened(base: Any = None) -> Any:
    _HOLD.on = True
    try:
        fig = _figure_class()(base)
        fig.dfw_page = PageState()
        return fig
    finally:
        _HOLD.on = False


def take_turns(fig: Any) -> threading.RLock:
    """A lock that ``fig.set_state`` (the page's messages, on the kernel's thread) holds.

    ipywidgets' set_state holds trait notifications on the *instance* (traitlets swaps
    ``notify_change``), and plotly sends each edit as ``_py2js_update = msg`` then ``None``:
    an edit made from another thread meanwhile is merged into the held ``None`` and never
    reaches the page. Edits from worker threads take this lock too (:func:`editing`)."""
    lock = threading.RLock()
    plain = fig.set_state

    def set_state(sync_data: dict) -> None:
        with lock:
            plain(sync_data)

    fig.set_state = set_state
    page_state(fig).turn = lock
    return lock


def _watch_page(fig: Any) -> None:
    """Note when the page sends anything (a view exists: it renders, resizes, answers)."""
    def seen(_change: Any) -> None:
        page_state(fig).seen = True

    fig.observe(seen, names=["_js2py_layoutDelta", "_js2py_traceDeltas"])


def new_figure(title: str, *, height: int = 300, base: Any = None, **layout: Any) -> Any:
    """A styled plotly ``FigureWidget`` (from ``base``, e.g. ``make_subplots(...)``) with
    its :func:`take_turns` lock. Its comm opens at the first :func:`sync_state`: add the
    traces first, so the page's model is born with them."""
    fig = style_figure(_unopened(base), title, height=height, **layout)
    take_turns(fig)
    _watch_page(fig)
    return fig


def renew(fig: Any) -> Any:
    """A new, opened figure with ``fig``'s traces, layout and lock behaviour (a new
    page model, born with the data). Callbacks (``on_click``) are not copied: register
    them again; put the new figure in ``fig``'s place, then close ``fig`` (closing first
    leaves its view sending on a closed comm)."""
    log.info("the page stopped taking this figure's edits: renewing it")
    new = _unopened(fig)
    take_turns(new)
    _watch_page(new)
    sync_state(new)
    return new


@contextlib.contextmanager
def editing(*figs: Any) -> Iterator[list[Any]]:
    """Edit ``figs`` when the kernel is not applying a page message to them (see
    :func:`take_turns`); after ``EDIT_WAIT`` s the edit goes ahead anyway (logged).
    Yields the list of those whose page was behind before this edit (:func:`page_behind`:
    :func:`renew` them after the block)."""
    behind = []
    with contextlib.ExitStack() as stack:
        for f in figs:
            if page_behind(f):
                behind.append(f)
            elif not edit_pending(f):
                state = page_state(f)
                if state.unconfirmed is not None:
                    state.answers = True  # it confirmed an edit: its model takes messages
                state.unconfirmed = None  # every edit so far confirmed
            lock = page_state(f).turn
            if lock is None:
                continue
            if lock.acquire(timeout=EDIT_WAIT):
                stack.callback(lock.release)
            else:
                log.warning("editing a figure while the page's message is handled")
        yield behind


def page_behind(fig: Any) -> bool:
    """True when a page shows ``fig`` but has never confirmed an edit, the first one sent
    over ``PAGE_LAG`` s ago (its model takes no messages: see the module docstring; a model
    that confirmed one edit is past anywidget's start-up and keeps working, only slower)."""
    state = page_state(fig)
    since = state.unconfirmed
    return bool(state.seen and not state.answers
                and edit_pending(fig) and since is not None and time.monotonic() - since > PAGE_LAG)


def sync_state(fig: Any) -> None:
    """Copy a FigureWidget's data and layout into its synced state (and open its comm
    the first time: the page's model is born with them).

    plotly sends later edits (add_trace, batch_update) as one-shot messages that a view
    created afterwards, or a frontend model still loading, never sees; a FigureWidget
    nested in a container is not refreshed by ``_repr_mimebundle_`` either. Keeping
    ``_widget_data`` / ``_widget_layout`` current makes every view start from the truth.
    """
    fig._widget_data = copy.deepcopy(fig._data)
    fig._widget_layout = copy.deepcopy(fig._layout_obj._props)
    state = page_state(fig)
    if fig.comm is None and not state.opened:
        fig.open()
        state.opened = True
    if edit_pending(fig) and state.unconfirmed is None:
        state.unconfirmed = time.monotonic()

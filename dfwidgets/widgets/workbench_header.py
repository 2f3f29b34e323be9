"""The Workbench's header and look: the status line as HTML (from ``session.status()``),
the import offer's texts, a throttle for refreshes coming from any thread, and the CSS.

Pure functions over plain dicts (no Session, no widget), so they are easy to test.
"""

from __future__ import annotations

import html
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["WORKBENCH_CSS", "Throttle", "header_html", "import_offer_text", "import_result_text"]

#: CSS of the Workbench (ipywidgets containers, classes added with ``add_class``). Colours
#: are JupyterLab's CSS variables (light and dark), with fallbacks for other frontends.
WORKBENCH_CSS = """<style>
.dfw-workbench { --wb-bg: var(--jp-layout-color0, #fff); --wb-bg2: var(--jp-layout-color1, #fafafa);
  --wb-bg3: var(--jp-layout-color2, #eee); --wb-fg: var(--jp-ui-font-color1, rgba(0,0,0,.87));
  --wb-fg2: var(--jp-ui-font-color2, rgba(0,0,0,.54)); --wb-border: var(--jp-border-color2, #e0e0e0);
  --wb-accent: var(--jp-brand-color1, #1976d2); --wb-error: var(--jp-error-color1, #d32f2f);
  --wb-ok: var(--jp-success-color1, #388e3c);
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); color: var(--wb-fg);
  font-size: var(--jp-ui-font-size1, 13px); gap: 8px; width: 100%; box-sizing: border-box; }
.dfw-workbench .dfw-wb-style { display: none; }
.dfw-wb-top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 12px;
  padding: 8px 12px; background: var(--wb-bg2); border: 1px solid var(--wb-border);
  border-radius: 6px; }
.dfw-wb-top .dfw-wb-header { flex: 1 1 420px; min-width: 0; margin: 0; }
.dfw-wb-head { display: flex; flex-direction: column; gap: 4px; line-height: 1.45; }
.dfw-wb-facts { display: flex; flex-wrap: wrap; align-items: baseline; gap: 2px 18px;
  font-size: 14px; }
.dfw-wb-facts b { font-weight: 600; font-variant-numeric: tabular-nums; }
.dfw-wb-muted { color: var(--wb-fg2); }
.dfw-wb-acc b { font-size: 15px; }
.dfw-wb-fitting::before { content: ""; display: inline-block; width: 8px; height: 8px;
  margin-right: 6px; border-radius: 50%; background: var(--wb-accent);
  animation: dfw-wb-pulse 1s ease-in-out infinite alternate; }
@keyframes dfw-wb-pulse { from { opacity: .25; } to { opacity: 1; } }
.dfw-wb-error { color: var(--wb-error); font-weight: 600; }
.dfw-wb-next { font-size: 13px; padding-left: 8px; border-left: 3px solid var(--wb-accent); }
.dfw-wb-next .dfw-wb-k { font-weight: 600; color: var(--wb-accent); margin-right: 4px; }
.dfw-wb-top > .dfw-wb-offer { margin: 0; flex: none; }
.dfw-wb-top .jupyter-button.dfw-wb-import { width: auto; height: 32px; padding: 0 16px;
  font-size: 13px; margin: 0; flex: none; }
.dfw-wb-top > .dfw-wb-msgrow { flex: 1 1 100%; align-items: center; gap: 10px; margin: 0;
  padding-top: 6px; border-top: 1px solid var(--wb-border); }
.dfw-wb-msgrow .dfw-wb-msg { margin: 0; }
.dfw-wb-msgrow .widget-html-content { line-height: 1.45; }
.dfw-wb-msgrow .jupyter-button.dfw-wb-undo { width: auto; padding: 0 12px; margin: 0; }
.dfw-wb-ok { color: var(--wb-ok); font-weight: 600; }
.dfw-wb-body { display: flex; flex-wrap: wrap; align-items: stretch; gap: 8px; width: 100%;
  container-type: inline-size; }
.dfw-wb-body > .dfw-wb-map { flex: 3 1 0; min-width: min(480px, 100%); max-width: 100%; margin: 0; }
.dfw-wb-body > .dfw-wb-side { flex: 2 1 0; min-width: min(360px, 100%); max-width: 100%; margin: 0; }
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .widget-tab-contents { padding: 0;
  background: var(--wb-bg); border-color: var(--wb-border); border-radius: 0 6px 6px 6px;
  flex: 1 1 auto; contain: size; overflow-y: auto; overflow-x: hidden; }
/* narrow (the tabs wrap under the map): the pane takes its content's height */
@container (max-width: 967.98px) {
  .dfw-workbench .dfw-wb-side.jupyter-widget-tab { min-height: 0 !important; }
  .dfw-workbench .dfw-wb-side.jupyter-widget-tab > .widget-tab-contents { contain: none; }
}
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .lm-TabBar { min-height: 34px; }
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .lm-TabBar .lm-TabBar-tab {
  flex: 0 1 120px; min-height: 34px; line-height: 32px; padding: 0 14px;
  font-family: var(--jp-ui-font-family, system-ui, sans-serif); font-size: 13px;
  background: var(--wb-bg2); color: var(--wb-fg2); border-color: var(--wb-border); }
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .lm-TabBar .lm-TabBar-tab:first-child {
  border-radius: 6px 0 0 0; }
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .lm-TabBar .lm-TabBar-tab:last-child {
  border-radius: 0 6px 0 0; }
.dfw-workbench .dfw-wb-side.jupyter-widget-tab > .lm-TabBar .lm-TabBar-tab.lm-mod-current {
  background: var(--wb-bg); color: var(--wb-fg); font-weight: 600; min-height: 35px; }
.dfw-workbench .dfw-wb-side .dfw-wb-pane { margin: 0; border: none; border-radius: 0;
  flex-shrink: 0; }
.dfw-workbench .dfw-wb-pane .dfw-root { border-radius: 0; }
.dfw-workbench .dfw-wb-pane .dfw-root:not(:focus) { border-color: transparent; }
.dfw-workbench .dfw-labeler { max-width: none; }
.dfw-workbench .dfw-lab-body { flex-wrap: wrap; }
.dfw-workbench .dfw-trainer .widget-hbox { flex-wrap: wrap; }
.dfw-workbench .dfw-trainer > * { flex-shrink: 0; }
.dfw-workbench .dfw-trainer .widget-html-content { line-height: 1.45; }
.dfw-workbench .dfw-trainer .dfw-tr-title { display: none; }
</style>"""

_FIT_WORDS = {"not fitted yet": "no model yet"}


def _n(value: Any) -> str:
    return f"{int(value or 0):,}"


def accuracy_text(status: dict) -> str:
    """"84% (81%–87%)" from ``estimate``/``low``/``high`` (as the Labeler writes it), or
    "no model yet"."""
    est = status.get("estimate")
    if est is None:
        return "no model yet"
    low, high = status.get("low"), status.get("high")
    if low is None or high is None:
        return f"{est:.0%}"
    return f"{est:.0%} ({low:.0%}–{high:.0%})"


def header_html(status: dict) -> str:
    """The header as HTML from ``session.status()``: counts, estimated accuracy with its
    interval, the fitting state (a fit error in red), and the next step in words."""
    n_classes = int(status.get("n_classes") or 0)
    facts = [f"<span><b>{_n(status.get('n_items'))}</b> items</span>",
             f"<span><b>{_n(status.get('n_labeled'))}</b> labeled</span>",
             f"<span><b>{n_classes}</b> class{'es' if n_classes != 1 else ''}</span>"]
    if status.get("n_selected"):
        facts.append(f"<span><b>{_n(status['n_selected'])}</b> selected</span>")
    if status.get("n_issues") is not None:  # issue 19: open data issues
        facts.append(f"<span><b>{_n(status['n_issues'])}</b> open issues</span>")
    acc = accuracy_text(status)
    if status.get("estimate") is None:
        facts.append(f'<span class="dfw-wb-acc dfw-wb-muted">{acc}</span>')
    else:
        est, _, rest = acc.partition(" ")
        facts.append(f'<span class="dfw-wb-acc">estimated accuracy <b>{est}</b> '
                     f'<span class="dfw-wb-muted">{html.escape(rest)}</span></span>')
    facts.append(fit_html(status))
    next_step = str(status.get("next_step") or "").strip()
    lines = [f'<div class="dfw-wb-facts">{" ".join(f for f in facts if f)}</div>']
    if next_step:
        lines.append(f'<div class="dfw-wb-next"><span class="dfw-wb-k">Next:</span>'
                     f"{html.escape(next_step)}</div>")
    return f'<div class="dfw-wb-head">{"".join(lines)}</div>'


def fit_html(status: dict) -> str:
    """The fitting state: "fitting..." while a fit runs, the fit error in red, else what
    the last fit did (e.g. "linear probe on 40 labels (0.02 s)")."""
    error = status.get("fit_error")
    if error:
        return f'<span class="dfw-wb-error">The model fit failed: {html.escape(str(error))}</span>'
    if status.get("fitting"):
        return '<span class="dfw-wb-fitting dfw-wb-muted">fitting the model...</span>'
    text = str(status.get("fit_status") or "").strip()
    if not text or status.get("estimate") is None:
        return ""  # "no model yet" is said already; why is in the next step
    text = _FIT_WORDS.get(text, text)
    return f'<span class="dfw-wb-muted">model: {html.escape(text)}</span>'


def import_offer_text(n: int) -> str:
    """The import button's text for ``n`` folder labels."""
    return f"Import {n:,} label{'s' if n != 1 else ''} from the class sub-folders"


def import_result_text(result: dict) -> str:
    """One sentence from ``session.import_labels`` 's result: imported / skipped counts."""
    imported = int(result.get("imported") or 0)
    parts = [f"Imported {imported:,} label{'s' if imported != 1 else ''}"]
    classes = result.get("classes") or []
    if classes:
        parts[0] += f" ({len(classes)} classes)"
    skipped = []
    if result.get("skipped_labeled"):
        skipped.append(f"{int(result['skipped_labeled']):,} already labeled")
    if result.get("n_unreadable"):
        skipped.append(f"{int(result['n_unreadable']):,} unreadable")
    if result.get("n_unknown"):
        skipped.append(f"{int(result['n_unknown']):,} unknown")
    return parts[0] + (f"; skipped {', '.join(skipped)}" if skipped else "") + "."


class Throttle:
    """Call ``fn()`` at most once per ``interval`` seconds, on a timer thread: calls in
    between fold into one trailing call, so the last state is always shown."""

    def __init__(self, fn: Callable[[], None], *, interval: float = 0.3) -> None:
        self._fn = fn
        self._interval = float(interval)
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None  # pending
        self._running: threading.Timer | None = None  # the last one started
        self._last = 0.0
        self._closed = False

    def __call__(self, *_args: Any, **_kwargs: Any) -> None:
        """Ask for a call (arguments, e.g. an event's payload, are ignored)."""
        with self._lock:
            if self._closed or self._timer is not None:
                return
            delay = max(0.0, self._last + self._interval - time.monotonic())
            self._timer = threading.Timer(delay, self._run)
            self._timer.daemon = True
            self._timer.name = "dfw-workbench-refresh"
            self._running = self._timer
            self._timer.start()

    def _run(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
            if self._closed:
                return
        self._fn()

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until a pending (or running) call has finished."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                timer = self._timer or self._running
            if timer is None or timer is threading.current_thread() or not timer.is_alive():
                return
            timer.join(max(0.0, deadline - time.monotonic()))

    def close(self) -> None:
        """Drop a pending call; later calls do nothing."""
        with self._lock:
            self._closed = True
            timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()

"""RulesPanel: the Session's rules (weak supervision) as a list with bars, in ipywidgets.

Each row: a switch, the rule's name and class, bars for coverage, accuracy (on audit
items when there are any, else on hand labels) and conflicts, and Remove. Above: add a
region rule from the current selection, an examples rule for a class, a neighbours rule;
Undo; "Train with weak labels" (``session.fit(weak=...)``). Everything goes through
``session.rules``; user mistakes are shown as a message, never a traceback.
"""

from __future__ import annotations

import html
import logging
from typing import Any

import ipywidgets as W
import numpy as np
import pandas as pd

from .base import SessionView
from .workbench_header import Throttle

__all__ = ["RulesPanel"]

log = logging.getLogger(__name__)

RULES_CSS = """<style>
.dfw-rules{padding:8px 12px;box-sizing:border-box;gap:4px}
.dfw-rules .dfw-rl-stat{display:inline-block;white-space:nowrap;margin:2px 10px 2px 0;
 font-size:90%}
.dfw-rules .dfw-rl-bar{display:inline-block;width:44px;height:8px;margin:0 4px;
 background:var(--jp-layout-color3,#ddd);border-radius:4px;vertical-align:middle;overflow:hidden}
.dfw-rules .dfw-rl-bar>span{display:block;height:100%}
.dfw-rules .dfw-rl-cov>span{background:#4c78a8}.dfw-rules .dfw-rl-acc>span{background:#54a24b}
.dfw-rules .dfw-rl-con>span{background:#e45756}
.dfw-rules .dfw-rl-name{font-weight:600}.dfw-rules .dfw-rl-muted{opacity:.65;font-size:90%}
.dfw-rules .dfw-rl-error{color:var(--jp-error-color1,#c00)}
.dfw-rules .dfw-rl-ok{color:var(--jp-success-color1,#080)}
.dfw-rules .dfw-rl-list .widget-html-content,.dfw-rules .dfw-rl-text .widget-html-content{
 line-height:1.4;white-space:normal;overflow-wrap:anywhere}
.dfw-rules .dfw-rl-list .dfw-rl-error{margin-top:2px}
.dfw-rules .dfw-rl-row .widget-button{padding:0;margin-left:4px}
</style>"""
EVENTS = ("rules_changed", "labels_changed", "classes_changed", "selection_changed")


def _bar(kind: str, share: float | None, title: str, *, caption: str) -> str:
    """A captioned bar: "caption [====  ] 36%" that wraps as one piece."""
    width = 0 if share is None or not np.isfinite(share) else max(0.0, min(1.0, share)) * 100
    text = "n/a" if share is None or not np.isfinite(share) else f"{share:.0%}"
    return (f'<span class="dfw-rl-stat" title="{html.escape(title)}: {text}">'
            f'<span class="dfw-rl-muted">{caption}</span>'
            f'<span class="dfw-rl-bar dfw-rl-{kind}"><span style="width:{width:.0f}%"></span>'
            f'</span>{text}</span>')


def row_html(row: pd.Series) -> str:
    """One rule's line: name, class, kind, bars and status (all user text escaped)."""
    audit = int(row["n_audit"]) > 0
    acc = row["accuracy_audit"] if audit else row["accuracy_labeled"]
    where = f"on {int(row['n_audit'])} audit items" if audit else \
        f"on {int(row['n_labeled'])} hand labels"
    # a rule with no class of its own (neighbours: each hand label votes for its class)
    label = (" → <span class=\"dfw-rl-muted\">the class of the nearby hand labels</span>"
             if row["label"] is None or pd.isna(row["label"])
             else f" → {html.escape(str(row['label']))}")
    status = "" if row["status"] in ("ok", "off") else \
        f'<div class="dfw-rl-error">{html.escape(str(row["status"]))}</div>'
    name = html.escape(str(row["rule"])).replace("&gt;=", "≥")
    return (f'<span class="dfw-rl-name">{name}</span>{label} '
            f'<span class="dfw-rl-muted">({html.escape(str(row["kind"]))})</span><br>'
            + _bar("cov", row["coverage"], "share of items it votes on", caption="covers")
            + _bar("acc", acc, f"accuracy {where}", caption="right")
            + _bar("con", row["conflicts"], "share of its votes another rule contradicts",
                   caption="conflicts") + status)


class RulesPanel(SessionView, W.VBox):
    """The rules of ``session`` with coverage / accuracy / conflict bars; add a rule from
    the selection or the examples, switch, remove, undo, train with weak labels."""

    def __init__(self, session: Any) -> None:
        super().__init__()
        self.init_view(session)
        self.add_class("dfw-rules")
        self.message = W.HTML()
        self.class_box = W.Combobox(placeholder="class…", ensure_option=False,
                                    layout=W.Layout(width="150px"))
        self.region_button = W.Button(description="Region from selection", icon="object-group",
                                      tooltip="session.rules.add_region(session.selection, class)")
        self.examples_button = W.Button(description="Like its examples", icon="clone",
                                        tooltip="session.rules.add_examples(class, threshold)")
        self.threshold = W.FloatSlider(value=0.8, min=0.3, max=0.99, step=0.01,
                                       description="similar ≥", readout_format=".2f",
                                       layout=W.Layout(width="230px"))
        self.neighbours_button = W.Button(description="Neighbours (k=10)", icon="share-alt",
                                          tooltip="session.rules.add_neighbours(k=10)")
        self.undo_button = W.Button(description="Undo", icon="undo",
                                    tooltip="session.rules.undo()")
        self.weak_box = W.Checkbox(value=bool(session.rules.train_with_weak),
                                   description="Train with weak labels", indent=False)
        for button in (self.region_button, self.examples_button, self.neighbours_button,
                       self.undo_button):
            button.layout.width = "auto"  # the whole description, not "Region fro…"
            button.layout.flex = "0 0 auto"  # a narrow panel wraps the row, never squeezes it
        for part, css in ((self.class_box, "dfw-rl-class"), (self.region_button, "dfw-rl-region"),
                          (self.examples_button, "dfw-rl-examples"), (self.undo_button, "dfw-rl-undo"),
                          (self.weak_box, "dfw-rl-weak")):
            part.add_class(css)
        self.region_button.on_click(lambda _b: self.add_region())
        self.examples_button.on_click(lambda _b: self.add_examples())
        self.neighbours_button.on_click(lambda _b: self.add_neighbours())
        self.undo_button.on_click(lambda _b: self.undo())
        self.weak_box.observe(self._on_weak, names="value")
        self.selection_note = W.HTML()
        self.list_box = W.VBox()
        self.list_box.add_class("dfw-rl-list")
        self.weak_note = W.HTML()
        self.weak_note.add_class("dfw-rl-text")

        def wrap() -> W.Layout:
            return W.Layout(flex_flow="row wrap", align_items="center")

        self.children = [
            W.HTML(RULES_CSS),
            W.HBox([self.class_box, self.region_button, self.selection_note], layout=wrap()),
            W.HBox([self.examples_button, self.threshold], layout=wrap()),
            W.HBox([self.neighbours_button, self.undo_button, self.weak_box], layout=wrap()),
            self.message, self.list_box, self.weak_note]
        self._rows: dict[str, tuple[W.Checkbox, W.HTML, W.Button]] = {}
        self._refresh_soon = Throttle(self._on_event, interval=0.3)
        for event in EVENTS:
            self.listen(event, self._refresh_soon)
        self.refresh()

    # ------------------------------------------------------------------ actions
    def _class(self, label: str | None = None) -> str:
        """``label`` (default: the class box) if it is a class of the Session; else a
        ValueError pointing at the tabs where a class is added (not at the API)."""
        name = str(label or self.class_box.value or "").strip()
        if not name:
            raise ValueError("Type or pick a class name first.")
        classes = list(self.session.classes)
        if name not in classes:
            raise ValueError(f"Unknown class {name!r}; classes are {', '.join(classes) or 'none yet'}."
                             " Add it first in the Label tab ('+ class') or the Search tab"
                             " ('New class…'), then add the rule.")
        return name

    def add_region(self, label: str | None = None) -> str | None:
        """A region rule from ``session.selection`` voting ``label`` (default: the box)."""
        return self._act(lambda: self.session.rules.add_region(
            self.session.selection, self._class(label)), "Added")

    def add_examples(self, label: str | None = None, threshold: float | None = None) -> str | None:
        """An examples rule for ``label`` at ``threshold`` (default: the slider)."""
        return self._act(lambda: self.session.rules.add_examples(
            self._class(label), threshold=float(threshold or self.threshold.value)), "Added")

    def add_neighbours(self, k: int = 10) -> str | None:
        """A neighbours rule (the hand labels spread over the ``k``-nearest-neighbour graph)."""
        self.show_message("Adding a neighbours rule: the first one builds the pool's neighbour "
                          "graph (about 10 s per 60,000 images, once per pool)...")
        return self._act(lambda: self.session.rules.add_neighbours(k=k), "Added")

    def toggle(self, name: str, on: bool) -> None:
        """Switch rule ``name`` on or off."""
        self._act(lambda: self.session.rules.enable(name, on), "Switched " + ("on" if on else "off"),
                  name=name)

    def remove(self, name: str) -> None:
        """Remove rule ``name`` (Undo brings it back)."""
        self._act(lambda: self.session.rules.remove(name), "Removed", name=name)

    def undo(self) -> None:
        """Undo the last rule change."""
        done = self.run_safely(self.session.rules.undo, what="Undo")
        if done is not None:
            self.show_message("Undid the last rule change." if done else "Nothing to undo.",
                              kind="ok" if done else "info")

    def _act(self, fn: Any, verb: str, *, name: str | None = None) -> Any:
        done: list[Any] = []
        self.run_safely(lambda: done.append(fn()), what="The rule change")
        if done:
            self.show_message(f"{verb} {name or done[0]!r}.", kind="ok")
            self.refresh()
        return done[0] if done else None

    def _on_weak(self, change: dict) -> None:
        on = bool(change["new"])
        if on != self.session.rules.train_with_weak:
            self.run_safely(self.session.fit, background=True, weak=on, what="Training")

    # ------------------------------------------------------------------ drawing
    def wait(self, timeout: float = 5.0) -> None:
        """Wait until a pending refresh (after a Session event) has run."""
        self._refresh_soon.flush(timeout)

    def _on_event(self, *_args: Any) -> None:
        try:
            self.refresh()
        except Exception:
            log.exception("the rules panel could not refresh")

    def refresh(self) -> None:
        """Redraw the list and the selection count from the Session."""
        classes = [str(c) for c in self.session.classes]
        if list(self.class_box.options) != classes:
            self.class_box.options = classes
        n = len(self.session.selection)
        self.selection_note.value = (f'<span class="dfw-rl-muted" style="white-space:nowrap">'
                                     f'{n:,} selected</span>')
        self.region_button.disabled = n == 0
        self.weak_box.value = bool(self.session.rules.train_with_weak)
        summary = self.run_safely(self.session.rules.summary, what="The rule summary")
        if summary is None:
            return
        self.summary_ = summary
        rows = []
        for _, row in summary.iterrows():
            rows.append(self._row(row))
        self.list_box.children = rows or [W.HTML(
            '<span class="dfw-rl-muted">No rules yet: lasso a cluster on the map and add it '
            "as a region, or add an examples / neighbours rule.</span>")]
        self.weak_note.value = self._weak_text(summary)

    def _row(self, row: pd.Series) -> W.HBox:
        name = str(row["rule"])
        switch = W.Checkbox(value=bool(row["enabled"]), indent=False,
                            layout=W.Layout(width="24px", flex="0 0 auto"))
        switch.observe(lambda ch, n=name: self.toggle(n, bool(ch["new"])), names="value")
        # the text takes the room left and wraps; the switch and the bin keep their size
        text = W.HTML(row_html(row), layout=W.Layout(flex="1 1 0%", min_width="0",
                                                     margin="2px 0"))
        remove = W.Button(icon="trash", tooltip=f"Remove {name}",
                          layout=W.Layout(width="32px", flex="0 0 auto"))
        remove.on_click(lambda _b, n=name: self.remove(n))
        self._rows[name] = (switch, text, remove)
        box = W.HBox([switch, text, remove], layout=W.Layout(width="100%",
                                                             align_items="flex-start"))
        box.add_class("dfw-rl-row")
        return box

    def _weak_text(self, summary: pd.DataFrame) -> str:
        if not len(summary) or not summary["enabled"].any() or len(self.session.classes) < 2:
            return ""
        try:
            _, abstain = self.session.weak_labels(method="majority")
        except Exception as exc:  # noqa: BLE001 - shown, not raised
            return f'<span class="dfw-rl-error">{html.escape(str(exc))}</span>'
        covered = int((~abstain).sum())
        return (f'<span class="dfw-rl-muted">Rules cover {covered:,} of {len(abstain):,} '
                "items (audit items never get weak labels).</span>")

    @property
    def rows(self) -> list[str]:
        """Rule names in the order shown."""
        return [str(r) for r in getattr(self, "summary_", pd.DataFrame(columns=["rule"]))["rule"]]

    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` above the list ("info", "ok" or "error")."""
        cls = {"ok": "dfw-rl-ok", "error": "dfw-rl-error"}.get(kind, "dfw-rl-muted")
        self.message.value = f'<span class="{cls}">{html.escape(str(text))}</span>' if text else ""

    def close(self) -> None:
        """Stop following the Session and close the parts."""
        self.unlisten_all()
        self._refresh_soon.close()
        for parts in self._rows.values():
            for part in parts:
                part.close()
        W.VBox.close(self)

"""The Labeler's review mode over the data-issue report (``session.find_issues()``):
duplicate groups shown side by side with the one to keep, outliers with their nearest
neighbours, and the actions exclude, keep this one, relabel (issue 19).

The report's open entries are published as ``issue_entries`` (one per duplicate group or
outlier, a page at a time); the page answers with ``{"type": "issue_action", "action":
"exclude" | "keep" | "relabel" | "skip", "index": i, "key": entry key, "label": name}``.
Exclusions are written with source "review" (undoable with ``session.undo_exclude()``).
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import traitlets as t

__all__ = ["DataIssueReview", "issue_entries"]

log = logging.getLogger(__name__)

PAGE = 20  # entries published at a time
NEIGHBOURS = 5  # nearest neighbours shown with an outlier
ACTIONS = ("exclude", "keep", "relabel", "skip")


def issue_entries(report: pd.DataFrame | None, *, neighbours: Any = None,
                  skipped: set[str] | None = None, limit: int = PAGE) -> list[dict]:
    """Open report rows -> entries for the page, clearest first: a duplicate group
    {key, kind, items (the one to keep first), keep, score, suggestion} or an outlier
    {key, kind, items [i], neighbours [j...], score, suggestion}. ``neighbours(i)`` ->
    nearest items of ``i``; entries whose key is in ``skipped`` are left out."""
    if report is None or not len(report):
        return []
    skipped = skipped or set()
    out: list[dict] = []
    dup = report[report["kind"].isin(["exact_duplicate", "near_duplicate"])]
    for (kind, group), rows in dup.groupby(["kind", "group"], sort=False):
        if len(rows) < 2:
            continue
        keep_rows = rows[rows["suggestion"] == "keep"]
        keep = int(keep_rows["index"].iloc[0]) if len(keep_rows) else int(rows["index"].iloc[0])
        items = [keep] + [int(i) for i in rows["index"] if int(i) != keep]
        out.append({"key": f"{kind}:{int(group)}", "kind": str(kind), "items": items,
                    "keep": keep, "score": float(rows["score"].max()),
                    "suggestion": f"keep {keep}, exclude {len(items) - 1} "
                                  f"cop{'y' if len(items) == 2 else 'ies'}"})
    for row in report[report["kind"] == "outlier"].itertuples(index=False):
        i = int(row.index)
        near = [] if neighbours is None else [int(j) for j in neighbours(i)]
        out.append({"key": f"outlier:{i}", "kind": "outlier", "items": [i], "keep": None,
                    "neighbours": near, "score": float(row.score),
                    "suggestion": str(row.suggestion)})
    out = [e for e in out if e["key"] not in skipped]
    out.sort(key=lambda e: (e["kind"] == "outlier", -e["score"]))
    return out[:limit]


class DataIssueReview(t.HasTraits):
    """Mixin of :class:`~dfwidgets.widgets.labeler.Labeler`: review mode walks the report.

    Uses the Labeler's ``session``, ``listen``, ``_say``, ``busy`` and ``mode``.
    """

    issue_entries = t.List(t.Dict()).tag(sync=True)
    """Open duplicate groups and outliers of the report (a page), see :func:`issue_entries`."""
    issue_total = t.Int(0).tag(sync=True)
    """Open duplicate groups and outliers in the whole report (-1 before a search)."""

    def _init_issue_review(self) -> None:
        self._issue_skipped: set[str] = set()
        self.listen("issues_changed", lambda *a, **k: self._sync_issue_entries())
        self._sync_issue_entries()

    def _start_issue_review(self) -> None:
        """Review mode opened: start a background search if none ran yet, else show it."""
        issues = self.session.issues
        if issues.report_ is None and issues.status_.get("state") not in ("running", "failed"):
            self.session.find_issues(background=True)
        self._sync_issue_entries()

    def _sync_issue_entries(self) -> None:
        """Publish the open entries of the report (or the search's state)."""
        try:
            issues = self.session.issues
            report = issues.open_issues()
            state = issues.status_.get("state")
            if state == "failed":
                self._say(f"The data-issue search failed ({issues.status_.get('error')}); "
                          "see the log.", level="error")
            if report is None:
                self.issue_entries, self.issue_total = [], -1
                return
            every = issue_entries(report, neighbours=self._issue_neighbours,
                                  skipped=self._issue_skipped, limit=10**9)
            self.issue_total = len(every)
            for e in every[:PAGE]:
                self._describe(e["items"] + e.get("neighbours", []))
            self.issue_entries = every[:PAGE]
        except Exception as exc:  # never break the Session's event thread
            log.exception("could not show the data-issue report")
            self._say(f"Could not show the data-issue report: {exc}", level="error")

    def _issue_neighbours(self, index: int) -> list[int]:
        return [int(j) for j in self.session.issues.neighbours(index, k=NEIGHBOURS)]

    def _describe(self, items: list[int]) -> None:
        """Send the facts (id, guesses) of items the page lacks (it fetches their images)."""
        new = [int(i) for i in items if int(i) not in self._described]
        if new:
            self.send({"type": "items", "items": [self._facts(i) for i in new]})
            self._described.update(new)

    def _issue_action(self, content: dict) -> None:
        """An action on a report entry: exclude item, keep this one (exclude the rest of its
        group; an outlier: not an issue), relabel item, skip the entry."""
        action = content.get("action")
        key = str(content.get("key", ""))
        if action not in ACTIONS:
            raise ValueError(f"Unknown review action {action!r}; use one of {ACTIONS}.")
        entry = next((e for e in self.issue_entries if e["key"] == key), None)
        if entry is None:
            raise ValueError(f"No open data issue {key!r} (the report changed); refresh.")
        index = content.get("index")
        if action != "skip":
            if index is None or int(index) not in entry["items"]:
                raise ValueError(f"Item {index!r} is not part of {key!r}.")
            index = int(index)
        s = self.session
        if action == "skip":
            self._issue_skipped.add(key)
        elif action == "exclude":  # the report leaves excluded items out (undo: back)
            s.exclude([index], reason=entry["kind"], source="review")
        elif action == "keep":
            others = [i for i in entry["items"] if i != index]
            if others:  # a group of one is no issue: the report drops it
                s.exclude(others, reason=f"{entry['kind']} of {index}", source="review")
            else:  # an outlier kept: not an issue
                self._issue_skipped.add(key)
        else:
            label = content.get("label")
            if label not in list(self.classes):
                raise ValueError(f"Unknown class {label!r}; add it first with '+ class'.")
            s.label(np.asarray([index], dtype=np.int64), label, source="review")
            self._issue_skipped.add(key)
        self._say("")
        self._sync_issue_entries()

"""The Labeler's "Only the selection" mode: its queue restricted to the Session's selection.

A lasso on the map (or ``session.select(...)`` from anywhere) is ``session.selection``;
with ``restrict_to_selection`` on, the Labeler's queue asks
``session.next_batch(..., within=session.selection)`` and follows "selection_changed".
When nothing in the selection is left to label, an inline note says so.
"""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["SelectionRestriction"]

log = logging.getLogger(__name__)

OFF_HINT = "or turn off “Only the selection”"


class SelectionRestriction:
    """Mixin of :class:`~dfwidgets.widgets.labeler.Labeler` (uses its ``session``,
    ``_label_queue``, ``_lock``, ``_publish``, ``_say`` and the traits
    ``restrict_to_selection``, ``selection_size``, ``message``, ``mode``)."""

    _note = ""

    def _init_restriction(self, restrict: bool) -> None:
        """Follow the Session's selection; restrict the queue now if ``restrict``."""
        self.selection_size = len(self.session.selection)
        if restrict:
            self._label_queue.restrict(self.session.selection)
        self.restrict_to_selection = bool(restrict)
        self.observe(self._on_restrict, names="restrict_to_selection")
        self.listen("selection_changed", self._on_selection_changed)

    def _on_restrict(self, change: dict) -> None:
        """The toolbar toggle (or Python) switched "Only the selection" on or off."""
        self._apply_restriction(self.session.selection if change["new"] else None)

    def _on_selection_changed(self, indices: Any) -> None:
        """A lasso on the map or ``session.select``: a restricted queue follows it."""
        self.selection_size = len(indices)
        if self.restrict_to_selection:
            self._apply_restriction(indices)

    def _apply_restriction(self, within: Any) -> None:
        with self._lock:
            self._label_queue.restrict(within)
            self.run_safely(self._label_queue.fill, what="Filling the queue")
            self._publish()
        self._restriction_note()

    def _restriction_note(self) -> None:
        """Say why a restricted queue is empty; take that note back once it is not."""
        note = ""
        if self.restrict_to_selection and self.mode != "review" and not self._label_queue.items:
            n = self.selection_size
            note = (f"Nothing is selected: lasso some points on the map, {OFF_HINT}." if n == 0
                    else f"No unlabeled item is left in the selection ({n:,} selected, all "
                    f"labeled or skipped): select more on the map, {OFF_HINT}.")
        if note:
            self._say(note)
        elif self._note and self.message == self._note:
            self._say("")
        self._note = note

"""Labeler: label the model's most uncertain items inline, keyboard first (anywidget).

The page preloads and decodes the images of the queued items ahead of time (it asks for
them with ``{"type": "images"}`` requests, answered as binary buffers by
:meth:`SessionView.reply_images`), so it shows the next item the moment a key is pressed
(optimistic); the answer reaches Python as a message and is committed to the Session's
SQLite store synchronously, in message order, before the queue moves on. If the commit
fails, the page is told, shows the error and puts the item back. The item shown is the
Session's focus (``session.focus``). With ``restrict_to_selection`` the queue comes from
the Session's selection (e.g. a lasso on the map; :mod:`.labeler_selection`).
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..label_queue import LabelQueue
from ._common import bundle, resolve_session
from .base import SessionView
from .labeler_facts import item_facts, status_line
from .labeler_messages import CLASS_KEYS, MODES, LabelerInput
from .labeler_review import DataIssueReview
from .labeler_selection import SelectionRestriction

__all__ = ["Labeler"]

log = logging.getLogger(__name__)


class Labeler(LabelerInput, DataIssueReview, SelectionRestriction, SessionView,
              anywidget.AnyWidget):
    """Active-learning labeler over a :class:`~dfwidgets.session.Session`.

    ``Labeler(session, strategy="auto", batch=8)`` shows a queue fed by
    ``session.next_batch`` (a cold-start strategy until there is a model). Single mode:
    one large image, the model's top-3 guesses, class buttons. Grid mode: a page of
    thumbnails. Review mode: suspected label errors to confirm or correct, and the
    data-issue report (duplicate groups side by side, outliers with their neighbours:
    exclude, keep this one, relabel; :mod:`.labeler_review`).
    Keys: 1-9, 0 (then letters) label, space / s skip, z / Backspace undo, arrows move
    in the grid, Enter confirms in review. ``restrict_to_selection=True`` (or the
    "Only the selection" toggle) labels only the Session's selection.
    """

    _esm = bundle("labeler")

    mode = t.Unicode("single").tag(sync=True)
    """Which view is shown: "single", "grid" or "review" (set by the user's tab clicks)."""
    classes = t.List(t.Unicode()).tag(sync=True)
    """Class names, in the Session's order."""
    class_keys = t.List(t.Unicode()).tag(sync=True)
    """Key for each class (``class_keys[j]`` labels ``classes[j]``); "" when past the last key."""
    queue = t.List(t.Int()).tag(sync=True)
    """Item indices to show next, the current one first (Python's committed view)."""
    review_queue = t.List(t.Int()).tag(sync=True)
    """Suspected label errors (item indices) not yet reviewed, most suspicious first."""
    status = t.Dict().tag(sync=True)
    """labeled, accuracy {estimate, low, high, n} | None, per_minute | None, issues | None."""
    message = t.Unicode("").tag(sync=True)
    """Inline message for the user (an error or a hint); "" hides it."""
    message_level = t.Unicode("info").tag(sync=True)
    """"info" or "error": how the view styles ``message``."""
    image_size = t.Int(224).tag(sync=True)
    """Edge in CSS pixels of the large image (small images are scaled up, pixelated)."""
    page_size = t.Int(24).tag(sync=True)
    """Thumbnails per grid page."""
    optimistic = t.Bool(True).tag(sync=True)
    """Show the next item at once on a key press (True) or only after Python's commit
    (False: a full round trip per answer, kept for the latency benchmark)."""
    busy = t.Unicode("").tag(sync=True)
    """What runs in the background ("" when idle), e.g. "finding suspected errors"."""
    restrict_to_selection = t.Bool(False).tag(sync=True)
    """Label only the Session's selection (``next_batch(..., within=session.selection)``);
    the queue follows "selection_changed" (set by the toolbar toggle or from Python)."""
    selection_size = t.Int(0).tag(sync=True)
    """Number of items in ``session.selection`` (shown on the toggle)."""

    def __init__(
        self,
        session: Any,
        embeddings: np.ndarray | None = None,
        *,
        strategy: str = "auto",
        cold_start: str = "typiclust",
        batch: int = 8,
        prefetch: int = 8,
        page_size: int = 24,
        mode: str = "single",
        image_size: int = 224,
        restrict_to_selection: bool = False,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch!r}.")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size!r}.")
        self.init_view(resolve_session(session, embeddings))
        self.prefetch = int(prefetch)
        self._lock = threading.RLock()
        self._label_queue = LabelQueue(
            self.session,
            strategy=strategy,
            cold_start=cold_start,
            batch=batch,
            ahead=self._ahead(mode, prefetch, page_size),
        )
        self._described: set[int] = set()  # items whose facts the page has
        self._answer_times: deque[float] = deque(maxlen=30)
        self._answering = False
        self._filler: threading.Thread | None = None
        self._issues: Any = None  # session.label_issues(), refreshed on model updates
        self._issues_at = -10  # label count when the issues were last computed
        super().__init__(mode=mode, page_size=int(page_size), image_size=int(image_size))
        self._sync_classes()
        self.on_msg(self._on_msg)
        self.observe(self._on_mode, names="mode")
        self.listen("model_updated", self._on_model_updated)
        self.listen("labels_changed", self._on_labels_changed)
        self.listen("classes_changed", lambda *a, **k: self._sync_classes())
        self._init_restriction(restrict_to_selection)
        self._label_queue.fill()
        self._publish()
        self._restriction_note()
        self._update_status()
        self._init_issue_review()
        if mode == "review":
            self._refresh_review()

    # ------------------------------------------------------------------ API
    @property
    def label_queue(self) -> LabelQueue:
        """The headless queue behind the widget."""
        return self._label_queue

    @property
    def current(self) -> int | None:
        """Index of the item shown now (single mode), or None when all are labeled."""
        return self._label_queue.current

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until a background queue refill is done (for scripts and tests)."""
        filler = self._filler
        if filler is not None:
            filler.join(timeout)
            return not filler.is_alive()
        return True

    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` inline ("error" styled as an error; "info" and "ok" as hints)."""
        self._say(text, level="error" if kind == "error" else "info")

    def _say(self, text: str, *, level: str = "info") -> None:
        """Show ``text`` inline (level "info" or "error"); "" clears it."""
        self.message_level = level
        self.message = text

    # ------------------------------------------------------------- the queue
    def _refill(self) -> None:
        """Top the queue up in a background thread when it runs low, so the Session's
        ``next_batch`` never holds up the commit of the next answers (the view still has
        ``prefetch`` images in hand)."""
        if len(self._label_queue.items) >= self._label_queue.ahead:
            return
        with self._lock:
            if self._filler is not None and self._filler.is_alive():
                return
            self._filler = threading.Thread(target=self._fill_now, daemon=True,
                                            name="dfw-labeler-fill")
            self._filler.start()

    def _fill_now(self) -> None:
        try:
            while True:  # answers may have drained the queue again meanwhile
                new = self._label_queue.fill()
                if new:
                    with self._lock:
                        self._publish()
                if not new or len(self._label_queue.items) >= self._label_queue.ahead:
                    break
            self._restriction_note()
        except Exception as exc:  # shown inline; the queue keeps what it has
            log.warning("Labeler could not fetch more items: %s", exc)
            self._say(f"Could not fetch more items: {exc}", level="error")

    @staticmethod
    def _ahead(mode: str, prefetch: int, page_size: int) -> int:
        return page_size + prefetch if mode == "grid" else prefetch + 1

    # ------------------------------------------------------- session events
    def _on_model_updated(self, *args: Any, **kwargs: Any) -> None:
        """New model (maybe from a background thread): reorder, refresh guesses and issues."""
        try:
            self._label_queue.reorder()
            with self._lock:
                self._publish(guesses=True)
            self._update_status(issues=True)
            if self.mode == "review":
                self._refresh_review()
        except Exception as exc:  # never let a widget error kill the Session's thread
            log.warning("Labeler could not reorder after a model update: %s", exc)
            self._say(level="error", text=f"Could not reorder after the model update: {exc}")

    def _on_labels_changed(self, *args: Any, **kwargs: Any) -> None:
        """Labels written elsewhere: drop them from the queue."""
        if self._answering:  # our own answer: the queue handles it
            return
        with self._lock:
            if self._label_queue.drop_labeled():
                self._publish()
        self._refill()

    def _on_mode(self, change: dict) -> None:
        if change["new"] not in MODES:
            self._say(f"Unknown mode {change['new']!r}; use one of {', '.join(MODES)}.",
                      level="error")
            self.mode = change["old"]
            return
        self._label_queue.ahead = self._ahead(change["new"], self.prefetch, self.page_size)
        with self._lock:
            self._label_queue.fill()
            self._publish()
        if change["new"] == "review":
            self._refresh_review()

    # ------------------------------------------------------------ publishing
    def _sync_classes(self) -> None:
        names = [str(c) for c in self.session.classes]
        self.classes = names
        self.class_keys = [CLASS_KEYS[j] if j < len(CLASS_KEYS) else ""
                           for j in range(len(names))]

    def _sync_focus(self) -> None:
        """The item shown now (first of the review queue in review mode, else of the
        queue; -1 when none) is the Session's focus."""
        items = self.review_queue if self.mode == "review" else self.queue
        self.session.set_focus(int(items[0]) if items else -1)

    def _publish(self, *, resend: bool = False, guesses: bool = False) -> None:
        """Set ``queue`` (and the focus); send the facts (id, guesses, review details) of
        queued items the view lacks. The page asks for their images itself."""
        items = self._label_queue.items
        self.queue = items
        self._sync_focus()
        wanted = items + [i for i in self.review_queue if i not in set(items)]
        new = [i for i in wanted if resend or i not in self._described]
        if new:
            self.send({"type": "items", "items": [self._facts(i) for i in new]})
            self._described.update(new)
        if guesses:
            known = [i for i in wanted if i in self._described]
            if known:
                self.send({"type": "guesses", "items": [self._facts(i) for i in known]})

    def _facts(self, i: int) -> dict:
        return item_facts(self.session, i, self._issues)

    # --------------------------------------------------------------- status
    def _update_status(self, *, issues: bool = False) -> None:
        """Refresh the status line: labels, accuracy with interval, speed, issues waiting.

        The slow part (suspected errors) runs first, outside the lock; the counts are read
        and published under the lock, so a late background update never shows stale counts.
        """
        if issues:
            labeled = int((np.asarray(self.session.label_array()) >= 0).sum())
            if self.mode == "review" or labeled >= 1.1 * self._issues_at + 10:
                self._find_issues()  # confident learning: not after every single answer
                self._issues_at = labeled
        with self._lock:
            n_issues = None if self._issues is None else len(self._pending_review())
            self.status = status_line(self.session, answer_times=self._answer_times,
                                      issues=n_issues,
                                      strategy=self._label_queue.strategy_in_use())

    def _find_issues(self) -> None:
        self._issues_error = ""
        try:
            self._issues = self.session.label_issues()
        except ValueError as exc:  # too few labels for confident learning
            log.debug("no label issues: %s", exc)
            self._issues = None
        except Exception as exc:  # a failed search is said, not taken for "no errors"
            log.exception("the search for suspected label errors failed")
            self._issues, self._issues_error = None, f"{type(exc).__name__}: {exc}"

    def _pending_review(self) -> list[int]:
        """Suspected errors whose current label was not already given in review."""
        if self._issues is None or len(self._issues) == 0:
            return []
        return [int(i) for i in self.session.review_items(self._issues)]

    def _refresh_review(self) -> None:
        self.busy = "finding suspected label errors"
        try:
            self._start_issue_review()
            self._find_issues()
            with self._lock:
                self.review_queue = self._pending_review()
                self._publish()
            if getattr(self, "_issues_error", ""):
                self._say("The search for suspected label errors failed "
                          f"({self._issues_error}); see the log.", level="error")
            elif not self.review_queue:
                self._say("No suspected label errors right now (they need a model and a "
                          "few labels per class).")
        finally:
            self.busy = ""
        self._update_status()

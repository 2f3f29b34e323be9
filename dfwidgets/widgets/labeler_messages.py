"""The Labeler's answers to its page: key presses, clicks, skips, undo, new classes.

Every answer is committed to the Session (its SQLite store) synchronously, in message
order; the page, which already shows the next item (optimistic), gets an ``"ack"`` for
the answer's ``seq``, or an ``"error"`` (then it puts the items back).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np

__all__ = ["LabelerInput", "CLASS_KEYS", "SKIP_KEYS", "UNDO_KEYS", "MODES"]

log = logging.getLogger(__name__)

#: Keys for the first classes: digits 1-9 and 0, then letters (not s / z: skip / undo).
CLASS_KEYS: tuple[str, ...] = tuple("1234567890") + tuple("qwertyuiopadfghjklxcvbnm")
SKIP_KEYS = (" ", "s")
UNDO_KEYS = ("z", "Backspace")
MODES = ("single", "grid", "review")


class LabelerInput:
    """Mixin of :class:`~dfwidgets.widgets.labeler.Labeler`: what the page's messages do.

    Uses the Labeler's ``session``, ``_label_queue``, ``_lock``, traits and its
    ``_publish`` / ``_refill`` / ``_update_status`` / ``_say``.
    """

    def _on_msg(self, _widget: Any, content: dict, buffers: list) -> None:
        """Handle a message from the page; user mistakes become an inline message."""
        kind = content.get("type") if isinstance(content, dict) else None
        seq = content.get("seq") if isinstance(content, dict) else None
        try:
            if kind == "images":
                self.reply_images(content, default_edge=self.image_size)
            elif kind == "hello":
                self._described.clear()
                self._publish(resend=True)
                self._update_status()
            elif kind == "key":
                self._on_key(content)
            elif kind == "label":
                self._answer(content.get("indices"), content.get("label"),
                             source=content.get("source", "click"), seq=seq)
            elif kind == "skip":
                self._skip(content.get("indices"), seq=seq)
            elif kind == "undo":
                self._undo(seq=seq)
            elif kind == "add_class":
                self._add_class(content.get("name"))
            elif kind == "refresh_review":
                self._refresh_review()
            elif kind == "issue_action":
                self._issue_action(content)
            else:
                raise ValueError(f"Unknown message type {kind!r} from the Labeler view.")
        except Exception as exc:  # shown inline, never as a traceback
            log.warning("Labeler: %s", exc, exc_info=log.isEnabledFor(logging.DEBUG))
            indices = content.get("indices") if isinstance(content, dict) else None
            self._fail(str(exc), seq=seq, indices=indices)

    def _on_key(self, content: dict) -> None:
        """A key press in the view: a class key labels, space / s skip, z / Backspace undo."""
        key = content.get("key")
        seq = content.get("seq")
        indices = content.get("indices")
        if key in UNDO_KEYS:
            self._undo(seq=seq)
        elif key in SKIP_KEYS:
            self._skip(indices, seq=seq)
        elif key in self.class_keys and key != "":
            label = self.classes[self.class_keys.index(key)]
            source = "review" if self.mode == "review" else "click"
            self._answer(indices, label, source=source, seq=seq)
        elif key == "Enter" and self.mode == "review":
            self._confirm_review(indices, seq=seq)
        else:
            first = self.class_keys[0] if self.class_keys else "1"
            raise ValueError(
                f"Key {key!r} is not bound here: use {first}... for classes, space or s to "
                "skip, z or Backspace to undo."
            )

    def _answer(self, indices: Any, label: Any, *, source: str, seq: Any) -> None:
        """Commit one answer (store first), then move the queue and tell the view."""
        if indices is None or (isinstance(indices, list) and not indices):
            raise ValueError("No item to label: the queue is empty or nothing is selected.")
        if not isinstance(label, str) or label not in self.classes:
            raise ValueError(f"Unknown class {label!r}; add it first with the '+ class' box.")
        with self._lock:
            self._answering = True
            try:
                if source == "review":
                    idx = self._review_answer(indices, label)
                else:
                    idx = self._label_queue.answer(indices, label, source=source)
            finally:
                self._answering = False
            self._answer_times.append(time.monotonic())
            self._say("")
            self.queue = self._label_queue.items
            self._sync_focus()
            self.send({"type": "ack", "seq": seq, "indices": idx})
        self._refill()
        self._update_status()

    def _review_answer(self, indices: Any, label: str) -> list[int]:
        idx = [int(i) for i in np.atleast_1d(indices)]
        self.session.label(np.asarray(idx, dtype=np.int64), label, source="review")
        self.review_queue = [i for i in self.review_queue if i not in set(idx)]
        return idx

    def _confirm_review(self, indices: Any, *, seq: Any) -> None:
        """Keep the given label of a suspected error (recorded with source "review")."""
        idx = [int(i) for i in np.atleast_1d(indices)]
        given = self.session.label_array()[idx[0]]
        if given < 0:
            raise ValueError("This item has no label any more; pick a class instead.")
        self._answer(idx, self.session.classes[int(given)], source="review", seq=seq)

    def _skip(self, indices: Any, *, seq: Any) -> None:
        if indices is None or (isinstance(indices, list) and not indices):
            raise ValueError("Nothing to skip: the queue is empty.")
        with self._lock:
            if self.mode == "review":
                idx = [int(i) for i in np.atleast_1d(indices)]
                self.review_queue = [i for i in self.review_queue if i not in set(idx)]
            else:
                idx = self._label_queue.skip(indices)
                self.queue = self._label_queue.items
            self._sync_focus()
            self.send({"type": "ack", "seq": seq, "indices": idx})
        self._refill()

    def _undo(self, *, seq: Any) -> None:
        with self._lock:
            back = self._label_queue.undo()
            if not back:
                self._say("Nothing to undo yet.")
                return
            self._say("")
            self._publish()
            self.send({"type": "undone", "seq": seq, "indices": back})
        self._update_status()

    def _add_class(self, name: Any) -> None:
        """A new class from the page's "+ class" box (mistakes become a message)."""
        if self.add_label_class(name):  # SessionView: checks, adds, says so
            self._sync_classes()
            name = str(name).strip()
            self._say(f"Added class {name!r} (key {self.class_keys[-1] or 'none'}).")

    def _fail(self, text: str, *, seq: Any, indices: Any) -> None:
        """Show ``text`` inline; a view waiting for ``seq`` puts its items back."""
        self._say(text, level="error")
        try:
            idx = [int(i) for i in np.atleast_1d(indices)] if indices is not None else []
        except (TypeError, ValueError):
            idx = []
        self.send({"type": "error", "seq": seq, "indices": idx, "message": text})

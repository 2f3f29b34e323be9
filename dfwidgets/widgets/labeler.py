"""Labeler: label the model's most uncertain items inline, keyboard first (anywidget).

The browser shows the next item from images sent ahead of time the moment a key is
pressed (optimistic); the answer reaches Python as a message and is committed to the
Session's SQLite store synchronously, in message order, before the queue moves on. If
the commit fails, the browser is told, shows the error and puts the item back.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections import deque
from typing import Any

import anywidget
import numpy as np
import traitlets as t

from ..label_queue import LabelQueue
from ._common import bundle, resolve_session

__all__ = ["Labeler"]

log = logging.getLogger(__name__)

#: Keys for the first classes: digits 1-9 and 0, then letters (not s / z: skip / undo).
CLASS_KEYS: tuple[str, ...] = tuple("1234567890") + tuple("qwertyuiopadfghjklxcvbnm")
SKIP_KEYS = (" ", "s")
UNDO_KEYS = ("z", "Backspace")
MODES = ("single", "grid", "review")


class Labeler(anywidget.AnyWidget):
    """Active-learning labeler over a :class:`~dfwidgets.session.Session`.

    ``Labeler(session, strategy="hybrid", batch=8)`` shows a queue fed by
    ``session.next_batch`` (a cold-start strategy until there is a model). Single mode:
    one large image, the model's top-3 guesses, class buttons. Grid mode: a page of
    thumbnails. Review mode: suspected label errors to confirm or correct.
    Keys: 1-9, 0 (then letters) label, space / s skip, z / Backspace undo, arrows move
    in the grid, Enter confirms in review.
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

    def __init__(
        self,
        session: Any,
        embeddings: np.ndarray | None = None,
        *,
        strategy: str = "hybrid",
        cold_start: str = "typiclust",
        batch: int = 8,
        prefetch: int = 8,
        page_size: int = 24,
        mode: str = "single",
        image_size: int = 224,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
        if prefetch < 1:
            raise ValueError(f"prefetch must be at least 1, got {prefetch!r}.")
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, got {page_size!r}.")
        self.session = resolve_session(session, embeddings)
        self.prefetch = int(prefetch)
        self._lock = threading.RLock()
        self._label_queue = LabelQueue(
            self.session,
            strategy=strategy,
            cold_start=cold_start,
            batch=batch,
            ahead=self._ahead(mode, prefetch, page_size),
        )
        self._sent: set[int] = set()
        self._answer_times: deque[float] = deque(maxlen=30)
        self._answering = False
        self._filler: threading.Thread | None = None
        self._issues: Any = None  # session.label_issues(), refreshed on model updates
        self._issues_at = -10  # label count when the issues were last computed
        self.latencies_ms: list[float] = []
        """Key-press-to-next-image times reported by the browser (milliseconds)."""
        super().__init__(mode=mode, page_size=int(page_size), image_size=int(image_size))
        self._sync_classes()
        self.on_msg(self._on_msg)
        self.observe(self._on_mode, names="mode")
        self._handles = [
            self.session.on("model_updated", self._on_model_updated),
            self.session.on("labels_changed", self._on_labels_changed),
            self.session.on("classes_changed", lambda *a, **k: self._sync_classes()),
        ]
        self._label_queue.fill()
        self._publish()
        self._update_status()
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

    def close(self) -> None:
        """Detach from the Session and close the widget."""
        for handle in getattr(self, "_handles", []):
            try:
                self.session.off(handle)
            except Exception:  # the Session may be closed already
                log.debug("session.off failed", exc_info=True)
        self._handles = []
        super().close()

    # ------------------------------------------------------------- messages
    def _on_msg(self, _widget: Any, content: dict, buffers: list) -> None:
        """Handle a message from the browser; user mistakes become an inline message."""
        kind = content.get("type") if isinstance(content, dict) else None
        seq = content.get("seq") if isinstance(content, dict) else None
        try:
            if kind == "hello":
                self._sent.clear()
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
            elif kind == "latency":
                self.latencies_ms.extend(float(v) for v in content.get("values", []))
            elif kind == "refresh_review":
                self._refresh_review()
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
        name = name.strip() if isinstance(name, str) else ""
        if not name:
            raise ValueError("Type a class name first, then press Enter or '+ class'.")
        if name in self.classes:
            raise ValueError(f"There is already a class named {name!r}.")
        self.session.add_class(name)
        self._sync_classes()
        self._say(f"Added class {name!r} (key {self.class_keys[-1] or 'none'}).")

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
        except Exception as exc:  # shown inline; the queue keeps what it has
            log.warning("Labeler could not fetch more items: %s", exc)
            self._say(f"Could not fetch more items: {exc}", level="error")

    def wait(self, timeout: float | None = 60.0) -> bool:
        """Block until a background queue refill is done (for scripts and tests)."""
        filler = self._filler
        if filler is not None:
            filler.join(timeout)
            return not filler.is_alive()
        return True

    def _say(self, text: str, *, level: str = "info") -> None:
        """Show ``text`` inline (level "info" or "error"); "" clears it."""
        self.message_level = level
        self.message = text

    def _fail(self, text: str, *, seq: Any, indices: Any) -> None:
        """Show ``text`` inline; a view waiting for ``seq`` puts its items back."""
        self._say(text, level="error")
        try:
            idx = [int(i) for i in np.atleast_1d(indices)] if indices is not None else []
        except (TypeError, ValueError):
            idx = []
        self.send({"type": "error", "seq": seq, "indices": idx, "message": text})

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
    @staticmethod
    def _ahead(mode: str, prefetch: int, page_size: int) -> int:
        return page_size + prefetch if mode == "grid" else prefetch + 1

    def _sync_classes(self) -> None:
        names = [str(c) for c in self.session.classes]
        self.classes = names
        self.class_keys = [CLASS_KEYS[j] if j < len(CLASS_KEYS) else ""
                           for j in range(len(names))]

    def _publish(self, *, resend: bool = False, guesses: bool = False) -> None:
        """Set ``queue`` and send images + guesses of queued items the view lacks."""
        items = self._label_queue.items
        self.queue = items
        wanted = items + [i for i in self.review_queue if i not in set(items)]
        self._send_items([i for i in wanted if resend or i not in self._sent])
        if guesses:
            known = [i for i in wanted if i in self._sent]
            if known:
                self.send({"type": "guesses", "items": [self._describe(i) for i in known]})

    def _send_items(self, indices: list[int]) -> None:
        if not indices:
            return
        metas, buffers = [], []
        for i in indices:
            data, mime = self._encode(i)
            meta = self._describe(i)
            meta["mime"] = mime
            metas.append(meta)
            buffers.append(data)
        self.send({"type": "items", "items": metas}, buffers=buffers)
        self._sent.update(indices)

    def _describe(self, i: int) -> dict:
        """JSON facts about item ``i``: id, top-3 guesses, review details."""
        meta: dict[str, Any] = {"index": int(i), "id": str(self.session.ids[i]),
                                "guesses": self._guesses(i)}
        issues = self._issues
        if issues is not None and len(issues):
            row = issues[issues["index"] == i]
            if len(row):
                meta["given"] = str(row["given"].iloc[0])
                meta["suggested"] = str(row["suggested"].iloc[0])
                meta["score"] = float(row["score"].iloc[0])
        return meta

    def _guesses(self, i: int, k: int = 3) -> list[list]:
        """The model's top-``k`` classes for item ``i`` as [[name, probability], ...]."""
        probs = getattr(self.session, "probs_", None)
        if probs is None:
            return []
        row = np.asarray(probs[i], dtype=np.float64)
        names = self._prob_columns(row.shape[0])
        order = np.argsort(-row)[:k]
        return [[names[j], round(float(row[j]), 4)] for j in order]

    def _prob_columns(self, width: int) -> list[str]:
        cols = getattr(self.session, "model_classes_", None)  # the columns of probs_
        classes = list(self.session.classes)
        if cols is not None and len(cols) == width:
            out = []
            for c in cols:
                if isinstance(c, (int, np.integer)) and 0 <= int(c) < len(classes):
                    out.append(classes[int(c)])
                else:
                    out.append(str(c))
            return out
        return classes[:width] + [f"class {j}" for j in range(len(classes), width)]

    def _encode(self, i: int) -> tuple[bytes, str]:
        """Image bytes for item ``i``: native PNG when small (the view scales it up,
        pixelated), else a JPEG whose long side is twice ``image_size`` at most."""
        from PIL import Image

        arr = getattr(self.session.source, "array", None)
        img = Image.fromarray(np.asarray(arr[i])) if arr is not None else self.session.source[i]
        if max(img.size) <= self.image_size // 2:
            buf = io.BytesIO()
            img.save(buf, format="PNG", optimize=False, compress_level=1)
            return buf.getvalue(), "image/png"
        edge = 2 * self.image_size
        if max(img.size) > edge:
            img = img.copy()
            img.thumbnail((edge, edge), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        img.convert("RGB").save(buf, format="JPEG", quality=88)
        return buf.getvalue(), "image/jpeg"

    # --------------------------------------------------------------- status
    def _update_status(self, *, issues: bool = False) -> None:
        """Refresh the status line: labels, accuracy with interval, speed, issues waiting.

        The slow part (suspected errors) runs first, outside the lock; the counts are read
        and published under the lock, so a late background update never shows stale counts.
        """
        s = self.session
        if issues:
            labeled = int((np.asarray(s.label_array()) >= 0).sum())
            if self.mode == "review" or labeled >= 1.1 * self._issues_at + 10:
                self._find_issues()  # confident learning: not after every single answer
                self._issues_at = labeled
        with self._lock:
            labeled = int((np.asarray(s.label_array()) >= 0).sum())
            accuracy = None
            try:
                est = s.accuracy_estimate()
                if est and est.get("n") and est.get("estimate") is not None:
                    accuracy = {k: float(est[k]) for k in ("estimate", "low", "high")}
                    accuracy["n"] = int(est["n"])
            except Exception as exc:  # no model yet, or too few audit answers
                log.debug("no accuracy estimate: %s", exc)
            times = list(self._answer_times)
            per_minute = None
            if len(times) >= 3 and times[-1] > times[0]:
                per_minute = round(60.0 * (len(times) - 1) / (times[-1] - times[0]), 1)
            n_issues = None if self._issues is None else len(self._pending_review())
            self.status = {"labeled": labeled, "accuracy": accuracy, "per_minute": per_minute,
                           "issues": n_issues, "strategy": self._label_queue.strategy_in_use()}

    def _find_issues(self) -> None:
        try:
            self._issues = self.session.label_issues()
        except Exception as exc:  # too few labels for confident learning
            log.debug("no label issues: %s", exc)
            self._issues = None

    def _pending_review(self) -> list[int]:
        """Suspected errors whose current label was not already given in review."""
        if self._issues is None or len(self._issues) == 0:
            return []
        current = self.session.store.current()
        reviewed = set(current.loc[current["source"] == "review", "item_id"].astype(str))
        ids = self.session.ids
        return [int(i) for i in self._issues["index"] if str(ids[int(i)]) not in reviewed]

    def _refresh_review(self) -> None:
        self.busy = "finding suspected label errors"
        try:
            self._find_issues()
            with self._lock:
                self.review_queue = self._pending_review()
                self._publish()
            if not self.review_queue:
                self._say("No suspected label errors right now (they need a model and a "
                          "few labels per class).")
        finally:
            self.busy = ""
        self._update_status()

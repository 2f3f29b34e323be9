"""Event callbacks of a Session, and the poller that brings other writers' changes in.

While any callback is registered, a daemon thread calls ``poll()`` about once a second (a
weak reference: the Session stays collectable), so labels written by another Session or
process fire the events too, from that thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import weakref
from collections.abc import Callable
from typing import Any

__all__ = ["EVENTS", "EventHub"]

log = logging.getLogger(__name__)

EVENTS = ("labels_changed", "classes_changed", "model_updated", "selection_changed",
          "focus_changed", "highlight_changed", "layout_changed",
          "rules_changed",  # rules_changed: rule names (issue 18)
          "issues_changed")  # issues_changed: the open data issues (DataFrame) or None
POLL_SECONDS = 1.0  # how often the poller checks the store for other writers


class EventHub:
    """Callbacks by event name, and the store poller (started by the first :meth:`on`).

    ``poll``: called by the poller thread (it syncs the label cache); ``name``: thread name.
    """

    def __init__(self, poll: Callable[[], None], *, name: str) -> None:
        self._poll = weakref.WeakMethod(poll) if hasattr(poll, "__self__") else (lambda: poll)
        self._name = name
        self._lock = threading.Lock()
        self._callbacks: dict[int, tuple[str, Callable[..., Any]]] = {}
        self._handles = itertools.count(1)
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self._closed = False

    def on(self, event: str, callback: Callable[..., Any]) -> int:
        """Call ``callback`` on ``event``; returns a handle for :meth:`off`."""
        if event not in EVENTS:
            raise ValueError(f"Unknown event {event!r}; use one of {', '.join(EVENTS)}.")
        if not callable(callback):
            raise TypeError(f"callback must be callable, got {type(callback).__name__}.")
        handle = next(self._handles)
        with self._lock:
            self._callbacks[handle] = (event, callback)
            if self._poller is None and not self._closed:
                self._poller = threading.Thread(
                    target=_poll_loop, args=(weakref.ref(self), self._stop),
                    daemon=True, name=self._name)
                self._poller.start()
        return handle

    def off(self, handle: int) -> None:
        """Remove a callback (unknown handles are ignored)."""
        with self._lock:
            self._callbacks.pop(handle, None)

    def emit(self, event: str, *args: Any) -> None:
        """Call the callbacks of ``event``; their errors are logged, never raised."""
        with self._lock:
            targets = [cb for ev, cb in self._callbacks.values() if ev == event]
        for cb in targets:
            try:
                cb(*args)
            except Exception:  # a widget's bug must not break labeling
                log.exception("%s callback %r failed", event, cb)

    def close(self) -> None:
        """Stop the poller (waits for it up to 5 s)."""
        with self._lock:
            self._closed = True
        self._stop.set()
        poller = self._poller
        if poller is not None and poller is not threading.current_thread():
            poller.join(timeout=5)

    def _keep_polling(self) -> bool:
        with self._lock:
            if self._closed or not self._callbacks:
                self._poller = None
                return False
            return True


def _poll_loop(ref: weakref.ReferenceType[EventHub], stop: threading.Event) -> None:
    """Poller thread body: poll until the hub is closed, garbage, or has no callbacks."""
    while not stop.wait(POLL_SECONDS):
        hub = ref()
        if hub is None or not hub._keep_polling():
            return
        poll = hub._poll()
        del hub
        if poll is None:
            return
        try:
            poll()
        except Exception:
            log.warning("polling the label store failed", exc_info=True)
        del poll

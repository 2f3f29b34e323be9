"""What every view over a Session shares: event handles, close, messages, errors,
add-class, and the one way item images cross to the page.

A view registers Session callbacks with :meth:`SessionView.listen` (removed again on
:meth:`close`), turns a user's mistake into an inline message with :meth:`run_safely`
(never a traceback), and answers the page's ``{"type": "images", "indices": [...],
"edge": px, "request_id": n}`` requests (``js/src/lib/images.js``) with encoded images as
binary buffers (:func:`dfwidgets.thumbs.encode_item`, via ``session.item_image_bytes``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

log = logging.getLogger(__name__)

#: exceptions that mean "the user asked for something that cannot be done": shown as an
#: inline message; anything else is a bug, logged with its traceback and shown briefly.
USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError, KeyError, IndexError, TypeError, LookupError, FileNotFoundError,
    NotADirectoryError, ImportError, ConnectionError, PermissionError,
)
MAX_IMAGES_PER_REQUEST = 256


class SessionView:
    """Mixin for a widget that is a view over ``self.session``.

    Subclasses call :meth:`init_view` in ``__init__`` and implement :meth:`show_message`.
    """

    session: Any

    def init_view(self, session: Any) -> None:
        """Remember ``session``; start with no registered callbacks."""
        self.session = session
        self._view_handles: list[int] = []

    # ------------------------------------------------------------------ events
    def listen(self, event: str, callback: Callable[..., Any]) -> int:
        """``session.on(event, callback)``, removed again when the view closes."""
        handle = self.session.on(event, callback)
        self._view_handles.append(handle)
        return handle

    def unlisten_all(self) -> None:
        """Remove every callback this view registered (safe on a closed Session)."""
        for handle in getattr(self, "_view_handles", []):
            try:
                self.session.off(handle)
            except Exception:  # noqa: BLE001 - the Session may be closed already
                log.debug("session.off failed", exc_info=True)
        self._view_handles = []

    def close(self) -> None:
        """Stop following the Session, then close the widget."""
        self.unlisten_all()
        super().close()  # type: ignore[misc]

    # ------------------------------------------------------------------ messages
    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` in the view; ``kind`` is "info", "ok" or "error"."""
        raise NotImplementedError

    def run_safely(self, fn: Callable[..., Any], *args: Any, what: str = "That",
                   **kwargs: Any) -> Any:
        """Call ``fn``; a user mistake becomes an error message (returns None), an
        unexpected failure is logged with its traceback and reported as "``what`` failed"."""
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as exc:
            self.show_message(error_text(exc), kind="error")
        except Exception as exc:  # noqa: BLE001 - the view must never show a traceback
            log.exception("%s failed", what)
            self.show_message(f"{what} failed: {error_text(exc)}", kind="error")
        return None

    # ------------------------------------------------------------------ classes
    def add_label_class(self, name: Any) -> bool:
        """Add class ``name`` to the Session; False (with a message) when it is empty or
        exists already."""
        name = str(name or "").strip()
        if not name:
            self.show_message("Type a class name first.", kind="error")
            return False
        if name in self.session.classes:
            self.show_message(f"There is already a class {name!r}.", kind="error")
            return False
        self.session.add_class(name)
        self.show_message(f"Added class {name!r}.", kind="ok")
        return True

    # ------------------------------------------------------------------ images
    def reply_images(self, content: dict, *, default_edge: int = 128) -> None:
        """Answer an ``"images"`` request from the page (anywidget views): one encoded
        image per index as a binary buffer, with ``{"index", "mime", "width", "height"}``
        per item in ``"items"``; indices that are not items (or could not be read) come
        back in ``"missing"``. At most :data:`MAX_IMAGES_PER_REQUEST` per request."""
        raw = content.get("indices")
        raw = list(raw) if isinstance(raw, (list, tuple)) else []
        edge = content.get("edge")
        edge = int(edge) if isinstance(edge, (int, float)) and not isinstance(edge, bool) \
            else default_edge
        edge = min(max(edge, 16), 2048)
        n = len(self.session.ids)
        indices: list[int] = []
        missing: list[Any] = []
        for k, value in enumerate(raw):
            ok = (isinstance(value, (int, float)) and not isinstance(value, bool)
                  and float(value).is_integer() and 0 <= int(value) < n)
            if ok and k < MAX_IMAGES_PER_REQUEST:
                indices.append(int(value))
            else:
                missing.append(value)
        metas, buffers, unreadable = self.encode_items(indices, edge=edge)
        self.send({"type": "images", "request_id": content.get("request_id"),  # type: ignore[attr-defined]
                   "items": metas, "missing": unreadable + missing}, buffers=buffers)

    def reply_error(self, content: dict, exc: BaseException) -> None:
        """Answer a page request (``content`` has ``"type"`` and ``"request_id"``) with
        ``exc`` as its error (lib/rpc.js rejects the request's promise with it)."""
        self.send({"type": content.get("type"), "request_id": content.get("request_id"),  # type: ignore[attr-defined]
                   "error": error_text(exc)})

    def encode_items(self, indices: Sequence[int], *, edge: int
                     ) -> tuple[list[dict[str, Any]], list[bytes], list[int]]:
        """(metas, buffers, missing) for ``indices``: images as the page shows them."""
        metas: list[dict[str, Any]] = []
        buffers: list[bytes] = []
        missing: list[int] = []
        for i in indices:
            try:
                data, mime, (w, h) = self.session.item_image_bytes(int(i), edge=edge)
            except Exception:  # noqa: BLE001 - one unreadable item must not stop the rest
                log.warning("could not encode item %s", i, exc_info=True)
                missing.append(int(i))
                continue
            metas.append({"index": int(i), "mime": mime, "width": w, "height": h})
            buffers.append(data)
        return metas, buffers, missing


def error_text(exc: BaseException) -> str:
    """A one-line message for ``exc`` (KeyError's quotes removed)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__

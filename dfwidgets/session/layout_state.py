"""The 2-D layout of a Session's embeddings, computed once and shared by every view.

``start("umap")`` shows PCA coordinates at once and computes UMAP in a background thread
(:class:`dfwidgets.layout.LayoutComputer`, cached on disk by content); ``set(coords)``
takes coordinates from the user. Each change emits ``"layout_changed"``. No progress bar:
while UMAP runs, ``status["stage"]`` says what runs now; a failure keeps PCA and
``status["error"]`` says why and what to do (e.g. umap-learn missing: the pip command).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

__all__ = ["LAYOUT_METHODS", "LayoutState"]

log = logging.getLogger(__name__)

LAYOUT_METHODS = ("umap", "pca")


class LayoutState:
    """Layout coordinates (N, 2) and their status for ``embeddings`` (N, D).

    ``changed()`` is called (outside the lock) after the coordinates or status changed.
    """

    def __init__(self, embeddings: np.ndarray, changed: Callable[[], None]) -> None:
        self._embeddings = embeddings
        self._changed = changed
        self._lock = threading.Lock()
        self._idle = threading.Event()
        self._idle.set()
        self._generation = 0
        self._requested: str | None = None
        self._coords: np.ndarray | None = None
        self._status: dict[str, Any] = {"method": None, "state": "none", "error": None}
        self._computer: Any = None

    @property
    def coords(self) -> np.ndarray | None:
        """(N, 2) float32 (read-only) coordinates views draw now, or None."""
        with self._lock:
            return self._coords

    @property
    def status(self) -> dict[str, Any]:
        """{"method": "pca"|"umap"|"given"|None, "state": "none"|"computing"|"done"|"failed",
        "error": str|None (reason + fix), "stage": str|None (what runs now)}; while UMAP
        computes, the PCA view is shown: ("pca", "computing")."""
        with self._lock:
            out = dict(self._status)
            computer = self._computer
        out["stage"] = (getattr(computer, "stage_", None)
                        if out["state"] == "computing" and computer is not None else None)
        return out

    def start(self, method: str = "umap") -> None:
        """Compute the layout with ``method`` ("umap" | "pca"); the same method again is a
        no-op. PCA coordinates are set before this returns."""
        from ..layout import LayoutComputer

        if method not in LAYOUT_METHODS:
            raise ValueError(f"layout method must be one of {', '.join(LAYOUT_METHODS)}; "
                             f"got {method!r} (or give coordinates with set_layout).")
        with self._lock:
            if self._requested == method:
                return
            self._requested = method
            self._generation += 1
            generation = self._generation
            self._idle.clear()
        computer = LayoutComputer(method=method, progress=False)  # status["stage"] instead
        try:
            computer.fit(self._embeddings, background=True)
        except Exception as exc:
            self._finish(generation, None, exc)
            raise
        if computer.done:
            self._finish_from(generation, computer)
            return
        with self._lock:
            if generation != self._generation:
                return
            self._coords = _frozen(computer.pca_embedding_)
            self._status = {"method": "pca", "state": "computing", "error": None}
            self._computer = computer
        self._changed()
        threading.Thread(target=self._finish_from, args=(generation, computer), daemon=True,
                         name="dfw-layout-wait").start()

    def _finish_from(self, generation: int, computer: Any) -> None:
        try:
            coords = computer.wait()
        except Exception as exc:  # noqa: BLE001 - reported in the status, PCA stays shown
            self._finish(generation, None, exc, pca=computer.pca_embedding_)
        else:
            self._finish(generation, coords, None, method=computer.method_)

    def _finish(self, generation: int, coords: np.ndarray | None, error: BaseException | None,
                *, method: str | None = None, pca: np.ndarray | None = None) -> None:
        with self._lock:
            if generation != self._generation:
                return
            if error is None:
                self._coords = _frozen(coords)
                self._status = {"method": method, "state": "done", "error": None}
            else:
                log.warning("layout failed: %s", error)
                if pca is not None:
                    self._coords = _frozen(pca)
                self._status = {"method": "pca" if pca is not None else None,
                                "state": "failed", "error": _reason(error)}
                self._requested = None  # asking again retries
            self._idle.set()
        self._changed()

    def set(self, coords: Any) -> None:
        """Show ``coords`` (N, 2), finite; a running computation is ignored from now on."""
        n = len(self._embeddings)
        xy = np.asarray(coords)
        if xy.shape != (n, 2) or not np.issubdtype(xy.dtype, np.number) \
                or not np.isfinite(xy).all():
            raise ValueError(f"layout coordinates must be finite numbers with shape ({n}, 2) "
                             f"(one x, y per item); got shape {xy.shape}.")
        with self._lock:
            self._generation += 1
            self._requested = None
            self._coords = _frozen(xy)
            self._status = {"method": "given", "state": "done", "error": None}
            self._idle.set()
        self._changed()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no layout is computing; False on timeout."""
        return self._idle.wait(timeout)


def _reason(error: BaseException) -> str:
    """The text the map shows: a LayoutFailed message already says why and what to do."""
    from ..layout import LayoutFailed

    return str(error) if isinstance(error, LayoutFailed) else f"{type(error).__name__}: {error}"


def _frozen(xy: np.ndarray) -> np.ndarray:
    out = np.array(xy, dtype=np.float32, copy=True)
    out.flags.writeable = False
    return out

"""Workbench: the four views over one Session in one display, from a folder of images to
a classifier in one cell.

::

    wb = dfw.Workbench("photos/")                 # folder -> Session in photos/.dfwidgets
    wb = dfw.Workbench("photos/", model="efficientnet_lite0")   # the offline backbone
    wb = dfw.Workbench(session)                   # or over an existing Session
    wb                                            # header, map, and Search / Label / Train / Rules tabs
    wb.map, wb.search, wb.labeler, wb.trainer, wb.rules, wb.session, wb.header
    wb.show("Train")                              # switch tab
    wb.close()                                    # closes the views (and a Session it opened)

An ipywidgets container (JupyterLab 4 and Notebook 7): a header with the counts, the
estimated accuracy with its interval, the fitting state and the next useful step (all
from ``session.status()``), an offer to import the labels of the class sub-folders, the
map in the centre and the other views as tabs beside it (under it on a narrow screen).
The views share the Session, so a lasso on the map is the selection everywhere.
"""

from __future__ import annotations

import html
import logging
import os
from pathlib import Path
from typing import Any

import ipywidgets as W

from .base import SessionView, error_text
from .embedding_map import EmbeddingMap
from .labeler import Labeler
from .rules_panel import RulesPanel
from .trainer import Trainer
from .visual_search import VisualSearch
from .workbench_header import (
    WORKBENCH_CSS,
    Throttle,
    header_html,
    import_offer_text,
    import_result_text,
)

__all__ = ["Workbench"]

log = logging.getLogger(__name__)

TABS = ("Search", "Label", "Train", "Rules")
HEADER_EVENTS = ("labels_changed", "model_updated", "classes_changed", "selection_changed")
#: px the map's toolbar and message line add to its drawing area (toolbar on one line)
MAP_CHROME = 76


def open_session(path_or_session: Any, *, project: Any = None, model: str | None = None,
                 strategy: str = "auto", **session_kwargs: Any) -> tuple[Any, bool]:
    """(session, opened_here): the given Session, or ``Session.from_folder(folder, ...)``.

    Raises FileNotFoundError (a missing folder), ValueError (a file, not a folder) or
    TypeError (neither a folder path nor a Session, or folder options with a Session).
    """
    from ..session import Session

    if isinstance(path_or_session, Session):
        extra = {"project": project, "model": model, **session_kwargs}
        given = sorted(k for k, v in extra.items() if v is not None)
        if given:
            raise TypeError(f"{', '.join(given)} only apply when opening a folder; this "
                            "Workbench is over an open Session.")
        return path_or_session, False
    if not isinstance(path_or_session, (str, os.PathLike)):
        raise TypeError("Workbench needs a folder of images (a path) or a dfwidgets Session; "
                        f"got {type(path_or_session).__name__}.")
    folder = Path(path_or_session).expanduser()
    if not folder.exists():
        raise FileNotFoundError(f"No such folder: {str(folder)!r}. Pass a folder of images "
                                "(class sub-folders are read as labels).")
    if not folder.is_dir():
        raise ValueError(f"{str(folder)!r} is a file, not a folder: pass the folder that "
                         "holds the images.")
    session = Session.from_folder(folder, project=project, model=model, strategy=strategy,
                                  **session_kwargs)
    return session, True


def _map_layout(session: Any, layout: Any) -> Any:
    """The map's ``layout``: as given, else the Session's own (kept), else "umap"."""
    if layout is not None:
        return layout
    method = session.layout_status.get("method")
    if method == "given":
        return session.layout_coords
    return method if method in ("umap", "pca") else "umap"


class Workbench(SessionView, W.VBox):
    """The map, search, labeler and trainer over one Session, in one display.

    Args:
        path_or_session: a folder of images (``Session.from_folder``: embeddings computed
            once with a progress bar and cached; the project folder is reopened next time)
            or an open :class:`~dfwidgets.session.Session`.
        project: the project folder (default ``<folder>/.dfwidgets``); folders only.
        model: the embedding model (default ``"ViT-B-32"``; ``"efficientnet_lite0"``
            offline); folders only.
        strategy: the Labeler's acquisition strategy (and the Session's, for a folder).
        batch: items the Labeler asks for at a time.
        map_height: height in px of the map's drawing area.
        map_layout: "umap", "pca" or (N, 2) coordinates; default: the Session's layout
            if it has one, else "umap" (PCA at once, UMAP in the background).
        **session_kwargs: more ``Session.open`` options (folders only).
    """

    def __init__(self, path_or_session: Any, *, project: Any = None, model: str | None = None,
                 strategy: str = "auto", batch: int = 8, map_height: int = 560,
                 map_layout: Any = None, **session_kwargs: Any) -> None:
        session, self._owns_session = open_session(
            path_or_session, project=project, model=model, strategy=strategy, **session_kwargs)
        super().__init__()
        self.init_view(session)
        self._closed = False
        views: list[Any] = []
        try:
            self.map = EmbeddingMap(session, height=int(map_height),
                                    layout=_map_layout(session, map_layout))
            views.append(self.map)
            self.search = VisualSearch(session, thumb_size=64)
            views.append(self.search)
            self.labeler = Labeler(session, strategy=strategy, batch=int(batch), image_size=200)
            views.append(self.labeler)
            self.trainer = Trainer(session)
            views.append(self.trainer)
            self.rules = RulesPanel(session)  # issue 18
            views.append(self.rules)
        except Exception:
            for view in views:
                view.close()
            self._closed = True
            W.VBox.close(self)
            if self._owns_session:
                session.close()
            raise
        self._build(int(map_height))
        self._refresh_soon = Throttle(self.refresh, interval=0.3)
        for event in HEADER_EVENTS:
            self.listen(event, self._refresh_soon)
        self.refresh()

    # ------------------------------------------------------------------ layout
    def _build(self, map_height: int) -> None:
        style = W.HTML(WORKBENCH_CSS)
        style.add_class("dfw-wb-style")
        self.header = W.HTML()
        self.header.add_class("dfw-wb-header")
        self.import_button = W.Button(icon="download", button_style="primary",
                                      tooltip="session.import_labels(source='folders')")
        self.import_button.on_click(self._on_import_click)
        self.import_button.add_class("dfw-wb-import")
        self.import_message = W.HTML()
        self.import_message.add_class("dfw-wb-msg")
        self.undo_import_button = W.Button(description="Undo the import", icon="undo",
                                           layout=W.Layout(display="none"))
        self.undo_import_button.add_class("dfw-wb-undo")
        self.undo_import_button.on_click(self._on_undo_import_click)
        self._message_row = W.HBox([self.import_message, self.undo_import_button],
                                   layout=W.Layout(display="none"))
        self._message_row.add_class("dfw-wb-msgrow")
        self._offer = W.Box([self.import_button])
        self._offer.add_class("dfw-wb-offer")
        top = W.Box([self.header, self._offer, self._message_row])
        top.add_class("dfw-wb-top")

        for view in (self.search, self.labeler, self.trainer, self.rules):
            view.layout.width = "100%"
            view.add_class("dfw-wb-pane")
        self.tabs = W.Tab(children=[self.search, self.labeler, self.trainer, self.rules])
        self.tabs.titles = TABS
        self.tabs.selected_index = 1 if len(self.session.classes) >= 2 else 0
        self.tabs.add_class("dfw-wb-side")
        # beside the map the tabs take the map's height (CSS stretch, the pane scrolls);
        # under it (narrow screens) at least about the same
        self.tabs.layout.min_height = f"{map_height + MAP_CHROME}px"
        self.map.add_class("dfw-wb-map")
        body = W.Box([self.map, self.tabs])
        body.add_class("dfw-wb-body")
        self.children = [style, top, body]
        self.add_class("dfw-workbench")
        self._parts = [style, self.header, self.import_button, self.import_message,
                       self.undo_import_button, self._message_row, self._offer, top,
                       self.tabs, body]

    def show(self, name: str) -> None:
        """Switch the tab beside the map: "Search", "Label" or "Train"."""
        names = {t.lower(): i for i, t in enumerate(TABS)}
        key = str(name).strip().lower()
        if key not in names:
            raise ValueError(f"Unknown tab {name!r}; use one of {', '.join(TABS)}.")
        self.tabs.selected_index = names[key]

    # ------------------------------------------------------------------ header
    def refresh(self) -> None:
        """Redraw the header and the import offer from ``session.status()`` now (events
        do this by themselves, at most a few times per second)."""
        if self._closed:
            return
        status: dict = {}
        try:
            status = self.session.status()
            text = header_html(status)
        except Exception as exc:
            log.exception("the Workbench header could not be updated")
            text = (f'<span class="dfw-wb-error">Could not read the session status: '
                    f"{html.escape(error_text(exc))}</span>")
        if text != self.header.value:
            self.header.value = text
        self._refresh_offer(status.get("folder_labels"))

    def _refresh_offer(self, n: int | None = None) -> None:
        try:
            n = int(self.session.folder_labels_available() if n is None else n)
        except Exception:
            log.exception("folder_labels_available failed")
            n = 0
        self.import_button.description = import_offer_text(n) if n else ""
        self.import_button.layout.display = "" if n > 0 else "none"
        self._offer.layout.display = "" if n > 0 else "none"

    def wait(self, timeout: float = 5.0) -> None:
        """Wait until a pending header refresh has run (scripts and tests)."""
        self._refresh_soon.flush(timeout)

    @property
    def import_offered(self) -> int:
        """Folder labels the import button offers now (0: the button is hidden)."""
        if self.import_button.layout.display == "none":
            return 0
        return int(self.session.folder_labels_available())

    # ------------------------------------------------------------------ import
    def _on_import_click(self, _button: Any = None) -> None:
        self.import_button.disabled = True
        self.show_message("Importing the labels of the class sub-folders...")
        try:
            result = self.run_safely(self.session.import_labels, source="folders",
                                     what="Importing the labels")
            if result is not None:
                self.show_message(import_result_text(result), kind="ok",
                                  undo=bool(result.get("imported")))
        finally:
            self.import_button.disabled = False
            self.refresh()

    def _on_undo_import_click(self, _button: Any = None) -> None:
        n = self.run_safely(self.session.undo, source="import", what="Undoing the import")
        if n is not None:
            self.show_message(f"Undid the import ({n:,} labels removed)." if n else
                              "Nothing to undo.", kind="ok" if n else "info")
        self.refresh()

    def show_message(self, text: str, *, kind: str = "info", **extra: Any) -> None:
        """Show ``text`` under the header; ``kind`` "info", "ok" or "error";
        ``undo=True`` offers "Undo the import" beside it. "" hides the message."""
        cls = {"ok": "dfw-wb-ok", "error": "dfw-wb-error"}.get(kind, "dfw-wb-muted")
        self.import_message.value = (f'<span class="{cls}">{html.escape(str(text))}</span>'
                                     if text else "")
        self.undo_import_button.layout.display = "" if extra.get("undo") else "none"
        self._message_row.layout.display = "" if text else "none"

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        """Close the header listeners and all four views; the Session too if the
        Workbench opened it from a folder."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        self._refresh_soon.close()
        self.unlisten_all()
        for name in ("map", "search", "labeler", "trainer", "rules"):
            view = getattr(self, name, None)
            if view is not None:
                try:
                    view.close()
                except Exception:
                    log.exception("closing the Workbench's %s failed", name)
        for part in getattr(self, "_parts", []):
            part.close()
        W.VBox.close(self)
        if self._owns_session:
            self.session.close()

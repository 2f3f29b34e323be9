"""The data-issue report of a Session: what it feeds ``learn.data_issues`` (the neighbour
graph of the embeddings, content hashes from the source, grey thumbnails, out-of-fold
probabilities of the labeled items), the background run with its progress, and the items
acquisition must skip (excluded ones and the second copies of duplicates).

Emits ``"issues_changed"`` (the report DataFrame, or None while it runs / after a failure).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from .session import Session

__all__ = ["DataIssues", "find_issues", "part"]

log = logging.getLogger(__name__)

K = 10  # neighbours per item in the graph
OOF_FOLDS = 3  # out-of-fold folds: 3 fits of the linear probe instead of 5 (~2x faster)


class DataIssues:
    """``report_`` (DataFrame or None), ``status_`` {state, progress, message, error}."""

    def __init__(self, session: Session) -> None:
        self._s = session
        self.report_: pd.DataFrame | None = None
        self.status_: dict[str, Any] = {"state": "none", "progress": 0.0, "message": "",
                                        "error": None}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._graph: Any = None
        self._thumbs: np.ndarray | None = None

    # ------------------------------------------------------------------ running
    def find(self, *, background: bool = False) -> pd.DataFrame | None:
        """Compute the report (see :meth:`Session.find_issues`); in the background return
        None at once and emit ``"issues_changed"`` when done (``status_`` has the progress)."""
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return None if background else self._wait_and_get()
            self.status_ = {"state": "running", "progress": 0.0, "message": "starting",
                            "error": None}
            if background:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=f"dfw-issues-{self._s.path.name}")
                self._thread.start()
                return None
        self._run(raise_errors=True)
        return self.open_issues()

    def _wait_and_get(self) -> pd.DataFrame | None:
        thread = self._thread
        if thread is not None:
            thread.join()
        return self.open_issues()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no search runs; False on timeout."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def _progress(self, fraction: float, message: str) -> None:
        """Detection progress ``fraction`` (0-1) -> the last 70% of the bar."""
        self._stage(0.3 + 0.7 * fraction, message)

    def _stage(self, progress: float, message: str) -> None:
        self.status_ = {**self.status_, "progress": round(progress, 3), "message": message}

    def _run(self, raise_errors: bool = False) -> None:
        s = self._s
        try:
            report = self._compute()
        except Exception as exc:  # never silent: the Labeler and the header say it
            if self._closed():
                log.debug("the session closed during the data-issue search: %s", exc)
                return
            self.status_ = {"state": "failed", "progress": 0.0, "error":
                            f"{type(exc).__name__}: {exc}", "message": "the search failed"}
            log.exception("data-issue search failed")
            s._events.emit("issues_changed", None)
            if raise_errors:
                raise
            return
        self.report_ = report
        self.status_ = {"state": "done", "progress": 1.0, "message": "done", "error": None}
        if not self._closed():
            s._events.emit("issues_changed", self.open_issues())

    def _closed(self) -> bool:
        """The Session was closed (e.g. while a background search ran)."""
        return bool(getattr(self._s._labels, "closed", False))

    # ------------------------------------------------------------------ inputs
    def graph(self) -> Any:
        """(N, N) CSR cosine-distance graph of the K nearest items (built once), from the
        Session's shared neighbour table (``Neighbours.table``)."""
        if self._graph is None:
            from ..learn.data_issues import knn_graph

            sims, idx = self._s._neighbours.table(k=K)
            self._graph = knn_graph(idx, 1.0 - sims)
        return self._graph

    def thumbs(self) -> np.ndarray | None:
        """(N, 32, 32) grey thumbnails from the source (its array at once; else each item
        decoded once through the source)."""
        if self._thumbs is None:
            from ..learn.data_issues import THUMB, thumbnails

            src = self._s.source
            arr = getattr(src, "array", None)
            if arr is not None:
                self._thumbs = thumbnails(arr)
            else:
                chunks, n = [], len(src)
                for lo in range(0, n, 1024):
                    imgs = [np.asarray(src[i].convert("L").resize((THUMB, THUMB)))
                            for i in range(lo, min(n, lo + 1024))]
                    chunks.append(thumbnails(np.stack(imgs)))
                    self._stage(0.1 + 0.15 * min(1.0, (lo + 1024) / n), "reading images")
                self._thumbs = np.concatenate(chunks)
        return self._thumbs

    def _probabilities(self, codes: np.ndarray, n_classes: int) -> np.ndarray | None:
        """(N, K) out-of-fold probabilities of the labeled, not excluded items (zeros
        elsewhere); None with fewer than 2 classes of 2+ labels."""
        from ..learn.issues import out_of_fold_probs

        rows = np.flatnonzero(codes >= 0)
        counts = np.bincount(codes[rows], minlength=n_classes)
        rows = rows[counts[codes[rows]] >= 2]
        if np.unique(codes[rows]).size < 2:
            return None
        cls, probs = out_of_fold_probs(self._s._fit.model_features()[rows], codes[rows],
                                       n_folds=OOF_FOLDS)
        out = np.zeros((len(codes), n_classes), dtype=np.float32)
        out[np.ix_(rows, np.asarray(cls, dtype=np.int64))] = probs
        return out

    def _compute(self) -> pd.DataFrame:
        from ..learn.data_issues import find_data_issues

        s = self._s
        s._labels.sync_if_moved()
        _, codes, classes = s._labels.snapshot()
        codes = np.where(s.excluded_mask(), -1, codes)
        self._stage(0.0, "neighbour graph")
        graph = self.graph()
        self._stage(0.1, "thumbnails")
        thumbs = self.thumbs()
        self._stage(0.25, "out-of-fold probabilities")
        probs = self._probabilities(codes, len(classes))
        hashes = s.source.content_hashes() if hasattr(s.source, "content_hashes") else None
        report = find_data_issues(graph=graph, hashes=hashes, thumbs=thumbs, labels=codes,
                                  pred_probs=probs, class_names=classes, prefer=codes >= 0,
                                  progress=self._progress)
        report.insert(1, "item_id", s.ids[report["index"].to_numpy()])
        return report

    # ------------------------------------------------------------------ reading
    def open_issues(self) -> pd.DataFrame | None:
        """The report without excluded items and without groups left with one member."""
        report = self.report_
        if report is None:
            return None
        out = report[~self._s.excluded_mask()[report["index"].to_numpy()]]
        grouped = out["group"] >= 0
        sizes = out.loc[grouped].groupby(["kind", "group"])["index"].transform("size")
        lone = pd.Series(False, index=out.index)
        lone.loc[sizes.index] = sizes.to_numpy() < 2
        return out[~lone].reset_index(drop=True)

    def n_open(self) -> int | None:
        """Items with an open issue (class imbalance not counted); None before a search."""
        report = self.open_issues()
        if report is None:
            return None
        return int(report.loc[report["kind"] != "class_imbalance", "index"].nunique())

    def neighbours(self, index: int, *, k: int = 5) -> np.ndarray:
        """(<= k,) nearest items of item ``index`` in the neighbour graph, nearest first."""
        graph = self.graph()
        i = int(self._s.check_indices([index])[0])
        row = graph.indices[graph.indptr[i]:graph.indptr[i + 1]]
        return np.asarray(row[:k], dtype=np.int64)

    def skip_mask(self) -> np.ndarray:
        """(N,) bool: excluded items and the copies of duplicate groups (not the one to
        keep): acquisition never asks for them."""
        s = self._s
        mask = s.excluded_mask()
        report = self.open_issues()
        if report is not None and len(report):
            dup = report["kind"].isin(["exact_duplicate", "near_duplicate"]).to_numpy()
            copy = report["suggestion"].to_numpy(dtype=object) != "keep"
            mask[report["index"].to_numpy()[dup & copy]] = True
        return mask

    def exclusions_changed(self) -> None:
        """Exclusions moved: views re-read the open issues."""
        if self.report_ is not None:
            self._s._events.emit("issues_changed", self.open_issues())


def part(session: Session) -> DataIssues:
    """The Session's DataIssues part (made on first use)."""
    found = session.__dict__.get("_issues_part")
    if found is None:
        found = session.__dict__.setdefault("_issues_part", DataIssues(session))
    return found


def find_issues(session: Session, *, background: bool = False) -> pd.DataFrame | None:
    """Data issues: DataFrame[index, item_id, kind ("exact_duplicate" | "near_duplicate" |
    "outlier" | "label_error" | "class_imbalance"), score (0-1, higher = clearer), group
    (duplicate group, -1 otherwise), suggestion ("keep" / "exclude: a copy of i" /
    "relabel as 'x'" ...), suggested (class for a label error)]; excluded items left out.
    ``background=True`` returns None at once; ``"issues_changed"`` fires when done."""
    return part(session).find(background=background)

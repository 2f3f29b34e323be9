"""Where a Session stands, in numbers and in words: what the Workbench header shows.

:func:`status` gathers the counts, the accuracy estimate and the fit state;
:func:`next_step` turns them into one sentence with :func:`dfwidgets.learn.advice.next_step`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ..learn import advice
from ..learn.training_report import curve_points
from .label_import import folder_labels_available

if TYPE_CHECKING:
    from .session import Session

__all__ = ["next_step", "status"]


def status(session: Session) -> dict[str, Any]:
    """What the Workbench header shows: dict(n_items, n_labeled, n_classes, per_class
    {class: labels} (store order, zeros included), n_selected, estimate, low, high (the
    accuracy estimate on the unlabeled items with its 95% interval; None before a model),
    fit_status, fitting, fit_error, folder_labels (folder labels not imported yet),
    next_step (one sentence))."""
    s = session
    per_class = _per_class(s)
    est = s.accuracy_estimate()
    folder = folder_labels_available(s)
    return {
        "n_items": len(s.ids), "n_labeled": sum(per_class.values()),
        "n_classes": len(per_class), "per_class": per_class,
        "n_selected": len(s.selection),
        "estimate": est["estimate"], "low": est["low"], "high": est["high"],
        "fit_status": s.fit_status_, "fitting": bool(s.fitting), "fit_error": s.fit_error_,
        "folder_labels": folder,
        "next_step": _advise(s, per_class, folder),
        "n_issues": s.issues.n_open(),  # issue 19: open data issues, None before a search
    }


def next_step(session: Session) -> str:
    """The next useful step in words (``learn.advice.next_step`` over the label counts,
    the learning curve, folder labels waiting and the last fit error)."""
    return _advise(session, _per_class(session), folder_labels_available(session))


def _per_class(s: Session) -> dict[str, int]:
    """Labels per class, every class of the store in its order (zeros included)."""
    codes = s.label_array()
    classes = s.classes
    counts = np.bincount(codes[(codes >= 0) & (codes < len(classes))],
                         minlength=len(classes))
    return {str(c): int(n) for c, n in zip(classes, counts)}


def _advise(s: Session, per_class: dict[str, int], folder: int) -> str:
    points = curve_points(s.curve)
    return advice.next_step(
        per_class, n_items=len(s.ids),
        curve_labels=points["n_labels"].to_numpy(dtype=float),
        curve_accuracy=points["accuracy"].to_numpy(dtype=float),
        folder_labels=folder, fit_error=s.fit_error_)

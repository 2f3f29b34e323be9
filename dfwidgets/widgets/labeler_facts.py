"""What the Labeler tells the page about items and progress, asked of the Session:
an item's top guesses (class names from ``model_classes_``, the columns of ``probs_``),
its review details, and the status line."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["item_facts", "top_guesses", "status_line"]

log = logging.getLogger(__name__)


def top_guesses(session: Any, index: int, *, k: int = 3) -> list[list]:
    """The model's top-``k`` classes for item ``index`` as [[name, probability], ...]
    (empty before a model)."""
    probs = session.probs_
    if probs is None:
        return []
    row = np.asarray(probs[index], dtype=np.float64)
    names = [str(c) for c in session.model_classes_]
    if len(names) != row.shape[0]:  # should not happen: name the columns by position
        names = [f"class {j}" for j in range(row.shape[0])]
    order = np.argsort(-row)[:k]
    return [[names[j], round(float(row[j]), 4)] for j in order]


def item_facts(session: Any, index: int, issues: Any = None) -> dict[str, Any]:
    """JSON facts about item ``index``: id, top-3 guesses, and for a suspected label error
    (a row of ``issues``, ``session.label_issues()``) the given and suggested class."""
    i = int(index)
    facts: dict[str, Any] = {"index": i, "id": str(session.ids[i]),
                             "guesses": top_guesses(session, i)}
    if issues is not None and len(issues):
        row = issues[issues["index"] == i]
        if len(row):
            facts["given"] = str(row["given"].iloc[0])
            facts["suggested"] = str(row["suggested"].iloc[0])
            facts["score"] = float(row["score"].iloc[0])
    return facts


def status_line(session: Any, *, answer_times: Sequence[float], issues: int | None,
                strategy: str) -> dict[str, Any]:
    """labeled, accuracy {estimate, low, high, n} | None, per_minute | None (from the
    monotonic times of the last answers), issues | None, strategy, fit_error (why the
    last background fit failed) | None."""
    labeled = int((np.asarray(session.label_array()) >= 0).sum())
    accuracy = None
    try:
        est = session.accuracy_estimate()
        if est and est.get("estimate") is not None:  # the same number as the Workbench header
            accuracy = {k: float(est[k]) for k in ("estimate", "low", "high")}
            accuracy["n"] = int(est.get("n") or 0)
    except Exception as exc:  # noqa: BLE001 - no model yet
        log.debug("no accuracy estimate: %s", exc)
    times = list(answer_times)
    per_minute = None
    if len(times) >= 3 and times[-1] > times[0]:
        per_minute = round(60.0 * (len(times) - 1) / (times[-1] - times[0]), 1)
    fit_error = getattr(session, "fit_error_", None)  # a failed background fit is said
    return {"labeled": labeled, "accuracy": accuracy, "per_minute": per_minute,
            "issues": issues, "strategy": strategy,
            "fit_error": str(fit_error) if fit_error else None}

"""What colours the EmbeddingMap's points: labels, predictions, uncertainty, difficulty
or a user's array, asked of the Session (class names of predictions from
``session.predicted_labels()``, the one place views get them)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .palettes import MAX_CATEGORIES, categorical_codes, continuous_codes

__all__ = ["COLOR_MODES", "RULE_MODES", "point_colors"]

COLOR_MODES = ("label", "prediction", "uncertainty", "difficulty", "weak label", "no rule",
               "issue")
RULE_MODES = ("weak label", "no rule")  # issue 18: recoloured on "rules_changed" too
MAX_INTEGER_CATEGORIES = 30  # integer arrays with at most this many values are categories


def point_colors(session: Any, mode: str, custom: np.ndarray | None = None
                 ) -> tuple[np.ndarray, list[str], dict, str | None]:
    """Colours of all N points for ``mode`` -> (codes (N,) into palette, palette, legend,
    note): ``note`` is a hint for the user (e.g. "no model yet"), else None."""
    n = len(session.ids)
    classes = [str(c) for c in session.classes]
    none = np.full(n, -1)
    if mode == "label":
        return (*categorical_codes(session.label_array(), classes, title="label",
                                   none_name="unlabeled"), None)
    if mode in RULE_MODES:
        return rule_colors(session, mode, classes)
    if mode == "issue":  # issue 19: the kind of each item's first open data issue
        return issue_colors(session)
    if mode in ("prediction", "uncertainty", "difficulty") and session.probs_ is None:
        note = (f"No model yet ({session.fit_status_}); "
                + ("points are grey until one is trained." if mode == "prediction"
                   else f"{mode} needs a trained model."))
        names = classes if mode == "prediction" else []
        return (*categorical_codes(none, names, title=mode, none_name="no model yet"), note)
    if mode == "prediction":
        return (*categorical_codes(prediction_codes(session, classes), classes,
                                   title="prediction", none_name="none"), None)
    if mode == "uncertainty":
        return (*continuous_codes(np.asarray(session.uncertainty_, float),
                                  title="uncertainty (1 − max p)"), None)
    if mode == "difficulty":
        difficulty = session.difficulty()
        if difficulty is None:
            note = f"No model yet ({session.fit_status_}); difficulty needs a trained model."
            return (*categorical_codes(none, [], title=mode, none_name="no model yet"), note)
        return (*difficulty_colors(difficulty), None)
    if mode != "custom":
        raise ValueError(f"unknown colour mode {mode!r}")
    return (*custom_colors(custom), None)


def issue_colors(session: Any) -> tuple[np.ndarray, list[str], dict, str | None]:
    """"issue": each item's first open data issue kind (grey: none, or no search yet)."""
    kinds = ["exact_duplicate", "near_duplicate", "outlier", "label_error", "class_imbalance"]
    report = session.issues.open_issues()
    codes = np.full(len(session.ids), -1)
    note = None
    if report is None:
        note = "No data-issue search yet: run session.find_issues() (or the Labeler's review)."
    else:
        first = report.drop_duplicates("index")
        codes[first["index"].to_numpy()] = [kinds.index(k) for k in first["kind"]]
    return (*categorical_codes(codes, kinds, title="issue", none_name="no issue"), note)


def rule_colors(session: Any, mode: str, classes: list[str]
                ) -> tuple[np.ndarray, list[str], dict, str | None]:
    """"weak label": the rules' label-model class per item (grey: no rule votes, or an
    audit item); "no rule": the items no enabled rule covers."""
    n = len(session.ids)
    if not session.rules.all() or len(classes) < 2:
        return (*categorical_codes(np.full(n, -1), [], title=mode, none_name="no rules"),
                "No rules yet: add one in the Rules tab (or session.rules).")
    if mode == "no rule":
        _, abstain = session.weak_labels(method="majority")
        return (*categorical_codes(abstain.astype(np.int64) - 1, ["no rule"], title=mode,
                                   none_name="covered"), None)
    probs, abstain = session.weak_labels()
    codes = np.where(abstain, -1, probs.argmax(axis=1))
    return (*categorical_codes(codes, classes, title="weak label", none_name="no weak label"),
            None)


def prediction_codes(session: Any, classes: list[str]) -> np.ndarray:
    """(N,) int64 position in ``classes`` of each item's predicted class (-1: none)."""
    names = session.predicted_labels()
    if names is None:
        return np.full(len(session.ids), -1, dtype=np.int64)
    lookup = {name: k for k, name in enumerate(classes)}
    return np.fromiter((lookup.get(str(v), -1) for v in names), dtype=np.int64,
                       count=len(names))


def difficulty_colors(difficulty: Any) -> tuple[np.ndarray, list[str], dict]:
    """Colours for ``session.difficulty()``: its ordered categories (easy / medium / hard)
    as categories, or a ramp if it holds numbers."""
    cat = getattr(difficulty, "cat", None)
    if cat is not None:
        return categorical_codes(np.asarray(cat.codes, dtype=np.int64),
                                 [str(c) for c in cat.categories], title="difficulty",
                                 none_name="none")
    return continuous_codes(np.asarray(difficulty, float), title="difficulty")


def custom_colors(arr: np.ndarray | None) -> tuple[np.ndarray, list[str], dict]:
    """Colours for a user's (N,) array: strings or few integers are categories, other
    numbers a ramp."""
    if arr is None:
        raise ValueError("no color_by array was given")
    small = _small_int_categories(arr)
    if small is not None:
        return categorical_codes(*small, title="custom", none_name="none")
    few = arr.dtype.kind in "iu" and len(np.unique(arr)) <= MAX_INTEGER_CATEGORIES
    if arr.dtype.kind in "OUSb" or few:
        names, codes = np.unique(arr.astype(str) if arr.dtype.kind in "OUSb" else arr,
                                 return_inverse=True)
        if len(names) > MAX_CATEGORIES:
            raise ValueError(f"{len(names)} categories are too many to colour; pass numbers for a ramp.")
        return categorical_codes(codes, [str(v) for v in names], title="custom", none_name="none")
    return continuous_codes(arr.astype(float), title="custom")


def _small_int_categories(arr: np.ndarray) -> tuple[np.ndarray, list[str]] | None:
    """(codes (N,), names) for integers in 0..255 with few distinct values, by bincount
    (np.unique hashes: ~1 s at 1M items; this ~10 ms); None for anything else."""
    if arr.dtype.kind not in "iu" or arr.size == 0 or arr.min() < 0 or arr.max() > 255:
        return None
    present = np.flatnonzero(np.bincount(arr.astype(np.intp), minlength=1))
    if len(present) > MAX_INTEGER_CATEGORIES:
        return None
    lookup = np.zeros(int(present[-1]) + 1, dtype=np.int64)
    lookup[present] = np.arange(len(present))
    return lookup[arr.astype(np.intp)], [str(v) for v in present]


def item_info(session: Any, index: int) -> dict[str, Any]:
    """Hover/pin details of item ``index``: id, label, prediction (class name) and
    confidence (the model's top probability)."""
    i = int(index)
    label = session.label_array()[i]
    classes = list(session.classes)
    out: dict[str, Any] = {"index": i, "id": str(session.ids[i]),
                           "label": str(classes[label]) if label >= 0 else None}
    names = session.predicted_labels()
    confidence = session.confidence_
    if names is not None and confidence is not None:
        out["prediction"] = None if names[i] is None else str(names[i])
        out["confidence"] = float(confidence[i])
    return out

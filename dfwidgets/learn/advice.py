"""The next useful step in words, from label counts and the learning curve (pure).

:func:`next_step` reads plain numbers (labels per class, curve points, counts) and returns
one short sentence with the numbers and class names in it, e.g. for the Workbench header.
Checks run in order; the first that applies wins: a failed fit, labels waiting in class
sub-folders, fewer than two classes, no labels, classes with too few labels, everything
labeled, and then the learning curve (falling, flat or rising).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["FLAT_GAIN", "FLAT_WINDOW", "MIN_PER_CLASS", "next_step"]

MIN_PER_CLASS = 5     # fewer labels than this in a class: label that class first
FLAT_WINDOW = 200     # labels over which the curve is judged
FLAT_GAIN = 0.01      # less gain than this (1 point) over FLAT_WINDOW labels = flat
DROP = 0.03           # a loss of more than 3 points over the window = look for mistakes
MAX_NAMED = 4         # classes named in one sentence
MAX_ERROR = 120       # characters of a fit error quoted


def next_step(per_class: Mapping[str, int], *, n_items: int,
              curve_labels: Sequence[int] | np.ndarray = (),
              curve_accuracy: Sequence[float] | np.ndarray = (),
              folder_labels: int = 0, fit_error: str | None = None,
              min_per_class: int = MIN_PER_CLASS, flat_window: int = FLAT_WINDOW,
              flat_gain: float = FLAT_GAIN) -> str:
    """One sentence: what to do next.

    ``per_class``: class name -> labels (every class, in display order, zeros included);
    ``n_items``: items in the dataset; ``curve_labels`` / ``curve_accuracy``: (P,) label
    counts and accuracies in [0, 1] of the learning curve (NaN points are ignored);
    ``folder_labels``: folder labels not imported yet; ``fit_error``: the last fit's error.
    """
    n = np.asarray(curve_labels, dtype=float).reshape(-1)
    acc = np.asarray(curve_accuracy, dtype=float).reshape(-1)
    if n.shape != acc.shape:
        raise ValueError(f"curve_labels {n.shape} and curve_accuracy {acc.shape} must match.")
    counts = {str(c): int(k) for c, k in per_class.items()}
    n_labeled = sum(counts.values())
    if fit_error:
        text = " ".join(str(fit_error).split())
        text = text if len(text) <= MAX_ERROR else text[:MAX_ERROR - 3] + "..."
        return f"The last model fit failed: {text}. Fix that, then label an item to retry."
    if folder_labels > 0:
        return (f"Import the {folder_labels:,} {_plural(folder_labels, 'label')} from the "
                "class sub-folders (the Import button in the Workbench header).")
    if len(counts) == 0:
        return "Name your classes: add at least two (type a name in Label or Search)."
    if len(counts) == 1:
        return (f"Name a second class: only {next(iter(counts))!r} so far (type a name in "
                "Label or Search).")
    if n_labeled == 0:
        return (f"No labels yet: give each of the {len(counts)} classes one example "
                "(Search), then label in the Label tab.")
    low = sorted((n, i, c) for i, (c, n) in enumerate(counts.items()) if n < min_per_class)
    if low:
        named = ", ".join(f"{c} {n}" for n, _, c in low[:MAX_NAMED])
        more = f" and {len(low) - MAX_NAMED} more" if len(low) > MAX_NAMED else ""
        who = "1 class has" if len(low) == 1 else f"{len(low)} classes have"
        them = "it" if len(low) == 1 else "them"
        return (f"{who} fewer than {min_per_class} labels: {named}{more} - label {them} "
                "(Search: one example each).")
    if n_labeled >= n_items:
        return (f"All {n_items:,} items are labeled: train the final model (Train tab) "
                "and export it.")
    return _curve_step(n, acc, flat_window=flat_window, flat_gain=flat_gain)


def _curve_step(n: np.ndarray, acc: np.ndarray, *, flat_window: int, flat_gain: float) -> str:
    """The advice once every class has enough labels, from the (P,) curve points."""
    ok = np.isfinite(n) & np.isfinite(acc)
    n, acc = n[ok], acc[ok]
    keep = "Keep labeling the uncertain items (Label tab)"
    if n.size == 0:
        return f"{keep}; the accuracy shows once a model is trained."
    order = np.argsort(n, kind="stable")
    n, acc = n[order], acc[order]
    last_n, last_acc = n[-1], acc[-1]
    window = min(float(flat_window), last_n - n[0])
    if window <= 0:
        return f"{keep}: accuracy {last_acc:.0%} at {int(last_n):,} labels."
    gain = last_acc - float(np.interp(last_n - window, n, acc))
    over = f"over the last {int(window):,} labels"
    if window >= flat_window and gain < -DROP:
        return (f"Accuracy fell {_points(-gain)} points {over} ({last_acc:.0%} now): "
                "check recent labels for mistakes (Label tab, review mode).")
    if window >= flat_window and gain < flat_gain:
        return (f"Accuracy has been flat for the last {flat_window:,} labels "
                f"({last_acc:.0%}): try fine-tuning, or stop here.")
    trend = "still rising" if gain > 0 else "not rising yet"
    return f"{keep}: accuracy is {trend} ({_signed(gain)} points {over}, {last_acc:.0%} now)."


def _points(fraction: float) -> str:
    """Percentage points: whole numbers from 2 up, else one decimal."""
    value = abs(fraction) * 100
    return f"{value:.0f}" if value >= 2 else f"{value:.1f}"


def _signed(fraction: float) -> str:
    return ("+" if fraction >= 0 else "-") + _points(fraction)


def _plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"

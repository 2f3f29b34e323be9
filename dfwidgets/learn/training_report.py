"""The numbers a training report shows: learning-curve points, a random-sampling baseline,
an estimate of the labels still needed, the confusion matrix and per-class accuracy.

Pure functions over arrays and DataFrames (no Session, no store); the Session's
``training`` part calls them with its arrays and the Trainer widget only draws the results.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from .learning_curve import LearningCurveFit
from .simulation import SimulationResult, simulate

__all__ = [
    "CURVE_COLUMNS", "baseline_budgets", "baseline_curve", "baseline_grid_top", "baseline_pool",
    "confusion", "curve_points", "finetune_run",
    "per_class_accuracy", "random_baseline", "saving", "stop_estimate",
]

CURVE_COLUMNS = ["n_labels", "accuracy", "low", "high", "measured"]
GROUND_TRUTH = "ground truth"
ESTIMATED = "estimated: confidence + audit"
BASELINE_SEEDS = (0, 1)


def curve_points(curve: pd.DataFrame | None) -> pd.DataFrame:
    """One point per label count from learning-curve records (the latest record wins):
    DataFrame[n_labels, accuracy, low, high, measured], sorted by n_labels.

    ``curve``: records with n_labels and either ``true_accuracy`` (used when any is known;
    low/high NaN, measured "ground truth") or ``accuracy``, ``low``, ``high`` (the
    confidence + audit estimate with its 95% interval). Rows without accuracy are dropped.
    """
    if curve is None or len(curve) == 0:
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curve = curve.copy()
    if "true_accuracy" in curve and curve["true_accuracy"].notna().any():
        curve["acc"] = curve["true_accuracy"]
        curve["lo"] = curve["hi"] = np.nan
        measured = GROUND_TRUTH
    else:
        curve["acc"] = curve.get("accuracy")
        curve["lo"], curve["hi"] = curve.get("low"), curve.get("high")
        measured = ESTIMATED
    curve = curve[pd.to_numeric(curve["acc"], errors="coerce").notna()]
    if not len(curve):
        return pd.DataFrame(columns=CURVE_COLUMNS)
    curve = curve.groupby("n_labels", as_index=False).last().sort_values("n_labels")
    return pd.DataFrame({
        "n_labels": curve["n_labels"].astype(int).to_numpy(),
        "accuracy": curve["acc"].astype(float).to_numpy(),
        "low": pd.to_numeric(curve["lo"], errors="coerce").to_numpy(dtype=float),
        "high": pd.to_numeric(curve["hi"], errors="coerce").to_numpy(dtype=float),
        "measured": measured,
    }, columns=CURVE_COLUMNS)


def baseline_budgets(top: int) -> list[int]:
    """Label counts for the random baseline: from 10 (or ``top``) to ``top``, up to 8
    geometric steps."""
    top = int(max(top, 2))
    start = min(10, top)
    grid = np.unique(np.geomspace(start, top, 8).round().astype(int))
    return [int(b) for b in grid if b >= 1]


def baseline_grid_top(top: int) -> int:
    """``top`` rounded up to 64 * 4^k, so the baseline is not recomputed after every label."""
    return int(64 * 4 ** max(0, np.ceil(np.log(max(top, 2) / 64) / np.log(4))))


def baseline_pool(labels: np.ndarray, holdout: np.ndarray, *, size: int,
                  seed: int = 7) -> np.ndarray:
    """(M,) sorted int64 items to simulate on: up to ``size`` items drawn at random from
    those with a label (``labels`` (N,) >= 0) outside ``holdout`` (H,)."""
    pool = np.setdiff1d(np.flatnonzero(np.asarray(labels) >= 0), np.asarray(holdout))
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(pool, size=min(int(size), pool.size), replace=False))


def random_baseline(embeddings: np.ndarray, labels: Sequence[Any], *, top: int,
                    test: tuple[np.ndarray, Sequence[Any]] | None = None,
                    seeds: Sequence[int] = BASELINE_SEEDS) -> SimulationResult:
    """Simulated random sampling on a labeled pool: ``embeddings`` (P, D), ``labels`` (P,)
    class names; accuracy measured at :func:`baseline_budgets` ``(top)`` label counts on
    ``test`` = (embeddings (T, D), labels (T,)) or, without it, on a held-out share of the
    pool. Returns the :class:`~dfwidgets.learn.simulation.SimulationResult`."""
    return simulate(embeddings, np.asarray(labels, dtype=object), strategies=("random",),
                    budgets=baseline_budgets(top), seeds=tuple(seeds), initial="random",
                    test=test, progress=False)


def baseline_curve(sim: SimulationResult | None) -> tuple[list[int], list[float]]:
    """(label counts, mean accuracy over seeds) of random sampling; empty without ``sim``."""
    if sim is None:
        return [], []
    mean = sim.mean_curves()["random"]
    return [int(n) for n in mean.index], [float(a) for a in mean]


def saving(points: pd.DataFrame, sim: SimulationResult | None) -> dict[str, Any]:
    """How many labels random sampling would need for the latest point's accuracy:
    dict(n_labels, accuracy, measured, random_needed, simulated_up_to, ratio, verdict).

    ``random_needed``: labels (interpolated) where the simulated random curve reaches the
    same accuracy; ``inf`` when it never did within ``simulated_up_to`` labels; None
    without a baseline or a point (or at accuracy 0 or 1). ``ratio`` = random_needed /
    n_labels; ``verdict``: "saved" (ratio > 1.05), "same" (0.95-1.05), "worse" or None.
    """
    out: dict[str, Any] = {"n_labels": None, "accuracy": None, "measured": None,
                           "random_needed": None, "simulated_up_to": None, "ratio": None,
                           "verdict": None}
    if not len(points):
        return out
    n = int(points["n_labels"].iloc[-1])
    acc = float(points["accuracy"].iloc[-1])
    out.update(n_labels=n, accuracy=acc, measured=str(points["measured"].iloc[0]))
    if sim is None:
        return out
    out["simulated_up_to"] = int(sim.mean_curves().index.max())
    if not 0 < acc < 1:
        return out
    need = float(sim.labels_needed(acc)["random"])
    if not np.isfinite(need):
        out["random_needed"] = float("inf")
        return out
    ratio = need / n
    out.update(random_needed=need, ratio=ratio,
               verdict="saved" if ratio > 1.05 else "same" if ratio >= 0.95 else "worse")
    return out


def stop_estimate(points: pd.DataFrame, target: float, *, n_bootstrap: int = 100,
                  n_curve: int = 40) -> dict[str, Any]:
    """When to stop labeling: fit ``acc(n) = a - b n^-c`` to ``points`` (DataFrame with
    n_labels, accuracy, sorted) and ask how many labels ``target`` needs.

    Returns dict(status, n_points, n_now, target, estimate, low, high, more, asymptote,
    asymptote_low, asymptote_high, fit_x, fit_y, error). ``status``: "too_few" (< 3
    points), "no_fit" (``error`` says why), "reached" (the latest accuracy >= target),
    "unreachable" (target at or above the fitted plateau) or "estimate". ``estimate``,
    ``low``, ``high`` (90% bootstrap range, ``high`` may be inf): total labels for
    ``target``; ``more`` = estimate - n_now (>= 0). ``fit_x`` / ``fit_y``: the fitted
    curve (up to ``n_curve`` points) from the first label count to past the estimate.
    """
    out: dict[str, Any] = {
        "status": "too_few", "n_points": len(points), "n_now": None,
        "target": float(target), "estimate": None, "low": None, "high": None, "more": None,
        "asymptote": None, "asymptote_low": None, "asymptote_high": None,
        "fit_x": [], "fit_y": [], "error": None,
    }
    if len(points) < 3:
        return out
    n = points["n_labels"].to_numpy(dtype=float)
    acc = points["accuracy"].to_numpy(dtype=float)
    n_now = int(n[-1])
    out["n_now"] = n_now
    try:
        lc = LearningCurveFit(n_bootstrap=n_bootstrap).fit(n, acc)
    except (ValueError, RuntimeError) as exc:
        out.update(status="no_fit", error=str(exc))
        return out
    need = lc.labels_needed(target)
    x_end = n_now * 2.0
    if need["reachable"] and np.isfinite(need["estimate"]):
        x_end = max(x_end, min(need["estimate"] * 1.2, n_now * 20.0))
    xs = np.unique(np.geomspace(max(1.0, n.min()), x_end, n_curve).round())
    out.update(
        fit_x=xs.tolist(), fit_y=np.clip(lc.predict(xs), 0, 1).tolist(),
        asymptote=need["asymptote"], asymptote_low=need["asymptote_low"],
        asymptote_high=need["asymptote_high"], estimate=need["estimate"],
        low=need["low"], high=need["high"],
    )
    if acc[-1] >= target:
        out["status"] = "reached"
    elif not need["reachable"]:
        out["status"] = "unreachable"
    else:
        out.update(status="estimate", more=max(0, round(need["estimate"]) - n_now))
    return out


def finetune_run(ft: Any, *, n_labels: int, n_train: int, evaluation: dict[str, Any] | None,
                 kept: str | None) -> dict[str, Any]:
    """The JSON record of a fine-tuning run from a fitted FineTuner ``ft``: labels at the
    time, accuracy on ``evaluation`` (dict truth, pred, kind; None: not measured), held-out
    accuracy of the fine-tuned model and of the probe, which model was ``kept``, epochs,
    blocks, seconds, cancelled, verdict, time."""
    acc = None
    if evaluation is not None and len(evaluation["truth"]):
        acc = float((np.asarray(evaluation["truth"]) == np.asarray(evaluation["pred"])).mean())
    history = ft.history_
    return {
        "n_labels": int(n_labels), "n_train": int(n_train),
        "accuracy": acc, "eval": None if evaluation is None else evaluation["kind"],
        "held_out_finetune": float(ft.best_accuracy_ if ft.improved_ else
                                   history["val_acc"].iloc[1:].max()
                                   if len(history) > 1 else float("nan")),
        "held_out_probe": float(ft.probe_accuracy_), "kept": kept,
        "epochs": int(len(history) - 1), "blocks": ft.blocks_,
        "seconds": round(float(ft.seconds_), 2), "cancelled": bool(ft.cancelled_),
        "verdict": ft.verdict_, "time": time.time(),
    }


def confusion(truth: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(K, K) int64 counts: row = true class code, column = predicted class code.
    ``truth`` and ``pred`` (M,) codes in 0..K-1; pairs with a negative code (a class the
    model does not know, or no truth) are left out."""
    truth = np.asarray(truth, dtype=np.int64).ravel()
    pred = np.asarray(pred, dtype=np.int64).ravel()
    if truth.shape != pred.shape:
        raise ValueError(f"truth and pred differ in length: {truth.shape} vs {pred.shape}")
    k = int(n_classes)
    if ((truth >= k) | (pred >= k)).any():
        raise ValueError(f"class codes must be below n_classes={k}")
    ok = (truth >= 0) & (pred >= 0)
    cm = np.zeros((k, k), dtype=np.int64)
    np.add.at(cm, (truth[ok], pred[ok]), 1)
    return cm


def per_class_accuracy(matrix: np.ndarray) -> pd.DataFrame:
    """Accuracy per true class of a (K, K) confusion matrix: DataFrame[class_code,
    accuracy, n] for the classes with at least one item (n = items of that class)."""
    cm = np.asarray(matrix, dtype=np.int64)
    n = cm.sum(1)
    shown = np.flatnonzero(n > 0)
    return pd.DataFrame({"class_code": shown.astype(np.int64),
                         "accuracy": np.diag(cm)[shown] / n[shown],
                         "n": n[shown].astype(np.int64)})

"""Which acquisition strategy to use, with its evidence, from simulated learning curves."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

__all__ = ["Recommendation", "labels_needed", "recommend"]


@dataclass
class Recommendation:
    """What :meth:`SimulationResult.recommend` returns.

    ``strategy``: the one to use; ``target``: the accuracy aimed at; ``labels_needed``:
    its labels for the target on the mean curve (NaN if not reached); ``random_labels``:
    random's (NaN if not reached or not simulated); ``labels_saved``: random's minus the
    strategy's (NaN when unknown); ``ratio``: strategy / random; ``seed_range``: (min,
    max) labels for the target over seeds (NaN where a seed missed it); ``table``:
    DataFrame[labels_needed, ratio, low, high, final_accuracy] per strategy; ``text``:
    the same in one sentence."""

    strategy: str
    target: float
    labels_needed: float
    random_labels: float
    labels_saved: float
    ratio: float
    seed_range: tuple[float, float]
    table: pd.DataFrame = field(repr=False)
    text: str = ""


def labels_needed(n: np.ndarray, acc: np.ndarray, target: float) -> float:
    """Labels for accuracy ``target`` on the curve ``acc`` (M,) at label counts ``n`` (M,),
    ascending: the first budget reaching it, linearly interpolated from the one before;
    NaN if none does."""
    hit = np.flatnonzero(acc >= target)
    if not len(hit):
        return math.nan
    i = int(hit[0])
    if i == 0:
        return float(n[0])
    return float(n[i - 1] + (target - acc[i - 1]) / (acc[i] - acc[i - 1]) * (n[i] - n[i - 1]))


def recommend(curves: pd.DataFrame, *, target: float | None = None) -> Recommendation:
    """The strategy needing the fewest labels for mean accuracy ``target`` (default: 95%
    of the best final mean accuracy); ties and misses go to the higher final accuracy.
    ``curves``: DataFrame[strategy, seed, n_labels, accuracy] from :func:`simulate`."""
    if curves is None or not len(curves):
        raise ValueError("no simulated curves: run simulate(...) with at least one strategy")
    mean = curves.pivot_table(index="n_labels", columns="strategy", values="accuracy",
                              aggfunc="mean", sort=True)
    n = mean.index.to_numpy(dtype=np.float64)
    final = mean.iloc[-1]
    if target is None:
        target = 0.95 * float(final.max())
    if not 0 < target < 1:
        raise ValueError(f"target must be an accuracy in (0, 1); got {target}")
    rows = {}
    for name in mean.columns:
        per_seed = [
            labels_needed(g["n_labels"].to_numpy(float), g["accuracy"].to_numpy(float), target)
            for _, g in curves[curves["strategy"] == name].sort_values("n_labels")
            .groupby("seed")]
        seeds = np.asarray(per_seed, dtype=float)
        rows[name] = {"labels_needed": labels_needed(n, mean[name].to_numpy(float), target),
                      "low": float(np.min(seeds)) if len(seeds) else math.nan,
                      "high": float(np.max(seeds)) if len(seeds) else math.nan,
                      "final_accuracy": float(final[name])}
    table = pd.DataFrame(rows).T
    base = float(table.loc["random", "labels_needed"]) if "random" in table.index else math.nan
    table["ratio"] = table["labels_needed"] / base
    need = table["labels_needed"].fillna(np.inf)
    order = sorted(table.index, key=lambda s: (need[s], -table.loc[s, "final_accuracy"]))
    best = order[0]
    row = table.loc[best]
    saved = base - float(row["labels_needed"])
    rec = Recommendation(strategy=str(best), target=float(target),
                         labels_needed=float(row["labels_needed"]), random_labels=base,
                         labels_saved=saved, ratio=float(row["ratio"]),
                         seed_range=(float(row["low"]), float(row["high"])), table=table)
    rec.text = _words(rec, int(n[-1]), curves["seed"].nunique())
    return rec


def _words(rec: Recommendation, top: int, n_seeds: int) -> str:
    """One sentence with the evidence."""
    head = f"Use {rec.strategy!r}"
    if not math.isfinite(rec.labels_needed):
        return (f"{head}: no strategy reached {rec.target:.1%} within {top} labels in the "
                f"simulation; {rec.strategy!r} came closest.")
    low, high = rec.seed_range
    spread = (f"{low:.0f}-{high:.0f} over {n_seeds} seeds" if math.isfinite(high)
              else f"not every one of {n_seeds} seeds got there within {top}")
    out = f"{head}: about {rec.labels_needed:.0f} labels for {rec.target:.1%} ({spread})"
    if rec.strategy == "random" or not math.isfinite(rec.random_labels):
        if math.isnan(rec.random_labels) and rec.strategy != "random":
            return out + "; random sampling was not simulated or did not get there."
        return out + "."
    return out + (f"; random sampling needs about {rec.random_labels:.0f}, so it saves "
                  f"about {rec.labels_saved:.0f} labels ({1 - rec.ratio:.0%}).")


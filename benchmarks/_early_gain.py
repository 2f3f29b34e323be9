"""The default strategy against random at the early budgets, paired per seed, on more
seeds than the full label-efficiency table (issue 16: "+5 points over random at 40, 80 and
160 labels, on average over seeds"; the full table runs 3 seeds to 3,200 labels, these
budgets are cheap enough for many seeds, and 3 seeds leave a standard error of ~1 point).
"""

from __future__ import annotations

import _results as bench
import numpy as np

EARLY_BUDGETS = (20, 40, 80, 160, 320)
TARGET_BUDGETS = (40, 80, 160)
TARGET_POINTS = 5.0


def early_gain(X: np.ndarray, y: np.ndarray, X_test: np.ndarray, y_test: np.ndarray, *,
               seeds: list[int], table_seeds: list[int], batch: int
               ) -> list[str]:
    """Markdown lines: mean accuracy of random and ``auto`` at EARLY_BUDGETS over ``seeds``
    (the same ``dfw.simulate`` loop as the full table: TypiClust first 20 for auto, random
    for random), the per-seed paired gain (mean, sd, seeds ahead) and the verdict."""
    import dfwidgets as dfw

    acc = {}
    for strategy in ("random", "auto"):
        sim = dfw.simulate(X, y, strategies=[strategy], budgets=list(EARLY_BUDGETS),
                           seeds=seeds, test=(X_test, y_test), progress=False,
                           batch_size=batch, smoothing=0.0,
                           initial="random" if strategy == "random" else "typiclust")
        acc[strategy] = sim.curves.pivot_table(index="seed", columns="n_labels",
                                               values="accuracy").sort_index()
    gain = (acc["auto"] - acc["random"]) * 100  # (seeds, budgets) points
    rows = [[name, *(f"{acc[s][b].mean():.3f}" for b in EARLY_BUDGETS)]
            for name, s in (("random", "random"), ("auto", "auto"))]
    rows.append(["gain, mean of per-seed differences (points)",
                 *(f"{gain[b].mean():+.1f}" for b in EARLY_BUDGETS)])
    rows.append(["sd over seeds / seeds where auto is ahead",
                 *(f"{gain[b].std(ddof=1):.1f} / {int((gain[b] > 0).sum())} of {len(gain)}"
                   for b in EARLY_BUDGETS)])
    met = all(gain[b].mean() >= TARGET_POINTS for b in TARGET_BUDGETS)
    shared = gain.loc[[sd for sd in table_seeds if sd in gain.index]]
    return [
        (f"Early budgets on {len(seeds)} seeds ({seeds[0]}-{seeds[-1]}; same loop, "
         "random vs `auto`):"), "",
        bench.markdown_table(["strategy", *(f"{b:,}" for b in EARLY_BUDGETS)], rows), "",
        (f"Issue 16 target, +{TARGET_POINTS:g} points over random at "
         + ", ".join(map(str, TARGET_BUDGETS)) + " labels on average over seeds: **"
         + ("met" if met else "not met") + f"** on these {len(seeds)} seeds ("
         + ", ".join(f"{b}: {gain[b].mean():+.1f}" for b in TARGET_BUDGETS)
         + (f"); on the full table's seeds {table_seeds} alone "
            + ", ".join(f"{b}: {shared[b].mean():+.1f}" for b in TARGET_BUDGETS)
            if len(shared) else ")") + "."),
    ]

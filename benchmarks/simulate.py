"""Label efficiency and speed of the learning core on real Fashion-MNIST embeddings.

    python benchmarks/simulate.py [--pool 20000] [--threads 1]

1. ``dfw.simulate``: 4 strategies x 3 seeds on a 20,000-item pool (train split, offline
   efficientnet_lite0 embeddings), budgets 20..640, accuracy on the 10,000 test items.
   Wall time (requirement: under 2 minutes on 2 cores), mean accuracy per budget, labels
   needed for two targets and the ratio to random.
2. LinearProbe speed at 1,000 labels x 512 dims: cold fit, warm refit (one label more) and
   scikit-learn's LogisticRegression (lbfgs) on the same data, in the same run; median of
   repeats. predict_proba on 60,000 x 512.

Prints the tables and replaces the "Learning core" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import os
import time

import _results as bench
import numpy as np

SECTION = "Learning core (simulate, LinearProbe)"
os.environ.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))


def median_seconds(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return float(np.median(times))


def fmt_n(n: float) -> str:
    return "not reached" if not np.isfinite(n) else f"{n:,.0f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pool", type=int, default=20_000)
    bench.add_threads_option(parser, default=1,
                       help="torch and BLAS/OpenMP threads (1 is fastest on the shared box)")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    bench.limit_threads(args.threads)

    import dfwidgets as dfw
    from dfwidgets.learn.linear_probe import LinearProbe

    train, test = dfw.datasets.fashion_mnist("train"), dfw.datasets.fashion_mnist("test")
    X_all = dfw.embed(train, model="efficientnet_lite0", progress=False)
    X_test = dfw.embed(test, model="efficientnet_lite0", progress=False)
    names = np.asarray(train.classes, dtype=object)
    y_all, y_test = names[train.labels], names[test.labels]
    rng = np.random.default_rng(0)
    pool = np.sort(rng.choice(len(X_all), args.pool, replace=False))
    X, y = X_all[pool], y_all[pool]

    # reference: the probe on every pool label
    full = LinearProbe().fit(X, y)
    full_acc = float((full.predict(X_test) == y_test).mean())

    strategies = ["random", "entropy", "margin", "hybrid"]
    budgets = [20, 40, 80, 160, 320, 640]
    seeds = [0, 1, 2]
    t0 = time.perf_counter()
    sim = dfw.simulate(X, y, strategies=strategies, budgets=budgets, seeds=seeds,
                       test=(X_test, y_test), progress=False)
    sim_seconds = time.perf_counter() - t0
    mean = sim.mean_curves()
    run_seconds = sim.curves.groupby(["strategy", "seed"]).seconds.max()
    target_a = float(mean.loc[640, "random"])
    target_b = 0.95 * full_acc
    sav_a, sav_b = sim.savings(target_a), sim.savings(target_b)

    # LinearProbe speed, 1,000 labels x 512 dims; sklearn on the same data, same run
    from sklearn.linear_model import LogisticRegression

    Xf, yf = X[:1001], y[:1001]
    cold = median_seconds(lambda: LinearProbe(warm_start=False).fit(Xf[:1000], yf[:1000]), 5)
    warm_probe = LinearProbe().fit(Xf[:1000], yf[:1000])
    warm = median_seconds(lambda: warm_probe.fit(Xf, yf), 5)
    # the same objective in scikit-learn: centred, globally scaled features, balanced weights
    mu = Xf[:1000].mean(axis=0)
    rms = float(np.sqrt(Xf[:1000].var(axis=0).mean()))
    Zf, Zt = (Xf[:1000] - mu) / rms, (X_test - mu) / rms

    def sklearn_fit():
        return LogisticRegression(C=warm_probe.C, class_weight="balanced",
                                  max_iter=100).fit(Zf, yf[:1000])

    skl = median_seconds(sklearn_fit, 5)
    pred = median_seconds(lambda: warm_probe.predict_proba(X_all), 5)
    cold_probe = LinearProbe(warm_start=False).fit(Xf[:1000], yf[:1000])
    acc_probe = float((cold_probe.predict(X_test) == y_test).mean())
    acc_skl = float((sklearn_fit().predict(Zt) == y_test).mean())

    lines = [
        f"## {SECTION}",
        "",
        f"`python benchmarks/simulate.py` - Fashion-MNIST, offline efficientnet_lite0 "
        f"embeddings ({X.shape[1]} dims); pool = {args.pool:,} random train items, accuracy on "
        f"the 10,000 test items; {args.threads} torch/BLAS thread(s), "
        f"{bench.machine_note(load_start)}. LinearProbe on all "
        f"{args.pool:,} pool labels: {full_acc:.3f}.",
        "",
        f"**simulate: {len(strategies)} strategies x {len(seeds)} seeds, budgets "
        f"{budgets[0]}..{budgets[-1]}: {sim_seconds:.1f} s wall** (requirement < 120 s); "
        f"median run (one strategy, one seed) {run_seconds.median():.1f} s.",
        "",
        "Mean test accuracy over 3 seeds (first 20 labels: TypiClust, the same for all):",
        "",
        "| strategy | " + " | ".join(str(b) for b in budgets) + " | median run |",
        "|---|" + "---|" * (len(budgets) + 1),
    ]
    for s in strategies:
        accs = " | ".join(f"{mean.loc[b, s]:.3f}" for b in budgets)
        lines.append(f"| {s} | {accs} | {run_seconds[s].median():.1f} s |")
    lines += [
        "",
        f"Labels needed (interpolated on the mean curve) and ratio to random, for A = random's "
        f"accuracy at 640 labels ({target_a:.3f}) and B = 95% of the full-pool accuracy "
        f"({target_b:.3f}):",
        "",
        "| strategy | labels for A | vs random | labels for B | vs random |",
        "|---|---|---|---|---|",
    ]
    for s in strategies:
        ra, rb = sav_a.loc[s, "ratio"], sav_b.loc[s, "ratio"]
        lines.append(
            f"| {s} | {fmt_n(sav_a.loc[s, 'labels_needed'])} | "
            f"{'-' if not np.isfinite(ra) else f'{ra:.2f}x'} | "
            f"{fmt_n(sav_b.loc[s, 'labels_needed'])} | "
            f"{'-' if not np.isfinite(rb) else f'{rb:.2f}x'} |"
        )
    lines += [
        "",
        "LinearProbe speed, 1,000 labels x 512 dims, median of 5:",
        "",
        "| measurement | median | note |",
        "|---|---|---|",
        f"| LinearProbe.fit, cold (L-BFGS) | {cold * 1000:.0f} ms | |",
        f"| LinearProbe.fit, warm refit with one label more | {warm * 1000:.0f} ms | "
        f"{cold / warm:.1f}x faster than cold |",
        f"| sklearn LogisticRegression(lbfgs), same objective and data | {skl * 1000:.0f} ms | "
        f"probe cold = {cold / skl:.2f}x sklearn's time; test acc probe {acc_probe:.3f} vs "
        f"sklearn {acc_skl:.3f} |",
        f"| LinearProbe.predict_proba, 60,000 x 512 | {pred * 1000:.0f} ms | requirement < 200 ms |",
    ]
    bench.report(args, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()

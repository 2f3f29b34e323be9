"""The product path equals the simulation (issue 16, item 3), and the accuracy estimate
against the truth (item 4).

    DFW_CACHE_DIR=.dfw_cache python benchmarks/session_loop.py \
        [--pool 60000] [--seeds 0 1 2 3 4] [--budgets 20 40 80 160 320 640] \
        [--strategies default random margin hybrid] [--batch 20]

For every strategy and seed, a real Session (temp folder, ``auto_fit=False``, default
settings) replays the user's loop: the same first ``budgets[0]`` labels as ``simulate()``
(its ``initial`` picks for that seed), then ``next_batch(batch)`` (audit items included:
they are labeled but never trained on) -> label with the true class -> ``fit()``. Test
accuracy (Fashion-MNIST test split) at every budget, beside ``dfw.simulate`` on the same
pool, test set, seeds, budgets and batch size. ``accuracy_estimate()`` vs the test
accuracy at every checkpoint from 100 labels on. Prints the tables and replaces the
"Session loop vs simulate" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import inspect
import os
import tempfile
import time
from pathlib import Path

import _results as bench
import numpy as np
import pandas as pd

SECTION = "Session loop vs simulate (Fashion-MNIST)"
os.environ.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def session_run(dfw, src, X, y, Xt, yt, *, strategy: str, seed: int, budgets: list[int],
                batch: int, initial: str) -> list[dict]:
    """One Session loop; a row per budget (and per checkpoint from 100 labels on)."""
    from dfwidgets.learn.strategies import STRATEGIES

    first = STRATEGIES[initial](None, X, np.zeros(len(X), dtype=bool), budgets[0],
                                np.random.default_rng([int(seed), 0]))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        s = dfw.Session.open(Path(tmp) / "p", source=src, embeddings=X, auto_fit=False,
                             strategy=strategy)
        s.label_many(first, [str(v) for v in y[first]], source="click")
        s.fit()
        checkpoints = sorted(set(budgets) | set(range(100, budgets[-1] + 1, 100)))
        n = len(s.labels)
        while True:
            if n in checkpoints:
                pred = s.model_.predict(Xt)
                est = s.accuracy_estimate() if n >= 100 else {}
                rows.append({"strategy": strategy, "seed": seed, "n_labels": n,
                             "accuracy": float((pred == yt).mean()),
                             "estimate": est.get("estimate"), "low": est.get("low"),
                             "high": est.get("high"), "n_audit": est.get("n"),
                             "n_random": est.get("n_random"), "expected": est.get("expected"),
                             "correction": est.get("correction"),
                             "n_train": len(s._fit.training_set()[0])})
            if n >= budgets[-1]:
                break
            nxt = min(c for c in checkpoints if c > n)
            idx = s.next_batch(min(batch, nxt - n))
            s.label_many(idx, [str(v) for v in y[idx]], source="click")
            s.fit()
            n = len(s.labels)
        s.close()
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pool", type=int, default=60000, help="pool items (train split prefix)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--budgets", type=int, nargs="+", default=[20, 40, 80, 160, 320, 640])
    p.add_argument("--strategies", nargs="+", default=["default", "random", "margin", "hybrid"])
    p.add_argument("--batch", type=int, default=20)
    p.add_argument("--rows", type=Path, default=None,
                   help="also save every checkpoint's row (CSV), after each strategy")
    bench.add_threads_option(p)
    bench.add_output_options(p)
    args = p.parse_args()
    bench.limit_threads(args.threads)
    import dfwidgets as dfw

    t0, load0 = time.perf_counter(), bench.load_average()
    default = inspect.signature(dfw.Session.open).parameters["strategy"].default
    strategies = [default if s == "default" else s for s in args.strategies]
    tr, te = (dfw.datasets.fashion_mnist(split=sp) for sp in ("train", "test"))
    Xall = dfw.embed(tr, model="efficientnet_lite0", progress=False)
    Xt = dfw.embed(te, model="efficientnet_lite0", progress=False)
    idx = np.arange(min(args.pool, len(Xall)))
    src, X = tr.subset(idx), np.ascontiguousarray(Xall[idx])
    names = np.asarray(tr.classes, dtype=object)
    y, yt = names[np.asarray(tr.labels)[idx]], names[np.asarray(te.labels)]
    budgets = sorted(args.budgets)
    sess_rows, sim_curves = [], []
    for strategy in strategies:
        initial = "random" if strategy == "random" else "typiclust"
        sim = dfw.simulate(X, y, strategies=[strategy], budgets=budgets, seeds=args.seeds,
                           test=(Xt, yt), batch_size=args.batch, initial=initial,
                           classes=list(names), progress=False)  # the Session's class order
        sim_curves.append(sim.curves)
        for seed in args.seeds:
            sess_rows += session_run(dfw, src, X, y, Xt, yt, strategy=strategy, seed=seed,
                                     budgets=budgets, batch=args.batch, initial=initial)
            print(f"[{time.perf_counter() - t0:5.0f} s] {strategy} seed {seed} done", flush=True)
        if args.rows is not None:
            pd.DataFrame(sess_rows).to_csv(args.rows, index=False)
            pd.concat(sim_curves).to_csv(args.rows.with_suffix(".sim.csv"), index=False)
    sess = pd.DataFrame(sess_rows)
    sim_c = pd.concat(sim_curves)
    markdown = report(sess, sim_c, strategies, default, budgets, args, t0, load0)
    print(markdown)
    if not args.no_write:
        bench.write_section(SECTION, markdown, results=args.results)


def report(sess: pd.DataFrame, sim: pd.DataFrame, strategies: list[str], default: str,
           budgets: list[int], args: argparse.Namespace, t0: float, load0: float) -> str:
    """The markdown section: curves side by side, worst run of the default, estimates."""
    at = sess[sess["n_labels"].isin(budgets)]
    s_mean = at.pivot_table(index="n_labels", columns="strategy", values="accuracy")
    m_mean = sim.pivot_table(index="n_labels", columns="strategy", values="accuracy")
    rows, gaps, same = [], [], 0
    for st in strategies:
        for b in budgets:
            a, m = float(s_mean.loc[b, st]), float(m_mean.loc[b, st])
            gaps.append(abs(a - m))
            runs = at[(at["strategy"] == st) & (at["n_labels"] == b)]["accuracy"]
            pair = at[(at["strategy"] == st) & (at["n_labels"] == b)].merge(
                sim[(sim["strategy"] == st) & (sim["n_labels"] == b)], on="seed")
            same += int((pair["accuracy_x"] == pair["accuracy_y"]).all())
            rows.append((st, b, f"{a:.3f}", f"{m:.3f}", f"{(a - m) * 100:+.1f}",
                         f"{runs.min():.3f}-{runs.max():.3f}"))
    d = at[(at["strategy"] == default) & (at["n_labels"] >= 80)]
    below = (d.groupby("n_labels")["accuracy"].transform("mean") - d["accuracy"]).max()
    est = sess.dropna(subset=["estimate"])
    est = est[est["n_labels"] >= 100]
    erows = []
    for st in strategies:
        e = est[est["strategy"] == st]
        if not len(e):
            continue
        err = (e["estimate"] - e["accuracy"]).to_numpy(float)
        inside = ((e["low"] <= e["accuracy"]) & (e["accuracy"] <= e["high"])).mean()
        erows.append((st, len(e), f"{(np.abs(err) <= 0.03).mean():.0%}", f"{inside:.0%}",
                      f"{err.mean() * 100:+.1f}", f"{np.abs(err).max() * 100:.1f}"))
    lines = [
        f"## {SECTION}", "",
        (f"`{bench.command_line('session_loop.py')}` - pool = the first {args.pool:,} "
         f"Fashion-MNIST train items (offline efficientnet_lite0), accuracy on the 10,000 "
         f"test items; seeds {args.seeds}; batches of {args.batch}; the Session's default "
         f"strategy is `{default}`; {bench.machine_note(load0)}; total "
         f"{time.perf_counter() - t0:.0f} s."), "",
        ("Test accuracy: a real Session (next_batch with its ~10% audit items, which are "
        "labeled but never trained on -> label -> fit) vs `simulate()` (same first labels, "
        "pool, test set, batches); range = the Session's runs over seeds:"), "",
        bench.markdown_table(["strategy", "labels", "Session mean", "simulate mean",
                              "gap (points)", "Session runs"], rows), "",
        (f"Largest |Session - simulate| gap: **{max(gaps) * 100:.1f} points** (target <= 1). "
         f"From 80 labels on, the worst `{default}` run is **{below * 100:.1f} points** "
         "below its mean (target <= 3). Both paths compose batches with one function "
         "(dfwidgets/learn/batch.py) and one generator seeded by the labeling state: "
         f"{same} of {len(gaps)} (strategy, budget) cells have the same accuracy in every "
         "run."), "",
        ("Accuracy estimate (`Session.accuracy_estimate()`, default settings) vs the true "
        "test accuracy at every 100 labels (and budget) from 100 labels on:"), "",
        bench.markdown_table(["strategy", "checkpoints", "within 3 points",
                              "truth in 95% interval", "mean error (points)",
                              "worst error (points)"], erows), "",
        "Targets: within 3 points at >= 90% of checkpoints; truth inside the interval >= 90%.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Weak supervision on Fashion-MNIST: rules made the way a user would, combined by the
label model, and what the weak labels add to the probe.

For each seed and hand-label budget, a Session over the 60,000 training images (offline
backbone embeddings) gets ``budget`` random hand labels and these rules, through
``session.rules`` exactly as a user adds them:

* one region per visible cluster: k-means (``--clusters``) on the embeddings (centred,
  unit rows); the region is the half of the cluster nearest its centre (a lasso around the
  cluster's core); it is named by the majority of the hand labels in the cluster (no hand
  label in it: no region). Variant "looked": named by what a user sees in it (the true
  majority class of the region), as someone looking at the thumbnails would;
* an examples rule per class with hand labels (``--threshold``);
* a neighbours rule (k=10: the hand labels spread over the 10-NN graph).

Reported: coverage; accuracy on covered items of the label model (Snorkel's LabelModel),
majority vote and the best single rule, all three on the same items (every item some rule
covers, hand-labeled items left out since rules made from them vote their own labels; a
rule's abstention counts as wrong there: this is the comparison the target uses); the
ceiling: the best any function of the votes could do there (each distinct vote row gets
the class most of its items truly have; uses the truth, so a bound, not a method); also each rule on its own items vs the label model on the same items, and the
label model on its most confident items at the rule's coverage; test accuracy (10,000 test images) of the
Session's probe on hand labels alone vs hand + weak labels (``session.fit(weak=True)``).

    python benchmarks/weak_supervision.py                      # 3 seeds, 30 and 100 labels
    python benchmarks/weak_supervision.py --seeds 0 --budgets 30 --no-write   # quick
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import _results as bench
import numpy as np


def log(msg: str, t0: float) -> None:
    print(f"[{time.perf_counter() - t0:7.1f} s] {msg}", flush=True)


def regions(Xc: np.ndarray, n_clusters: int, seed: int) -> list[np.ndarray]:
    """(cluster members, core) per k-means cluster of the centred unit rows ``Xc``."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters, n_init=1, random_state=seed).fit(Xc[::5])
    assign = km.predict(Xc)
    centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    out = []
    for c in range(n_clusters):
        members = np.flatnonzero(assign == c)
        sim = Xc[members] @ centres[c]
        out.append((members, members[sim >= np.median(sim)]))
    return out


def run_one(source, X, Xt, y, yt, names, clusters, *, budget, seed, variant, threshold,
            folder):
    """One Session, its rules, the label model and the two probes -> dict of numbers."""
    from dfwidgets.session import Session

    rng = np.random.default_rng(seed)
    hand = np.sort(rng.choice(len(X), budget, replace=False))
    s = Session.open(folder, source=source, embeddings=X, auto_fit=False)
    try:
        s.label_many(hand, names[y[hand]].tolist(), source="click")
        for members, core in clusters:
            inside = np.intersect1d(members, hand)
            if variant == "looked":
                name = names[np.bincount(y[core], minlength=len(names)).argmax()]
            elif len(inside):
                name = names[np.bincount(y[inside], minlength=len(names)).argmax()]
            else:
                continue
            s.rules.add_region(core, str(name))
        for c in sorted(set(names[y[hand]])):
            s.rules.add_examples(str(c), threshold=threshold)
        s.rules.add_neighbours(k=10)
        truth = y  # codes into names == s.classes (seeded from the dataset)
        assert list(s.classes) == list(names)
        L, rule_names = s.rules.votes()
        probs, abstain = s.weak_labels()
        mv, _ = s.weak_labels(method="majority")
        covered = ~abstain
        cov = covered.copy()
        cov[hand] = False  # hand-labeled items: rules made from them vote their own labels
        lm_pred = probs.argmax(1)
        def acc(pred: np.ndarray, m: np.ndarray) -> float:
            return float((pred[m] == truth[m]).mean()) if m.any() else float("nan")
        rules = []
        same_items = []  # every rule on the same items as the label model (abstain = wrong)
        own_wins = own_ties = 0  # label model vs rule on the rule's own items
        unlabeled = ~np.isin(np.arange(len(X)), hand)
        for j, rn in enumerate(rule_names):
            m = (L[:, j] >= 0) & unlabeled
            same_items.append(float((L[cov, j] == truth[cov]).mean()) if cov.any() else 0.0)
            if m.sum() >= 0.005 * len(X):
                rules.append((acc(L[:, j], m), int(m.sum()), rn))
                own_wins += acc(lm_pred, m) > acc(L[:, j], m)
                own_ties += acc(lm_pred, m) == acc(L[:, j], m)
        best = max(rules)
        ceiling = vote_ceiling(L[cov], truth[cov])
        conf = np.where(cov, probs.max(1), -1)
        top = np.argsort(-conf)[:best[1]]
        at_cov = float((lm_pred[top] == truth[top]).mean())
        beats = sum(at_cov_for(conf, lm_pred, truth, r[1]) > r[0] for r in rules)
        s.fit()
        hand_acc = test_accuracy(s, Xt, yt, names)
        s.fit(weak=True)
        weak_acc = test_accuracy(s, Xt, yt, names)
        return {"coverage": float(covered.mean()), "lm": acc(lm_pred, cov),
                "mv": acc(mv.argmax(1), cov), "best_same": max(same_items), "ceiling": ceiling,
                "own_wins": own_wins, "own_ties": own_ties, "best_rule": best[0], "best_cov": best[1] / len(X),
                "best_name": best[2], "lm_at_cov": at_cov, "beats": beats, "n_rules": len(rules),
                "hand": hand_acc, "weak": weak_acc, "n_weak": s.rules.n_weak_trained}
    finally:
        s.close()


def vote_ceiling(L: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy of the best possible function of the votes: every distinct row of ``L``
    (M, R) gets the class most of its items truly have. Uses the truth: a bound on what
    any label model (a function of the votes alone) can reach, not a method."""
    if len(L) == 0:
        return float("nan")
    _, row = np.unique(L, axis=0, return_inverse=True)
    counts = np.zeros((row.max() + 1, int(truth.max()) + 1), np.int64)
    np.add.at(counts, (row.reshape(-1), truth), 1)
    return float(counts.max(axis=1).sum() / len(L))


def at_cov_for(conf: np.ndarray, pred: np.ndarray, truth: np.ndarray, n: int) -> float:
    top = np.argsort(-conf)[:n]
    return float((pred[top] == truth[top]).mean())


def test_accuracy(s, Xt: np.ndarray, yt: np.ndarray, names: np.ndarray) -> float:
    pred = np.asarray(s.model_.predict(Xt), dtype=object)
    return float((pred == names[yt]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--budgets", type=int, nargs="+", default=[30, 100])
    parser.add_argument("--clusters", type=int, default=20)
    parser.add_argument("--threshold", type=float, default=0.8)
    parser.add_argument("--variants", nargs="+", default=["hand", "looked"],
                        choices=["hand", "looked"])
    bench.add_threads_option(parser, default=1)
    bench.add_output_options(parser)
    args = parser.parse_args()
    t0 = time.perf_counter()
    load0 = bench.load_average()
    bench.limit_threads(args.threads)

    import dfwidgets as dfw
    from dfwidgets.learn.weak_supervision import centred_rows
    from dfwidgets.session.rules import (
        AGREE_NEIGHBOURS,
        CLASS_SHARE,
        WEAK_SHARE,
        WEIGHT_BY_PROBABILITY,
    )
    from dfwidgets.session.rules_votes import REGION_AGREE

    tr = dfw.datasets.fashion_mnist(split="train")
    te = dfw.datasets.fashion_mnist(split="test")
    X = dfw.embed(tr, model="efficientnet_lite0", progress=False)
    Xt = dfw.embed(te, model="efficientnet_lite0", progress=False)
    names = np.asarray(tr.classes, dtype=object)
    y, yt = np.asarray(tr.labels), np.asarray(te.labels)
    Xc = centred_rows(X, X.mean(0))
    log(f"embeddings {X.shape} / {Xt.shape}", t0)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            clusters = regions(Xc, args.clusters, seed)
            for budget in args.budgets:
                for variant in args.variants:
                    r = run_one(tr, X, Xt, y, yt, names, clusters, budget=budget, seed=seed,
                                variant=variant, threshold=args.threshold,
                                folder=Path(tmp) / f"p{seed}_{budget}_{variant}")
                    r.update(seed=seed, budget=budget, variant=variant)
                    rows.append(r)
                    log(f"seed {seed} budget {budget} {variant}: " + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in r.items()), t0)
    table = summarise(rows)
    note = (f"Fashion-MNIST, 60,000 training images as the pool, 10,000 test images, offline "
            f"backbone embeddings; seeds {args.seeds}; {args.clusters} k-means clusters, "
            f"examples threshold {args.threshold}; a region abstains when at most "
            f"{REGION_AGREE:.0%} of the hand labels inside it have its class; the "
            f"neighbours rule is label spreading over the 10-NN graph; weak labels trained on: "
            f"the most confident {CLASS_SHARE:.0%} of each class's label-model labels, weighted "
            f"{'by the probability' if WEIGHT_BY_PROBABILITY else 'alike'} (together at most "
            f"{WEAK_SHARE:g}x the hand labels)"
            f"{', only where the neighbours rule votes the same class' if AGREE_NEIGHBOURS else ''}. "
            f"`{bench.command_line('weak_supervision.py')}`, {time.perf_counter() - t0:.0f} s, "
            f"{bench.machine_note(load0)}.")
    bench.report(args, "weak_supervision", "## Weak supervision (rules + label model)\n\n"
                 + note + "\n\n" + table)


def summarise(rows: list[dict]) -> str:
    """Mean ± sd over seeds per (budget, variant)."""
    import pandas as pd

    df = pd.DataFrame(rows)
    out = []
    for (budget, variant), g in df.groupby(["budget", "variant"], sort=True):
        def f(c: str, g=g) -> str:
            return f"{g[c].mean():.3f} ± {g[c].std(ddof=0):.3f}"
        best = (f"{g['best_rule'].mean():.3f} on {g['best_cov'].mean():.1%} / "
                f"label model {g['lm_at_cov'].mean():.3f}")
        out.append([budget, "hand labels" if variant == "hand" else "looked at",
                    f"{g['coverage'].mean():.2f}", f("lm"), f("mv"), f("best_same"), f("ceiling"),
                    best,
                    f"{g['own_wins'].sum()} (+{g['own_ties'].sum()} ties)/{g['n_rules'].sum()}",
                    f"{g['beats'].sum()}/{g['n_rules'].sum()}",
                    f("hand"), f("weak"), f"{(g['weak'] - g['hand']).mean() * 100:+.1f}",
                    f"{g['n_weak'].mean():,.0f}"])
    return bench.markdown_table(
        ["hand labels", "regions named by", "coverage", "label model (covered)",
         "majority vote (covered)", "best single rule (same covered items, abstain = wrong)",
         "ceiling: best function of the votes (from the truth)",
         "best single rule on its own items / label model at its coverage",
         "rules the label model beats on the rule's own items",
         "rules the label model beats at equal coverage", "probe: hand only",
         "probe: hand + weak", "points added", "weak items"], out) + "\n\nPer seed:\n\n" + per_seed(df)


def per_seed(df) -> str:
    """One row per (seed, budget, variant): the label-model comparison and the probe."""
    rows = [[r.seed, r.budget, r.variant, f"{r.lm:.3f}", f"{r.mv:.3f}", f"{r.best_same:.3f}",
             f"{r.ceiling:.3f}", f"{r.hand:.3f}", f"{r.weak:.3f}",
             f"{(r.weak - r.hand) * 100:+.1f}"] for r in df.itertuples()]
    return bench.markdown_table(["seed", "hand labels", "regions named by", "label model",
                                 "majority vote", "best single rule", "ceiling", "probe: hand",
                                 "probe: hand + weak", "points added"], rows)


if __name__ == "__main__":
    main()

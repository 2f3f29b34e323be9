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
* a neighbours rule (k=10: the hand labels spread over the whitened pool's 10-NN graph).

Reported: coverage; accuracy on covered items of the label model (Snorkel's LabelModel),
majority vote and the best single rule, all three on the same items (every item some rule
covers, hand-labeled items left out since rules made from them vote their own labels; a
rule's abstention counts as wrong there: this is the comparison the target uses); the
ceiling: the best any function of the votes could do there (each distinct vote row gets
the class most of its items truly have; uses the truth, so a bound, not a method); also each rule on its own items vs the label model on the same items, and the
label model on its most confident items at the rule's coverage; test accuracy (10,000 test images) of the
Session's probe on hand labels alone vs hand + weak labels (``session.fit(weak=True)``).
Also (tried, not the product): confidence tiers, each rule's votes split by thirds of its
score into 3 voting columns, the label model fitted on them, vs every tier and rule, with
the tiered ceiling and who is right where a rule disagrees with the unsure neighbours
rule; and a label model that also uses the neighbour graph (label spreading seeded by the
hand labels plus the label model's probabilities, ``graph_check``), which the vote
ceiling does not bound.

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
    """(cluster members, core, core's cosine to the centre) per k-means cluster of the
    centred unit rows ``Xc``."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters, n_init=1, random_state=seed).fit(Xc[::5])
    assign = km.predict(Xc)
    centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    out = []
    for c in range(n_clusters):
        members = np.flatnonzero(assign == c)
        sim = Xc[members] @ centres[c]
        keep = sim >= np.median(sim)
        out.append((members, members[keep], sim[keep]))
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
        region_score = []  # per region rule: (core, cosine to the centre)
        for members, core, core_sim in clusters:
            inside = np.intersect1d(members, hand)
            if variant == "looked":
                name = names[np.bincount(y[core], minlength=len(names)).argmax()]
            elif len(inside):
                name = names[np.bincount(y[inside], minlength=len(names)).argmax()]
            else:
                continue
            s.rules.add_region(core, str(name))
            region_score.append((core, core_sim))
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
        tiered = tier_check(s, X, L, region_score, hand, truth, cov)
        graph = graph_check(s, X, hand, probs, mv, truth, cov)
        s.fit()
        hand_acc = test_accuracy(s, Xt, yt, names)
        s.fit(weak=True)
        weak_acc = test_accuracy(s, Xt, yt, names)
        return {"coverage": float(covered.mean()), "lm": acc(lm_pred, cov),
                "mv": acc(mv.argmax(1), cov), "best_same": max(same_items), "ceiling": ceiling,
                "own_wins": own_wins, "own_ties": own_ties, "best_rule": best[0], "best_cov": best[1] / len(X),
                "best_name": best[2], "lm_at_cov": at_cov, "beats": beats, "n_rules": len(rules),
                "hand": hand_acc, "weak": weak_acc, "n_weak": s.rules.n_weak_trained,
                **tiered, **graph}
    finally:
        s.close()


#: confidence tiers tried (issue 18): each rule's votes split by its score at these
#: quantiles (of its votes on items without a hand label) into one voting column per tier
TIER_CUTS = (1 / 3, 2 / 3)


def rule_scores(s, X: np.ndarray, L: np.ndarray, region_score: list, hand: np.ndarray
                ) -> np.ndarray:
    """(N, R) float32 score of each vote of the Session's enabled rules (columns of ``L``):
    a region's cosine to its cluster centre, an examples rule's similarity to its nearest
    example, the neighbours rule's spread class probability."""
    from dfwidgets.learn.label_spreading import spread_labels
    from dfwidgets.learn.probcover import whitened_table
    from dfwidgets.learn.weak_supervision import centred_rows

    kinds = [r["kind"] for r in s.rules.all() if r.get("enabled", True)]
    mean = X.mean(axis=0, keepdims=True, dtype=np.float64).astype(np.float32)
    labels = s.label_array()[hand]
    near = (centred_rows(X, mean) @ centred_rows(X[hand], mean).T).max(axis=1)
    graph = whitened_table(X, k=10)  # the neighbours rule's graph: the Session's own table
    spread = spread_labels(graph, hand, labels, len(s.classes)).max(axis=1)
    S = np.zeros(L.shape, np.float32)
    regions = iter(region_score)
    for j, kind in enumerate(kinds):
        if kind == "region":
            core, sim = next(regions)
            S[core, j] = sim
        else:
            S[:, j] = near if kind == "examples" else spread
    return np.where(L >= 0, S, 0.0)


def tiered_votes(L: np.ndarray, S: np.ndarray, unlabeled: np.ndarray
                 ) -> tuple[np.ndarray, list[int]]:
    """Each column of ``L`` (N, R) split by its score ``S`` (N, R) at TIER_CUTS quantiles
    -> (N, R * tiers) votes, and each new column's source column."""
    cols, source = [], []
    for j in range(L.shape[1]):
        votes = (L[:, j] >= 0) & unlabeled
        edges = np.quantile(S[votes, j], TIER_CUTS) if votes.any() else np.empty(0)
        tier = np.digitize(S[:, j], edges)
        for t in range(len(edges) + 1):
            cols.append(np.where((L[:, j] >= 0) & (tier == t), L[:, j], -1))
            source.append(j)
    return np.stack(cols, axis=1), source


#: weight of the label model's probabilities beside the hand labels as seeds of label
#: spreading (graph_check; chosen on seeds 3-5 from 0.03 / 0.1 / 0.3 / 1.0)
GRAPH_PRIOR = 0.3


def graph_check(s, X, hand, probs, mv, truth, cov) -> dict:
    """Tried, not the product: a label model that also uses the items' neighbour graph (as
    in Pukdee et al., "Label Propagation with Weak Supervision", ICLR 2023): label
    spreading over the neighbours rule's whitened 10-NN graph, seeded by the hand labels
    plus GRAPH_PRIOR x the label model's (or majority vote's) probabilities on covered
    items (each part's class columns scaled to sum 1). Not bound by the vote ceiling."""
    from dfwidgets.learn.label_spreading import knn_affinity, spread
    from dfwidgets.learn.probcover import whitened_table

    S = knn_affinity(whitened_table(X, k=10))
    codes = s.label_array()[hand]
    def cols(Y: np.ndarray) -> np.ndarray:
        return (Y / np.maximum(Y.sum(axis=0, keepdims=True), 1e-12)).astype(np.float32)
    Yh = np.zeros(probs.shape, np.float32)
    Yh[hand, codes] = 1.0
    out = {}
    for name, P in (("lm", probs), ("mv", mv)):
        F = spread(S, cols(Yh) + GRAPH_PRIOR * cols(np.where(cov[:, None], P, 0.0)))
        out[f"graph_{name}"] = float((F.argmax(axis=1)[cov] == truth[cov]).mean())
    return out


def tier_check(s, X, L, region_score, hand, truth, cov) -> dict:
    """The label model on confidence-tiered votes vs every tier and the untiered rules
    (same covered items), the tiered ceiling, and who is right where another rule
    disagrees with the neighbours rule in its least confident tier."""
    from dfwidgets.learn import weak_supervision as ws

    unlabeled = np.ones(len(L), bool)
    unlabeled[hand] = False
    S = rule_scores(s, X, L, region_score, hand)
    T, _ = tiered_votes(L, S, unlabeled)
    K = len(s.classes)
    model = ws.WeakLabelModel(cardinality=K, class_balance=ws.class_balance(
        s.label_array()[hand], K)).fit(T[unlabeled])
    pred = model.predict_proba(T).argmax(axis=1)
    t = truth[cov]
    single = [float((T[cov, j] == t).mean()) for j in range(T.shape[1])]
    single += [float((L[cov, j] == t).mean()) for j in range(L.shape[1])]
    kinds = [r["kind"] for r in s.rules.all() if r.get("enabled", True)]
    nb = kinds.index("neighbours")
    low = cov & (S[:, nb] < np.quantile(S[cov, nb], TIER_CUTS[0]))
    others = np.delete(L, nb, axis=1)
    rows, cols = np.nonzero(low[:, None] & (others >= 0) & (others != L[:, [nb]]))
    other, dis = others[rows, cols], rows  # (item, other rule) pairs that disagree
    return {"lm_tiers": float((pred[cov] == t).mean()), "best_tiers": max(single),
            "ceiling_tiers": vote_ceiling(T[cov], t), "n_tier_cols": T.shape[1],
            "dis_n": len(dis), "dis_nb": float((L[dis, nb] == truth[dis]).mean()),
            "dis_other": float((other == truth[dis]).mean())}


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
        NEIGHBOURS_DECIDE,
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
            f"neighbours rule is label spreading over the whitened pool's 10-NN graph; weak "
            f"labels trained on: "
            f"the most confident {CLASS_SHARE:.0%} of each class's label-model labels, weighted "
            f"{'by the probability' if WEIGHT_BY_PROBABILITY else 'alike'} (together at most "
            f"{WEAK_SHARE:g}x the hand labels)"
            + (", only where the neighbours rule votes, " + ("its class where it disagrees"
               if NEIGHBOURS_DECIDE else "and the same class") if AGREE_NEIGHBOURS else "")
            + ". "
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
    tiers = [[b, f"{g['lm_tiers'].mean():.3f} ± {g['lm_tiers'].std(ddof=0):.3f}",
              f"{g['mv'].mean():.3f}", f"{g['best_tiers'].mean():.3f}",
              f"{g['ceiling_tiers'].mean():.3f}", f"{g['ceiling'].mean():.3f}",
              f"{g['n_tier_cols'].mean():.0f}", f"{g['dis_n'].sum():,}",
              f"{g['dis_nb'].mean():.2f} / {g['dis_other'].mean():.2f}"]
             for (b, v), g in df.groupby(["budget", "variant"], sort=True)]
    tier_table = bench.markdown_table(
        ["hand labels", "label model, tiered votes", "majority vote",
         "best single rule or tier (same covered items)", "ceiling, tiered",
         "ceiling, untiered", "voting columns",
         ("disagreements with the neighbours rule in its least confident third "
          "(item, rule pairs)"), "there: neighbours right / other rule right"], tiers)
    graph = [[b, f"{g['lm'].mean():.3f}", f"{g['graph_lm'].mean():.3f}",
              f"{g['graph_mv'].mean():.3f}", f"{g['best_same'].mean():.3f}",
              " / ".join(f"{d * 100:+.1f}" for d in g['graph_lm'] - g['best_same']),
              " / ".join(f"{d * 100:+.1f}" for d in g['graph_mv'] - g['best_same'])]
             for (b, v), g in df.groupby(["budget", "variant"], sort=True)]
    graph_table = bench.markdown_table(
        ["hand labels", "label model (votes only)", "label model + graph",
         "majority vote + graph", "best single rule (same covered items)",
         "label model + graph minus best rule, per seed (points)",
         "majority vote + graph minus best rule, per seed (points)"], graph)
    return bench.markdown_table(
        ["hand labels", "regions named by", "coverage", "label model (covered)",
         "majority vote (covered)", "best single rule (same covered items, abstain = wrong)",
         "ceiling: best function of the votes (from the truth)",
         "best single rule on its own items / label model at its coverage",
         "rules the label model beats on the rule's own items",
         "rules the label model beats at equal coverage", "probe: hand only",
         "probe: hand + weak", "points added", "weak items"], out) + (
        "\n\nConfidence tiers (tried, not the product): every rule's votes split into "
        f"{len(TIER_CUTS) + 1} voting columns by the thirds of its score (region: cosine to "
        "the cluster centre; examples: similarity to the nearest example; neighbours: the "
        "spread class probability), the label model fitted on those columns:\n\n"
        + tier_table + "\n\nA label model that also uses the neighbour graph (tried, not "
        "the product; as in Pukdee et al., \"Label Propagation with Weak Supervision\", ICLR "
        f"2023): label spreading over the whitened 10-NN graph seeded by the hand labels plus "
        f"{GRAPH_PRIOR:g} x the label model's (or majority vote's) probabilities; a function "
        "of the votes and the graph, so not bound by the vote ceiling:\n\n" + graph_table
        + "\n\nPer seed:\n\n" + per_seed(df))


def per_seed(df) -> str:
    """One row per (seed, budget, variant): the label-model comparison and the probe."""
    rows = [[r.seed, r.budget, r.variant, f"{r.lm:.3f}", f"{r.mv:.3f}", f"{r.best_same:.3f}",
             f"{r.ceiling:.3f}", f"{r.hand:.3f}", f"{r.weak:.3f}",
             f"{(r.weak - r.hand) * 100:+.1f}", f"{r.lm_tiers:.3f}", f"{r.best_tiers:.3f}",
             f"{r.ceiling_tiers:.3f}"] for r in df.itertuples()]
    return bench.markdown_table(["seed", "hand labels", "regions named by", "label model",
                                 "majority vote", "best single rule", "ceiling", "probe: hand",
                                 "probe: hand + weak", "points added", "label model, tiered",
                                 "best rule or tier", "ceiling, tiered"], rows)


if __name__ == "__main__":
    main()

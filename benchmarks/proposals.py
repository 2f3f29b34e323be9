"""Proposals say "none of these": precision and count of committed one-shot proposals.

Fashion-MNIST train split (60,000 items), offline backbone. For 2, 5 and 10 of the 10
classes, 1 and 5 random examples each (several seeds), ``learn.proposals.propose_prototypes``
proposes a label for every other item, exactly what ``session.propose(method="prototype")``
computes; a commit at the default threshold writes the kept items with confidence >= 0.9.
Precision = committed items whose proposed label is their true class (items of classes
without examples are always wrong). Without the open-set rule ("closed set") every item is
forced into a class that has an example.

    python benchmarks/proposals.py                      # 5 seeds, default open-set rule
    python benchmarks/proposals.py --quantiles 0.75 0.85 0.9   # also the rule's floor
"""

from __future__ import annotations

import argparse
import logging

import _results as bench
import numpy as np

import dfwidgets as dfw
from dfwidgets.learn import open_set
from dfwidgets.learn.proposals import propose_prototypes, select_for_commit

SECTION = "Proposals: none of these"
THRESHOLD = 0.9
#: the "nearest correct" column: how many nearest pool items of each example are counted
NEAREST = 5

log = logging.getLogger("benchmarks.proposals")


def draw(y: np.ndarray, n_classes: int, n_examples: int, seed: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """(example indices, pool indices) for one seed's draw of classes and examples."""
    rng = np.random.default_rng(seed)
    classes = rng.choice(10, n_classes, replace=False)
    ex = np.concatenate([rng.choice(np.flatnonzero(y == c), n_examples, replace=False)
                         for c in classes])
    return ex, np.setdiff1d(np.arange(len(y)), ex)


def nearest_items_correct(X: np.ndarray, y: np.ndarray, n_classes: int, n_examples: int,
                          seed: int, *, n: int = NEAREST) -> tuple[int, int]:
    """How mixed the examples' neighbourhoods are: (items, correct) among the union of each
    example's ``n`` nearest pool items (cosine, centred on the pool mean), an item counted
    correct when its true class is the example's."""
    ex, pool = draw(y, n_classes, n_examples, seed)
    mean = X[pool].mean(axis=0)
    S = open_set.center(X[pool], mean) @ open_set.center(X[ex], mean).T  # (P, M)
    near = np.argpartition(-S, n - 1, axis=0)[:n]  # (n, M) pool positions
    item_class = {}
    for j, e in enumerate(ex):
        for p in near[:, j]:
            item_class.setdefault(int(p), set()).add(int(y[e]))
    ok = sum(int(y[pool[p]]) in cls for p, cls in item_class.items())
    return len(item_class), ok


def one_run(X: np.ndarray, y: np.ndarray, n_classes: int, n_examples: int, seed: int, *,
            open_set_rule: bool, quantile: float) -> tuple[int, int]:
    """(committed, correct) for one draw of classes and examples."""
    ex, pool = draw(y, n_classes, n_examples, seed)
    prop = propose_prototypes(X[ex], [str(c) for c in y[ex]], X[pool], pool,
                              open_set=open_set_rule, density_quantile=quantile)
    idx, names, _ = select_for_commit(prop, np.full(len(y), -1), min_confidence=THRESHOLD)
    correct = int((np.asarray(names, dtype=object) == y[idx].astype(str)).sum())
    return len(idx), correct


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first_seed .. first_seed + seeds - 1 (fresh draws)")
    parser.add_argument("--quantiles", type=float, nargs="+",
                        default=[open_set.DENSITY_QUANTILE])
    parser.add_argument("--limit", type=int, default=0, help="use only the first N items")
    bench.add_threads_option(parser, default=1)
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bench.limit_threads(args.threads)

    src = dfw.datasets.fashion_mnist(split="train")
    X = np.asarray(dfw.embed(src, model="efficientnet_lite0", progress=False), np.float32)
    y = np.asarray(src.labels)
    if args.limit:
        X, y = X[: args.limit], y[: args.limit]
    # the floor is a quantile of the pool's nearest-neighbour cosine from a 1,000-item
    # sample (1,000 x N products): the pools of all runs differ only by their <= 50
    # examples, so compute it once per quantile on the whole split (same sample, same
    # result up to those items) instead of once per run
    real_floor, floors = open_set.density_floor, {}

    def floor_once(Xc_pool: np.ndarray, *, quantile: float, **kw) -> float:
        if quantile not in floors:
            floors[quantile] = real_floor(Xc_pool, quantile=quantile, **kw)
        return floors[quantile]

    open_set.density_floor = floor_once
    rules = [("closed set", False, 0.0)] + [
        (f"open set, floor q{q:g}" + (" (default)" if q == open_set.DENSITY_QUANTILE else ""),
         True, q) for q in args.quantiles]
    rows = []
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    for n_classes in (2, 5, 10):
        for n_examples in (1, 5):
            near = np.array([nearest_items_correct(X, y, n_classes, n_examples, s)
                             for s in seeds])
            near_ok = f"{near[:, 1].sum() / max(near[:, 0].sum(), 1):.3f}"
            for name, on, q in rules:
                runs = [one_run(X, y, n_classes, n_examples, s, open_set_rule=on, quantile=q)
                        for s in seeds]
                n = np.array([r[0] for r in runs])
                ok = np.array([r[1] for r in runs])
                prec = ok.sum() / max(n.sum(), 1)
                per = [c / m for m, c in zip(n, ok) if m]
                worst = f"{min(per):.3f}" if per else "-"
                rows.append((f"{n_classes} of 10", n_examples, name, f"{n.mean():,.0f}",
                             f"{n.min():,} - {n.max():,}", f"{prec:.3f}", worst, near_ok))
                log.info("%s", rows[-1])
    cmd = bench.command_line("proposals.py")
    markdown = (
        f"## {SECTION}\n\n"
        f"`{cmd}` - Fashion-MNIST train split ({len(y):,} items), offline backbone "
        f"(efficientnet_lite0, {X.shape[1]}-d), {args.seeds} seeds "
        f"({seeds.start}-{seeds.stop - 1}; classes and examples drawn at random), every "
        f"other item proposed; committed = kept by the open-set rule and confidence >= "
        f"{THRESHOLD} (the default). Precision pools all seeds' "
        f"committed items; worst = the lowest single seed. Open set (in the pool's "
        f"whitened space, shrinkage {open_set.WHITEN_SHRINK:g}): an item must be at least "
        f"as close to the mean of its class's examples as the class's "
        f"{open_set.K_NEIGHBOUR}th-nearest item and as the pool's nearest-neighbour "
        f"similarity at the given quantile; with one example of the class, also "
        f">= {open_set.AGREE:.0%} of its {open_set.NEIGHBOURS} nearest items kept for the "
        f"same class (dfwidgets/learn/open_set.py). "
        f"Nearest = the share of the examples' {NEAREST} nearest pool "
        f"items that are of the example's class (pooled over seeds): how mixed the "
        f"examples' own neighbourhoods are in this embedding. "
        f"{bench.machine_note(load_start)}.\n\n"
        + bench.markdown_table(["classes with examples", "examples each", "rule",
                                "committed (mean)", "committed (range)", "precision",
                                "worst seed", f"{NEAREST} nearest correct"], rows)
    )
    bench.report(args, SECTION, markdown)


if __name__ == "__main__":
    main()

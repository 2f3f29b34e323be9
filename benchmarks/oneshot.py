"""One-shot prototypes on Fashion-MNIST: which K examples should a person label first?

Budget: K labels (K = 10 classes). Three ways to spend it, 10 seeds each, same run:

* random, one per class: one random item of each class (needs the true labels to choose,
  so it is the "one example per class" a person would hunt for by hand);
* random: K random items (some classes may be missed);
* TypiClust: K items from ``learn.strategies.typiclust`` (no labels needed), then the
  oracle's true label for each.

A :class:`PrototypeClassifier` is fitted on the K examples and scored on every other item
of the split (what ``session.propose(method="prototype")`` would label). Writes the
"One-shot prototypes" section of benchmarks/RESULTS.md.

    python benchmarks/oneshot.py                  # test split (10,000 items), 10 seeds
"""

from __future__ import annotations

import argparse
import logging
import time

import _results as bench
import numpy as np

import dfwidgets as dfw
from dfwidgets.learn.models import PrototypeClassifier
from dfwidgets.learn.strategies import typiclust

SECTION = "One-shot prototypes"

log = logging.getLogger("benchmarks.oneshot")


def accuracy(X: np.ndarray, y: np.ndarray, picked: np.ndarray) -> tuple[float, int]:
    """Prototype accuracy on every item not picked; and how many classes were covered."""
    model = PrototypeClassifier().fit(X[picked], y[picked])
    rest = np.setdiff1d(np.arange(len(y)), picked)
    pred = model.predict(X[rest])
    return float((pred == y[rest]).mean()), len(np.unique(y[picked]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--seeds", type=int, default=10)
    bench.add_threads_option(parser, default=2, help="torch threads")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    bench.limit_threads(args.threads, blas=False)

    src = dfw.datasets.fashion_mnist(split=args.split)
    X = dfw.embed(src, model="efficientnet_lite0", progress=False)
    y = np.asarray(src.labels)
    K = len(src.classes)
    results: dict[str, list[tuple[float, int]]] = {"random, 1 per class": [],
                                                   f"random, {K} items": [],
                                                   f"TypiClust, {K} items": []}
    seconds = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        per_class = np.array([rng.choice(np.flatnonzero(y == c)) for c in range(K)])
        results["random, 1 per class"].append(accuracy(X, y, per_class))
        results[f"random, {K} items"].append(accuracy(X, y, rng.choice(len(y), K, replace=False)))
        t = time.perf_counter()
        picked = typiclust(None, X, np.zeros(len(y), bool), K, np.random.default_rng(seed))
        seconds.append(time.perf_counter() - t)
        results[f"TypiClust, {K} items"].append(accuracy(X, y, picked))
        log.info("seed %d: %s", seed, {k: round(v[-1][0], 3) for k, v in results.items()})

    base = np.array([a for a, _ in results["random, 1 per class"]])
    lines = []
    for name, vals in results.items():
        acc = np.array([a for a, _ in vals])
        cov = np.array([c for _, c in vals])
        lines.append(
            f"| {name} | {acc.mean():.3f} | {acc.std(ddof=1):.3f} | {np.median(acc):.3f} | "
            f"{acc.min():.3f} - {acc.max():.3f} | {cov.mean():.1f} / {K} | "
            f"{np.median(acc / base):.2f}x |\n"
        )
    cmd = bench.command_line("oneshot.py")
    markdown = (
        f"## {SECTION}\n\n"
        f"`{cmd}` - Fashion-MNIST {args.split} split ({len(y):,} items), offline backbone "
        f"(efficientnet_lite0, {X.shape[1]}-d), {K} labels in all, {args.seeds} seeds; "
        "PrototypeClassifier (nearest class mean, cosine) fitted on the picked items, "
        "accuracy on every other item of the split. TypiClust picks without labels "
        f"(median {np.median(seconds):.1f} s per pick), then the true labels are used. "
        f"Classes covered = classes among the picks. {bench.machine_note(load_start)}.\n\n"
        "| examples | mean accuracy | std | median | range | classes covered | "
        "median ratio to random 1/class |\n|---|---|---|---|---|---|---|\n" + "".join(lines)
    )
    bench.report(args, SECTION, markdown)


if __name__ == "__main__":
    main()

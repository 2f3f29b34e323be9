"""Linear probe vs fine-tuning on Fashion-MNIST at several label counts, on this CPU.

    python benchmarks/train.py [--labels 500 2000 10000] [--seeds 3] [--seeds-large 1]
                               [--test 2000] [--epochs 8] [--blocks 1] [--views 2]
                               [--threads 2] [--maps 2 3] [--uncached]

For each label count and seed: random training labels from the train split, accuracy on
the same random *test* items (never used for training or early stopping). The probe is a
LinearProbe on the cached embeddings (all the labels). Fine-tuning is the Trainer's
recipe: FineTuner with the activation cache (frozen front run once per image and view,
in a fresh cache folder so the build is timed), the last ``--blocks`` blocks + head
trained (LP-FT), the head also reading the unpooled maps of ``--maps`` stages (``--maps``
with no value: the plain embedding), early stopping on a held-out 20% of the labels; the
Trainer keeps the fine-tuned model only when it beats the plain probe on those held-out
labels ("kept"). After every epoch the probe head is fitted again on the tuned features
(``--no-refit-head``: keep the gradient-trained head). "epoch 0 (head only)" is the
FineTuner's model before any block is trained (the head on the frozen features and maps),
so "training adds" is what training the blocks is worth on the test items.
``--uncached`` also times one epoch of the uncached recipe (whole backbone on
RandomResizedCrop images every epoch) at the first label count, for comparison.
Accuracy columns do not depend on load; time columns do (rerun on a quiet machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time

import _results as bench
import numpy as np

SECTION = "Trainer: probe vs fine-tune"

log = logging.getLogger("benchmarks.train")


def _run(train_src, test_src, te_idx, x_te, embeddings, n: int, seed: int, args) -> dict:
    from dfwidgets.learn.finetune import FineTuner
    from dfwidgets.learn.models import LinearProbe

    rng = np.random.default_rng(seed)
    tr_idx = np.sort(rng.choice(len(train_src), n, replace=False))
    y_tr, y_te = train_src.labels[tr_idx], test_src.labels[te_idx]
    t = time.perf_counter()
    probe = LinearProbe(classes=list(range(10))).fit(embeddings[tr_idx], y_tr)
    probe_s = time.perf_counter() - t
    probe_acc = float((probe.predict(x_te) == y_te).mean())
    images = [train_src[int(i)] for i in tr_idx]
    test_images = [test_src[int(i)] for i in te_idx]
    with tempfile.TemporaryDirectory(prefix="dfw-act-") as cache_dir:
        ft = FineTuner("efficientnet_lite0", epochs=args.epochs, blocks=args.blocks,
                       views=args.views, patience=args.patience, lr=args.lr,
                       head_lr=args.head_lr, batch_size=args.batch_size, maps=tuple(args.maps),
                       threads=args.threads, random_state=seed, progress=False,
                       cache_dir=cache_dir, device="cpu", refit_head=not args.no_refit_head)
        t = time.perf_counter()
        ft.fit(images, y_tr, classes=train_src.classes)
        total = time.perf_counter() - t
        tuned = float((ft.model_.predict_proba(test_images).argmax(1) == y_te).mean())
        head0 = tuned  # epoch 0 (head on frozen features): what training the blocks adds to
        if ft.best_epoch_ > 0:
            ft0 = FineTuner("efficientnet_lite0", epochs=0, blocks=args.blocks,
                            views=args.views, maps=tuple(args.maps), threads=args.threads,
                            random_state=seed, progress=False, cache_dir=cache_dir,
                            device="cpu").fit(images, y_tr, classes=train_src.classes)
            head0 = float((ft0.model_.predict_proba(test_images).argmax(1) == y_te).mean())
    epochs = ft.history_["seconds"].iloc[1:]
    row = {"n": n, "seed": seed, "probe": probe_acc, "tuned": tuned, "head0": head0,
           "kept": tuned if ft.improved_ else probe_acc, "improved": bool(ft.improved_),
           "best_epoch": int(ft.best_epoch_), "epochs": len(epochs),
           "val_probe": float(ft.probe_accuracy_), "val_head0": float(ft.head_probe_accuracy_),
           "val_best": float(ft.best_accuracy_),
           "cache_s": float(ft.cache_seconds_), "epoch_s": float(epochs.mean()),
           "epoch_cpu_s": float(ft.history_["cpu_seconds"].iloc[1:].mean()),
           "total_s": total, "probe_s": probe_s}
    log.info("%s", row)
    return row


def _uncached_epoch(train_src, n: int, args) -> float:
    """Seconds of one epoch of the uncached recipe on ``n`` labels."""
    from dfwidgets.learn.finetune import FineTuner

    idx = np.sort(np.random.default_rng(0).choice(len(train_src), n, replace=False))
    ft = FineTuner("efficientnet_lite0", epochs=1, blocks=args.blocks, cache=False,
                   batch_size=args.batch_size, threads=args.threads, progress=False,
                   device="cpu")
    ft.fit([train_src[int(i)] for i in idx], train_src.labels[idx], classes=train_src.classes)
    return float(ft.history_["seconds"].iloc[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed..")
    parser.add_argument("--seeds-large", type=int, default=1,
                        help="seeds at label counts above 5,000 (slow on 2 cores)")
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--patience", type=int, default=2)
    parser.add_argument("--blocks", type=int, default=1)
    parser.add_argument("--views", type=int, default=2)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--head-lr", type=float, default=3e-4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--maps", type=int, nargs="*", default=[2, 3],
                        help="stages whose unpooled maps the fine-tuned head reads (none: "
                             "the plain embedding)")
    parser.add_argument("--no-refit-head", action="store_true",
                        help="keep the gradient-trained head (default: refit the probe head "
                             "on the tuned features after every epoch)")
    parser.add_argument("--uncached", action="store_true")
    bench.add_threads_option(parser, default=2, help="torch threads")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    bench.limit_threads(args.threads, blas=False)

    import dfwidgets as dfw

    train_src = dfw.datasets.fashion_mnist(split="train")
    test_src = dfw.datasets.fashion_mnist(split="test")
    embeddings = dfw.embed(train_src, model="efficientnet_lite0", progress=False)
    te_idx = np.sort(np.random.default_rng(12345).choice(len(test_src), args.test, replace=False))
    x_te = dfw.embed(test_src, model="efficientnet_lite0", progress=False)[te_idx]
    t0 = time.perf_counter()
    rows = []
    for n in args.labels:
        for seed in range(args.first_seed,
                          args.first_seed + (args.seeds_large if n > 5000 else args.seeds)):
            rows.append(_run(train_src, test_src, te_idx, x_te, embeddings, n, seed, args))
    uncached = _uncached_epoch(train_src, args.labels[0], args) if args.uncached else None

    table_rows, summary = [], []
    for n in args.labels:
        rs = [r for r in rows if r["n"] == n]
        mean = {k: float(np.mean([r[k] for r in rs])) for k in
                ("probe", "tuned", "head0", "kept", "cache_s", "epoch_s", "epoch_cpu_s",
                 "total_s")}
        summary.append((n, mean["probe"], mean["tuned"]))
        table_rows.append((
            f"{n:,}", len(rs), f"{mean['probe']:.4f}", f"{mean['tuned']:.4f}",
            f"{mean['tuned'] - mean['probe']:+.4f}", f"{mean['head0']:.4f}",
            f"{mean['tuned'] - mean['head0']:+.4f}", ", ".join(str(r["best_epoch"]) for r in rs),
            f"{mean['kept']:.4f}", f"{sum(r['improved'] for r in rs)}/{len(rs)}",
            f"{mean['cache_s']:.1f} s", f"{mean['epoch_s']:.2f} s ({mean['epoch_cpu_s']:.2f} s CPU)",
            ", ".join(str(r["epochs"]) for r in rs), f"{mean['total_s']:.0f} s"))
    table = bench.markdown_table(
        ["labels", "seeds", "probe test acc", "fine-tuned test acc", "gain",
         "epoch 0 (head only) test acc", "training adds", "best epochs", "kept test acc",
         "fine-tune kept", "cache build", "s / epoch (CPU)", "epochs run", "fine-tune total"],
        table_rows)
    reference = ", ".join(f"({n}, {p:.4f}, {t:.4f})" for n, p, t in summary)
    extra = (f"\n\nOne epoch of the uncached recipe (whole backbone on augmented images) on "
             f"{args.labels[0]:,} labels: {uncached:.1f} s." if uncached is not None else "")
    md = (
        f"## {SECTION}\n\n`{bench.command_line('train.py')}`: Fashion-MNIST, "
        f"random training labels (seeds 0..), mean test accuracy on {args.test:,} random "
        f"test items; efficientnet_lite0 at 64 px on CPU, torch threads = {args.threads}; "
        f"fine-tuning = last {args.blocks} block(s) + head on cached activations, "
        f"head also reads the maps of stages {args.maps or 'none'}, "
        f"{args.views} cached views, up to {args.epochs} epochs, early stopping on 20% "
        f"held-out labels (patience {args.patience}), lr {args.lr:g} (head {args.head_lr:g}), "
        f"head {'kept from gradient steps' if args.no_refit_head else 'refitted each epoch'}; "
        f"{bench.machine_note(load_start)}; all runs {time.perf_counter() - t0:.0f} s.\n\n"
        + table + extra +
        f"\n\n`dfwidgets.learn.finetune_advice.REFERENCE` = ({reference}) (labels, probe, "
        "fine-tuned).\n")
    bench.report(args, SECTION, md)


if __name__ == "__main__":
    main()

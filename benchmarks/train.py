"""Linear probe vs fine-tuning on Fashion-MNIST with 500 labels, on this machine's CPU.

    python benchmarks/train.py [--labels 500] [--test 2000] [--epochs 3] [--blocks 1]
                               [--threads 2]

Both models use the offline backbone (efficientnet_lite0, real ImageNet weights, 64 px)
and the same 500 random training labels; accuracy is measured on the same random
Fashion-MNIST *test* items. The probe is a LinearProbe on the cached L2-normalised
embeddings; fine-tuning trains the backbone's last block(s) + head (LP-FT: the head starts
from the probe) with RandomResizedCrop + flips and class-balanced sampling, and its
test accuracy is recorded after every epoch (epoch 0 = the probe start). Prints a table
and replaces the "Trainer: probe vs fine-tune" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import time

import _results as bench
import numpy as np

SECTION = "Trainer: probe vs fine-tune"

log = logging.getLogger("benchmarks.train")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--labels", type=int, default=500)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--blocks", type=int, default=1)
    bench.add_threads_option(parser, default=2, help="torch threads")
    parser.add_argument("--seed", type=int, default=0)
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    bench.limit_threads(args.threads, blas=False)

    import dfwidgets as dfw
    from dfwidgets.learn.finetune import FineTuner
    from dfwidgets.learn.models import LinearProbe

    train_src = dfw.datasets.fashion_mnist(split="train")
    test_src = dfw.datasets.fashion_mnist(split="test")
    rng = np.random.default_rng(args.seed)
    tr_idx = np.sort(rng.choice(len(train_src), args.labels, replace=False))
    te_idx = np.sort(rng.choice(len(test_src), args.test, replace=False))
    y_tr, y_te = train_src.labels[tr_idx], test_src.labels[te_idx]
    embedder = dfw.get_embedder("efficientnet_lite0", device="cpu")

    # ---- linear probe on cached embeddings
    t0 = time.perf_counter()
    x_tr = dfw.embed(train_src.subset(tr_idx), model=embedder, progress=False, cache=False)
    x_te = dfw.embed(test_src.subset(te_idx), model=embedder, progress=False, cache=False)
    embed_s = time.perf_counter() - t0
    fit_times = []
    for _ in range(5):
        t = time.perf_counter()
        probe = LinearProbe(classes=list(range(10)), warm_start=False).fit(x_tr, y_tr)
        fit_times.append(time.perf_counter() - t)
    probe_fit = float(np.median(fit_times))
    probe_acc = float((probe.predict(x_te) == y_te).mean())
    log.info("probe: %.4f test accuracy, fit %.3f s (median of 5)", probe_acc, probe_fit)

    # ---- fine-tuning, test accuracy after every epoch
    images = [train_src[int(i)] for i in tr_idx]
    test_images = [test_src[int(i)] for i in te_idx]
    ft = FineTuner(embedder, epochs=args.epochs, blocks=args.blocks, patience=args.epochs,
                   threads=args.threads, random_state=args.seed, progress=True)
    ft.fit(images, y_tr, classes=train_src.classes, val=(test_images, y_te))
    hist = ft.history_

    rows = [("linear probe on cached embeddings (LinearProbe)", probe_acc,
             f"{probe_fit * 1000:.0f} ms fit (median of 5)",
             f"+ {embed_s:.0f} s to embed {args.labels + args.test} images once")]
    cum = 0.0
    for _, r in hist.iterrows():
        if r["epoch"] == 0:
            rows.append(("fine-tune start = probe head on backbone features (epoch 0)",
                         float(r["val_acc"]), "-", "LP-FT starting point"))
            continue
        cum += float(r["seconds"])
        rows.append((f"fine-tune {args.blocks} block(s), epoch {int(r['epoch'])}",
                     float(r["val_acc"]), f"{cum:.0f} s cumulative",
                     f"train loss {r['train_loss']:.3f}, train acc {r['train_acc']:.3f}"))
    best_ft = float(hist["val_acc"].iloc[1:].max())
    ratio_t = cum / probe_fit
    table = bench.markdown_table(["model", "test accuracy", "time", "note"],
                           [(m, f"{a:.4f}", t, n) for m, a, t, n in rows])
    summary = (
        f"Best fine-tuned epoch {best_ft:.4f} vs probe {probe_acc:.4f} "
        f"({best_ft - probe_acc:+.4f}); fine-tuning took {ratio_t:,.0f}x the probe's fit "
        f"time ({cum:.0f} s vs {probe_fit:.2f} s). Fine-tuning also needs the raw images, the "
        "probe only the cached embeddings."
    )
    md = (
        f"## {SECTION}\n\n"
        f"`python benchmarks/train.py --labels {args.labels} --test {args.test} --epochs "
        f"{args.epochs} --blocks {args.blocks} --threads {args.threads}`: Fashion-MNIST, "
        f"{args.labels} random training labels (seed {args.seed}), accuracy on {args.test} random "
        f"test items; efficientnet_lite0 at 64 px on CPU, torch threads = {args.threads}, "
        f"{bench.machine_note(load_start)}.\n\n"
        + table + f"\n\n{summary}\n"
    )
    bench.report(args, SECTION, md)


if __name__ == "__main__":
    main()

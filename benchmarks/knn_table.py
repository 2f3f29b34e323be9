"""The pool's neighbour table at a million items: full rows vs compressed rows.

Coverage margin (``next_batch``'s default ``auto`` once a model exists), the neighbours
rule and the data-issue graph all need each item's nearest neighbours in the pool; the
first call on a pool builds that table (then it is cached on disk). This times
``knn_table(..., cache=False)`` on the whitened pool at 20 neighbours (the table coverage
margin uses; ``--raw``: on the raw embeddings, the table of the other strategies and data
issues) two ways in the same run, one after the other: the inverted file over the full
rows (``COMPRESSED_FROM`` set above the pool size: what every pool used before) and over rows
projected to ``COMPRESSED_DIMS`` and 8-bit quantized, candidates re-ranked exactly (what
pools of ``COMPRESSED_FROM`` or more items use now). Recall@20 / @10 against the exact
neighbours of 2,000 sampled items. Pools: the 60,000 Fashion-MNIST embeddings (offline
backbone) resampled with noise to the size asked.

    python benchmarks/knn_table.py                        # 250,000 and 1,000,000 items
    python benchmarks/knn_table.py --sizes 250000 --raw
    python benchmarks/knn_table.py --session 1000000      # the user's path only (below)

``--session N``: instead, the path a user takes: a Session over N images (Fashion-MNIST
images and embeddings resampled as above), 10 hand labels per class, ``fit()``, then
``next_batch(20)`` twice (the first builds the whitened table coverage margin covers; the
second finds it built), and once more in a new Session over the same pool (the table from
the disk cache).
"""

from __future__ import annotations

import argparse
import os
import time

import _results as bench
import numpy as np


def pool_of(X0: np.ndarray, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """((n, D) float32 rows of ``X0`` drawn with replacement plus 5% per-dimension noise,
    (n,) the row of ``X0`` each one comes from)."""
    if n == len(X0):
        return X0, np.arange(n)
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((n, X0.shape[1]), dtype=np.float32) * (0.05 * X0.std(0))
    rows = rng.integers(0, len(X0), n)
    return (X0[rows] + noise).astype(np.float32), rows


def recall(idx: np.ndarray, U: np.ndarray, k: int, n: int = 2000) -> float:
    """Mean share of the exact ``k`` nearest (cosine, self excluded) found in ``idx``."""
    import torch

    U = U / np.maximum(np.linalg.norm(U, axis=1, keepdims=True), 1e-12)

    qs = np.random.default_rng(1).choice(len(U), n, replace=False)
    S = torch.from_numpy(U[qs]) @ torch.from_numpy(U).T
    S[torch.arange(n), torch.from_numpy(qs)] = -2.0
    exact = torch.topk(S, k, dim=1).indices.numpy()
    return float(np.mean([len(set(exact[i]) & set(idx[q, :k])) / k for i, q in enumerate(qs)]))


def session_path(n: int, args: argparse.Namespace, load0: float) -> None:
    """Time the first and second ``next_batch(20)`` of an N-item Session and of a reopened
    one -> RESULTS section "Neighbour table at a million: the Session's path"."""
    import tempfile
    from pathlib import Path

    import dfwidgets as dfw
    from dfwidgets.data import ImageSource

    tr = dfw.datasets.fashion_mnist(split="train")
    X0 = dfw.embed(tr, model="efficientnet_lite0", progress=False)
    X, rows_of = pool_of(X0, n)  # item i: image rows_of[i], its embedding plus noise
    images = np.asarray(tr.array)  # (60000, 28, 28) uint8
    y = np.asarray(tr.labels)[rows_of]
    names = list(tr.classes)
    hand = np.concatenate([np.flatnonzero(y == c)[:10] for c in range(len(names))])
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DFW_CACHE_DIR"] = str(Path(tmp) / "cache")  # no table cached before
        for reopen in (False, True):
            if reopen:  # as in a new kernel: only the disk cache is left
                from dfwidgets.learn import probcover
                with probcover._LOCK:
                    probcover._CACHE.clear()
            t0 = time.perf_counter()
            s = dfw.Session.open(Path(tmp) / "p", source=ImageSource.from_array(images[rows_of]),
                                 embeddings=X, auto_fit=False)
            opened = time.perf_counter() - t0
            try:
                if not reopen:
                    s.label_many(hand, [names[c] for c in y[hand]], source="click")
                t0 = time.perf_counter()
                s.fit()
                fitted = time.perf_counter() - t0
                calls = []
                for _ in range(2):
                    t0 = time.perf_counter()
                    s.next_batch(20)
                    calls.append(time.perf_counter() - t0)
            finally:
                s.close()
            times.append(["reopened (table from the disk cache)" if reopen else "new",
                          f"{opened:.1f} s", f"{fitted:.1f} s", f"**{calls[0]:.1f} s**",
                          f"{calls[1]:.2f} s"])
            print(times[-1], flush=True)
    table = bench.markdown_table(["Session", "open", "fit (100 labels)",
                                  "first next_batch(20)", "second next_batch(20)"], times)
    note = (f"`{bench.command_line('knn_table.py')}`: a Session over {n:,} images (the "
            "Fashion-MNIST training images and embeddings resampled with noise), 10 hand "
            "labels per class, `fit()`, `next_batch(20)` twice (default strategy `auto`: "
            "coverage margin, whose first call builds the whitened 20-NN table), then the "
            f"same in a reopened Session; {args.threads} threads; {bench.machine_note(load0)}.")
    bench.report(args, "Neighbour table at a million: the Session's path",
                 "## Neighbour table at a million items: the Session's path\n\n" + note
                 + "\n\n" + table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--session", type=int, default=0, help="N: time a Session's path")
    parser.add_argument("--raw", action="store_true",
                        help="the raw embeddings' table (strategies, data issues) instead of "
                             "the whitened pool's")
    bench.add_threads_option(parser, default=2)
    bench.add_output_options(parser)
    args = parser.parse_args()
    load0 = bench.load_average()
    bench.limit_threads(args.threads)
    if args.session:
        return session_path(args.session, args, load0)

    import dfwidgets as dfw
    from dfwidgets.learn import neighbour_smoothing as ns
    from dfwidgets.learn.whitening import whitened_rows

    X0 = dfw.embed(dfw.datasets.fashion_mnist(split="train"), model="efficientnet_lite0",
                   progress=False)
    threshold = ns.COMPRESSED_FROM
    rows = []
    for n in args.sizes:
        X = pool_of(X0, n)[0]
        U = X if args.raw else whitened_rows(X)
        found = {}
        for name, cut in (("full rows", 10**12), ("compressed rows", 0)):
            ns.COMPRESSED_FROM = cut
            t0 = time.perf_counter()
            _, found[name] = ns.knn_table(U, k=args.k, cache=False)
            found[name + " s"] = time.perf_counter() - t0
            print(f"{n:,} {name}: {found[name + ' s']:.1f} s", flush=True)
        ns.COMPRESSED_FROM = threshold
        full, comp = found["full rows s"], found["compressed rows s"]
        rows.append([f"{n:,}", f"{full:.1f} s", f"**{comp:.1f} s**", f"{comp / full:.2f}x",
                     " / ".join(f"{recall(found['full rows'], U, k):.3f}" for k in (20, 10)),
                     " / ".join(f"{recall(found['compressed rows'], U, k):.3f}"
                                for k in (20, 10))])
    table = bench.markdown_table(
        ["items", "full rows (inverted file)",
         f"compressed rows ({ns.COMPRESSED_DIMS} dims, 8-bit, re-ranked)", "ratio",
         "recall@20 / @10, full", "recall@20 / @10, compressed"],
        rows)
    space = "raw embeddings" if args.raw else "whitened pool"
    note = (f"`{bench.command_line('knn_table.py')}`: `knn_table(U, k={args.k}, cache=False)` "
            f"on the {space}, each way once per size in the same run; {args.threads} "
            f"threads; {bench.machine_note(load0)}. Pools of {threshold:,} items or more use "
            "the compressed rows.")
    title = "Neighbour table at a million" + (": raw embeddings" if args.raw else "")
    bench.report(args, title, f"## {title.replace('million', 'million items')}\n\n" + note
                 + "\n\n" + table)


if __name__ == "__main__":
    main()

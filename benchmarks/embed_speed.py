"""Embedding benchmarks for the offline backbone on real Fashion-MNIST.

    python benchmarks/embed_speed.py features --n-train 5000 --n-test 2000 --sizes 64 96
    python benchmarks/embed_speed.py speed --n 768 --repeats 3
    python benchmarks/embed_speed.py cache          # 70,000 images, warm vs cold
    python benchmarks/embed_speed.py probe          # linear probe, full train -> test
    python benchmarks/embed_speed.py ray --n 20000  # local vs Ray, same 2 cores
    python benchmarks/embed_speed.py ray-memory --sizes 20000 200000   # streamed: flat memory

Each sub-command prints a table and replaces its own section of benchmarks/RESULTS.md:
"Offline backbone: feature choice", "Embedding speed", "Embedding cache (70,000 images)",
"Offline backbone: linear probe on Fashion-MNIST".

OMP_WAIT_POLICY=PASSIVE is set (before torch loads) because on a CPU shared with other
jobs OpenMP's spinning threads made the forward pass 10x slower here (measured: 2 threads
11 img/s spinning vs 150 img/s passive).
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
REPO = Path(__file__).resolve().parent.parent
os.environ.setdefault("DFW_CACHE_DIR", str(REPO / ".dfw_cache"))  # the shared, warm cache

import _results as bench
import embed_ray_bench
import numpy as np  # noqa: E402

log = logging.getLogger("embed_speed")


def machine_note() -> str:
    import torch

    return (f"{bench.machine_note()}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
            "no GPU")


def fashion(split: str):
    import dfwidgets as dfw

    return dfw.datasets.fashion_mnist(split=split)


# ------------------------------------------------------------------ feature choice
def one_nn(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    a = train / np.linalg.norm(train, axis=1, keepdims=True)
    b = test / np.linalg.norm(test, axis=1, keepdims=True)
    return float(np.mean(y_train[(b @ a.T).argmax(1)] == y_test))


def logistic(train: np.ndarray, y_train: np.ndarray, test: np.ndarray, y_test: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=300, C=0.5))
    return float(model.fit(train, y_train).score(test, y_test))


def run_features(args: argparse.Namespace) -> None:
    import torch

    from dfwidgets._embedders._lite0_net import PooledStages, load_pretrained_lite0
    from dfwidgets._embedders._preprocess import ResizeToTensor

    bench.limit_threads(args.threads, blas=False)
    train, test = fashion("train"), fashion("test")
    rng = np.random.default_rng(0)
    itr = np.sort(rng.choice(len(train), args.n_train, replace=False))
    ite = np.sort(rng.choice(len(test), args.n_test, replace=False))
    xtr, xte = train.array[itr], test.array[ite]
    ytr, yte = train.labels[itr], test.labels[ite]
    net = PooledStages(load_pretrained_lite0(), stages=(0, 1, 2, 3, 4, "head"), balance=False).eval()
    widths = [16, 24, 40, 112, 320, 1280]
    offsets = np.cumsum([0] + widths)
    variants = [  # name, stage columns, per-stage L2 balance
        ("final features (head)", [5], False),
        ("stage 4", [3], False),
        ("stages 3-5", [2, 3, 4], False),
        ("stages 3-5, balanced", [2, 3, 4], True),
        ("all 5 stages", [0, 1, 2, 3, 4], False),
        ("all 5 stages, balanced (chosen at 64 px)", [0, 1, 2, 3, 4], True),
    ]
    rows = []
    for size in args.sizes:
        transform = ResizeToTensor(size, mean=0.5, std=0.5)

        def features(x: np.ndarray) -> np.ndarray:
            out = []
            with torch.inference_mode():
                for s in range(0, len(x), 128):
                    out.append(net(transform.batch_from_uint8(x[s:s + 128])).numpy())
            return np.concatenate(out)

        start = time.perf_counter()
        ftr, fte = features(xtr), features(xte)
        rate = (len(xtr) + len(xte)) / (time.perf_counter() - start)
        for name, cols, balance in variants:
            parts_tr = [ftr[:, offsets[c]:offsets[c + 1]] for c in cols]
            parts_te = [fte[:, offsets[c]:offsets[c + 1]] for c in cols]
            if balance:
                parts_tr = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts_tr]
                parts_te = [p / np.linalg.norm(p, axis=1, keepdims=True) for p in parts_te]
            a, b = np.concatenate(parts_tr, 1), np.concatenate(parts_te, 1)
            row = [f"{size} px", name, a.shape[1], f"{logistic(a, ytr, b, yte):.3f}",
                   f"{one_nn(a, ytr, b, yte):.3f}", f"{rate:.0f}"]
            rows.append(row)
            print(" | ".join(map(str, row)), flush=True)
        write_features_section(args, rows)  # after each size, so a partial run still reports
    a = xtr.reshape(len(xtr), -1).astype(np.float32) / 255
    b = xte.reshape(len(xte), -1).astype(np.float32) / 255
    rows.append(["28 px", "raw pixels (baseline)", a.shape[1], f"{logistic(a, ytr, b, yte):.3f}",
                 f"{one_nn(a, ytr, b, yte):.3f}", "-"])
    print(" | ".join(map(str, rows[-1])))
    write_features_section(args, rows)


def write_features_section(args: argparse.Namespace, rows: list[list]) -> None:
    md = (
        "## Offline backbone: feature choice\n\n"
        f"`python benchmarks/embed_speed.py features --n-train {args.n_train} --n-test {args.n_test} "
        f"--sizes {' '.join(map(str, args.sizes))}`: efficientnet_lite0 (packaged ImageNet weights), "
        f"Fashion-MNIST {args.n_train} random train / {args.n_test} random test images, upscaled; "
        "global-average-pooled stage outputs; logistic regression (standardised, C=0.5) and cosine "
        "1-NN. \"balanced\" = each stage's pooled vector L2-normalised before concatenation. "
        f"img/s = forward pass computing all features at once; {machine_note()}.\n\n"
        + bench.markdown_table(["input", "features", "dims", "logistic regression", "1-NN", "img/s"], rows) + "\n"
        + feature_conclusion(rows, args.n_test)
    )
    bench.report(args, "Offline backbone: feature choice", md)


def feature_conclusion(rows: list[list], n_test: int) -> str:
    """One paragraph: the embed() default against the best variant of this run."""
    chosen = [r for r in rows if r[0] == "64 px" and "chosen" in r[1]]
    learned = [r for r in rows if r[5] != "-"]
    if not chosen or not learned:
        return ""
    best_lr = max(learned, key=lambda r: float(r[3]))
    best_nn = max(learned, key=lambda r: float(r[4]))
    se = (0.85 * 0.15 / n_test) ** 0.5
    return (
        f"\nembed() default: {chosen[0][1].split(' (')[0]} at 64 px "
        f"(LR {chosen[0][3]}, 1-NN {chosen[0][4]}). Best in this run: LR {best_lr[3]} "
        f"({best_lr[0]}, {best_lr[1]}), 1-NN {best_nn[4]} ({best_nn[0]}, {best_nn[1]}); "
        f"one standard error here is about {se:.3f}.\n"
    )


# ------------------------------------------------------------------ throughput
class _NoArraySource:
    """The same images without the array fast path (forces PIL + DataLoader)."""

    def __init__(self, src) -> None:
        self.src = src
        self.array = None

    def __len__(self) -> int:
        return len(self.src)

    def __getitem__(self, i: int):
        return self.src[i]


def run_speed(args: argparse.Namespace) -> None:
    import importlib

    import torch

    import dfwidgets as dfw

    embed_mod = importlib.import_module("dfwidgets.embed")
    bench.limit_threads(args.threads, blas=False)
    src = fashion("test").subset(np.arange(args.n))
    embedder = dfw.get_embedder("efficientnet_lite0")
    module = embedder.module
    ready = [embedder.transform.batch_from_uint8(src.array[s:s + 64]) for s in range(0, args.n, 64)]
    with torch.inference_mode():
        module(ready[0])  # warm-up

    def forward_only() -> None:
        with torch.inference_mode():
            for x in ready:
                module(x)

    def pipeline(source, workers: int | None):
        def run() -> None:
            embed_mod._compute(embedder, source, np.arange(args.n), batch_size=64,
                               num_workers=workers, device="cpu", progress=False)
        return run

    configs = [
        ("model forward alone (ready tensors)", forward_only),
        ("embed(): uint8 array, vectorised resize (used for arrays)", pipeline(src, None)),
        ("embed(): PIL decode + transform, DataLoader 0 workers", pipeline(_NoArraySource(src), 0)),
        ("embed(): PIL decode + transform, DataLoader 2 workers", pipeline(_NoArraySource(src), 2)),
    ]
    times: dict[str, list[float]] = {name: [] for name, _ in configs}
    for _ in range(args.repeats):  # interleaved so load changes hit every config alike
        for name, fn in configs:
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times[configs[0][0]])
    rows = []
    for name, _ in configs:
        med = statistics.median(times[name])
        rows.append([name, f"{args.n / med:.0f}", f"{med / base:.2f}x",
                     f"{100 * (med - base) / base:+.0f}%"])
        print(" | ".join(rows[-1]), flush=True)
    md = (
        "## Embedding speed\n\n"
        f"`python benchmarks/embed_speed.py speed --n {args.n} --repeats {args.repeats}`: "
        f"efficientnet_lite0 at 64 px, all five stages, {args.n} Fashion-MNIST test images, batch 64, "
        f"median of {args.repeats} interleaved runs; {machine_note()}.\n\n"
        + bench.markdown_table(["path", "images/s (median)", "time vs forward alone", "pipeline overhead"], rows)
        + "\n\nArrays take the vectorised path with no workers; file sources use a DataLoader "
        "with min(2, CPUs) workers.\n"
    )
    bench.report(args, "Embedding speed", md)


# ------------------------------------------------------------------ cache
def run_cache(args: argparse.Namespace) -> None:
    import dfwidgets as dfw
    from dfwidgets.data import ImageSource

    bench.limit_threads(args.threads, blas=False)
    train, test = fashion("train"), fashion("test")
    images = np.concatenate([train.array, test.array])  # 70,000 images
    images.flags.writeable = False  # like the built-in datasets: hashes memoised per source
    first, second, hashing, cpu_first, cpu_second = [], [], [], [], []
    for _ in range(args.repeats):
        src = ImageSource.from_array(images)
        start, cpu = time.perf_counter(), time.process_time()
        emb = dfw.embed(src, model="efficientnet_lite0", progress=False)
        first.append(time.perf_counter() - start)
        cpu_first.append(time.process_time() - cpu)
        start, cpu = time.perf_counter(), time.process_time()
        again = dfw.embed(src, model="efficientnet_lite0", progress=False)
        second.append(time.perf_counter() - start)
        cpu_second.append(time.process_time() - cpu)
        start = time.perf_counter()
        ImageSource.from_array(images).content_hashes()
        hashing.append(time.perf_counter() - start)
    assert emb.shape == (70000, 512) and np.array_equal(emb, again)
    total = statistics.median(first)
    rows = [
        ["warm, first call on a new source (hashes 70,000 images + reads cache)",
         f"{total:.2f} s", f"{statistics.median(cpu_first):.2f} s",
         f"median of {args.repeats}; hashing alone {statistics.median(hashing):.2f} s wall"],
        ["warm, second call on the same source", f"{statistics.median(second):.2f} s",
         f"{statistics.median(cpu_second):.2f} s", f"median of {args.repeats}"],
    ]

    # cold, measured on a subset in an empty cache folder, then scaled to 70,000
    with tempfile.TemporaryDirectory() as tmp:
        sub = ImageSource.from_array(images[: args.cold_n])
        start = time.perf_counter()
        dfw.embed(sub, model="efficientnet_lite0", cache_dir=tmp, progress=False)
        cold = time.perf_counter() - start
        start = time.perf_counter()
        dfw.embed(ImageSource.from_array(images[: args.cold_n]), model="efficientnet_lite0",
                  cache_dir=tmp, progress=False)
        warm_sub = time.perf_counter() - start
    rate = args.cold_n / cold
    rows.append([f"cold: embed() on {args.cold_n:,} images, empty cache", f"{cold:.1f} s", "",
                 f"{rate:.0f} img/s -> about {70000 / rate / 60:.0f} min for 70,000"])
    rows.append([f"warm: same {args.cold_n:,} images again", f"{warm_sub:.3f} s", "",
                 f"{cold / warm_sub:.0f}x faster than cold"])
    rows.append(["warm (new source) vs cold, 70,000 images (cold estimated)",
                 f"{70000 / rate / total:.0f}x faster", "", ""])
    for r in rows:
        print(" | ".join(r), flush=True)
    md = (
        "## Embedding cache (70,000 images)\n\n"
        f"`python benchmarks/embed_speed.py cache --repeats {args.repeats} --cold-n {args.cold_n}`: Fashion-MNIST train+test (70,000 images) as one "
        "new array source per call, efficientnet_lite0 vectors read from the shared cache "
        f"(`$DFW_CACHE_DIR`, .npy shards keyed by content hash); {machine_note()}.\n\n"
        + bench.markdown_table(["measurement", "wall time", "CPU time (this process)", "note"], rows)
        + "\n\nWall times on this oversubscribed machine are several times the CPU time; "
        "the CPU column shows the work itself.\n"
    )
    bench.report(args, "Embedding cache (70,000 images)", md)


# ------------------------------------------------------------------ linear probe
def run_probe(args: argparse.Namespace) -> None:
    import dfwidgets as dfw

    train, test = fashion("train"), fashion("test")
    rows = []
    start = time.perf_counter()
    etr = dfw.embed(train, model="efficientnet_lite0", progress=True)
    ete = dfw.embed(test, model="efficientnet_lite0", progress=False)
    log.info("embeddings ready in %.1fs", time.perf_counter() - start)
    rows.append(["efficientnet_lite0, 64 px, all 5 stages balanced", etr.shape[1],
                 f"{logistic(etr, train.labels, ete, test.labels):.4f}",
                 f"{one_nn(etr, train.labels, ete, test.labels):.4f}"])
    print(" | ".join(map(str, rows[-1])), flush=True)
    ptr = train.array.reshape(len(train), -1).astype(np.float32) / 255
    pte = test.array.reshape(len(test), -1).astype(np.float32) / 255
    rows.append(["raw pixels 28x28 (dataset baseline, about 0.84)", ptr.shape[1],
                 f"{logistic(ptr, train.labels, pte, test.labels):.4f}",
                 f"{one_nn(ptr, train.labels, pte, test.labels):.4f}"])
    print(" | ".join(map(str, rows[-1])), flush=True)
    md = (
        "## Offline backbone: linear probe on Fashion-MNIST\n\n"
        "`python benchmarks/embed_speed.py probe`: logistic regression (standardised, C=0.5, "
        "300 iterations) fit on the full train split (60,000), scored on the full test split "
        f"(10,000); cosine 1-NN over the train split; {machine_note()}.\n\n"
        + bench.markdown_table(["features", "dims", "logistic regression", "1-NN"], rows) + "\n"
    )
    bench.report(args, "Offline backbone: linear probe on Fashion-MNIST", md)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("features")
    p.add_argument("--n-train", type=int, default=5000)
    p.add_argument("--n-test", type=int, default=2000)
    p.add_argument("--sizes", type=int, nargs="+", default=[64, 96])
    p = sub.add_parser("speed")
    p.add_argument("--n", type=int, default=768)
    p.add_argument("--repeats", type=int, default=3)
    p = sub.add_parser("cache")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cold-n", type=int, default=1000)
    sub.add_parser("probe")
    embed_ray_bench.add_parsers(sub)  # "ray" and "ray-memory": local vs Ray, peak memory
    for p in sub.choices.values():
        bench.add_threads_option(p, default=2, help="torch threads")
        bench.add_output_options(p)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    commands = {"features": run_features, "speed": run_speed, "cache": run_cache,
                "probe": run_probe, **embed_ray_bench.COMMANDS}
    commands[args.command](args)


if __name__ == "__main__":
    main()

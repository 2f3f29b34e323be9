"""UMAP layout speed, memory and quality: dfwidgets vs plain umap-learn, each in a fresh process.

`python benchmarks/layout_speed.py` (defaults: --n 20000 --large 1000000 --subset 100000;
`--n 0` runs the large layout alone into its own section; `--first-view 1000000` only
times the PCA first view of the 1M rows in 3 fresh processes and prints it)

* **20k** (real Fashion-MNIST train embeddings, offline backbone, 512-d): plain
  `umap.UMAP(metric="cosine").fit_transform` vs `dfw.compute_layout` (no layout cached),
  each in a fresh Python process: "cold" with an empty numba cache, then one warm-up process
  each, then "warm" (numba caches filled, as after scripts/setup.sh). dfwidgets' layout cache
  hit (a third process) is shown too. Time = from process start (imports included, the
  embeddings file read excluded) to coordinates.
* **1M**: the 70,000 real train+test embeddings plus noise-jittered copies of them (each copy
  = a real vector + Gaussian noise of about the median nearest-neighbour distance,
  renormalised) up to 1,000,000 rows: time to the PCA first view (`fit(background=True)`
  returning) and to the full layout (UMAP of a 50k sample + faiss placement), peak memory.
  Quality on a seeded 100k subset: trustworthiness / 10-NN preservation of the 1M layout
  restricted to the subset vs a full UMAP of the subset (dfwidgets' pipeline, no sampling).
* Quality columns: `dfwidgets.layout_quality` (cosine in D, 2,000 seeded queries, ranks
  over all items). Peak memory: `ru_maxrss` of the child process.
Prints a table and updates the "UMAP layout: speed, memory, quality" section of RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time

import _results as bench

SECTION = "UMAP layout: speed, memory, quality"
SECTION_LARGE = "UMAP layout at a million items"
T0 = time.perf_counter()


def _embeddings(n: int, large: bool):
    import numpy as np

    import dfwidgets as dfw

    train = dfw.embed(dfw.datasets.fashion_mnist(split="train"), model="efficientnet_lite0",
                      progress=False)
    if not large:
        return np.ascontiguousarray(train[:n])
    test = dfw.embed(dfw.datasets.fashion_mnist(split="test"), model="efficientnet_lite0",
                     progress=False)
    real = np.concatenate([train, test]).astype(np.float32)
    if n <= len(real):
        return real[:n]
    rng = np.random.default_rng(0)
    out = np.empty((n, real.shape[1]), dtype=np.float32)
    out[:len(real)] = real
    scale = 0.25 / np.sqrt(real.shape[1])  # noise norm ~0.25: a typical neighbour distance
    for lo in range(len(real), n, 100_000):
        hi = min(n, lo + 100_000)
        src = rng.integers(0, len(real), hi - lo)
        block = real[src] + rng.normal(scale=scale, size=(hi - lo, real.shape[1]))
        out[lo:hi] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def child(args: argparse.Namespace) -> None:
    """One measurement in this fresh process; prints JSON, saves coordinates to --out."""
    import numpy as np

    x = _embeddings(args.n, args.kind in ("dfw_large", "subset_full", "first_view"))
    from dfwidgets import layout_umap

    if args.sample:
        layout_umap.SAMPLE_MAX = args.sample
    t_data = time.perf_counter() - T0
    res: dict = {}
    t = time.perf_counter()
    if args.kind == "plain":
        import umap

        xy = umap.UMAP(metric="cosine").fit_transform(x)
    elif args.kind == "first_view":  # the PCA first view alone (import of layout included)
        from dfwidgets.layout import LayoutComputer

        xy = LayoutComputer(method="pca", cache=False, progress=False).fit(x).embedding_
        res["first_view"] = time.perf_counter() - t
    elif args.kind in ("dfw", "dfw_large"):
        from dfwidgets.layout import LayoutComputer

        lc = LayoutComputer(cache_dir=args.layout_cache, progress=False).fit(x, background=True)
        res["first_view"] = time.perf_counter() - t
        xy = lc.wait()
    else:  # subset_full: the reference full UMAP of a subset (no sampling)
        from dfwidgets.layout import LayoutComputer

        pick = np.sort(np.random.default_rng(1).choice(len(x), args.subset, replace=False))
        layout_umap.SAMPLE_MAX = len(pick) + 1
        xy = LayoutComputer(cache=False, progress=False).fit(x[pick]).wait()
        np.save(args.out + ".idx.npy", pick)
    res["layout"] = time.perf_counter() - t
    res["process"] = time.perf_counter() - T0 - t_data  # imports + layout, data read excluded
    res["peak_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    np.save(args.out, np.asarray(xy, dtype=np.float32))
    print(json.dumps(res))


def run(kind: str, n: int, out: str, env: dict, *, layout_cache: str, subset: int = 0,
        sample: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", kind, "--n", str(n), "--out", out,
           "--layout-cache", layout_cache, "--subset", str(subset), "--sample", str(sample)]
    # each kind has its own numba cache (plain umap-learn must not warm dfwidgets' one)
    own = "plain" if kind == "plain" else "dfw"
    env = dict(env, NUMBA_CACHE_DIR=os.path.join(env["BENCH_TMP"], f"numba_{own}"))
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{kind} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--large", type=int, default=1_000_000, help="0: skip the large run")
    ap.add_argument("--subset", type=int, default=100_000)
    ap.add_argument("--sample", type=int, default=0,
                    help="UMAP sample size above which items are placed (0: the default 50k)")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    ap.add_argument("--layout-cache", help=argparse.SUPPRESS)
    ap.add_argument("--first-view", type=int, default=0, metavar="N",
                    help="only time the PCA first view of N items (3 fresh processes; "
                         "prints, writes nothing)")
    bench.add_output_options(ap)
    args = ap.parse_args()
    if args.child:
        args.kind = args.child
        child(args)
        return
    if args.first_view:
        first_view_only(args.first_view)
        return
    load_start = bench.load_average()
    tmp = tempfile.mkdtemp(prefix="dfw_layout_bench_")
    env = dict(os.environ, BENCH_TMP=tmp)
    env.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    env.pop("OMP_NUM_THREADS", None)  # both cores, like a user
    rows, res, notes = [], {}, []
    if args.n:
        x = _embeddings(args.n, False)
        small(args, x, tmp, env, rows, res, notes)
    else:  # the large run alone: one warm-up process fills its numba cache first
        run("dfw", 3_000, os.path.join(tmp, "warmup.npy"), env,
            layout_cache=os.path.join(tmp, "layout_warmup"))

    if args.large:
        large_rows(args, tmp, env, rows, notes)
    shutil.rmtree(tmp, ignore_errors=True)
    md = [f"## {SECTION if args.n else SECTION_LARGE}", "",
          (f"`{bench.command_line('layout_speed.py')}` - "
           "each cell is a fresh Python process (time from process start to coordinates, "
           "imports included, embeddings file read excluded); cold = empty numba cache, "
           "warm = after one warm-up process of the same kind. Quality: trustworthiness and "
           "10-NN preservation (cosine, 2,000 seeded queries). "
           f"{bench.machine_note(load_start)}."), "",
          bench.markdown_table(["items", "method", "run", "time", "peak memory",
                                "trustworthiness", "10-NN kept"], rows), ""]
    md += [f"- {note}" for note in notes]
    bench.report(args, SECTION if args.n else SECTION_LARGE, "\n".join(md))


def _quality(path: str, xs) -> tuple[str, str]:
    import numpy as np

    from dfwidgets.layout_quality import layout_quality

    q = layout_quality(xs, np.load(path))
    return f"{q['trustworthiness']:.3f}", f"{q['knn_preservation']:.3f}"


def small(args, x, tmp: str, env: dict, rows: list, res: dict, notes: list) -> None:
    """The 20k rows: plain vs dfwidgets, cold / warm, and a layout cache hit."""
    for phase in ("cold", "warmup", "warm"):
        for kind in ("plain", "dfw"):
            out = os.path.join(tmp, f"{kind}_{phase}.npy")
            cache = os.path.join(tmp, f"layout_{kind}_{phase}")
            res[kind, phase] = r = run(kind, args.n, out, env, layout_cache=cache)
            if phase != "warmup":
                name = "plain umap-learn" if kind == "plain" else "dfwidgets"
                rows.append([f"{args.n:,}", name, phase, f"{r['process']:.1f} s",
                             f"{r['peak_gb']:.2f} GB", *_quality(out, x)])
    hit = run("dfw", args.n, os.path.join(tmp, "hit.npy"), env,
              layout_cache=os.path.join(tmp, "layout_dfw_warm"))
    rows.append([f"{args.n:,}", "dfwidgets", "layout cache hit", f"{hit['process']:.1f} s",
                 f"{hit['peak_gb']:.2f} GB", "", ""])
    speedup = res["plain", "warm"]["process"] / res["dfw", "warm"]["process"]
    notes.append(f"warm: dfwidgets {speedup:.1f}x faster than plain umap-learn "
                 f"({res['dfw', 'warm']['layout']:.1f} s in compute_layout itself).")


def first_view_only(n: int) -> None:
    """`--first-view N`: the PCA first view of N items, 3 fresh processes, no UMAP."""
    tmp = tempfile.mkdtemp(prefix="dfw_first_view_")
    env = dict(os.environ, BENCH_TMP=tmp)
    env.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    load = bench.load_average()
    times = [run("first_view", n, os.path.join(tmp, "fv.npy"), env, layout_cache=tmp)
             ["first_view"] for _ in range(3)]
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"PCA first view of {n:,} x 512: " + ", ".join(f"{t:.2f} s" for t in times)
          + f" (median {sorted(times)[1]:.2f} s; load {load} -> {bench.load_average()})")


def large_rows(args, tmp: str, env: dict, rows: list, notes: list) -> None:
    """The 1M row: sample + placement, its quality against a full UMAP of a subset."""
    import numpy as np

    from dfwidgets.layout_quality import layout_quality

    large = os.path.join(tmp, "large.npy")
    r = run("dfw_large", args.large, large, env, layout_cache=os.path.join(tmp, "lg"),
            sample=args.sample)
    ref = os.path.join(tmp, "subset.npy")
    run("subset_full", args.large, ref, env, layout_cache=tmp, subset=args.subset)
    xl = _embeddings(args.large, True)
    pick = np.load(ref + ".idx.npy")
    sub = xl[pick]
    q_big = layout_quality(sub, np.load(large)[pick])
    q_ref = layout_quality(sub, np.load(ref))
    sample = args.sample or 50_000
    rows.append([f"{args.large:,}", f"dfwidgets ({sample:,} sample + placement)", "warm",
                 f"{r['process']:.1f} s", f"{r['peak_gb']:.2f} GB",
                 f"{q_big['trustworthiness']:.3f}", f"{q_big['knn_preservation']:.3f}"])
    rows.append([f"{args.subset:,} subset", "full UMAP of the subset (reference)", "warm",
                 "", "", f"{q_ref['trustworthiness']:.3f}",
                 f"{q_ref['knn_preservation']:.3f}"])
    made = ("the 70,000 real Fashion-MNIST embeddings plus noise-jittered copies"
            if args.large > 70_000 else "real Fashion-MNIST train+test embeddings")
    notes.append(f"{args.large:,}: PCA first view after {r['first_view']:.2f} s; the "
                 f"{args.large:,} rows are {made}; quality of the large layout is measured on a "
                 f"seeded {args.subset:,} subset against a full UMAP of that subset.")


if __name__ == "__main__":
    main()

"""UMAP layout cost, first vs second process: numba's JIT cache under the dfwidgets cache.

`python benchmarks/layout_speed.py --n 2000` runs two fresh Python processes one after the
other on the same real embeddings (Fashion-MNIST, offline backbone) with an empty numba
cache folder: the first compiles umap/pynndescent and fills the cache, the second loads
compiled code from it. In each process the layout is computed twice (layout cache off):
the second fit shows the cost once everything is compiled in the process.
Prints a table and updates the "UMAP layout: JIT cache" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import _results as bench

SECTION = "UMAP layout: JIT cache"


def child(n: int) -> None:
    """Time import + two UMAP fits in this process; print JSON."""
    t0 = time.perf_counter()
    import numpy as np

    import dfwidgets as dfw
    from dfwidgets.layout import LayoutComputer

    src = dfw.datasets.fashion_mnist("train").subset(np.arange(n))
    emb = dfw.embed(src, model="efficientnet_lite0", progress=False)
    t_data = time.perf_counter() - t0
    times = []
    for seed in (0, 1):
        t = time.perf_counter()
        LayoutComputer(cache=False, random_state=seed, progress=False).fit(emb)
        times.append(time.perf_counter() - t)
    print(json.dumps({"data": t_data, "fit1": times[0], "fit2": times[1],
                      "cpu": time.process_time()}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    bench.add_output_options(ap)
    args = ap.parse_args()
    if args.child:
        child(args.n)
        return
    load_start = bench.load_average()
    numba_dir = tempfile.mkdtemp(prefix="dfw_numba_bench_")
    env = dict(os.environ, NUMBA_CACHE_DIR=numba_dir, OMP_NUM_THREADS="1",
               NUMBA_NUM_THREADS="1")
    env.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    runs = []
    for _ in range(2):
        out = subprocess.run([sys.executable, __file__, "--child", "--n", str(args.n)], env=env,
                             check=True, capture_output=True, text=True).stdout
        runs.append(json.loads(out.strip().splitlines()[-1]))
    rows = [
        ("process 1 (empty numba cache), 1st fit", f"{runs[0]['fit1']:.1f} s", ""),
        ("process 1, 2nd fit (compiled in process)", f"{runs[0]['fit2']:.1f} s",
         f"{runs[0]['fit1'] / runs[0]['fit2']:.1f}x faster than the 1st"),
        ("process 2 (numba cache filled), 1st fit", f"{runs[1]['fit1']:.1f} s",
         f"{runs[0]['fit1'] / runs[1]['fit1']:.2f}x faster than process 1"),
        ("process 2, 2nd fit", f"{runs[1]['fit2']:.1f} s", ""),
    ]
    md = [f"## {SECTION}", "",
          f"`python benchmarks/layout_speed.py --n {args.n}` - UMAP (cosine, PCA to 50 dims, "
          f"n_neighbors=15, one thread) of {args.n:,} real Fashion-MNIST embeddings "
          "(offline backbone, 512-d), layout cache off; two fresh processes in a row sharing "
          f"one NUMBA_CACHE_DIR, empty at the start. {bench.machine_note(load_start)}.",
          "", bench.markdown_table(["measurement", "wall time", "note"], rows)]
    md += ["", f"CPU time per process: {runs[0]['cpu']:.1f} s (cold cache) vs "
               f"{runs[1]['cpu']:.1f} s (warm cache). The layout cache (on by default) makes "
               "any repeat of the same embeddings a file read."]
    bench.report(args, SECTION, "\n".join(md))


if __name__ == "__main__":
    main()

"""Local vs Ray embedding on the same cores, and peak memory as the input grows.

Sub-commands of ``benchmarks/embed_speed.py`` (this module holds their code):

    python benchmarks/embed_speed.py ray --n 20000              # local vs Ray, 2 cores
    python benchmarks/embed_speed.py ray-memory --sizes 20000 200000

``ray``: Fashion-MNIST test images (cycled past 10,000) as PNG files and as a uint8 array,
embedded with efficientnet_lite0 into an empty cache by the local engine (torch 2 threads,
DataLoader workers for files) and by ``engine="ray"`` on a local Ray with the same CPUs
(1 model actor with 2 torch threads; decoding in the actor, the library's CPU default, or
``--decode tasks`` in Ray tasks). Ray is started before timing (``start_ray``: the RFC 3987
grammar is not built in Ray's processes); actor start-up and model loading are inside the
Ray time. Target: Ray <= 1.15 x local.

``ray-memory``: ``embed_to_parquet`` over a Parquet file of N paths (the image files cycled;
ids unique), each run in a fresh subprocess with an empty cache; the peak resident memory
of that process (``resource.getrusage(RUSAGE_SELF).ru_maxrss``) and of its largest child
(Ray's raylet/workers, DataLoader workers) after it ends. Flat = streamed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _results as bench
import numpy as np

HERE = Path(__file__).resolve().parent
# Ray workers inherit the environment of the Ray started here: let them import dfwidgets
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])


def write_pngs(folder: Path, n: int) -> list[str]:
    """``n`` Fashion-MNIST test images as PNG files (cycled past 10,000; a one-pixel mark
    keeps every file's content distinct, so nothing comes from the cache)."""
    import PIL.Image

    import dfwidgets as dfw

    arr = dfw.datasets.fashion_mnist(split="test").array
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = folder / f"{i:07d}.png"
        if not path.exists():
            img = arr[i % len(arr)].copy()
            img[0, 0] = (i // len(arr)) % 256
            PIL.Image.fromarray(img).save(path)
        paths.append(str(path))
    return paths


def images_array(n: int) -> np.ndarray:
    import dfwidgets as dfw

    arr = dfw.datasets.fashion_mnist(split="test").array
    out = np.concatenate([arr] * (-(-n // len(arr))))[:n].copy()
    out[:, 0, 0] = (np.arange(n) // len(arr)) % 256
    return out


def run_ray(args: argparse.Namespace) -> None:
    """Local vs Ray on the same cores (files and arrays), cold cache each time."""
    import importlib

    import dfwidgets as dfw
    from dfwidgets.data import ImageSource
    from dfwidgets.embed_ray_import import start_ray

    engine_mod = importlib.import_module("dfwidgets.embed_ray")
    real_rows = engine_mod.embed_rows
    base_options = engine_mod.RayOptions

    class Options(base_options):  # where Ray decodes: --decode (default: the library's)
        def __init__(self, **kwargs) -> None:
            kwargs.setdefault("decode", args.decode)
            super().__init__(**kwargs)

    engine_mod.RayOptions = Options
    first_batch: list[float] = []

    def timed_rows(*a, **k):  # when the first batch reaches the driver (start-up done)
        for i, batch in enumerate(real_rows(*a, **k)):
            if i == 0:
                first_batch.append(time.perf_counter())
            yield batch

    engine_mod.embed_rows = timed_rows
    start_load = bench.load_average()
    bench.limit_threads(args.threads, blas=False)
    t0 = time.perf_counter()
    ray = start_ray(num_cpus=args.threads, include_dashboard=False, log_to_driver=False)
    ray_init = time.perf_counter() - t0
    _, _, _, decode = Options().resolve(ray)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dfw-embed-bench-"))
    paths = write_pngs(work / "png", args.n)
    sources = {"PNG files": lambda: ImageSource.from_paths(paths, check=False),
               "uint8 array": lambda: ImageSource.from_array(images_array(args.n))}
    rows = []
    for name, make in sources.items():
        if name.split()[0].lower() not in [s.lower() for s in args.sources]:
            continue
        times: dict[str, list[float]] = {"local": [], "ray": [], "startup": []}
        for _ in range(args.repeats):
            for engine in ("local", "ray"):  # interleaved so load changes hit both
                src = make()
                with tempfile.TemporaryDirectory() as cache:
                    first_batch.clear()
                    t0 = time.perf_counter()
                    emb = dfw.embed(src, model="efficientnet_lite0", engine=engine,
                                    cache_dir=cache, progress=False, batch_size=args.batch_size)
                    times[engine].append(time.perf_counter() - t0)
                    if engine == "ray":
                        times["startup"].append(first_batch[0] - t0)
                assert emb.shape == (args.n, 512)
        local, on_ray = min(times["local"]), min(times["ray"])
        best = int(np.argmin(times["ray"]))
        startup = times["startup"][best]
        steady = (args.n - args.batch_size) / max(on_ray - startup, 1e-9)
        rows.append([name, args.n, f"{local:.1f} s ({args.n / local:.0f} img/s)",
                     f"{on_ray:.1f} s ({args.n / on_ray:.0f} img/s)",
                     f"{100 * (on_ray - local) / local:+.0f}%",
                     "yes" if on_ray <= 1.15 * local else "no",
                     f"{startup:.1f} s, then {steady:.0f} img/s"])
        print(" | ".join(map(str, rows[-1])), flush=True)
    ray.shutdown()
    md = (
        "## Embedding: local engine vs Ray on the same cores\n\n"
        f"`{bench.command_line('embed_speed.py')}`: efficientnet_lite0 (64 px), "
        f"{args.n:,} Fashion-MNIST images, empty cache each run, batch {args.batch_size}, best of "
        f"{args.repeats} interleaved runs. Local: torch {args.threads} threads (+ DataLoader "
        f"workers for files). Ray: `ray.init(num_cpus={args.threads})` (started before timing: "
        f"{ray_init:.0f} s, `dfwidgets.embed_ray_import.start_ray`), 1 model actor with "
        f"{args.threads} torch threads, decoding in {'the actor' if decode == 'actors' else 'Ray tasks'}; "
        "actor start and model load are inside the Ray time; "
        f"{bench.machine_note(start_load)}.\n\n"
        + bench.markdown_table(["source", "images", "local", "Ray", "Ray overhead",
                                "<= 15%", "Ray: to first batch, then"], rows) + "\n"
        + "\nThe local engine's model stays loaded between runs (dfwidgets keeps one per "
        "process); each Ray run starts its actor and loads the model again, which is in "
        "\"to first batch\".\n"
    )
    bench.report(args, "Embedding: local vs Ray", md)


def run_memory(args: argparse.Namespace) -> None:
    """Peak memory of embed_to_parquet in a fresh process, N paths per run."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    start_load = bench.load_average()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="dfw-embed-mem-"))
    files = write_pngs(work / "png", args.files)
    rows, peaks = [], {}
    for engine in args.engines:
        for n in args.sizes:
            table = work / f"paths-{n}.parquet"
            if not table.exists():
                pq.write_table(pa.table({"id": [f"item{i:07d}" for i in range(n)],
                                         "path": [files[i % len(files)] for i in range(n)]}), table)
            with tempfile.TemporaryDirectory() as cache:
                cmd = [sys.executable, str(HERE / "embed_ray_bench.py"), "_child", "--engine",
                       engine, "--table", str(table), "--out", str(work / f"emb-{engine}-{n}.parquet"),
                       "--cache", cache, "--threads", str(args.threads)]
                proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
                if proc.returncode != 0:  # e.g. ray.init timing out on a loaded machine
                    sys.exit(f"{engine} run of {n:,} paths failed:\n{proc.stderr[-3000:]}")
                res = json.loads(proc.stdout.strip().splitlines()[-1])
            peaks.setdefault(engine, []).append(res["self_mb"])
            rows.append([engine, f"{n:,}", f"{res['self_mb']:.0f} MB", f"{res['child_mb']:.0f} MB",
                         f"{res['seconds']:.0f} s", res["rows"]])
            print(" | ".join(map(str, rows[-1])), flush=True)
    md = (
        "## Embedding to Parquet: peak memory as the input grows\n\n"
        f"`{bench.command_line('embed_speed.py')}`: `dfw.embed_to_parquet` over a Parquet "
        f"file of N paths ({args.files:,} PNG files cycled, unique ids), efficientnet_lite0, "
        "empty cache, one fresh process per run; peak RSS of that process and of its largest "
        "child (Ray raylet/workers or DataLoader workers), from `resource.getrusage`. The local "
        "engine finds repeated files in the cache after the first pass, so its larger runs time "
        "reading and hashing more than the model; Ray computes every row, so its cache grows "
        "with N (its shard merges stream the vectors a few thousand rows at a time). "
        f"{bench.machine_note(start_load)}.\n\n"
        + bench.markdown_table(["engine", "paths", "peak RSS (process)", "peak RSS (largest child)",
                                "wall", "rows written"], rows) + "\n"
        + "".join(f"\n{engine}: process peak at {args.sizes[-1]:,} paths vs {args.sizes[0]:,}: "
                  f"{100 * (p[-1] / p[0] - 1):+.0f}% (flat = within 10%: "
                  f"{'yes' if p[-1] <= 1.10 * p[0] else 'no'}).\n"
                  for engine, p in peaks.items() if len(p) > 1)
    )
    bench.report(args, "Embedding to Parquet: peak memory", md)


def child(argv: list[str]) -> None:
    """One embed_to_parquet run; prints JSON with peak memory and time."""
    p = argparse.ArgumentParser()
    for opt in ("--engine", "--table", "--out", "--cache"):
        p.add_argument(opt, required=True)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    import pyarrow.parquet as pq
    import torch

    import dfwidgets as dfw

    torch.set_num_threads(a.threads)
    if a.engine == "ray":
        from dfwidgets.embed_ray_import import start_ray

        ray = start_ray(num_cpus=a.threads, include_dashboard=False, log_to_driver=False)
    t0 = time.perf_counter()
    dfw.embed_to_parquet(a.table, a.out, model="efficientnet_lite0", engine=a.engine,
                         cache_dir=a.cache, progress=False)
    seconds = time.perf_counter() - t0
    if a.engine == "ray":
        ray.shutdown()
    kb = 1024.0
    print(json.dumps({"self_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / kb,
                      "child_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / kb,
                      "seconds": seconds, "rows": pq.ParquetFile(a.out).metadata.num_rows}))


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("ray", help="local vs Ray on the same cores")
    p.add_argument("--n", type=int, default=20000)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--sources", nargs="+", default=["png", "uint8"])
    p.add_argument("--workdir", default=None, help="keep the PNG files here between runs")
    p.add_argument("--decode", choices=["actors", "tasks"], default=None,
                   help="decode in the model actor or in Ray tasks (default: the library's)")
    p = sub.add_parser("ray-memory", help="peak memory of embed_to_parquet as N grows")
    p.add_argument("--sizes", type=int, nargs="+", default=[20000, 200000])
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--engines", nargs="+", default=["ray", "local"])
    p.add_argument("--workdir", default=None)


COMMANDS = {"ray": run_ray, "ray-memory": run_memory}

if __name__ == "__main__" and sys.argv[1:2] == ["_child"]:
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    child(sys.argv[2:])

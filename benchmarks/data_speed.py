"""ImageSource speed on Fashion-MNIST: files vs arrays, cold vs cached content hashes.

Writes the Fashion-MNIST images (train + test, 70,000 by default) as PNG files into a
temporary folder, then measures in one run:

- ``from_folder`` construction (listing + cheap header check of every file);
- ``content_hashes()`` with an empty hash cache vs the second call on the same source and
  on a new source (cached by path, size, mtime_ns in SQLite);
- ``src[i]`` per item for the array source vs the folder source (median of single calls);
- ``check()`` (full decode of every file).

Usage: ``python benchmarks/data_speed.py [--n 70000]``. Prints a table and writes the
"ImageSource speed" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import _results as bench

SECTION = "ImageSource speed"

log = logging.getLogger("benchmarks.data_speed")


def _timed(fn, *args, **kwargs) -> tuple[float, object]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return time.perf_counter() - start, out


def _median_item_us(src, indices) -> float:
    times = []
    for i in indices:
        start = time.perf_counter()
        src[int(i)]
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=70000, help="number of images (<= 70000)")
    parser.add_argument("--items", type=int, default=2000, help="items timed for src[i]")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import numpy as np
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="dfw_data_speed_") as tmp:
        # an empty hash cache for the cold measurement
        os.environ["DFW_CACHE_DIR"] = str(Path(tmp) / "cache")
        from dfwidgets import datasets
        from dfwidgets.data import ImageSource

        arrays = datasets.fashion_mnist(split="all").subset(np.arange(args.n))
        folder = Path(tmp) / "fmnist"
        log.info("writing %d PNG files to %s ...", args.n, folder)
        names = [c.replace("/", "-") for c in arrays.classes]  # "T-shirt/top" -> a folder name
        for name in names:
            (folder / name).mkdir(parents=True)
        for i in range(args.n):
            Image.fromarray(arrays.array[i]).save(
                folder / names[arrays.labels[i]] / f"{i:05d}.png", compress_level=1)

        t_build, files = _timed(ImageSource.from_folder, folder)
        assert len(files) == args.n and files.problems.empty
        t_hash_cold, h1 = _timed(files.content_hashes)
        t_hash_warm, h2 = _timed(files.content_hashes)
        assert (h1 == h2).all()
        fresh = ImageSource.from_folder(folder, check=False)  # as in a new Python session
        t_hash_disk, h3 = _timed(fresh.content_hashes)
        assert (h1 == h3).all()
        t_fingerprint, _ = _timed(ImageSource.from_folder(folder, check=False).fingerprint)
        t_array_hash, _ = _timed(arrays.content_hashes)
        rng = np.random.default_rng(0)
        idx = rng.choice(args.n, size=min(args.items, args.n), replace=False)
        us_array = _median_item_us(arrays, idx)
        us_file = _median_item_us(files, idx)
        t_check, problems = _timed(files.check, progress=False)
        assert problems.empty

    rows = [
        ("from_folder (list + header check)", f"{t_build:.2f} s", f"{args.n / t_build:,.0f} files/s"),
        ("content_hashes, files, empty cache", f"{t_hash_cold:.2f} s", f"{args.n / t_hash_cold:,.0f} files/s"),
        ("content_hashes, files, second call", f"{t_hash_warm:.2f} s",
         f"{t_hash_cold / t_hash_warm:.1f}x faster than empty cache"),
        ("content_hashes, files, new source (SQLite cache)", f"{t_hash_disk:.2f} s",
         f"{t_hash_cold / t_hash_disk:.1f}x faster than empty cache"),
        ("fingerprint(), files, new source (cached)", f"{t_fingerprint:.2f} s", ""),
        ("content_hashes, array source", f"{t_array_hash:.2f} s", f"{args.n / t_array_hash:,.0f} images/s"),
        ("src[i], array source (median)", f"{us_array:.0f} us", ""),
        ("src[i], PNG files (median)", f"{us_file:.0f} us", f"{us_file / us_array:.1f}x the array path"),
        ("check() full decode, files", f"{t_check:.2f} s", f"{args.n / t_check:,.0f} files/s"),
    ]
    intro = (f"`python benchmarks/data_speed.py --n {args.n}`: Fashion-MNIST as {args.n:,} PNG "
             f"files (28x28) vs the same images as a uint8 array; {bench.machine_note(load_start)}; "
             f"src[i] = median of {len(idx)} single calls.")
    md = (f"## {SECTION}\n\n{intro}\n\n"
          + bench.markdown_table(["measurement", "time", "note"], rows) + "\n")
    bench.report(args, SECTION, md)


if __name__ == "__main__":
    sys.exit(main())

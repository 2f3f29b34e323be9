"""LabelStore and Session labeling speed: what one key press costs in the store.

Measures, in one run on a real SQLite file in a temp folder:

- ``LabelStore.set_labels`` of one item with ``synchronous=FULL`` (what dfwidgets uses:
  fsync per commit) against ``synchronous=NORMAL`` (WAL, no fsync per commit);
- ``Session.label`` of one item on a 60,000-item Fashion-MNIST session with 0 and with
  10,000 labels already in the store (incremental cache update), and a full reload
  (``refresh`` after another process wrote) at 10,000 labels;
- two processes labeling into one file at once (throughput, and nothing lost).

Usage: ``python benchmarks/label_store.py [--n 300]``. Prints a table and replaces the
"LabelStore speed" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import _results as bench
import numpy as np

from dfwidgets.session import Session
from dfwidgets.store import LabelStore

SECTION = "LabelStore speed"


def timed(fn, n: int) -> np.ndarray:
    """Run ``fn(i)`` n times; return the durations in milliseconds."""
    out = np.empty(n)
    for i in range(n):
        t = time.perf_counter()
        fn(i)
        out[i] = (time.perf_counter() - t) * 1000
    return out


def stats(ms: np.ndarray) -> tuple[float, float]:
    return float(np.median(ms)), float(np.percentile(ms, 95))


_WRITER = textwrap.dedent(
    """
    import sys
    from dfwidgets.store import LabelStore
    store = LabelStore(sys.argv[1])
    for i in range(int(sys.argv[3])):
        store.set_labels([f"{sys.argv[2]}-{i}"], "c", source="click")
    """
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=300, help="labels per measurement")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    n = args.n
    rows: list[tuple[str, str, str, str]] = []
    tmp = Path(tempfile.mkdtemp(prefix="dfw_bench_store_"))

    # 1. FULL vs NORMAL, interleaved in blocks so both see the same machine load
    full, normal = LabelStore(tmp / "full.sqlite"), LabelStore(tmp / "normal.sqlite")
    normal._conn.execute("PRAGMA synchronous = NORMAL")
    t_full, t_normal = [], []
    for block in range(10):
        t_full.append(timed(lambda i, b=block: full.set_labels([f"f{b}-{i}"], "A",
                                                               source="click"), n // 10))
        t_normal.append(timed(lambda i, b=block: normal.set_labels([f"n{b}-{i}"], "A",
                                                                   source="click"), n // 10))
    f50, f95 = stats(np.concatenate(t_full))
    n50, n95 = stats(np.concatenate(t_normal))
    rows.append(("store.set_labels, 1 item, synchronous=FULL (used)", f"{f50:.2f} ms",
                 f"{f95:.2f} ms", f"{f50 / n50:.1f}x NORMAL's median"))
    rows.append(("store.set_labels, 1 item, synchronous=NORMAL", f"{n50:.2f} ms",
                 f"{n95:.2f} ms", "no fsync per commit"))

    # 2. Session.label on a 60,000-item session
    import dfwidgets as dfw

    src = dfw.datasets.fashion_mnist(split="train")
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((len(src), 16)).astype(np.float32)  # store speed only
    s = Session.open(tmp / "proj", source=src, embeddings=emb, auto_fit=False)
    classes = s.classes
    order = rng.permutation(len(src))
    t0 = timed(lambda i: s.label([int(order[i])], classes[i % 10]), n)
    bulk = order[n:n + 10_000]
    s.label_many(bulk, [classes[i % 10] for i in range(len(bulk))], source="bulk")
    t10k = timed(lambda i: s.label([int(order[10_000 + n + i])], classes[i % 10]), n)
    a50, a95 = stats(t0)
    b50, b95 = stats(t10k)
    rows.append(("Session.label, 1 item, 60k items, 0 labels", f"{a50:.2f} ms",
                 f"{a95:.2f} ms", ""))
    rows.append(("Session.label, 1 item, 60k items, 10k labels", f"{b50:.2f} ms",
                 f"{b95:.2f} ms", f"{b50 / a50:.2f}x the median at 0 labels (fsync-bound)"))
    other = LabelStore(s.path)
    reload_ms = []
    for i in range(10):
        other.set_labels([s.ids[int(order[-1 - i])]], "Bag", source="click")
        t = time.perf_counter()
        assert s.refresh()
        reload_ms.append((time.perf_counter() - t) * 1000)
    r50, r95 = stats(np.array(reload_ms))
    rows.append(("Session.refresh after another writer, 10k labels", f"{r50:.1f} ms",
                 f"{r95:.1f} ms", "incremental: only items with new events"))
    t = time.perf_counter()
    # force the full reload path once (the label cache part of the Session; setting
    # attributes on the Session itself would silently time an incremental refresh)
    s._labels.invalidate()
    s.refresh()
    full_ms = (time.perf_counter() - t) * 1000
    rows.append(("Session label cache full reload, 10k labels", f"{full_ms:.1f} ms", "",
                 f"{full_ms / r50:.0f}x the incremental refresh"))
    s.close()

    # 3. two processes into one file
    shared = tmp / "shared.sqlite"
    LabelStore(shared).close()
    t = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(shared), name, str(n)],
                              cwd=bench.REPO) for name in ("p", "q")]
    codes = [p.wait() for p in procs]
    wall = time.perf_counter() - t
    got = len(LabelStore(shared).current())
    rows.append((f"2 processes x {n} labels into one file", f"{wall:.2f} s wall",
                 "", f"{got}/{2 * n} labels present, exit codes {codes}"))

    table = bench.markdown_table(["measurement", "median", "p95", "note"], rows)
    md = (f"## {SECTION}\n\n`python benchmarks/label_store.py --n {n}` - real SQLite file "
          f"(WAL) on this machine's disk, {bench.machine_note(load_start)}; "
          f"{n} single-item labels per row.\n\n{table}\n")
    bench.report(args, SECTION, md)


if __name__ == "__main__":
    main()

"""Workbench open time: ``dfw.Workbench(folder of images)`` from run-cell to everything
drawn, in real JupyterLab + headless Chromium, with a cold and a warm cache.

Writes the first ``--n`` Fashion-MNIST test images (10,000 by default) as PNG files in
class sub-folders into a temporary folder, starts JupyterLab (tests/e2e/harness.py) with a
fresh, empty ``DFW_CACHE_DIR``, and runs one cell in a fresh kernel each time::

    wb = dfw.Workbench(folder, model="efficientnet_lite0")
    wb

- cold: empty cache and no project folder, so listing the files, decoding, embedding,
  the UMAP layout (numba compiling into the fresh cache) and the thumbnails are all in it;
- warm: the same cell again in a new kernel: the project folder
  (``<folder>/.dfwidgets``) is reopened and the embeddings and layout come from the cache.

Times are wall clock from the moment the cell is sent to run until, polled from the page
every ~0.3 s (screenshots of the map: "drawn" is judged from pixels): the cell has
finished; the header shows the item count; the map shows points; the map shows its final
layout (status "UMAP"; the first of two polls with the same pixels). ``import dfwidgets`` runs in an earlier
cell of the same kernel and is not counted.

Run from the repository root (the full run takes minutes; use a quiet machine)::

    python benchmarks/workbench.py              # --n 10000, writes benchmarks/RESULTS.md
    python benchmarks/workbench.py --n 500 --no-write   # a quick check

Prints a table and writes the "Workbench open" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _results as bench

sys.path.insert(0, str(bench.REPO / "tests" / "e2e"))

from harness import drawn_fraction, open_lab, write_png_folder

SECTION = "Workbench open"
log = logging.getLogger("workbench_bench")

#: one poll of the page: is the cell done, what do the header and the map status say
STATE_JS = """(i) => {
  const w = window.jupyterapp.shell.currentWidget, c = w.content.widgets[i];
  const q = (s) => c.node.querySelector(s);
  return { done: c.model.executionCount !== null && !c.hasClass('jp-mod-running'),
           errors: c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                    .map(o => o.ename + ': ' + o.evalue),
           header: (q('.dfw-wb-header') || {}).textContent || '',
           status: ((q('.dfw-map-status') || {}).textContent || '').trim() };
}"""


def _map_pixels(lab, index: int):
    """Pixels of the map's plot area (left of the legend), or None before the map exists."""
    body = lab.cell(index).locator(".dfw-map-body").first
    if not body.count() or not body.is_visible():
        return None
    px = lab.pixels(body)
    legend = lab.cell(index).locator(".dfw-map-legend").first
    if legend.count() and legend.is_visible():
        bb, lb = body.bounding_box(), legend.bounding_box()
        if bb and lb and lb["x"] > bb["x"]:
            px = px[:, : max(10, int(lb["x"] - bb["x"]) - 4)]
    return px


def time_open(lab, index: int, n: int, *, timeout: float) -> dict[str, float]:
    """Run cell ``index`` (the Workbench cell) and time the milestones (seconds)."""
    page = lab.page
    count = f"{n:,} items"
    marks: dict[str, float] = {}
    prev = None
    t0 = time.perf_counter()
    page.evaluate("""(i) => { const w = window.jupyterapp.shell.currentWidget;
        w.content.activeCellIndex = i;
        window.jupyterapp.commands.execute('notebook:run-cell'); }""", index)
    while time.perf_counter() - t0 < timeout:
        st = page.evaluate(STATE_JS, index)
        now = time.perf_counter() - t0
        if st["errors"]:
            raise RuntimeError(f"the Workbench cell raised: {st['errors']}")
        if st["done"]:
            marks.setdefault("cell", now)
        if count in st["header"]:
            marks.setdefault("header", now)
        px = _map_pixels(lab, index)
        if px is not None and drawn_fraction(px) > 0.01:
            marks.setdefault("points", now)
            if st["status"].endswith("UMAP"):
                # final layout: drawn since the previous poll if nothing moved in between
                if prev is not None and prev[1].shape == px.shape and \
                        abs(prev[1].astype(int) - px).max() <= 8:
                    marks.setdefault("final", prev[0])
                prev = (now, px)
        if {"cell", "header", "final"} <= marks.keys():
            break
        page.wait_for_timeout(300)
    else:
        raise TimeoutError(f"not everything drawn after {timeout:.0f} s: {marks}")
    marks["everything"] = max(marks["header"], marks["final"])
    return marks


def run(n: int, *, model: str, timeout: float, keep: bool) -> list[dict]:
    """The cold and the warm run; one dict of milestones per run."""
    from dfwidgets import datasets

    tmp = Path(tempfile.mkdtemp(prefix="dfw_bench_wb_"))
    src = datasets.fashion_mnist(split="test")
    if not 0 < n <= len(src):
        raise SystemExit(f"--n must be in 1..{len(src)}")
    folder = tmp / "images"
    t = time.perf_counter()
    write_png_folder(src.array[:n], src.labels[:n], src.classes, folder)
    log.info("wrote %d PNG files in %.1f s to %s", n, time.perf_counter() - t, folder)
    env = {"DFW_CACHE_DIR": str(tmp / "cache"),  # fresh: the cold run fills it
           "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    rows = []
    try:
        with open_lab(tmp / "root", env=env) as lab:
            for name in ("cold", "warm"):
                lab.open_notebook(f"{name}.ipynb", [
                    "import dfwidgets as dfw",
                    f"wb = dfw.Workbench({str(folder)!r}, model={model!r})\nwb"])
                lab.run_cell(0, timeout=300)
                marks = time_open(lab, 1, n, timeout=timeout)
                marks["labeled"] = lab.kernel_eval("wb.session.status()['n_labeled']")
                log.info("%s: %s", name, {k: round(v, 2) for k, v in marks.items()
                                          if isinstance(v, float)})
                rows.append({"run": name, **marks})
                lab.server.shutdown_kernels()
    finally:
        if keep:
            log.info("kept %s", tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=10_000,
                        help="Fashion-MNIST test images in the folder (default 10,000)")
    parser.add_argument("--model", default="efficientnet_lite0", help="embedding model")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    bench.add_output_options(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    load_start = bench.load_average()
    rows = run(args.n, model=args.model, timeout=args.timeout, keep=args.keep)

    def sec(v: float) -> str:
        return f"{v:.1f} s"

    table = bench.markdown_table(
        ["cache", "cell finished", "header with counts", "first points on the map",
         "final layout (UMAP) drawn", "everything drawn"],
        [[r["run"], sec(r["cell"]), sec(r["header"]), sec(r["points"]), sec(r["final"]),
          f"**{sec(r['everything'])}**"] for r in rows])
    cold, warm = rows[0]["everything"], rows[1]["everything"]
    intro = (f"`{bench.command_line('workbench.py')}`: `dfw.Workbench(folder, "
             f"model={args.model!r})` on {args.n:,} Fashion-MNIST test images as PNG files "
             "in class sub-folders, in real JupyterLab + headless Chromium, a fresh kernel "
             "per run (one BLAS/OpenMP thread, as in the e2e tests), from run-cell to "
             "everything drawn (header with the counts, map pixels of the final layout), "
             "polled every ~0.3 s. Cold: a fresh `DFW_CACHE_DIR` and no project folder "
             "(file listing, embedding, UMAP with numba compiling, thumbnails); warm: the "
             f"same cell again. {bench.machine_note(load_start)}.")
    md = (f"## {SECTION}\n\n{intro}\n\n{table}\n\nWarm is {cold / warm:.1f}x faster than "
          "cold.")
    bench.report(args, SECTION, md)


if __name__ == "__main__":
    main()

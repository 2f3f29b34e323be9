"""Labeler latency on a 60,000-item Fashion-MNIST Session.

1. Key press -> next image drawn, measured in the page (performance.now() at keydown to
   the frame after the next image is on screen) in real JupyterLab + headless Chromium,
   for the Labeler as shipped (optimistic: the next preloaded image shows at once, Python
   commits in message order) and for the naive design (wait for Python's commit and the
   new queue before showing anything), in the same run.
2. The background update after a few more answers: Session.fit (warm-started linear probe)
   plus the Labeler's queue reorder (``next_batch`` over 60,000 items), at 100 and 1,000
   labels.

Run from the repository root:  python benchmarks/labeler_latency.py [--presses 40]
Prints a table and writes the "Labeler latency" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import _results as bench
import numpy as np

SECTION = "Labeler latency"
log = logging.getLogger("labeler_latency")


def _pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q))


# ----------------------------------------------------------------- retrain timing
def measure_retrain(src, emb, *, sizes=(100, 1000), reps: int = 3) -> list[dict]:
    """Median fit and reorder seconds after 5 new answers, at each label count."""
    import dfwidgets as dfw
    from dfwidgets.label_queue import LabelQueue

    rng = np.random.default_rng(0)
    order = rng.permutation(len(src))
    names = np.asarray(src.classes, dtype=object)[src.labels]
    rows = []
    with tempfile.TemporaryDirectory(prefix="dfw_bench_") as tmp:
        s = dfw.Session.open(Path(tmp) / "p", source=src, embeddings=emb, auto_fit=False)
        q = LabelQueue(s, strategy="hybrid", batch=8, ahead=9)
        done = 0
        for n in sizes:
            idx = order[done:n]
            s.label_many(idx, names[idx].tolist(), source="import")
            done = n
            s.fit()  # the first fit at this size (cold probe members etc.)
            fits, reorders = [], []
            for _ in range(reps):
                new = order[done:done + 5]
                s.label_many(new, names[new].tolist(), source="click")
                done += 5
                t0 = time.perf_counter()
                s.fit()
                fits.append(time.perf_counter() - t0)
                q.fill()
                t0 = time.perf_counter()
                q.reorder()
                reorders.append(time.perf_counter() - t0)
            rows.append({"labels": n, "fit_s": float(np.median(fits)),
                         "reorder_s": float(np.median(reorders)), "model": s.fit_status_})
            log.info("retrain at %d labels: %s", n, rows[-1])
        s.close()
    return rows


# ------------------------------------------------------------- browser latency
def measure_browser(presses: int) -> dict[str, list[float]]:
    """Key-to-next-image times (ms) in real JupyterLab + Chromium: optimistic vs round trip."""
    sys.path.insert(0, str(bench.REPO / "tests" / "e2e"))
    from harness import (CHROMIUM, CHROMIUM_ARGS, JupyterServer, LabPage, key_latencies,
                         start_key_latency_probe)
    from playwright.sync_api import sync_playwright

    out: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="dfw_bench_lab_") as tmp:
        project = Path(tmp) / "project"
        server = JupyterServer(Path(tmp) / "root",
                               env={"DFW_CACHE_DIR": os.environ["DFW_CACHE_DIR"]}).start()
        try:
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
                page.set_default_timeout(120_000)
                lab = LabPage(server, page)
                lab.open_notebook("bench.ipynb", [
                    "import dfwidgets as dfw\n"
                    "src = dfw.datasets.fashion_mnist(split='train')\n"
                    "emb = dfw.embed(src, model='efficientnet_lite0', progress=False)\n"
                    f"s = dfw.Session.open({str(project)!r}, source=src, embeddings=emb)",
                    "lab = dfw.Labeler(s, strategy='hybrid', batch=8)\nlab",
                ])
                lab.run_cell(0, timeout=900)
                lab.run_cell(1)
                root = lab.wait_for_widget(1, ".dfw-labeler")
                stage = root.locator(".dfw-lab-stage")
                handle = stage.element_handle()
                page.wait_for_function("(el) => el.dataset.index !== undefined", arg=handle)
                truth = lab.kernel_eval("src.labels.tolist()")
                names = lab.kernel_eval("list(src.classes)")
                key_of = dict(zip(lab.kernel_eval("lab.classes"), lab.kernel_eval("lab.class_keys")))
                root.locator(".dfw-lab-status").click()
                for variant, optimistic in (("optimistic (shipped)", True),
                                            ("wait for commit", False)):
                    lab.kernel_exec(f"lab.optimistic = {optimistic}")
                    page.wait_for_timeout(300)
                    start_key_latency_probe(stage)  # from outside the widget; resets per variant
                    for _ in range(presses):
                        shown = stage.get_attribute("data-index")
                        page.keyboard.press(key_of[names[truth[int(shown)]]])
                        page.wait_for_function(
                            "([el, old]) => el.dataset.index !== undefined && "
                            "el.dataset.index !== old", arg=[handle, shown])
                        page.wait_for_timeout(250)  # a fast person: ~2-3 answers per second
                    if any("error" in c for c in lab.console):
                        log.warning("browser console: %s", lab.console[-5:])
                    out[variant] = [r["ms"] for r in key_latencies(stage)]
                    log.info("%s: %s", variant, out[variant])
                browser.close()
        finally:
            server.stop()
    return out


# ------------------------------------------------------------------- reporting
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--presses", type=int, default=40, help="key presses per variant")
    parser.add_argument("--skip-browser", action="store_true")
    bench.add_output_options(parser)
    args = parser.parse_args()
    load_start = bench.load_average()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    os.environ.setdefault("DFW_CACHE_DIR", str(bench.REPO / ".dfw_cache"))
    bench.limit_threads(1, blas=False)
    import dfwidgets as dfw

    src = dfw.datasets.fashion_mnist(split="train")
    emb = dfw.embed(src, model="efficientnet_lite0", progress=False)

    lines = [f"## {SECTION}", "",
             f"`python benchmarks/labeler_latency.py --presses {args.presses}` on "
             f"{os.cpu_count()} shared cores ({platform.processor() or platform.machine()}), "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; Fashion-MNIST train "
             f"({len(src):,} items), efficientnet_lite0 embeddings {emb.shape[1]}-d.", ""]
    if not args.skip_browser:
        lat = measure_browser(args.presses)
        opt, rt = lat["optimistic (shipped)"], lat["wait for commit"]
        lines += ["Key press -> next image drawn, measured in the page (JupyterLab + headless "
                  "Chromium):", "",
                  "| variant | n | p50 ms | p95 ms | max ms |", "|---|---|---|---|---|"]
        for name, v in lat.items():
            lines.append(f"| {name} | {len(v)} | {_pct(v, 50):.1f} | {_pct(v, 95):.1f} | "
                         f"{max(v):.1f} |")
        lines += ["", f"Median ratio wait-for-commit / optimistic: "
                  f"**{_pct(rt, 50) / _pct(opt, 50):.1f}x**; p95 ratio "
                  f"{_pct(rt, 95) / _pct(opt, 95):.1f}x. Target: p95 < 100 ms "
                  f"({'met' if _pct(opt, 95) < 100 else 'NOT met'}).", ""]
    rows = measure_retrain(src, emb)
    lines += ["Background update after 5 more answers (median of 3): `Session.fit` + the "
              "Labeler's queue reorder (`next_batch`, hybrid, 60,000 items):", "",
              "| labels | fit s | reorder s | total s | model |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['labels']:,} | {r['fit_s']:.2f} | {r['reorder_s']:.2f} | "
                     f"{r['fit_s'] + r['reorder_s']:.2f} | {r['model']} |")
    if len(rows) == 2:
        totals = [r["fit_s"] + r["reorder_s"] for r in rows]
        lines += ["", f"Ratio 1,000 / 100 labels (total): {totals[1] / totals[0]:.1f}x."]
    lines += ["", f"Machine: {bench.load_note(load_start)}."]
    bench.report(args, SECTION, "\n".join(lines))


if __name__ == "__main__":
    main()

"""Map rendering: dfwidgets' EmbeddingMap vs jupyter-scatter vs plotly (FigureWidget with
Scattergl), side by side in one run, in real JupyterLab + headless Chromium (WebGL on
SwiftShader, tests/e2e/harness.py).

Points are gaussian blobs (12 blobs, a category per blob for the colours), the same
coordinates for every library. Each (library, size) gets a fresh kernel; a set-up cell
(not timed) makes the data (and, for dfwidgets, the Session: ``Session.open`` over an
array source of N random 4x4 images with random 8-d embeddings; the map is given the
blob coordinates as its layout), then the timed cell shows the plot::

    m = dfw.EmbeddingMap(s, layout=xy, color_by=cat); m         # dfwidgets
    jscatter.Scatter(x="x", y="y", data=df, color_by="c").show()  # jupyter-scatter
    go.FigureWidget(go.Scattergl(x=x, y=y, mode="markers", ...))  # plotly

Time to drawn: wall clock from the moment the cell is sent to run until the plot area's
pixels (screenshots, polled; not the DOM) show points (>= 0.5% of pixels differ from the
background). Then, for dfwidgets at ``--interact-n`` points (1,000,000 by default):
- frames per second while the view moves every frame (requestAnimationFrame probe in the
  page: a wheel step per frame, then a mouse drag); moving frames are a subsample drawn at
  half resolution (js/src/lib/map_motion.js, js/src/lib/map_renderer.js);
- lasso: a Shift+drag lasso with the mouse; time from mouse-up until the Session's
  selection changed in the kernel (``selection_changed`` event, wall clock);
- recolour: ``m.color_by = other`` in the kernel until the canvas pixels changed
  (wall clock of the kernel vs the page: same machine). From 50,000 points a recolour
  rewrites the point state texture in place and its first frame is a moving one (the
  subsample, new colours); the full set follows once still (js/src/lib/map_points.js).
- the lasso is found by the page over its own Float32Array of coordinates at mouse-up
  and sent as one binary message (a bit mask for large selections) before
  regl-scatterplot's own lasso end runs (js/src/lib/map_lasso.js).

Run from the repository root (needs ``pip install "jupyter-scatter>=0.19"``, the
``bench`` extra; the full run takes many minutes and ~6 GB at 10M: use a quiet machine)::

    python benchmarks/map_render.py
    python benchmarks/map_render.py --sizes 10000 100000 --interact-n 100000 --no-write

Frame rate side by side (``--fps-n``: the sizes; ``--fps-libs``: dfwidgets and
jupyter-scatter by default): the same rAF probe and gestures for each library's plot
canvas, plus the fresh frames (drawImage calls onto the visible canvas) beside the rAF
ticks (benchmarks/_map_fps.py). Only the frame rates, on a quiet machine::

    python benchmarks/map_render.py --sizes 10000 100000 1000000 --libs dfwidgets \
        jupyter-scatter --interact-n 0 --fps-n 10000 100000 1000000 --no-write

``--chromium-args=FLAG`` / ``--chromium-drop=FLAG`` (repeatable) change the browser's
flags and ``--context JSON`` dfwidgets' WebGL / 2-D context attributes for an experiment;
both are printed with the table. The page's WebGL renderer is logged and printed.

Prints a table and writes the "Map rendering" section of benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import _results as bench
import numpy as np
from PIL import Image
from playwright.sync_api import Error as PlaywrightError

sys.path.insert(0, str(bench.REPO / "tests" / "e2e"))

import harness
from _map_fps import blank_page_ceiling, fps_table, gesture_rates, webgl_info
from harness import (
    drawn_fraction,
    frame_rate,
    open_lab,
    pixel_change_time,
    start_pixel_change_probe,
    timed_lasso,
)

SECTION = "Map rendering"
LIBS = ("dfwidgets", "jupyter-scatter", "plotly")
MAX_N = {"dfwidgets": 10_000_000, "jupyter-scatter": 10_000_000, "plotly": 1_000_000}
log = logging.getLogger("map_render")

DATA = (
    "import time, tempfile, numpy as np\n"
    "N = {n}\n"
    "rng = np.random.default_rng(0)\n"
    "centers = rng.normal(scale=5.0, size=(12, 2))\n"
    "cat = rng.integers(0, 12, size=N).astype(np.uint8)\n"
    "xy = (centers[cat] + rng.normal(size=(N, 2))).astype(np.float32)\n"
)
SETUP = {
    "dfwidgets": DATA + (
        "import dfwidgets as dfw\n"
        "src = dfw.ImageSource.from_array(rng.integers(0, 255, size=(N, 4, 4), dtype=np.uint8))\n"
        "emb = rng.normal(size=(N, 8)).astype(np.float32)\n"
        "s = dfw.Session.open(tempfile.mkdtemp(prefix='bench_map_'), source=src, embeddings=emb,"
        " auto_fit=False)\n"
        "other = ((cat.astype(np.int64) + 5) % 12).astype(np.uint8)\n"
        "_T = []\n"
        "_h = s.on('selection_changed', lambda *a: _T.append(time.time()))\n"
        "dfw.EmbeddingMap  # imported here, not in the timed cell"),
    "jupyter-scatter": DATA + (
        "import pandas as pd, jscatter\n"
        "df = pd.DataFrame({'x': xy[:, 0], 'y': xy[:, 1], 'c': pd.Categorical(cat)})"),
    "plotly": DATA + "import plotly.graph_objects as go\ngo.FigureWidget  # imported here",
}
SHOW = {
    "dfwidgets": "m = dfw.EmbeddingMap(s, layout=xy, color_by=cat, height=460)\nm",
    "jupyter-scatter": "sc = jscatter.Scatter(x='x', y='y', data=df, color_by='c', height=460)\nsc.show()",
    "plotly": ("fig = go.FigureWidget(go.Scattergl(x=xy[:, 0], y=xy[:, 1], mode='markers',"
               " marker=dict(size=3, color=cat, colorscale='Turbo')),"
               " layout=dict(height=460, template='plotly_white', margin=dict(l=40, r=10, t=10, b=30)))\nfig"),
}

#: the plot area of each library's output (its bounding box is screenshotted)
REGION_JS = """([i, lib]) => {
  const c = window.jupyterapp.shell.currentWidget.content.widgets[i];
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return r.width > 10 && r.height > 10 ? { x: r.left, y: r.top, width: r.width, height: r.height } : null; };
  const errors = c.model.outputs.toJSON().filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);
  let b = null;
  if (lib === 'dfwidgets') {
    b = box(c.node.querySelector('.dfw-map-body'));
    const lg = box(c.node.querySelector('.dfw-map-legend'));
    if (b && lg && lg.x > b.x) b.width = Math.max(10, lg.x - b.x - 4);
  } else if (lib === 'plotly') {
    b = box(c.node.querySelector('.js-plotly-plot .nsewdrag'));
  } else {
    const cs = [...c.node.querySelectorAll('.jp-OutputArea-output canvas')];
    cs.sort((p, q) => q.clientWidth * q.clientHeight - p.clientWidth * p.clientHeight);
    b = box(cs[0]);
  }
  return { box: b, errors };
}"""


def time_to_drawn(lab, lib: str, *, timeout: float, min_fraction: float = 0.005) -> float:
    """Send cell 1 to run; seconds until its plot area's pixels show points."""
    page = lab.page
    page.evaluate("""(i) => { const w = window.jupyterapp.shell.currentWidget;
        w.content.activeCellIndex = i; window.jupyterapp.commands.execute('notebook:run-cell'); }""", 1)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        st = page.evaluate(REGION_JS, [1, lib])
        if st["errors"]:
            raise RuntimeError(f"{lib}: the cell raised {st['errors']}")
        if st["box"]:
            b = st["box"]
            png = page.screenshot(clip=b)
            now = time.perf_counter() - t0
            px = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            if drawn_fraction(px) >= min_fraction:
                return now
        page.wait_for_timeout(50)
    raise TimeoutError(f"{lib}: no points drawn after {timeout:.0f} s")


def interact(lab, rates: dict | None = None) -> dict:
    """dfwidgets at the current size: frame rate (zoom, pan; ``rates`` if measured
    already by _map_fps.gesture_rates), lasso and recolour times."""
    page = lab.page
    canvas = lab.cell(1).locator(".dfw-map-canvas").first
    canvas.scroll_into_view_if_needed()
    # the map has drawn, fitted its view (a transition) and is ready (data-drawn) first
    page.wait_for_function("() => document.querySelector('.dfw-map').dataset.drawn === 'true'",
                           timeout=300_000)
    page.wait_for_timeout(1000)
    if rates:
        out = {"zoom": rates["zoom"], "pan": rates["pan"]}
    else:
        out = {"zoom": frame_rate(canvas, seconds=3, mode="zoom")}
        page.wait_for_timeout(500)
        out["pan"] = frame_rate(canvas, seconds=3, mode="pan")
    page.wait_for_timeout(500)
    # recolour: kernel time.time() at the change -> page Date.now() when pixels changed
    start_pixel_change_probe(canvas)
    t_py = float(lab.kernel_exec("_t0 = time.time(); m.color_by = other; print(_t0)").split()[-1])
    out["recolor_s"] = pixel_change_time(canvas, timeout=60) - t_py
    # lasso around the middle of the plot
    page.wait_for_timeout(500)
    b = canvas.bounding_box()
    cx, cy, rx, ry = b["x"] + b["width"] * 0.4, b["y"] + b["height"] / 2, b["width"] * 0.2, b["height"] * 0.3
    poly = [(cx - rx, cy - ry), (cx + rx, cy - ry), (cx + rx, cy + ry), (cx - rx, cy + ry)]
    lab.kernel_exec("_T.clear()")
    t_up = timed_lasso(page, poly)
    deadline = time.time() + 60
    while time.time() < deadline and not lab.kernel_eval("len(_T)"):
        page.wait_for_timeout(100)
    got = lab.kernel_eval("[_T[0] if _T else None, int(len(s.selection))]")
    out["lasso_s"] = (got[0] - t_up) if got[0] else float("nan")
    out["lasso_selected"] = got[1]
    return out


def run(sizes: list[int], libs: list[str], *, interact_n: int, timeout: float,
        fps_n: tuple[int, ...] = (), fps_libs: tuple[str, ...] = (),
        context: dict | None = None) -> tuple[list, dict, dict]:
    """Time to drawn per (lib, n); dfwidgets' interaction at ``interact_n``; zoom/pan frame
    rates of ``fps_libs`` at the sizes ``fps_n`` ({(lib, n): ...}, plus "webgl": the page's
    WebGL renderer); ``context``: dfwidgets' context attributes (--context)."""
    tmp = Path(tempfile.mkdtemp(prefix="dfw_bench_map_"))
    rows, inter, rates = [], {}, {}
    try:
        with open_lab(tmp / "root", env={"DFW_CACHE_DIR": str(tmp / "cache")}) as lab:
            rates["webgl"] = webgl_info(lab)
            log.info("WebGL: %s", rates["webgl"])
            if fps_n:
                rates["ceiling"] = blank_page_ceiling(lab)
                log.info("blank page (500 x 230 frames), frames/s by points drawn: %s", rates["ceiling"])
            for n in sizes:
                for lib in libs:
                    if n > MAX_N[lib]:
                        continue
                    name = f"{lib.replace('-', '_')}_{n}.ipynb"
                    lab.open_notebook(name, [SETUP[lib].replace("{n}", str(n)), SHOW[lib]])
                    try:
                        lab.run_cell(0, timeout=max(timeout, 600))
                        if lib == "dfwidgets" and context:
                            lab.page.evaluate("(c) => { globalThis.dfwMapContext = c; }", context)
                        secs = time_to_drawn(lab, lib, timeout=timeout)
                    except (TimeoutError, RuntimeError, AssertionError, PlaywrightError) as exc:
                        log.warning("%s at %d: %s", lib, n, exc)
                        secs = None
                    log.info("%s at %s points: %s", lib, f"{n:,}",
                             "failed" if secs is None else f"{secs:.2f} s")
                    rows.append({"lib": lib, "n": n, "s": secs})
                    if n in fps_n and lib in fps_libs and secs is not None:
                        try:
                            rates[(lib, n)] = gesture_rates(lab, lib)
                        except (TimeoutError, RuntimeError, AssertionError, PlaywrightError) as exc:
                            log.warning("frame rate of %s at %d failed: %s", lib, n, exc)
                        log.info("frame rate of %s at %d: %s", lib, n, rates.get((lib, n)))
                    if lib == "dfwidgets" and n == interact_n and secs is not None:
                        try:
                            inter = interact(lab, rates.get((lib, n)))
                        except (TimeoutError, RuntimeError, AssertionError, PlaywrightError) as exc:
                            log.warning("interaction at %d failed: %s", n, exc)
                        log.info("interaction at %d: %s", n, inter)
                    lab.server.shutdown_kernels()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return rows, inter, rates


def render(rows: list, inter: dict, args: argparse.Namespace, load_start: float,
           rates: dict | None = None) -> str:
    sizes = sorted({r["n"] for r in rows})
    libs = [lib for lib in LIBS if any(r["lib"] == lib for r in rows)]
    got = {(r["lib"], r["n"]): r["s"] for r in rows}

    def cell(lib: str, n: int) -> str:
        if (lib, n) not in got:
            return "—"
        v = got[(lib, n)]
        if v is None:
            return f"> {args.timeout:.0f} s (not drawn)"
        best = min((x for (_, m), x in got.items() if m == n and x is not None), default=None)
        return f"**{v:.2f} s**" if v == best else f"{v:.2f} s"

    def ratio(lib: str, n: int) -> str:
        a, b = got.get(("dfwidgets", n)), got.get((lib, n))
        return f"{b / a:.1f}x" if a and b else "—"

    table = bench.markdown_table(
        ["points", *libs, *[f"{lib} / dfwidgets" for lib in libs if lib != "dfwidgets"]],
        [[f"{n:,}", *[cell(lib, n) for lib in libs],
          *[ratio(lib, n) for lib in libs if lib != "dfwidgets"]] for n in sizes])
    intro = (f"`{bench.command_line('map_render.py')}`: time from run-cell to points visibly "
             "drawn (judged from screenshot pixels of the plot area, polled), in real "
             "JupyterLab + headless Chromium (WebGL on SwiftShader: no GPU), a fresh kernel "
             "per library and size. Gaussian blobs (12 categories, coloured by category); "
             "dfwidgets' Session is over an array source of N random 4x4 images with random "
             "8-d embeddings, the blobs given as the layout (the set-up cell, not timed). "
             "jupyter-scatter: `Scatter(...).show()`; plotly: `FigureWidget` with `Scattergl`. "
             f"{bench.machine_note(load_start)}.")
    md = f"## {SECTION}\n\n{intro}\n\n{table}\n"
    if inter:
        z, p = inter["zoom"], inter["pan"]
        md += (f"\ndfwidgets at {args.interact_n:,} points: **{z['fps']:.0f} frames/s** zooming "
               f"(wheel step every frame; 95th percentile frame gap {z['p95_ms']:.0f} ms, "
               f"{z['draws']} redraws in {z['seconds']:.1f} s), **{p['fps']:.0f} frames/s** "
               f"panning (drag; p95 {p['p95_ms']:.0f} ms, {p['draws']} redraws); a mouse "
               f"lasso ({inter['lasso_selected']:,} points) reached `session.selection` "
               f"**{inter['lasso_s'] * 1000:.0f} ms** after mouse-up; a recolour "
               f"(`m.color_by = other`, kernel) changed the pixels **{inter['recolor_s'] * 1000:.0f} ms** "
               "later (frames/s from requestAnimationFrame in the page; lasso and recolour "
               "by wall clock, kernel and page on the same machine; while the view moves the map "
               "draws a stratified subsample of at most 15,000 points at half width and height "
               "(the drawing buffers; CSS scales the frame up) and the full set at full "
               "resolution once it has been still for 160 ms, js/src/lib/map_motion.js and "
               "js/src/lib/map_renderer.js; the first frame of a "
               "recolour is such a moving frame, the full set follows, js/src/lib/map_points.js; "
               "the lasso is found by the page over its typed coordinates and sent as one binary "
               "message, js/src/lib/map_lasso.js). Targets: >= 30 frames/s, "
               "lasso <= 1 s, recolour <= 300 ms.\n")
    fps = {k: v for k, v in (rates or {}).items() if k not in ("webgl", "ceiling")}
    if fps:
        gl = (rates or {}).get("webgl", {})
        extra = "".join(f" Chromium flags {what}: `{' '.join(fl)}`." for what, fl in
                        (("added", args.chromium_args), ("left out", args.chromium_drop)) if fl)
        if args.context:
            extra += f" dfwidgets' context attributes: `{json.dumps(args.context)}`."
        md += (f"\nFrame rate side by side (the same rAF probe and gestures for every library, "
               "each 3 s, started when the page is idle (10 rAF gaps < 50 ms in a row: the "
               "still frame of all points is done): frames/s = "
               "requestAnimationFrame ticks while the view moves every tick; \"fresh\" = frames "
               "the renderer really drew, counted as drawImage calls onto the visible canvas; "
               f"WebGL renderer: {gl.get('renderer', '?')}).{extra}\n\n"
               + fps_table(fps, bench.markdown_table))
        if "ceiling" in (rates or {}):
            md += ("\n\nThe browser's ceiling, the same run: a blank page (no JupyterLab, no library) "
                   "drawing k 2-px points per frame into a 500 x 230 WebGL canvas and copying it into "
                   "a visible 2-D canvas: " + ", ".join(f"{k:,} points {v:.1f} frames/s"
                                                         for k, v in rates["ceiling"].items()) + ".\n")
    return md


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+",
                        default=[10_000, 100_000, 1_000_000, 10_000_000])
    parser.add_argument("--libs", nargs="+", choices=LIBS, default=list(LIBS))
    parser.add_argument("--interact-n", type=int, default=1_000_000,
                        help="dfwidgets size for frame rate, lasso and recolour (one of --sizes)")
    parser.add_argument("--fps-n", type=int, nargs="*", default=None,
                        help="sizes (of --sizes) at which to measure zoom/pan frames/s of every "
                             "library in --fps-libs side by side (default: --interact-n)")
    parser.add_argument("--fps-libs", nargs="*", choices=LIBS[:2], default=list(LIBS[:2]))
    parser.add_argument("--chromium-args", action="append", default=[],
                        help="extra Chromium flags (repeat the option per flag; appended to tests/e2e/harness.py's; "
                             "e.g. --chromium-args=--disable-gpu-vsync): reported with the table")
    parser.add_argument("--chromium-drop", action="append", default=[],
                        help="flags of tests/e2e/harness.py's to leave out (e.g. "
                             "--chromium-drop=--disable-gpu): reported with the table")
    parser.add_argument("--context", type=json.loads, default=None,
                        help='JSON of context attributes for dfwidgets\' map, e.g. '
                             '\'{"webgl": {"preserveDrawingBuffer": false}, "canvas2d": '
                             '{"desynchronized": true}}\' (js/src/lib/map_renderer.js): reported')
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per plot")
    bench.add_output_options(parser)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if "jupyter-scatter" in args.libs:
        try:
            import jscatter  # noqa: F401
        except ImportError:
            raise SystemExit('jupyter-scatter is missing: pip install "jupyter-scatter>=0.19" '
                             '(or pip install -e ".[bench]")') from None
    harness.CHROMIUM_ARGS[:] = [f for f in harness.CHROMIUM_ARGS if f not in args.chromium_drop]
    harness.CHROMIUM_ARGS.extend(args.chromium_args)
    fps_n = tuple(args.fps_n if args.fps_n is not None else [args.interact_n])
    load_start = bench.load_average()
    rows, inter, rates = run(sorted(args.sizes), args.libs, interact_n=args.interact_n,
                             timeout=args.timeout, fps_n=fps_n, fps_libs=tuple(args.fps_libs),
                             context=args.context)
    bench.report(args, SECTION, render(rows, inter, args, load_start, rates))


if __name__ == "__main__":
    main()

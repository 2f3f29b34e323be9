"""Frame rate of any library's map in the map_render.py harness (issue 15).

The same measurement as dfwidgets' (tests/e2e/harness.py ``frame_rate``: a
requestAnimationFrame probe in the page, a wheel step per frame, then a mouse drag with
one move per frame) applied to the plot canvas of dfwidgets or jupyter-scatter (both draw
with regl-scatterplot, which copies each WebGL frame into a visible 2-D canvas with
``drawImage``). Beside the rAF frame rate it counts *fresh* frames: ``drawImage`` calls
onto that visible canvas while the gesture runs (a frame the renderer really produced, not
an rAF tick that showed the previous picture), the same counter for both libraries.
"""

from __future__ import annotations

from typing import Any

from harness import frame_rate

#: the plot canvas of cell ``i``'s output, tagged with data-fps-probe so it can be located
TAG_CANVAS_JS = """([i, lib]) => {
  const c = window.jupyterapp.shell.currentWidget.content.widgets[i];
  document.querySelectorAll('[data-fps-probe]').forEach((e) => e.removeAttribute('data-fps-probe'));
  let el = null;
  if (lib === 'dfwidgets') el = c.node.querySelector('.dfw-map-canvas');
  else {
    const cs = [...c.node.querySelectorAll('.jp-OutputArea-output canvas')];
    cs.sort((p, q) => q.clientWidth * q.clientHeight - p.clientWidth * p.clientHeight);
    el = cs[0] || null;
  }
  if (!el) return false;
  el.setAttribute('data-fps-probe', '1');
  return true;
}"""

#: count drawImage calls onto the canvas (the fresh frames): install once, reset per gesture
COUNT_JS = """(canvas, reset) => {
  const ctx = canvas.getContext('2d');
  if (!ctx) return -1;
  if (!ctx._fpsCount) {
    const draw = ctx.drawImage.bind(ctx);
    ctx._fpsCount = { n: 0 };
    ctx.drawImage = (...a) => { ctx._fpsCount.n += 1; return draw(...a); };
  }
  const n = ctx._fpsCount.n;
  if (reset) ctx._fpsCount.n = 0;
  return n;
}"""

#: the WebGL backend the page gets (WEBGL_debug_renderer_info)
WEBGL_INFO_JS = """() => {
  const gl = document.createElement('canvas').getContext('webgl');
  if (!gl) return { renderer: 'no WebGL' };
  const ext = gl.getExtension('WEBGL_debug_renderer_info');
  return { vendor: ext ? gl.getParameter(ext.UNMASKED_VENDOR_WEBGL) : gl.getParameter(gl.VENDOR),
           renderer: ext ? gl.getParameter(ext.UNMASKED_RENDERER_WEBGL) : gl.getParameter(gl.RENDERER),
           version: gl.getParameter(gl.VERSION) };
}"""


#: resolves when the page is idle: `k` rAF gaps in a row under `gap` ms (or after `ms`)
IDLE_JS = """([k, gap, ms]) => new Promise((done) => {
  const t0 = performance.now(); let last = t0, run = 0;
  const step = (t) => { run = t - last < gap ? run + 1 : 0; last = t;
    if (run >= k || t - t0 > ms) done(t - t0); else requestAnimationFrame(step); };
  requestAnimationFrame(step);
})"""


def wait_idle(page: Any, *, frames: int = 10, gap_ms: float = 50.0, timeout_s: float = 30.0) -> float:
    """Wait until the page's frames come quickly again (a still frame of all the points
    being drawn, or a transition, is over); the ms waited."""
    return float(page.evaluate(IDLE_JS, [frames, gap_ms, timeout_s * 1000]))


def plot_canvas(lab: Any, lib: str, *, index: int = 1) -> Any:
    """The locator of the plot canvas of cell ``index``'s output (dfwidgets' map canvas, or
    the largest canvas in the output for jupyter-scatter)."""
    if not lab.page.evaluate(TAG_CANVAS_JS, [index, lib]):
        raise RuntimeError(f"{lib}: no plot canvas in cell {index}'s output")
    return lab.page.locator("[data-fps-probe]").first


def gesture_rates(lab: Any, lib: str, *, seconds: float = 3.0) -> dict:
    """Zoom then pan frame rate of cell 1's plot, each gesture from an idle page
    (:func:`wait_idle`): {zoom: {...}, pan: {...}}, each the harness's frame_rate dict plus
    ``fresh`` (drawImage calls onto the visible canvas in the gesture), ``fresh_fps``
    (those per second) and ``idle_ms`` (the wait for an idle page before it)."""
    page = lab.page
    canvas = plot_canvas(lab, lib)
    canvas.scroll_into_view_if_needed()
    if lib == "dfwidgets":
        page.wait_for_function("() => document.querySelector('.dfw-map').dataset.drawn === 'true'",
                               timeout=300_000)
    page.wait_for_timeout(1500)  # the initial view transition (both libraries) is over
    out = {}
    for mode in ("zoom", "pan"):
        # each gesture starts on an idle page: the still frame of all the points (drawn
        # 160 ms after a move, seconds at 1M under load) is finished, not queued ahead of
        # the gesture's first frame (its time is reported as idle_ms)
        idle = wait_idle(page)
        canvas.evaluate(COUNT_JS, True)
        got = frame_rate(canvas, seconds=seconds, mode=mode)
        fresh = int(canvas.evaluate(COUNT_JS, True))
        got.update(fresh=fresh, fresh_fps=fresh / got["seconds"] if got["seconds"] else 0.0,
                   idle_ms=idle)
        out[mode] = got
        page.wait_for_timeout(800)
    return out


def webgl_info(lab: Any) -> dict:
    """{vendor, renderer, version} of WebGL in the benchmark's page."""
    return lab.page.evaluate(WEBGL_INFO_JS)


def fps_table(rates: dict, markdown_table: Any) -> str:
    """Markdown: one row per (points, gesture), rAF fps and fresh frames/s per library,
    and dfwidgets' rAF fps over each other library's. ``rates``: {(lib, n): gesture_rates}."""
    libs = sorted({lib for lib, _ in rates}, key=lambda s: (s != "dfwidgets", s))
    sizes = sorted({n for _, n in rates})
    others = [lib for lib in libs if lib != "dfwidgets"]
    rows = []
    for n in sizes:
        for mode in ("zoom", "pan"):
            row = [f"{n:,}", mode]
            for lib in libs:
                g = rates.get((lib, n), {}).get(mode)
                row.append(f"{g['fps']:.1f} ({g['fresh_fps']:.1f} fresh, p95 {g['p95_ms']:.0f} ms)"
                           if g else "—")
            for lib in others:
                a, b = rates.get(("dfwidgets", n), {}).get(mode), rates.get((lib, n), {}).get(mode)
                row.append(f"{a['fps'] / b['fps']:.1f}x" if a and b and b["fps"] else "—")
            rows.append(row)
    return markdown_table(["points", "gesture", *[f"{lib} frames/s" for lib in libs],
                           *[f"dfwidgets / {lib}" for lib in others]], rows)


#: rAF frame rate of a blank page drawing K 2-px points per frame into a hidden WebGL
#: canvas of w x h and copying it into a visible 2-D canvas (regl-scatterplot's path)
CEILING_JS = """async ([w, h, k, ms]) => {
  document.body.innerHTML = '';
  const vis = document.createElement('canvas'); vis.width = w; vis.height = h;
  document.body.appendChild(vis);
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const gl = c.getContext('webgl', { antialias: false, preserveDrawingBuffer: true });
  const ctx = vis.getContext('2d');
  const sh = (type, src) => { const s = gl.createShader(type); gl.shaderSource(s, src); gl.compileShader(s); return s; };
  const pr = gl.createProgram();
  gl.attachShader(pr, sh(gl.VERTEX_SHADER, 'attribute vec2 p; uniform float t; void main(){gl_Position=vec4(p.x+t,p.y,0,1);gl_PointSize=2.0;}'));
  gl.attachShader(pr, sh(gl.FRAGMENT_SHADER, 'precision mediump float; void main(){gl_FragColor=vec4(0.2,0.4,0.8,1);}'));
  gl.linkProgram(pr); gl.useProgram(pr);
  const d = new Float32Array(2 * Math.max(1, k)); for (let i = 0; i < d.length; i++) d[i] = Math.random() * 2 - 1;
  gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer()); gl.bufferData(gl.ARRAY_BUFFER, d, gl.STATIC_DRAW);
  const loc = gl.getAttribLocation(pr, 'p'); gl.enableVertexAttribArray(loc); gl.vertexAttribPointer(loc, 2, gl.FLOAT, false, 0, 0);
  const tl = gl.getUniformLocation(pr, 't');
  const times = []; const t0 = performance.now();
  await new Promise((res) => { const step = (t) => { times.push(t);
    gl.clearColor(1, 1, 1, 1); gl.clear(gl.COLOR_BUFFER_BIT); gl.uniform1f(tl, Math.sin(times.length / 10) * 0.1);
    if (k) gl.drawArrays(gl.POINTS, 0, k);
    ctx.clearRect(0, 0, w, h); ctx.drawImage(c, 0, 0);
    if (t - t0 < ms) requestAnimationFrame(step); else res(); }; requestAnimationFrame(step); });
  return (times.length - 1) / ((times[times.length - 1] - times[0]) / 1000);
}"""


def blank_page_ceiling(lab: Any, *, size: tuple[int, int] = (500, 230),
                       points: tuple[int, ...] = (0, 15000, 60000), seconds: float = 2.0) -> dict:
    """{points: frames/s} of a blank page in the same browser (no JupyterLab, no
    scatterplot library): each frame clears a WebGL canvas of ``size`` (a moving frame of
    the map at half resolution), draws ``points`` 2-px points and copies it into a visible
    2-D canvas; twice each, interleaved, the mean. The browser's own ceiling."""
    page = lab.page.context.new_page()
    try:
        page.goto("about:blank")
        got: dict = {k: [] for k in points}
        for _ in range(2):
            for k in points:
                got[k].append(page.evaluate(CEILING_JS, [size[0], size[1], k, seconds * 1000]))
        return {k: sum(v) / len(v) for k, v in got.items()}
    finally:
        page.close()

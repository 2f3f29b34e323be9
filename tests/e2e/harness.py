"""End-to-end harness: a real JupyterLab (or Notebook 7) server driven by headless
Chromium (Playwright).

Reused by every widget's e2e test, scripts/screenshots.py and benchmarks/workbench.py.
Typical use (fixtures from tests/e2e/conftest.py)::

    def test_something(lab):                       # lab: a LabPage on a fresh browser page
        lab.open_notebook("t.ipynb", ["import dfwidgets as dfw", "m = dfw.EmbeddingMap(...)\\nm"])
        lab.run_cell(0); lab.run_cell(1)
        out = lab.wait_for_widget(1)                # locator of the rendered widget view
        lab.wait_until_drawn(1)                     # judged from screenshot pixels
        assert lab.kernel_eval("len(m.selected)") > 0
        lab.screenshot_output(1, "my_widget.png")

``JupyterServer(root, app="notebook")`` starts Jupyter Notebook 7 instead (built on
JupyterLab's components: with ``expose_app_in_browser`` it offers the same
``window.jupyterapp``, so every LabPage helper works there too). Outside pytest,
:func:`open_lab` starts a server + Chromium + page in one ``with`` block.

Nothing here is dfwidgets-specific; the server's kernel imports the working tree.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

REPO = Path(__file__).resolve().parents[2]
OUTPUT = REPO / "tests" / "_output"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # WebGL without a GPU: ANGLE on SwiftShader
    "--use-gl=angle",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
]
LIGHT_THEME = "JupyterLab Light"
DARK_THEME = "JupyterLab Dark"


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_notebook(path: Path, cells: list[str]) -> Path:
    """Write an nbformat-4 notebook of code ``cells`` with a python3 kernelspec."""
    nb = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": None,
                "id": f"cell-{i}",
                "metadata": {},
                "outputs": [],
                "source": src,
            }
            for i, src in enumerate(cells)
        ],
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb, indent=1))
    return path


APPS = ("lab", "notebook")


class JupyterServer:
    """A JupyterLab server on 127.0.0.1 (random free port, random token) in ``root_dir``;
    ``app="notebook"``: Jupyter Notebook 7 (``/notebooks/<name>`` pages)."""

    def __init__(self, root_dir: Path, *, env: dict[str, str] | None = None,
                 app: str = "lab") -> None:
        if app not in APPS:
            raise ValueError(f"app must be one of {APPS}, not {app!r}")
        self.app = app
        self.root_dir = Path(root_dir)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = env or {}
        self._proc: subprocess.Popen | None = None
        self._log_path = self.root_dir.parent / f"jupyter-{self.port}.log"

    def notebook_url(self, name: str) -> str:
        """URL of the page that opens notebook ``name`` (token included). JupyterLab:
        ``?reset`` starts from an empty workspace, so a notebook of an earlier test is not
        restored next to this one (and never becomes the current widget by mistake)."""
        if self.app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?reset&token={self.token}"

    def start(self, *, timeout: float = 120.0) -> JupyterServer:
        """Start the server and wait until its REST API answers."""
        self.root_dir.mkdir(parents=True, exist_ok=True)
        settings = self.root_dir.parent / "lab-settings"
        # no news / update pop-ups covering the notebook
        notif = settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
        notif.parent.mkdir(parents=True, exist_ok=True)
        notif.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        workspaces = self.root_dir.parent / "lab-workspaces"
        workspaces.mkdir(exist_ok=True)
        env = dict(os.environ)
        env.update(
            {
                "JUPYTERLAB_SETTINGS_DIR": str(settings),
                "JUPYTERLAB_WORKSPACES_DIR": str(workspaces),
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), env.get("PYTHONPATH", "")) if p
                ),
                # keep the kernel from taking both cores from the browser
                "OMP_NUM_THREADS": env.get("OMP_NUM_THREADS", "1"),
            }
        )
        env.update(self._env)
        module, app_class = (("notebook", "JupyterNotebookApp") if self.app == "notebook"
                             else ("jupyterlab", "LabApp"))
        cmd = [
            sys.executable, "-m", module,
            "--allow-root",
            "--no-browser",
            "--ServerApp.open_browser=False",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            # window.jupyterapp: run cells with commands, reach the kernel
            f"--{app_class}.expose_app_in_browser=True",
            "--ServerApp.disable_check_xsrf=False",
            "--LabServerApp.open_browser=False",
        ]
        # open while the server runs, closed in stop()
        self._log = open(self._log_path, "wb")  # noqa: SIM115
        self._proc = subprocess.Popen(cmd, cwd=self.root_dir, env=env, stdout=self._log,
                                      stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise RuntimeError(f"Jupyter ({self.app}) exited early:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(
                    f"{self.url}/api/status?token={self.token}", timeout=2
                ) as r:
                    if r.status == 200:
                        return self
            except OSError:
                time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"Jupyter ({self.app}) did not start in {timeout} s:\n"
                           f"{self.log_tail()}")

    def log_tail(self, n: int = 4000) -> str:
        """The last ``n`` characters of the server log (for failure messages)."""
        try:
            return self._log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """Shut down every running kernel (REST API), so one test's kernel and its
        background threads never compete with the next test."""
        import json as _json
        import urllib.request

        def call(method: str, path: str):
            req = urllib.request.Request(f"{self.url}{path}", method=method,
                                         headers={"Authorization": f"token {self.token}"})
            with urllib.request.urlopen(req, timeout=20) as resp:
                body = resp.read()
            return _json.loads(body) if body else None

        for kernel in call("GET", "/api/kernels") or []:
            try:
                call("DELETE", f"/api/kernels/{kernel['id']}")
            except OSError:
                pass

    def stop(self) -> None:
        """Stop the server (and its kernels)."""
        if self._proc is None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=10)
        self._proc = None
        self._log.close()


_KERNEL_EXEC_JS = """
async (code) => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session.kernel;
  const future = kernel.requestExecute({ code, store_history: false, silent: false });
  let out = "", err = null;
  future.onIOPub = (msg) => {
    const t = msg.header.msg_type;
    if (t === "stream" && msg.content.name === "stdout") out += msg.content.text;
    if (t === "error") err = msg.content.ename + ": " + msg.content.evalue + "\\n" +
      (msg.content.traceback || []).join("\\n").replace(/\\x1b\\[[0-9;]*m/g, "");
  };
  await future.done;
  return { out, err };
}
"""

_MARK = "__DFW_JSON__"


class LabPage:
    """One browser page on a JupyterServer, with notebook helpers."""

    def __init__(self, server: JupyterServer, page: Any) -> None:
        self.server = server
        self.page = page
        self.console: list[str] = []
        page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    # -- notebooks ---------------------------------------------------------------
    def open_notebook(self, name: str, cells: list[str], *, timeout: float = 90.0) -> None:
        """Write ``name`` with ``cells`` into the server's root and open it, kernel ready."""
        write_notebook(self.server.root_dir / name, cells)
        self.page.goto(self.server.notebook_url(name))
        self.page.wait_for_function(
            """(name) => { const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
                 return !!(w && w.context && w.context.path === name &&
                           w.sessionContext && w.sessionContext.session &&
                           w.sessionContext.session.kernel &&
                           w.sessionContext.session.kernel.connectionStatus === 'connected' &&
                           w.sessionContext.session.kernel.status === 'idle' &&
                           w.content && w.content.widgets.length > 0); }""",
            arg=name,
            timeout=timeout * 1000,
        )

    def cell(self, index: int) -> Any:
        """Locator of code cell ``index`` of the open notebook."""
        return self.page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook .jp-Cell").nth(index)

    def output(self, index: int) -> Any:
        """Locator of the (first) output of cell ``index``."""
        return self.cell(index).locator(".jp-OutputArea-output").first

    def run_cell(self, index: int, *, timeout: float = 180.0, keys: bool = False) -> None:
        """Run cell ``index`` with the 'notebook:run-cell' command (``keys=True``: click
        the cell's editor and press Shift+Enter, like a person); wait until it finishes."""
        if keys:
            self.cell(index).locator(".jp-InputArea-editor").first.click()
            self.page.keyboard.press("Shift+Enter")
        else:
            self.page.evaluate(
                """async (i) => { const w = window.jupyterapp.shell.currentWidget;
                     w.content.activeCellIndex = i;
                     await window.jupyterapp.commands.execute('notebook:run-cell'); }""",
                index,
            )
        self.page.wait_for_function(
            """(i) => { const w = window.jupyterapp.shell.currentWidget;
                 const c = w.content.widgets[i];
                 return c.model.executionCount !== null && !c.hasClass('jp-mod-running') &&
                        w.sessionContext.session.kernel.status === 'idle'; }""",
            arg=index,
            timeout=timeout * 1000,
        )
        errors = self.page.evaluate(
            """(i) => window.jupyterapp.shell.currentWidget.content.widgets[i].model.outputs
                 .toJSON().filter(o => o.output_type === 'error')
                 .map(o => o.ename + ': ' + o.evalue + '\\n' + (o.traceback || []).join('\\n'))""",
            index,
        )
        if errors:
            clean = re.sub(r"\x1b\[[0-9;]*m", "", "\n".join(errors))
            raise AssertionError(f"cell {index} raised:\n{clean[-4000:]}")

    def run_all(self, *, timeout: float = 300.0) -> None:
        """Run every cell ('notebook:run-all-cells') and wait until the kernel is idle."""
        n = self.page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
        self.page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            """(n) => { const w = window.jupyterapp.shell.currentWidget;
                 return w.content.widgets.slice(0, n).every(c => c.model.type !== 'code' ||
                          c.model.executionCount !== null) &&
                        w.sessionContext.session.kernel.status === 'idle'; }""",
            arg=n,
            timeout=timeout * 1000,
        )

    def wait_for_output(self, index: int, selector: str = ".jp-OutputArea-output", *,
                        timeout: float = 60.0) -> Any:
        """Wait until ``selector`` is visible inside cell ``index``'s output; its locator."""
        loc = self.cell(index).locator(selector).first
        loc.wait_for(state="visible", timeout=timeout * 1000)
        return loc

    def wait_for_widget(self, index: int, selector: str = ".dfw-root", *, timeout: float = 60.0) -> Any:
        """Wait for a rendered widget view (default: any dfwidgets root) in cell ``index``."""
        return self.wait_for_output(index, selector, timeout=timeout)

    # -- kernel --------------------------------------------------------------------
    def kernel_exec(self, code: str) -> str:
        """Run ``code`` in the notebook's kernel (no cell); return stdout, raise on error."""
        res = self.page.evaluate(_KERNEL_EXEC_JS, code)
        if res["err"]:
            raise AssertionError(f"kernel error running {code!r}:\n{res['err']}")
        return res["out"]

    def kernel_eval(self, expr: str) -> Any:
        """Evaluate Python ``expr`` in the kernel; return its value through JSON.

        numpy arrays/scalars are converted with ``.tolist()``.
        """
        code = (
            "import json as _dfw_json, numpy as _dfw_np\n"
            f"_dfw_v = ({expr})\n"
            "_dfw_v = _dfw_v.tolist() if isinstance(_dfw_v, (_dfw_np.ndarray, _dfw_np.generic)) else _dfw_v\n"
            f"print({_MARK!r} + _dfw_json.dumps(_dfw_v, default=str))\n"
        )
        out = self.kernel_exec(code)
        line = next(ln for ln in out.splitlines()[::-1] if ln.startswith(_MARK))
        return json.loads(line[len(_MARK):])

    def restart_kernel(self, *, timeout: float = 60.0) -> None:
        """Restart the notebook's kernel (no dialog) and wait until it is idle."""
        self.page.evaluate(
            "async () => { await window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.restart(); }"
        )
        self.page.wait_for_function(
            "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status === 'idle'",
            timeout=timeout * 1000,
        )

    # -- look ----------------------------------------------------------------------
    def set_theme(self, theme: str = LIGHT_THEME) -> None:
        """Switch JupyterLab's theme ('JupyterLab Light' / 'JupyterLab Dark')."""
        self.page.evaluate(
            "async (t) => { await window.jupyterapp.commands.execute('apputils:change-theme', {theme: t}); }",
            theme,
        )
        self.page.wait_for_function(
            "(t) => document.body.dataset.jpThemeName === t", arg=theme, timeout=30_000
        )
        self.page.wait_for_timeout(300)

    def collapse_side_panels(self) -> None:
        """Close JupyterLab's left and right side panels (more room for the notebook; no-op
        in Notebook 7, which has none open)."""
        self.page.evaluate(
            """() => { const sh = window.jupyterapp.shell;
                 if (sh.collapseLeft) sh.collapseLeft(); if (sh.collapseRight) sh.collapseRight(); }""")
        self.page.wait_for_timeout(300)

    def scroll_cell_to_top(self, index: int) -> None:
        """Scroll the notebook so that cell ``index`` starts at the top of the notebook's
        area (note: an element screenshot afterwards scrolls that element into view)."""
        self.cell(index).evaluate(
            """(el) => { const sc = el.closest('.jp-WindowedPanel-outer') ||
                           el.closest('.jp-Notebook') || document.scrollingElement;
                 sc.scrollTop += el.getBoundingClientRect().top - sc.getBoundingClientRect().top - 4; }""")
        self.page.wait_for_timeout(400)

    def screenshot_page(self, path: Path) -> Path:
        """Save a PNG of the whole browser window (the viewport) to ``path``."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(path))
        return path

    def screenshot_output(self, index: int, name: str, selector: str | None = None) -> Path:
        """Save a PNG of cell ``index``'s output (or ``selector`` inside it) to tests/_output/."""
        OUTPUT.mkdir(parents=True, exist_ok=True)
        path = OUTPUT / name
        loc = self.cell(index).locator(selector).first if selector else self.output(index)
        loc.scroll_into_view_if_needed()
        loc.screenshot(path=str(path))
        return path

    def pixels(self, locator: Any) -> np.ndarray:
        """(H, W, 3) uint8 RGB pixels of an element, from a real screenshot."""
        from PIL import Image

        png = locator.screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def wait_until_drawn(self, locator: Any, *, min_fraction: float = 0.01,
                         timeout: float = 60.0, settle: float = 0.0) -> np.ndarray:
        """Wait until an element's screenshot has at least ``min_fraction`` of pixels that
        differ from its dominant (background) colour, and stop changing; return pixels.

        A canvas exists before anything is drawn on it: this judges from pixels.
        """
        deadline = time.monotonic() + timeout
        prev: np.ndarray | None = None
        frac = 0.0
        while time.monotonic() < deadline:
            px = self.pixels(locator)
            frac = drawn_fraction(px)
            if frac >= min_fraction and prev is not None and prev.shape == px.shape and \
                    np.abs(prev.astype(int) - px).max() <= 8:
                if settle:
                    time.sleep(settle)
                return px
            prev = px if frac >= min_fraction else None
            time.sleep(0.25)
        raise TimeoutError(f"element not drawn after {timeout} s (drawn fraction {frac:.4f})")

    # -- plotly --------------------------------------------------------------------
    def plotly_point(self, plot: Any, x: Any, y: Any) -> tuple[float, float]:
        """Page coordinates (px) of data point (``x``, ``y``) in a plotly chart (``plot``: a
        locator of, or inside, its ``.js-plotly-plot`` div; category axes take names)."""
        plot.scroll_into_view_if_needed()
        xy = plot.evaluate(_PLOTLY_POINT_JS, [x, y])
        if xy is None:
            raise AssertionError(f"no plotly chart (or point {x!r}, {y!r}) in {plot}")
        return float(xy[0]), float(xy[1])

    def plotly_click(self, plot: Any, x: Any, y: Any) -> None:
        """Click data point (``x``, ``y``) of a plotly chart with the mouse (a heatmap cell,
        a bar): plotly's own click event fires, as for a person."""
        px, py = self.plotly_point(plot, x, y)
        self.page.mouse.move(px, py)
        self.page.wait_for_timeout(100)
        self.page.mouse.click(px, py)


_PLOTLY_POINT_JS = """
(el, [x, y]) => {
  const gd = el.classList.contains('js-plotly-plot') ? el : el.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullLayout) return null;
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  const px = xa.d2p(x), py = ya.d2p(y);
  if (!isFinite(px) || !isFinite(py)) return null;
  return [r.left + xa._offset + px, r.top + ya._offset + py];
}
"""


_KEY_LATENCY_PROBE_JS = """
(el, attr) => {
  if (el._keyLatencyProbe) { Object.assign(el._keyLatencyProbe, { records: [], pending: null }); return; }
  const probe = { records: [], pending: null };
  // capture phase on the document: the clock starts before any widget handler runs
  document.addEventListener("keydown", (e) => {
    probe.pending = { key: e.key, t0: performance.now() };
  }, true);
  new MutationObserver(() => {
    const p = probe.pending;
    const index = el.getAttribute(attr);
    if (!p || index === null) return; // removed (e.g. an empty state): wait for the next item
    probe.pending = null;
    // drawn: the next frame has been produced (rAF, then the task after it)
    requestAnimationFrame(() => setTimeout(() => {
      probe.records.push({ key: p.key, index, ms: performance.now() - p.t0 });
    }, 0));
  }).observe(el, { attributes: true, attributeFilter: [attr] });
  el._keyLatencyProbe = probe;
}
"""


def _draw_lasso(page: Any, polygon: Any, *, step_ms: int) -> float:
    """Shift held, mouse down at the first vertex, moved through every vertex (8 steps
    each) back to the first, released; returns ``time.time()`` just before mouse-up."""
    pts = [(float(x), float(y)) for x, y in polygon]
    page.mouse.move(*pts[0])
    page.keyboard.down("Shift")
    page.mouse.down()
    for x, y in [*pts[1:], pts[0]]:
        page.mouse.move(x, y, steps=8)
        page.wait_for_timeout(step_ms)
    t_up = time.time()
    page.mouse.up()
    page.keyboard.up("Shift")
    return t_up


def lasso(page: Any, polygon: Any, *, step_ms: int = 30, settle_ms: int = 500) -> None:
    """Draw a lasso as a person does (:func:`_draw_lasso`), then wait ``settle_ms``."""
    _draw_lasso(page, polygon, step_ms=step_ms)
    page.wait_for_timeout(settle_ms)


def start_key_latency_probe(locator: Any, attribute: str = "data-index") -> None:
    """Measure key press -> next frame after ``attribute`` of the element is set, in the
    page, from outside the widget: a keydown (document, capture phase) starts the clock;
    the first time ``attribute`` is set after it (not removed), plus one rendered frame,
    stops it. Calling it again on the same element clears the records (one probe per
    page: every probe hears every key)."""
    locator.evaluate(_KEY_LATENCY_PROBE_JS, attribute)


def key_latencies(locator: Any) -> list[dict]:
    """Records of :func:`start_key_latency_probe`: [{key, index, ms}, ...] in order."""
    return locator.evaluate("(el) => el._keyLatencyProbe ? el._keyLatencyProbe.records : []")


def drawn_fraction(px: np.ndarray) -> float:
    """Fraction of pixels that differ (by > 24 in any channel) from the most common colour."""
    flat = px.reshape(-1, px.shape[-1]).astype(np.int32)
    keys = (flat[:, 0] << 16) | (flat[:, 1] << 8) | flat[:, 2]
    vals, counts = np.unique(keys, return_counts=True)
    bg = vals[counts.argmax()]
    bg_rgb = np.array([(bg >> 16) & 255, (bg >> 8) & 255, bg & 255])
    return float((np.abs(flat - bg_rgb).max(axis=1) > 24).mean())


def points_in_polygon(points: np.ndarray, polygon: np.ndarray) -> np.ndarray:
    """(N,) bool: which of ``points`` (N,2) lie inside ``polygon`` (M,2) (even-odd rule)."""
    x, y = points[:, 0][:, None], points[:, 1][:, None]
    x0, y0 = polygon[:, 0][None, :], polygon[:, 1][None, :]
    x1, y1 = np.roll(polygon[:, 0], -1)[None, :], np.roll(polygon[:, 1], -1)[None, :]
    crosses = (y0 > y) != (y1 > y)
    with np.errstate(divide="ignore", invalid="ignore"):
        xint = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
    return ((crosses & (x < xint)).sum(axis=1) % 2) == 1


def chromium_available() -> bool:
    """True when Debian's chromium binary is present."""
    return Path(CHROMIUM).exists() or shutil.which("chromium") is not None


def launch_chromium(playwright: Any) -> Any:
    """Debian's headless Chromium (WebGL on SwiftShader) from a Playwright instance."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextmanager
def open_lab(root_dir: Path, *, app: str = "lab", env: dict[str, str] | None = None,
             viewport: tuple[int, int] = (1280, 900)) -> Iterator[LabPage]:
    """Outside pytest (scripts, benchmarks): start a server (``app``: "lab" or
    "notebook") in ``root_dir``, launch Chromium, open a page of ``viewport`` (w, h);
    yield a LabPage; stop everything afterwards."""
    from playwright.sync_api import sync_playwright

    server = JupyterServer(Path(root_dir), env=env, app=app).start()
    try:
        with sync_playwright() as pw:
            browser = launch_chromium(pw)
            context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
            page = context.new_page()
            page.set_default_timeout(60_000)
            try:
                yield LabPage(server, page)
            finally:
                context.close()
                browser.close()
    finally:
        server.stop()


def write_png_folder(images: np.ndarray, labels: Sequence[int], class_names: Sequence[str],
                     folder: Path) -> list[Path]:
    """Write ``images`` (N, H, W[, C]) uint8 as PNG files ``folder/<class>/<i:05d>.png``
    (``class_names[labels[i]]``, "/" replaced by "-"); the file paths, in order."""
    from PIL import Image

    folder = Path(folder)
    names = [str(c).replace("/", "-") for c in class_names]
    for name in set(names):
        (folder / name).mkdir(parents=True, exist_ok=True)
    paths = []
    for i, (img, lab) in enumerate(zip(images, labels)):
        path = folder / names[int(lab)] / f"{i:05d}.png"
        Image.fromarray(np.asarray(img)).save(path, compress_level=1)
        paths.append(path)
    return paths


_FRAME_RATE_JS = """
async (canvas, [ms, mode]) => {
  // every frame moves the view (a wheel step, or a drag step): each frame must redraw
  const r = canvas.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const opts = (x, y, extra) => ({ clientX: x, clientY: y, bubbles: true, cancelable: true,
                                   view: window, ...extra });
  const scatter = (canvas.closest('.dfw-root') || {}).dfwScatter;
  let draws = 0;
  const sub = scatter ? scatter.subscribe('draw', () => { draws += 1; }) : null;
  if (mode === 'pan') canvas.dispatchEvent(new MouseEvent('mousedown', opts(cx, cy, { buttons: 1, button: 0 })));
  const times = [];
  const t0 = performance.now();
  await new Promise((resolve) => {
    const step = (t) => {
      times.push(t);
      const k = times.length, back = (t - t0) > ms / 2;
      if (mode === 'pan') {
        const dx = 120 * Math.sin(k / 12), dy = 60 * Math.cos(k / 15);
        window.dispatchEvent(new MouseEvent('mousemove', opts(cx + dx, cy + dy, { buttons: 1 })));
      } else {
        canvas.dispatchEvent(new WheelEvent('wheel', opts(cx, cy, { deltaY: back ? 30 : -30, deltaMode: 0 })));
      }
      if (t - t0 < ms) requestAnimationFrame(step); else resolve();
    };
    requestAnimationFrame(step);
  });
  if (mode === 'pan') window.dispatchEvent(new MouseEvent('mouseup', opts(cx, cy, { buttons: 0 })));
  if (sub !== null) scatter.unsubscribe(sub);
  const gaps = times.slice(1).map((t, i) => t - times[i]).sort((a, b) => a - b);
  const seconds = (times[times.length - 1] - times[0]) / 1000;
  return { frames: times.length - 1, seconds, fps: (times.length - 1) / seconds,
           draws, p95_ms: gaps[Math.floor(0.95 * (gaps.length - 1))] || 0 };
}
"""


def frame_rate(canvas: Any, *, seconds: float = 2.0, mode: str = "zoom") -> dict:
    """Frames per second in the page while the view moves every frame, measured with
    requestAnimationFrame: ``mode`` "zoom" (a wheel step per frame on the canvas, in then
    out) or "pan" (a mouse drag, one move per frame). Returns {frames, seconds, fps,
    draws (the scatterplot's redraws, dfwidgets maps only), p95_ms (frame gap)}."""
    if mode not in ("zoom", "pan"):
        raise ValueError(f'mode must be "zoom" or "pan"; got {mode!r}.')
    return canvas.evaluate(_FRAME_RATE_JS, [seconds * 1000, mode])


_PIXEL_CHANGE_JS = """
(canvas) => {
  // a 2-D canvas (regl-scatterplot copies its WebGL frame into it): sample its pixels
  // every frame until they differ from now; the wall-clock time (ms since epoch) then
  const ctx = canvas.getContext('2d');
  const grab = () => ctx.getImageData(0, 0, canvas.width, canvas.height).data;
  const before = grab();
  canvas._pixelChange = new Promise((resolve) => {
    const check = () => {
      const now = grab();
      let diff = 0;
      for (let i = 0; i < now.length; i += 4 * 7) {
        if (Math.abs(now[i] - before[i]) + Math.abs(now[i + 1] - before[i + 1]) +
            Math.abs(now[i + 2] - before[i + 2]) > 30) diff += 1;
      }
      if (diff > now.length / (4 * 7) * 0.002) resolve(Date.now());
      else requestAnimationFrame(check);
    };
    requestAnimationFrame(check);
  });
}
"""


def start_pixel_change_probe(canvas: Any) -> None:
    """Snapshot a 2-D canvas's pixels now and watch them every frame (see
    :func:`pixel_change_time`)."""
    canvas.evaluate(_PIXEL_CHANGE_JS)


def pixel_change_time(canvas: Any, *, timeout: float = 30.0) -> float:
    """Wall-clock time (seconds since the epoch, as Python's ``time.time()``) when the
    canvas's pixels first changed after :func:`start_pixel_change_probe`."""
    ms = canvas.evaluate(
        "(c, t) => Promise.race([c._pixelChange, new Promise((_, no) => "
        "setTimeout(() => no(new Error('pixels did not change')), t))])", timeout * 1000)
    return float(ms) / 1000.0


def timed_lasso(page: Any, polygon: Any, *, step_ms: int = 30) -> float:
    """:func:`lasso` without the settle wait, returning ``time.time()`` just before the
    mouse button goes up."""
    return _draw_lasso(page, polygon, step_ms=step_ms)

"""EmbeddingMap end to end: real JupyterLab, headless Chromium, real Fashion-MNIST
embeddings from the offline backbone; the user lassoes with the mouse and labels from
the widget, and the kernel's Session/store must agree with what was drawn."""

from __future__ import annotations

import inspect

import numpy as np
import pytest
from harness import (
    DARK_THEME,
    LIGHT_THEME,
    drawn_fraction,
    lasso,
    points_in_polygon,
    timed_lasso,
)

N = 2000

CELLS = [
    # 0: data, embeddings (disk cache warmed by the fixture), a Session in a temp folder
    ("import tempfile, numpy as np, dfwidgets as dfw\n"
    f"src = dfw.datasets.fashion_mnist('train').subset(np.arange({N}))\n"
    "emb = dfw.embed(src, model='efficientnet_lite0', progress=False)\n"
    "s = dfw.Session.open(tempfile.mkdtemp(prefix='e2e_map_'), source=src, embeddings=emb,"
    " auto_fit=False)"),
    # 1: the map
    "m = dfw.EmbeddingMap(s, layout='pca', height=460)\nm",
]


@pytest.fixture(scope="module")
def warm_embeddings(fmnist_train):
    """Embed the first 2,000 training images once in the test process (disk cache), so
    the notebook's kernel reads them from the cache instead of recomputing."""
    import dfwidgets as dfw

    emb = dfw.embed(fmnist_train.subset(np.arange(N)), model="efficientnet_lite0", progress=False)
    assert emb.shape[0] == N
    return emb


def _plot_pixels(lab, body):
    """Pixels of the map area left of the legend (the legend is drawn before the points)."""
    px = lab.pixels(body)
    bb, lb = body.bounding_box(), lab.page.locator(".dfw-map-legend").first.bounding_box()
    return px[:, : max(10, int(lb["x"] - bb["x"]) - 4)]


def test_lasso_select_and_bulk_label(lab, warm_embeddings):
    lab.open_notebook("embedding_map_e2e.ipynb", CELLS)
    lab.set_theme(LIGHT_THEME)
    lab.run_cell(0)
    lab.run_cell(1)
    lab.wait_for_widget(1, ".dfw-map")
    body = lab.cell(1).locator(".dfw-map-body")
    body.scroll_into_view_if_needed()

    # drawn: judged from pixels of the plot, not from the canvas element existing
    deadline_px = None
    for _ in range(120):
        deadline_px = _plot_pixels(lab, body)
        if drawn_fraction(deadline_px) > 0.01:
            break
        lab.page.wait_for_timeout(250)
    assert drawn_fraction(deadline_px) > 0.01, "no points were drawn on the map"
    lab.page.wait_for_timeout(300)  # let the view state reach the kernel

    # ---- lasso with the mouse (Shift+drag, regl-scatterplot's lasso key) -------------
    box = body.bounding_box()
    cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    r = min(box["width"], box["height"]) * 0.22
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    poly_page = np.stack([cx + r * np.cos(angles) * 1.3, cy + r * np.sin(angles)], axis=1)
    page = lab.page
    lasso(page, poly_page)

    sel_count = lab.cell(1).locator(".dfw-map-selcount")
    assert "selected" in sel_count.inner_text() and "no selection" not in sel_count.inner_text()

    # ---- the kernel's selection equals the points inside the drawn polygon ------------
    state = lab.kernel_eval(
        "{'sel': m.selected.tolist(), 'xy': m.coordinates.tolist(), 'view': list(m._view),"
        " 'session': s.selection.tolist()}"
    )
    sel = np.asarray(state["sel"], dtype=np.int64)
    assert state["session"] == state["sel"], "the lasso did not become the Session's selection"
    xy = np.asarray(state["xy"], dtype=np.float64)
    x0, x1, y0, y1 = state["view"]
    assert sel.size > 0, "the lasso selected nothing in the kernel"
    # page px -> data coordinates with the widget's view rectangle
    u = (poly_page[:, 0] - box["x"]) / box["width"]
    v = (poly_page[:, 1] - box["y"]) / box["height"]
    poly_data = np.stack([x0 + u * (x1 - x0), y1 - v * (y1 - y0)], axis=1)
    inside = points_in_polygon(xy, poly_data)
    # points within 2 px of the outline may fall either way (pixel rounding): compare the rest
    px_per_unit = box["width"] / (x1 - x0)
    edge = _distance_to_polygon(xy, poly_data) * px_per_unit < 2.0
    expected = set(np.flatnonzero(inside & ~edge))
    got = set(sel.tolist())
    assert expected <= got, f"{len(expected - got)} points inside the lasso were not selected"
    assert not (got - set(np.flatnonzero(inside | edge))), "points outside the lasso were selected"
    assert len(expected) >= 50, "the lasso should enclose a clear set of points"
    assert edge.sum() < 0.25 * len(expected)

    lab.screenshot_output(1, "embedding_map_selected_light.png", ".dfw-map")

    # ---- box mode: Ctrl+drag adds a rectangle to the selection, Alt+drag takes it away ----
    lab.cell(1).locator("button[data-mode='box']").click()
    bx0, by0 = box["x"] + box["width"] * 0.62, box["y"] + box["height"] * 0.15
    bx1, by1 = box["x"] + box["width"] * 0.78, box["y"] + box["height"] * 0.85

    def drag_box(modifier: str) -> np.ndarray:
        page.mouse.move(bx0, by0)
        page.keyboard.down(modifier)
        page.mouse.down()
        page.mouse.move(bx0 + 1, by0 + 1)  # the rectangle starts at the first move event
        page.mouse.move(bx1, by0 + 2, steps=6)
        page.mouse.move(bx1, by1, steps=6)
        page.wait_for_timeout(50)
        page.mouse.up()
        page.keyboard.up(modifier)
        page.wait_for_timeout(500)
        return np.asarray(lab.kernel_eval("m.selected.tolist()"), dtype=np.int64)

    rect = np.array([[bx0, by0], [bx1, by0], [bx1, by1], [bx0, by1]])
    rect_data = np.stack([x0 + (rect[:, 0] - box["x"]) / box["width"] * (x1 - x0),
                          y1 - (rect[:, 1] - box["y"]) / box["height"] * (y1 - y0)], axis=1)
    in_rect = points_in_polygon(xy, rect_data) & ~(
        _distance_to_polygon(xy, rect_data) * px_per_unit < 2.0)
    added = drag_box("Control")
    assert set(sel.tolist()) <= set(added.tolist()), "Ctrl+box replaced the selection"
    assert set(np.flatnonzero(in_rect)) <= set(added.tolist()) and added.size > sel.size
    removed = drag_box("Alt")
    assert not set(np.flatnonzero(in_rect)) & set(removed.tolist()), "Alt+box did not subtract"
    assert set(removed.tolist()) == set(sel.tolist()) - set(np.flatnonzero(points_in_polygon(xy, rect_data)))
    lab.cell(1).locator("button[data-mode='pan']").click()
    sel = removed

    # ---- keys and wheel inside the widget stay in the widget ---------------------------
    n_cells = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
    lab.cell(1).locator(".dfw-map").focus()
    page.keyboard.press("d")
    page.keyboard.press("d")  # "dd" would delete a cell if it reached the notebook
    page.keyboard.press("a")  # "a" would insert one
    assert page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length") == n_cells
    scroller = ".jp-NotebookPanel:not(.lm-mod-hidden) .jp-WindowedPanel-outer"
    top = page.evaluate(f"() => document.querySelector('{scroller}').scrollTop")
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.3)
    page.mouse.wheel(0, -300)  # wheel up zooms in
    page.wait_for_timeout(300)
    assert page.evaluate(f"() => document.querySelector('{scroller}').scrollTop") == top
    # the wheel zoomed the map: the view rectangle in the kernel shrank
    page.wait_for_timeout(400)
    view2 = lab.kernel_eval("list(m._view)")
    assert (view2[1] - view2[0]) < (x1 - x0)
    assert lab.kernel_eval("m.selected.tolist()") == sel.tolist()  # zoom kept the selection

    # ---- label the selection from the widget, as a person would ------------------------
    label_input = lab.cell(1).locator(".dfw-map-label-input")
    label_input.click()
    label_input.type("lasso shoes")
    lab.cell(1).locator(".dfw-map-label-apply").click()
    ok = lab.cell(1).locator(".dfw-msg[data-kind='ok']")
    ok.wait_for(timeout=20_000)
    assert f"Labeled {sel.size:,} items" in ok.inner_text()
    rows = lab.kernel_eval(
        "s.store.current().query(\"label == 'lasso shoes'\")[['item_id', 'source']]"
        ".to_dict('list')"
    )
    ids = lab.kernel_eval(f"s.ids[np.asarray({sel.tolist()})].tolist()")
    assert sorted(rows["item_id"]) == sorted(ids)
    assert set(rows["source"]) == {"bulk"}
    assert "lasso shoes" in lab.kernel_eval("s.classes")
    # the legend recoloured live: the new class shows its count
    legend = lab.cell(1).locator(".dfw-map-legend")
    legend.get_by_text("lasso shoes").wait_for(timeout=10_000)
    assert f"{sel.size:,}" in legend.inner_text()

    # ---- a mistake (empty selection) shows an inline message, not a traceback ----------
    page.keyboard.press("Escape")
    lab.cell(1).locator(".dfw-map").focus()
    page.keyboard.press("Escape")
    assert lab.kernel_eval("len(m.selected)") == 0
    label_input.fill("Bag")
    lab.cell(1).locator(".dfw-map-label-apply").click()
    err = lab.cell(1).locator(".dfw-msg[data-kind='error']")
    err.wait_for(timeout=10_000)
    assert "Nothing is selected" in err.inner_text()
    assert lab.cell(1).locator(".jp-OutputArea-output[data-mime-type*='stderr']").count() == 0
    assert lab.kernel_eval("int((s.store.current()['label'] == 'Bag').sum())") == 0

    # ---- hover shows the thumbnail and the item's details; screenshots light + dark ---
    lab.kernel_exec("m.selected = " + str(sel.tolist()))
    view3 = lab.kernel_eval("list(m._view)")
    target = int(sel[0])
    hx = box["x"] + (xy[target, 0] - view3[0]) / (view3[1] - view3[0]) * box["width"]
    hy = box["y"] + (view3[3] - xy[target, 1]) / (view3[3] - view3[2]) * box["height"]
    tip = lab.cell(1).locator(".dfw-map-tip")
    for dx in (0, 1, -1, 2):
        page.mouse.move(hx + dx, hy)
        page.wait_for_timeout(250)
        if tip.is_visible():
            break
    tip.wait_for(state="visible", timeout=10_000)
    lab.page.wait_for_function(
        "() => document.querySelector('.dfw-map-tip .dfw-map-info').textContent.includes('fashion_mnist/')",
        timeout=10_000,
    )
    lab.page.wait_for_function(  # the thumbnail: asked of Python for this item only
        "() => { const i = document.querySelector('.dfw-map-tip img');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    thumb_px = lab.pixels(tip.locator("img"))
    assert drawn_fraction(thumb_px) > 0.05, "the hover thumbnail is empty"
    # a click pins the item: its image comes through the one image path (binary buffer)
    page.mouse.click(hx + dx, hy)
    pin_img = lab.cell(1).locator(".dfw-map-pin img")
    pin_img.wait_for(state="visible", timeout=10_000)
    lab.page.wait_for_function(
        "() => { const i = document.querySelector('.dfw-map-pin img');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=10_000)
    assert lab.kernel_eval("m.pinned") == target
    assert lab.page.evaluate("() => document.querySelector('.dfw-map-pin img').naturalWidth") == 28
    assert drawn_fraction(lab.pixels(pin_img)) > 0.05, "the pinned image is empty"
    assert lab.kernel_eval("m.selected.tolist()") == sel.tolist()  # a click keeps the selection
    lab.screenshot_output(1, "embedding_map_light.png", ".dfw-map")
    lab.set_theme(DARK_THEME)
    page.mouse.move(hx, hy + 1)
    page.mouse.move(hx, hy)
    page.wait_for_timeout(400)
    dark = lab.screenshot_output(1, "embedding_map_dark.png", ".dfw-map")
    from PIL import Image

    bg = np.asarray(Image.open(dark).convert("RGB"))[5:-5, 5:-5].reshape(-1, 3).mean(axis=0)
    assert bg.mean() < 110, "the map did not follow the dark theme"
    lab.set_theme(LIGHT_THEME)
    _focus_and_highlight(lab, body, xy)


def _focus_and_highlight(lab, body, xy: np.ndarray) -> None:
    """The Session's focus (a ring) and highlight (outlined points), set from Python, are
    drawn where those points are, and go away again when cleared."""
    page = lab.page
    box = body.bounding_box()
    page.mouse.move(box["x"] - 40, box["y"] - 40)  # no hover tip
    lab.kernel_exec("m.pinned = -1\nm.selected = []")
    page.wait_for_timeout(500)
    x0, x1, y0, y1 = lab.kernel_eval("list(m._view)")
    sx = (xy[:, 0] - x0) / (x1 - x0) * box["width"]  # body px of every point
    sy = (y1 - xy[:, 1]) / (y1 - y0) * box["height"]
    focus = int(np.argmin((sx - 0.3 * box["width"]) ** 2 + (sy - 0.45 * box["height"]) ** 2))
    near = np.argsort((sx - 0.55 * box["width"]) ** 2 + (sy - 0.7 * box["height"]) ** 2)
    high = np.sort(near[:15])
    before = _plot_pixels(lab, body).astype(int)
    lab.kernel_exec(f"s.set_focus({focus})\ns.set_highlight({high.tolist()})")
    page.wait_for_timeout(800)
    assert lab.kernel_eval("(m.focus, m.highlighted.tolist())") == [focus, high.tolist()]
    after = _plot_pixels(lab, body).astype(int)
    w = min(before.shape[1], after.shape[1])  # the legend grows a "search results" row
    changed = np.abs(after[:, :w] - before[:, :w]).sum(-1) > 60

    def changed_near(i: int, r: int) -> int:
        cx, cy = round(sx[i]), round(sy[i])
        return int(changed[max(0, cy - r): cy + r + 1, max(0, cx - r): cx + r + 1].sum())

    assert changed_near(focus, 20) >= 30, "no ring was drawn around the focused point"
    marked = [changed_near(int(i), 6) > 0 for i in high]
    assert np.mean(marked) >= 0.6, f"highlighted points not outlined: {marked}"
    lab.screenshot_output(1, "embedding_map_focus_highlight.png", ".dfw-map")
    lab.kernel_exec("s.set_focus(-1)\ns.set_highlight([])")
    page.wait_for_timeout(800)
    cleared = np.abs(_plot_pixels(lab, body).astype(int) - before).sum(-1) > 60
    cx, cy = round(sx[focus]), round(sy[focus])
    assert cleared[cy - 20: cy + 21, cx - 20: cx + 21].sum() < 5, "the ring stayed after clearing"


def _distance_to_polygon(points: np.ndarray, poly: np.ndarray) -> np.ndarray:
    """(N,) distance from each point to the polygon's outline (same units as the input)."""
    a = poly
    b = np.roll(poly, -1, axis=0)
    ab = b - a
    ap = points[:, None, :] - a[None, :, :]
    t = np.clip((ap * ab[None]).sum(-1) / (ab * ab).sum(-1)[None], 0, 1)
    closest = a[None] + t[..., None] * ab[None]
    return np.sqrt(((points[:, None, :] - closest) ** 2).sum(-1)).min(axis=1)


BIG = 200_000
BIG_CELLS = [
    # 0: N items without image files (random 8x8 arrays), random embeddings, blob layout
    ("import time, tempfile, numpy as np, dfwidgets as dfw\n"
    f"N = {BIG}\n"
    "rng = np.random.default_rng(0)\n"
    "centers = rng.normal(scale=5.0, size=(8, 2))\n"
    "cat = rng.integers(0, 8, size=N)\n"
    "xy = (centers[cat] + rng.normal(size=(N, 2))).astype(np.float32)\n"
    "src = dfw.ImageSource.from_array(rng.integers(0, 255, size=(N, 8, 8), dtype=np.uint8))\n"
    "s = dfw.Session.open(tempfile.mkdtemp(prefix='e2e_bigmap_'), source=src,"
    " embeddings=rng.normal(size=(N, 8)).astype(np.float32), auto_fit=False)\n"
    "_T = []\n"
    "_h = s.on('selection_changed', lambda *a: _T.append(time.time()))"),
    # 1: the map
    "m = dfw.EmbeddingMap(s, layout=xy, color_by=cat, height=420)\nm",
]


def test_a_large_map_draws_hovers_lazily_and_lassoes(lab):
    """200,000 points: drawn (pixels); no thumbnail is made to open it, hovering asks
    Python for the hovered item only (request count on the Python side); a mouse lasso
    reaches ``session.selection`` with exactly the points inside it."""
    lab.open_notebook("embedding_map_big_e2e.ipynb", BIG_CELLS)
    lab.set_theme(LIGHT_THEME)
    lab.run_cell(0, timeout=600)
    lab.run_cell(1, timeout=300)
    lab.wait_for_widget(1, ".dfw-map")
    body = lab.cell(1).locator(".dfw-map-body")
    body.scroll_into_view_if_needed()
    px = None
    for _ in range(480):
        px = _plot_pixels(lab, body)
        if drawn_fraction(px) > 0.02:
            break
        lab.page.wait_for_timeout(250)
    assert drawn_fraction(px) > 0.02, "the 200,000 points were not drawn"
    assert lab.page.evaluate("() => document.querySelector('.dfw-map').dataset.drawn") == "true"
    status = lab.cell(1).locator(".dfw-map-status").inner_text()
    assert "200,000 items" in status and "failed" not in status
    lab.page.wait_for_timeout(1500)  # fit-to-view settles; the view reaches the kernel
    assert lab.kernel_eval("[m.thumbs.requests, m.thumbs.built, len(m.thumbs)]") == [0, 0, 0]

    # ---- zoom: moving frames at half resolution, the still frame at full (map_renderer.js),
    # density opacity off while moving (its per-frame O(n) query; map_motion.js), on once still
    page = lab.page
    widths = page.evaluate("""async () => {
      const c = document.querySelector('.dfw-map-canvas'), r = c.getBoundingClientRect();
      const sc = c.closest('.dfw-root').dfwScatter, seen = [], modes = [];
      const sub = sc.subscribe('draw', () => { seen.push(c.width); modes.push(sc.get('opacityBy')); });
      for (const d of [-40, -40, 40, 40]) {
        c.dispatchEvent(new WheelEvent('wheel', { clientX: r.left + r.width / 2,
          clientY: r.top + r.height / 2, deltaY: d, bubbles: true, cancelable: true }));
        await new Promise((ok) => setTimeout(ok, 60));
      }
      await new Promise((ok) => setTimeout(ok, 1500));
      sc.unsubscribe(sub);
      const low = modes.filter((m, i) => seen[i] < c.width);
      return [Math.min(...seen), c.width, Math.round(r.width * devicePixelRatio),
        [...new Set(low)], modes[modes.length - 1], sc.get('opacityBy'), c.closest('.dfw-root').dfwMotion.density];
    }""")
    assert widths[0] <= 0.6 * widths[2] and abs(widths[1] - widths[2]) <= 1, widths
    assert widths[3] == [None] and widths[4] == widths[5] == "density", widths
    assert 0 < widths[6] <= 1, widths
    assert drawn_fraction(_plot_pixels(lab, body)) > 0.02

    # ---- hover: one item's thumbnail, made when asked -------------------------------
    box = body.bounding_box()
    _target, (tx, ty), view = lab.kernel_eval(
        "(lambda c: (lambda t: [t, m.coordinates[t].tolist(), list(m._view)])"
        "(int(np.argmin(((m.coordinates - c) ** 2).sum(1)))))"
        "(m.coordinates[cat == 0].mean(0))")
    hx = box["x"] + (tx - view[0]) / (view[1] - view[0]) * box["width"]
    hy = box["y"] + (view[3] - ty) / (view[3] - view[2]) * box["height"]
    tip = lab.cell(1).locator(".dfw-map-tip")
    for dx in (0, 1, -1, 2, -2):
        page.mouse.move(hx + dx, hy)
        page.wait_for_timeout(300)
        if tip.is_visible():
            break
    tip.wait_for(state="visible", timeout=10_000)
    page.wait_for_function(
        "() => { const i = document.querySelector('.dfw-map-tip img');"
        " return i && i.complete && i.naturalWidth > 0; }", timeout=20_000)
    requests, built, cached = lab.kernel_eval("[m.thumbs.requests, m.thumbs.built, len(m.thumbs)]")
    assert 1 <= requests <= 5 and 1 <= built <= 5 and cached == built, (requests, built)
    page.mouse.move(box["x"] - 30, box["y"] - 30)
    page.wait_for_timeout(300)

    # ---- lasso with the mouse: the Session gets exactly the points inside -----------
    cx, cy = box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.5
    r = min(box["width"], box["height"]) * 0.25
    angles = np.linspace(0, 2 * np.pi, 9)[:-1]
    poly_page = np.stack([cx + r * np.cos(angles) * 1.3, cy + r * np.sin(angles)], axis=1)
    view = lab.kernel_eval("list(m._view)")
    x0, x1, y0, y1 = view
    poly = np.stack([x0 + (poly_page[:, 0] - box["x"]) / box["width"] * (x1 - x0),
                     y1 - (poly_page[:, 1] - box["y"]) / box["height"] * (y1 - y0)], axis=1)
    t_up = timed_lasso(page, poly_page)
    for _ in range(200):
        if lab.kernel_eval("len(_T)"):
            break
        page.wait_for_timeout(100)
    lab.kernel_exec(inspect.getsource(points_in_polygon))
    got = lab.kernel_eval(
        f"(lambda inside: [_T[0], len(s.selection), int(inside.sum()),"
        f" int(np.isin(np.flatnonzero(inside), s.selection).sum())])"
        f"(points_in_polygon(m.coordinates.astype(float), np.array({poly.tolist()})))")
    t_sel, n_sel, n_inside, n_both = got
    assert n_inside > 1000, "the lasso should enclose many points"
    # points on the outline (pixel rounding) may fall either way: allow 2%
    assert n_both >= 0.98 * n_inside and n_sel <= 1.02 * n_inside, (n_sel, n_inside, n_both)
    assert t_sel - t_up < 10.0, f"the lasso took {t_sel - t_up:.1f} s to reach Python"
    assert "selected" in lab.cell(1).locator(".dfw-map-selcount").inner_text()
    # the page sent its own lassoed set at mouse-up (lib/map_lasso.js); what
    # regl-scatterplot draws as selected is the same set, so nothing was sent twice
    page.wait_for_function("() => document.querySelector('.dfw-map').dfwScatter"
                           ".get('selectedPoints').length > 0", timeout=60_000)
    page.wait_for_timeout(1000)
    drawn_sel = page.evaluate("() => [...document.querySelector('.dfw-map').dfwScatter"
                              ".get('selectedPoints')].sort((a, b) => a - b)")
    assert drawn_sel == lab.kernel_eval("s.selection.tolist()"), "drawn != Python's selection"
    assert lab.kernel_eval("len(_T)") == 1, "the selection reached Python more than once"

    # ---- recolour in place (state texture rewritten, no draw()) ---------------------
    # colours by `other`, then back by `cat`: once still, the pixels are those that
    # regl-scatterplot's own draw() made for `cat` (the in-place path writes the same values)
    lab.kernel_exec("s.select([])")
    page.wait_for_timeout(1500)
    before = _plot_pixels(lab, body)
    for colors, k in (("(cat + 3) % 8", 1), ("cat", 2)):
        lab.kernel_exec(f"m.color_by = {colors}")
        page.wait_for_function(f"() => document.querySelector('.dfw-map').dataset.recolored == '{k}'",
                               timeout=60_000)
        page.wait_for_timeout(1500)  # the full set after the moving frame
        after = _plot_pixels(lab, body)
        changed = (np.abs(after.astype(int) - before.astype(int)).sum(-1) > 30).mean()
        assert (changed > 0.01) if k == 1 else (changed < 0.001), (k, changed)

"""Workbench end to end: real JupyterLab, headless Chromium, the 10,000 Fashion-MNIST test
images (offline-backbone embeddings from the test cache). A person lassoes a region on
the map, turns on the Labeler's "Only the selection" toggle, labels 10 items with the
keyboard, presses Train and clicks a confusion-matrix cell; the kernel's Session, the
SQLite store and the map's pixels must agree with what was done."""

from __future__ import annotations

import re

import numpy as np
from harness import LIGHT_THEME, drawn_fraction, lasso
from kernel_code import fmnist_test_session

N_SEED = 30  # labels given before (source "import"): every class, so Train has classes
N_LABELS = 10


def _plot_pixels(lab, body) -> np.ndarray:
    """Pixels of the map area left of the legend (the legend is drawn before the points)."""
    px = lab.pixels(body)
    legend = body.locator(".dfw-map-legend").first
    bb, lb = body.bounding_box(), legend.bounding_box()
    return px[:, : max(10, int(lb["x"] - bb["x"]) - 4)] if lb else px


def _settled(lab, body, *, timeout: float = 30.0) -> np.ndarray:
    """The map's pixels once two screenshots 0.4 s apart agree (transitions done)."""
    prev = None
    for _ in range(int(timeout / 0.4)):
        px = _plot_pixels(lab, body)
        if prev is not None and prev.shape == px.shape and \
                np.abs(prev.astype(int) - px).max() <= 8 and drawn_fraction(px) > 0.01:
            return px
        prev = px
        lab.page.wait_for_timeout(400)
    raise AssertionError("the map did not settle")


def _to_page(p: np.ndarray, box: dict, view: list[float]) -> np.ndarray:
    """(M, 2) map coordinates -> page px, with the map's view rectangle [x0, x1, y0, y1]."""
    x0, x1, y0, y1 = view
    return np.stack([box["x"] + (p[:, 0] - x0) / (x1 - x0) * box["width"],
                     box["y"] + (y1 - p[:, 1]) / (y1 - y0) * box["height"]], axis=1)


def _rgb(css: str) -> np.ndarray:
    """'#rrggbb' or 'rgb(r, g, b)' -> (3,) int."""
    css = css.strip()
    if css.startswith("#"):
        return np.array([int(css[i:i + 2], 16) for i in (1, 3, 5)])
    return np.array([int(float(v)) for v in re.findall(r"[\d.]+", css)[:3]])


def test_lasso_restrict_label_train_click_cell(lab, tmp_path, fmnist_test_emb, output_dir):
    # fmnist_test_emb: the embeddings are in the disk cache before the kernel asks for them
    setup = fmnist_test_session(tmp_path / "wb_project", n_seed=N_SEED, outside_holdout=True,
                                fit=True)
    lab.open_notebook("workbench_e2e.ipynb", [setup, "wb = dfw.Workbench(s)\nwb"])
    lab.set_theme(LIGHT_THEME)
    lab.run_cell(0, timeout=600)
    lab.run_cell(1)
    wb = lab.wait_for_widget(1, ".dfw-workbench")
    page = lab.page
    body = wb.locator(".dfw-map-body")
    # the final layout (UMAP computes in the background: PCA first, then the points move)
    page.wait_for_function(
        "() => /UMAP$/.test(document.querySelector('.dfw-workbench .dfw-map-status')"
        "?.textContent.trim() || '')", timeout=600_000)
    body.scroll_into_view_if_needed()
    _settled(lab, body)
    header = wb.locator(".dfw-wb-header")
    assert "10,000 items" in header.inner_text()

    # the Label tab (the views beside the map may change the map's size: measure after)
    wb.locator(".dfw-wb-side .lm-TabBar-tab", has_text="Label").click()
    labeler = wb.locator(".dfw-labeler")
    toggle = labeler.locator(".dfw-lab-restrict")
    toggle.wait_for(state="visible")
    page.wait_for_timeout(500)
    body.scroll_into_view_if_needed()
    _settled(lab, body)

    # ---- lasso with the mouse (Shift+drag) around the densest part of the map -----------
    # (layout coordinates from the kernel, only to aim where there are points)
    state = lab.kernel_eval("{'xy': wb.map.coordinates.tolist(), 'view': list(wb.map._view)}")
    xy = np.asarray(state["xy"])
    box = body.bounding_box()
    legend_x = wb.locator(".dfw-map-legend").first.bounding_box()["x"]

    pts = _to_page(xy, box, state["view"])
    on_screen = (pts[:, 0] > box["x"] + 40) & (pts[:, 0] < legend_x - 40) & \
        (pts[:, 1] > box["y"] + 40) & (pts[:, 1] < box["y"] + box["height"] - 40)
    cx, cy = np.median(pts[on_screen], axis=0)
    r = min(box["width"], box["height"]) * 0.12
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    poly = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
    lasso(page, poly, settle_ms=600)
    selection = lab.kernel_eval("s.selection.tolist()")
    assert len(selection) >= 40, f"the lasso selected only {len(selection)} items"
    assert lab.kernel_eval("wb.map.selected.tolist()") == selection
    assert f"{len(selection):,} selected" in header.inner_text()

    # ---- the Labeler: turn on "Only the selection" by clicking it ------------------------
    assert f"({len(selection):,})" in toggle.inner_text()
    toggle.click()
    page.wait_for_function("(el) => el.getAttribute('aria-pressed') === 'true'",
                           arg=toggle.element_handle(), timeout=10_000)
    stage = labeler.locator(".dfw-lab-stage")
    sel_set = set(selection)
    page.wait_for_function(
        "([el, sel]) => el.dataset.index !== undefined && sel.includes(Number(el.dataset.index))",
        arg=[stage.element_handle(), selection], timeout=30_000)
    assert lab.kernel_eval("wb.labeler.restrict_to_selection") is True

    # ---- label 10 items with the keyboard (the true class of each item shown) -----------
    truth = lab.kernel_eval("src.labels.tolist()")
    names = lab.kernel_eval("list(src.classes)")
    key_of = dict(zip(lab.kernel_eval("wb.labeler.classes"),
                      lab.kernel_eval("wb.labeler.class_keys")))
    labeler.locator(".dfw-lab-status").click()
    answers: dict[int, str] = {}
    shown = int(stage.get_attribute("data-index"))
    while len(answers) < N_LABELS:
        assert shown in sel_set, f"the Labeler showed item {shown}, outside the selection"
        page.wait_for_timeout(150)
        page.keyboard.press(key_of[names[truth[shown]]])
        answers[shown] = names[truth[shown]]
        page.wait_for_function("([el, old]) => el.dataset.index !== undefined && "
                               "el.dataset.index !== old",
                               arg=[stage.element_handle(), str(shown)], timeout=10_000)
        shown = int(stage.get_attribute("data-index"))
    for _ in range(100):
        if lab.kernel_eval("int((s.label_array() >= 0).sum())") == N_SEED + N_LABELS:
            break
        page.wait_for_timeout(100)
    rows = lab.kernel_eval("s.store.current().query(\"source == 'click'\")"
                           "[['item_id', 'label']].values.tolist()")
    assert len(rows) == N_LABELS, rows
    index_of = {v: i for i, v in enumerate(lab.kernel_eval("[str(x) for x in s.ids]"))}
    got = {index_of[str(item)]: label for item, label in rows}
    assert got == answers
    assert set(got) <= sel_set, "a label landed outside the selection"

    # ---- the map recoloured: the new labels' points show their class colours -----------
    # Look as a person would: clear the selection (selected points are drawn in the accent
    # colour) and zoom in on the labeled items (dense regions overlap at full view).
    lab.screenshot_output(1, "workbench_labeled_light.png", ".dfw-workbench")
    wb.locator(".dfw-map").focus()
    page.keyboard.press("Escape")
    page.wait_for_function("() => /no selection/.test(document.querySelector("
                           "'.dfw-workbench .dfw-map-selcount')?.textContent || '')",
                           timeout=10_000)
    labeled = sorted(answers)
    box, view = body.bounding_box(), lab.kernel_eval("list(wb.map._view)")
    centre = _to_page(xy[labeled], box, view).mean(axis=0)
    page.mouse.move(*centre)
    for _ in range(3):
        page.mouse.wheel(0, -300)  # wheel up zooms in, around the mouse
        page.wait_for_timeout(250)
    page.mouse.move(box["x"] + 5, box["y"] - 30)  # off the map: no hover tip over the points
    for _ in range(50):  # the page reports its new view rectangle to the kernel
        page.wait_for_timeout(200)
        zoomed = lab.kernel_eval("list(wb.map._view)")
        if zoomed[1] - zoomed[0] < 0.5 * (view[1] - view[0]):
            break
    after = _settled(lab, body)
    zoomed = lab.kernel_eval("list(wb.map._view)")
    codes = lab.kernel_eval("np.frombuffer(wb.map._color_codes, np.uint8).tolist()")
    palette = lab.kernel_eval("wb.map._palette")
    grey = _rgb(palette[codes[lab.kernel_eval("int(np.flatnonzero(s.label_array() < 0)[0])")]])
    where = _to_page(xy[labeled], body.bounding_box(), zoomed) - [box["x"], box["y"]]
    in_view, recoloured = 0, 0
    for (px_x, px_y), i in zip(where.round().astype(int), labeled):
        if not (6 <= px_x < after.shape[1] - 6 and 6 <= px_y < after.shape[0] - 6):
            continue  # outside the zoomed view, or under the legend
        want = _rgb(palette[codes[i]])
        assert np.abs(want - grey).max() > 40, "a class colour looks like the unlabeled grey"
        in_view += 1
        win = after[px_y - 5:px_y + 6, px_x - 5:px_x + 6].reshape(-1, 3).astype(int)
        recoloured += int((np.abs(win - want).max(axis=1) < 48).sum() >= 3)
    lab.screenshot_output(1, "workbench_zoomed_light.png", ".dfw-map")
    assert in_view >= 3, f"only {in_view} labeled points in the zoomed view"
    assert recoloured >= 0.6 * in_view, (
        f"only {recoloured} of {in_view} labeled points in view show their class colour")

    # ---- Train, then click a confusion-matrix cell ---------------------------------------
    wb.locator(".dfw-wb-side .lm-TabBar-tab", has_text="Train").click()
    trainer = wb.locator(".dfw-trainer")
    train = trainer.locator("button.dfw-tr-train")
    train.click()
    # trained on all 40 labels: the accuracy-vs-labels curve has its point, Train is back
    try:
        page.wait_for_function(
            """([el, n]) => { const gd = el.querySelector('.js-plotly-plot');
                 const t = gd && gd.data && gd.data[0];
                 return !!(t && t.x && Array.from(t.x).includes(n)); }""",
            arg=[trainer.element_handle(), N_SEED + N_LABELS], timeout=180_000)
    except Exception as exc:  # say whether the kernel was still training or the page missed it
        kernel = lab.kernel_eval("{'training': wb.trainer.training, 'status': "
                                 "wb.trainer.status.value, 'x': list(wb.trainer.curve_fig"
                                 ".data[0].x or ())}")
        page_x = trainer.evaluate("(el) => { const gd = el.querySelector('.js-plotly-plot');"
                                  " if (!gd || !gd.data) return null; return gd.data.length ? "
                                  "Array.from(gd.data[0].x || []) : 'no traces'; }")
        widget_errors = [m for m in lab.console if "anywidget" in m or "rror" in m][:5]
        raise AssertionError(f"no curve point at {N_SEED + N_LABELS} labels on the page: "
                             f"kernel {kernel}, page x {page_x}; console {widget_errors}"
                             ) from exc
    page.wait_for_function("(b) => !b.disabled", arg=train.element_handle(), timeout=60_000)
    heat_js = """(el) => { const gds = [...el.querySelectorAll('.js-plotly-plot')];
        const gd = gds.find(g => g.data && g.data[0] && g.data[0].type === 'heatmap');
        if (!gd || !gd.data[0].z || gd.data[0].z.length < 2) return null;
        return {z: gd.data[0].z, x: Array.from(gd.data[0].x), y: Array.from(gd.data[0].y)}; }"""
    page.wait_for_function(f"(el) => ({heat_js})(el) !== null",
                           arg=trainer.element_handle(), timeout=180_000)
    # the page shows the kernel's confusion matrix (a fit after training, e.g. the
    # Workbench's auto-fit, redraws it in the background: wait until the two agree)
    kernel_z = heat = None
    for _ in range(120):
        heat = trainer.evaluate(heat_js)
        kernel_z = lab.kernel_eval("s.training.confusion()['matrix'].tolist()")
        if heat is not None and heat["z"] == kernel_z:
            break
        page.wait_for_timeout(500)
    # what the page drew, for whoever reads the output folder: each chart's version on the
    # page and in the kernel, and anywidget's complaints in the console (none expected)
    versions = trainer.evaluate("(el) => Object.fromEntries([...el.querySelectorAll("
                                "'[data-chart]')].map(d => [d.dataset.chart, d.dataset.version]))")
    (output_dir / "workbench_train_page.txt").write_text(
        f"page chart versions: {versions}\n"
        f"kernel chart versions: {lab.kernel_eval('wb.trainer.charts.versions')}\n"
        + "\n".join(m for m in lab.console if "anywidget" in m) + "\n")
    assert heat is not None and heat["z"] == kernel_z, (heat, kernel_z)
    z = np.asarray(heat["z"])
    off = z.copy()
    np.fill_diagonal(off, -1)
    t, p = np.unravel_index(int(off.argmax()), off.shape)  # the most confused pair
    if z[t, p] < 1:
        t = p = int(np.diag(z).argmax())
    true, pred = heat["y"][t], heat["x"][p]
    heat_plot = trainer.locator(".js-plotly-plot").filter(
        has=page.locator(".heatmaplayer")).first
    lab.wait_until_drawn(heat_plot)
    lab.plotly_click(heat_plot, pred, true)
    # the kernel's own count of that cell's items, from the training evaluation
    expected = lab.kernel_eval(
        f"(lambda ev, c: sorted(ev['indices'][(ev['truth'] == c.index({true!r})) & "
        f"(ev['pred'] == c.index({pred!r}))].tolist()))(s.training.evaluation(), "
        "list(s.classes))")
    assert len(expected) == int(z[t, p]) > 0
    for _ in range(50):
        if sorted(lab.kernel_eval("s.selection.tolist()")) == expected:
            break
        page.wait_for_timeout(200)
    if sorted(lab.kernel_eval("s.selection.tolist()")) != expected:  # say what the page did
        px, py = lab.plotly_point(heat_plot, pred, true)
        hit = page.evaluate("([x, y]) => { const e = document.elementFromPoint(x, y); return e ? "
                            "e.tagName + '.' + e.getAttribute('class') : null; }", [px, py])
        gd = heat_plot.evaluate("(gd) => [gd.getBoundingClientRect().width, "
                                "gd._fullLayout.width, gd.dataset.version]")
        kernel = lab.kernel_eval("{'drawn': wb.trainer.charts.drawn, 'errors': "
                                 "wb.trainer.charts.errors, 'status': wb.trainer.status.value}")
        raise AssertionError(f"clicked cell ({true}, {pred}) at {px:.0f},{py:.0f} hit {hit}; "
                             f"heatmap width/layout width/version {gd}; kernel {kernel}; "
                             f"console {lab.console[-8:]}")
    assert sorted(lab.kernel_eval("wb.map.selected.tolist()")) == expected
    page.wait_for_function(
        "(n) => (document.querySelector('.dfw-workbench .dfw-map-selcount')?.textContent || '')"
        ".includes(n + ' selected')", arg=f"{len(expected):,}", timeout=10_000)
    heat_plot.scroll_into_view_if_needed()
    lab.screenshot_page(output_dir / "workbench_confusion_light.png")

"""Trainer end to end: real JupyterLab, headless Chromium. A person labels a few items
with the Labeler's keys, presses Train in the Trainer, and the accuracy-vs-labels curve
in the page gains a point whose numbers are the ones the Python figure holds."""

from __future__ import annotations

import numpy as np

N_ITEMS = 4000
N_FIRST = 40
N_MORE = 6

CURVE_JS = """el => { const gd = el.querySelector('.js-plotly-plot');
  const t = gd && gd.data && gd.data[0];
  return t ? {x: Array.from(t.x || []), y: Array.from(t.y || []), name: t.name}
           : {x: null, y: null, traces: gd && gd.data ? gd.data.length : -1}; }"""


def _page_curve(lab, root):
    return root.evaluate(CURVE_JS)


def _wait_curve_len(lab, root, n, timeout=120.0):
    try:
        _wait_js(lab, root, n, timeout)
    except Exception as exc:
        root.screenshot(path=str(lab.server.root_dir / "trainer_curve_timeout.png"))
        raise AssertionError(f"page curve: {_page_curve(lab, root)}; console: "
                             f"{lab.console[-10:]}") from exc
    return _page_curve(lab, root)


def _wait_js(lab, root, n, timeout):
    lab.page.wait_for_function(
        """([el, n]) => { const gd = el.querySelector('.js-plotly-plot');
             const t = gd && gd.data && gd.data[0];
             return !!(t && t.x && t.x.length === n); }""",
        arg=[root.element_handle(), n], timeout=timeout * 1000)


VERSIONS_JS = """el => Object.fromEntries([...el.querySelectorAll('[data-chart]')]
  .map(d => [d.dataset.chart, d.dataset.version === undefined ? null : Number(d.dataset.version)]))"""


def _wait_page_drew_kernel_versions(lab, root, names, timeout=120.0):
    """Wait until each chart in ``names`` on the page is the kernel's latest drawing (its
    data-version, set once Plotly.react is done, equals ``tr.charts.versions``, and the
    page's "drawn" message for it reached the kernel: ``tr.charts.drawn``)."""
    page = kernel = None
    for _ in range(int(timeout / 0.5)):
        kernel = lab.kernel_eval("dict(tr.charts.versions)")
        page = root.evaluate(VERSIONS_JS)
        drawn = lab.kernel_eval("dict(tr.charts.drawn)")  # the page's "drawn" messages
        if all(page.get(n) == kernel[n] == drawn.get(n) for n in names):
            return page
        lab.page.wait_for_timeout(500)
    raise AssertionError(f"page chart versions {page}, kernel {kernel}; console "
                         f"{lab.console[-10:]}")


def _screenshots(lab, theme):
    """tests/_output/trainer_<theme>.png (the Trainer's top) and trainer_charts<row>_<theme>.png
    (each row of charts, scrolled into view: the notebook clips what is off screen)."""
    lab.scroll_cell_to_top(1)
    lab.screenshot_output(1, f"trainer_{theme}.png", ".dfw-trainer")
    for row in (1, 2):
        lab.screenshot_output(1, f"trainer_charts{row}_{theme}.png",
                              f".dfw-charts-row:nth-child({row})")


def test_label_press_train_curve_gains_a_point(lab, tmp_path, fmnist_train_emb, output_dir):
    project = tmp_path / "trainer_project"
    setup = (
        "import numpy as np, dfwidgets as dfw\n"
        "full = dfw.datasets.fashion_mnist(split='train')\n"
        "emb = dfw.embed(full, model='efficientnet_lite0', progress=False)\n"
        f"idx = np.arange({N_ITEMS})\n"
        "src = full.subset(idx)\n"
        f"s = dfw.Session.open({str(project)!r}, source=src, embeddings=emb[idx], auto_fit=False)\n"
        "hold = set(s.holdout_indices().tolist())\n"
        "pool = np.array([i for i in range(len(src)) if i not in hold])\n"
        f"first = np.random.default_rng(0).choice(pool, {N_FIRST}, replace=False)\n"
        "s.label_many(first, [src.classes[c] for c in src.labels[first]], source='import')\n"
        "tr = dfw.Trainer(s, embedder='efficientnet_lite0', target=0.85)\n"
        "tr.train(mode='probe')\n"
        "len(tr.curve_fig.data[0].x)"
    )
    lab.open_notebook("trainer_e2e.ipynb", [setup, "tr", "lb = dfw.Labeler(s, batch=8)\nlb"])
    lab.run_cell(0, timeout=600)
    lab.run_cell(1)
    root = lab.wait_for_widget(1, ".dfw-trainer")
    before = _wait_curve_len(lab, root, 1)
    assert before["x"] == [N_FIRST]
    lab.wait_until_drawn(root.locator(".js-plotly-plot").first)

    # a person labels a few more items with the Labeler's keys
    lab.run_cell(2)
    labeler = lab.wait_for_widget(2, ".dfw-labeler")
    stage = labeler.locator(".dfw-lab-stage")
    lab.page.wait_for_function("el => el.dataset.index !== undefined",
                               arg=stage.element_handle(), timeout=60_000)
    truth = lab.kernel_eval("src.labels.tolist()")
    names = lab.kernel_eval("list(src.classes)")
    key_of = dict(zip(lab.kernel_eval("lb.classes"), lab.kernel_eval("lb.class_keys")))
    labeler.locator(".dfw-lab-status").click()
    done: set[int] = set()
    shown = int(stage.get_attribute("data-index"))
    while len(done) < N_MORE:
        lab.page.keyboard.press(key_of[names[truth[shown]]])
        done.add(shown)
        lab.page.wait_for_function("([el, old]) => el.dataset.index !== old",
                                   arg=[stage.element_handle(), str(shown)], timeout=10_000)
        shown = int(stage.get_attribute("data-index"))
    for _ in range(100):
        if lab.kernel_eval("int((s.label_array() >= 0).sum())") == N_FIRST + N_MORE:
            break
        lab.page.wait_for_timeout(100)
    assert lab.kernel_eval("int((s.label_array() >= 0).sum())") == N_FIRST + N_MORE

    # press Train (linear probe is preselected): the page's curve gains a point
    root.scroll_into_view_if_needed()
    button = root.locator("button.dfw-tr-train")
    assert button.inner_text().strip() == "Train"
    button.click()
    after = _wait_curve_len(lab, root, 2)
    _wait_page_drew_kernel_versions(lab, root, ["curve", "classes", "confusion"])
    page_z = root.evaluate("""el => { const gd = el.querySelector('[data-chart=confusion]');
                                      return gd.data[0].z; }""")
    assert page_z == lab.kernel_eval("s.training.confusion()['matrix'].tolist()")
    assert after["x"] == [N_FIRST, N_FIRST + N_MORE]
    py_x = lab.kernel_eval("list(tr.curve_fig.data[0].x)")
    py_y = lab.kernel_eval("list(tr.curve_fig.data[0].y)")
    truth_acc = lab.kernel_eval("s.curve['true_accuracy'].tolist()")
    assert after["x"] == py_x
    np.testing.assert_allclose(after["y"], py_y, rtol=0, atol=1e-12)
    np.testing.assert_allclose(py_y, truth_acc[-2:], atol=1e-12)
    assert 0.3 < after["y"][-1] <= 1.0
    status = root.locator(".dfw-tr-note").first.inner_text()
    assert "trained" in status.lower(), status
    saving = lab.kernel_eval("tr.saving_html.value")
    assert f"{N_FIRST + N_MORE} labels so far" in saving

    # looks at 1024x768: light, then dark (JupyterLab CSS variables reach the plots' text)
    lab.page.set_viewport_size({"width": 1024, "height": 768})
    _wait_page_drew_kernel_versions(lab, root, ["curve", "classes", "confusion"])
    lab.wait_until_drawn(root)
    light = lab.pixels(root).astype(float).mean()
    _screenshots(lab, "light")
    lab.set_theme("JupyterLab Dark")
    dark = lab.pixels(root).astype(float).mean()
    _screenshots(lab, "dark")
    lab.set_theme("JupyterLab Light")
    (output_dir / "trainer_console.txt").write_text(
        "\n".join(m for m in lab.console if "anywidget" in m) + "\n")
    assert dark < light - 60, (dark, light)

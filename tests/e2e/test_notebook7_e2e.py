"""The Workbench in Jupyter Notebook 7 (not JupyterLab): a folder of 500 Fashion-MNIST
PNG files in class sub-folders opens with ``dfw.Workbench(folder, model=...)``, renders
(map pixels, header counts, the import offer), and a keyboard label in its Labeler tab
lands in the store with source "click"."""

from __future__ import annotations

from harness import DARK_THEME, LIGHT_THEME, drawn_fraction

N = 500


def test_workbench_renders_and_labels_in_notebook7(nb7, fmnist_test_folder, output_dir):
    folder = fmnist_test_folder(N)
    nb7.open_notebook("workbench_nb7.ipynb", [
        "import dfwidgets as dfw",
        f"wb = dfw.Workbench({str(folder)!r}, model='efficientnet_lite0')\nwb",
    ])
    page = nb7.page
    # Notebook 7's own page, not JupyterLab's
    assert "/notebooks/workbench_nb7.ipynb" in page.url
    assert page.locator("#main-panel, .jp-NotebookShell, #jp-top-panel").count() > 0
    nb7.set_theme(LIGHT_THEME)
    nb7.run_cell(0, keys=True)  # Shift+Enter, as a person
    nb7.run_cell(1, keys=True, timeout=600)
    wb = nb7.wait_for_widget(1, ".dfw-workbench")

    # renders: the header's counts, the import offer, points on the map (from pixels)
    header = wb.locator(".dfw-wb-header")
    header.get_by_text(f"{N:,}", exact=False).first.wait_for(timeout=30_000)
    assert f"{N:,} items" in header.inner_text() and "0 labeled" in header.inner_text()
    offer = wb.locator(".dfw-wb-offer button")
    assert offer.is_visible() and f"Import {N:,} labels" in offer.inner_text()
    body = wb.locator(".dfw-map-body")
    body.scroll_into_view_if_needed()
    px = nb7.wait_until_drawn(body, timeout=120)
    assert drawn_fraction(px) > 0.01

    # a keyboard label in the Labeler tab
    wb.locator(".dfw-wb-side .lm-TabBar-tab", has_text="Label").click()
    labeler = wb.locator(".dfw-labeler")
    stage = labeler.locator(".dfw-lab-stage")
    page.wait_for_function("(el) => el.dataset.index !== undefined",
                           arg=stage.element_handle(), timeout=60_000)
    nb7.wait_until_drawn(stage)
    shown = int(stage.get_attribute("data-index"))
    truth = nb7.kernel_eval(f"wb.session.source.classes[int(wb.session.source.labels[{shown}])]")
    key_of = dict(zip(nb7.kernel_eval("wb.labeler.classes"),
                      nb7.kernel_eval("wb.labeler.class_keys")))
    n_cells = page.evaluate("() => window.jupyterapp.shell.currentWidget.content.widgets.length")
    labeler.locator(".dfw-lab-status").click()
    page.keyboard.press(key_of[truth])
    page.wait_for_function("([el, old]) => el.dataset.index !== old",
                           arg=[stage.element_handle(), str(shown)], timeout=10_000)
    for _ in range(50):
        if nb7.kernel_eval("int((wb.session.label_array() >= 0).sum())") == 1:
            break
        page.wait_for_timeout(100)
    rows = nb7.kernel_eval("wb.session.store.current()[['item_id', 'label', 'source']]"
                           ".values.tolist()")
    assert rows == [[nb7.kernel_eval(f"str(wb.session.ids[{shown}])"), truth, "click"]]
    # the key went to the widget, not to Notebook 7's command mode
    assert page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.widgets.length") == n_cells
    page.wait_for_function("() => /1 labeled/.test(document.querySelector("
                           "'.dfw-workbench .dfw-wb-header')?.textContent || '')",
                           timeout=10_000)

    nb7.screenshot_output(1, "workbench_nb7_light.png", ".dfw-workbench")
    light = nb7.pixels(wb).astype(float).mean()
    nb7.set_theme(DARK_THEME)
    nb7.screenshot_output(1, "workbench_nb7_dark.png", ".dfw-workbench")
    dark = nb7.pixels(wb).astype(float).mean()
    nb7.set_theme(LIGHT_THEME)
    assert dark < light - 60, (dark, light)

"""Rules end to end: real JupyterLab, headless Chromium, the 10,000 Fashion-MNIST test
images. A person lassoes a region on the map, opens the Rules tab, types a class, presses
"Region from selection", then colours the map by weak label; the kernel's rules, the panel's
list and the map's colour mode must agree with what was done."""

from __future__ import annotations

import numpy as np
from harness import DARK_THEME, LIGHT_THEME, lasso
from kernel_code import fmnist_test_session

N_SEED = 30


def test_region_rule_from_a_lasso(lab, tmp_path, fmnist_test_emb, output_dir):
    setup = fmnist_test_session(tmp_path / "rules_project", n_seed=N_SEED)
    lab.open_notebook("rules_e2e.ipynb", [setup, "wb = dfw.Workbench(s, map_layout='pca')\nwb"])
    lab.set_theme(LIGHT_THEME)
    lab.run_cell(0, timeout=600)
    lab.run_cell(1)
    wb = lab.wait_for_widget(1, ".dfw-workbench")
    page = lab.page
    wb.locator(".dfw-wb-side .lm-TabBar-tab", has_text="Rules").click()
    panel = wb.locator(".dfw-rules")
    panel.locator(".dfw-rl-list").wait_for(state="visible")
    assert "No rules yet" in panel.inner_text()
    body = wb.locator(".dfw-map-body")
    body.scroll_into_view_if_needed()
    page.wait_for_timeout(1500)

    # ---- lasso around the densest part of the map (kernel coordinates only to aim) ------
    state = lab.kernel_eval("{'xy': wb.map.coordinates.tolist(), 'view': list(wb.map._view)}")
    xy = np.asarray(state["xy"])
    box = body.bounding_box()
    x0, x1, y0, y1 = state["view"]
    pts = np.stack([box["x"] + (xy[:, 0] - x0) / (x1 - x0) * box["width"],
                    box["y"] + (y1 - xy[:, 1]) / (y1 - y0) * box["height"]], axis=1)
    inside = (pts[:, 0] > box["x"] + 60) & (pts[:, 0] < box["x"] + box["width"] * 0.7) & \
        (pts[:, 1] > box["y"] + 60) & (pts[:, 1] < box["y"] + box["height"] - 60)
    cx, cy = np.median(pts[inside], axis=0)
    r = min(box["width"], box["height"]) * 0.1
    angles = np.linspace(0, 2 * np.pi, 11)[:-1]
    lasso(page, np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1),
          settle_ms=800)
    selection = lab.kernel_eval("s.selection.tolist()")
    assert len(selection) >= 20, f"the lasso selected only {len(selection)} items"

    # ---- the panel: the selection count, a class, the button ----------------------------
    page.wait_for_function("(el) => /selected/.test(el.textContent) && "
                           f"el.textContent.includes('{len(selection):,} selected')",
                           arg=panel.element_handle(), timeout=15_000)
    panel.locator(".dfw-rl-class input").fill("Bag")
    panel.locator(".dfw-rl-class input").press("Enter")
    panel.locator(".dfw-rl-region").click()
    row = panel.locator(".dfw-rl-list .dfw-rl-row").first
    row.wait_for(state="visible", timeout=15_000)
    rules = lab.kernel_eval("s.rules.all()")
    assert len(rules) == 1 and rules[0]["kind"] == "region" and rules[0]["label"] == "Bag"
    ids = lab.kernel_eval("[str(i) for i in s.ids[s.selection]]")
    assert rules[0]["params"]["ids"] == ids
    assert f"region: Bag ({len(selection):,} items)" in row.inner_text()
    assert row.locator(".dfw-rl-cov").count() == 1

    # ---- colour the map by weak label from its menu --------------------------------------
    wb.locator("select[aria-label='Colour by']").first.select_option("weak label")
    for _ in range(50):
        if lab.kernel_eval("wb.map.color_by") == "weak label":
            break
        page.wait_for_timeout(200)
    assert lab.kernel_eval("wb.map.color_by") == "weak label"
    legend = wb.locator(".dfw-map-legend").first
    page.wait_for_function("(el) => /weak label/.test(el.textContent)",
                           arg=legend.element_handle(), timeout=15_000)
    lab.screenshot_output(1, "rules_region_light.png", ".dfw-workbench")
    # the rule's bin stays inside the panel (it was cut at the right) at 1024x768; its long
    # abstain message wraps inside the row
    row.scroll_into_view_if_needed()
    bin_box = row.locator("button").last.bounding_box()
    row_box, side = row.bounding_box(), wb.locator(".dfw-wb-side").first.bounding_box()
    assert bin_box["x"] + bin_box["width"] <= side["x"] + side["width"] + 1, (bin_box, side)
    assert row_box["x"] + row_box["width"] <= side["x"] + side["width"] + 1, (row_box, side)
    lab.set_theme(DARK_THEME)
    lab.screenshot_output(1, "rules_region_dark.png", ".dfw-workbench")
    lab.set_theme(LIGHT_THEME)

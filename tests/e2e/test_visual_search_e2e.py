"""VisualSearch end to end: real JupyterLab, headless Chromium, a Fashion-MNIST Session.
A person stars a tile to make it an example of a class, selects the top 20 neighbours,
accepts them, and the SQLite store holds 1 "click" label and 20 "search" labels."""

from __future__ import annotations

from harness import DARK_THEME, LIGHT_THEME, drawn_fraction


def test_star_example_accept_top_20(lab, tmp_path, fmnist_test_emb, output_dir):
    # fmnist_test_emb: the embeddings are in the disk cache before the kernel asks for them
    project = tmp_path / "vs_project"
    setup = (
        "import dfwidgets as dfw\n"
        "src = dfw.datasets.fashion_mnist(split='test')\n"
        "emb = dfw.embed(src, model='efficientnet_lite0', progress=False)\n"
        f"s = dfw.Session.open({str(project)!r}, source=src, embeddings=emb,\n"
        "                     model='efficientnet_lite0', auto_fit=False)\n"
        "len(src)"
    )
    show = "vs = dfw.VisualSearch(s, k=100, page_size=24)\nvs"
    lab.open_notebook("visual_search_e2e.ipynb", [setup, show])
    lab.run_cell(0, timeout=600)
    lab.run_cell(1)
    root = lab.wait_for_widget(1, ".dfw-vs")
    tiles = root.locator(".dfw-tile")
    tiles.first.wait_for(state="visible", timeout=60_000)
    assert tiles.count() == 24
    # images come by index as binary buffers (lib/images.js): every tile gets a blob: image
    lab.page.wait_for_function(
        "() => { const im = [...document.querySelectorAll('.dfw-vs .dfw-tile img')];"
        " return im.length === 24 && im.every((i) => i.src.startsWith('blob:')"
        " && i.complete && i.naturalWidth > 0); }", timeout=60_000)
    assert drawn_fraction(lab.pixels(tiles.first.locator("img"))) > 0.05  # a real thumbnail

    # choose the class of the first tile (ground truth) by clicking its chip
    first = int(tiles.first.get_attribute("data-index"))
    target = lab.kernel_eval(f"src.classes[int(src.labels[{first}])]")
    root.locator(".dfw-chip", has_text=target).first.click()
    lab.page.wait_for_function("(n) => document.querySelector('.dfw-vs .dfw-chip[aria-pressed=true]')"
                               "?.textContent === n", arg=target, timeout=20_000)

    # star the first tile: it becomes the example and its neighbours are shown
    tiles.first.hover()
    tiles.first.locator(".dfw-star").click()
    root.locator(".dfw-vs-head", has_text="Nearest neighbours").wait_for(timeout=60_000)
    root.locator(".dfw-vs-ex-item img").first.wait_for(timeout=20_000)
    lab.page.wait_for_function(
        "() => document.querySelectorAll('.dfw-vs .dfw-tile .dfw-sim')[0]?.textContent.includes('.')",
        timeout=30_000)
    sims = [float(t) for t in root.locator(".dfw-tile .dfw-sim").all_text_contents()]
    assert sims == sorted(sims, reverse=True) and 0 < sims[0] <= 1.0

    # select the top 20 by typing, then accept
    topk = root.locator(".dfw-vs-topk")
    topk.click()
    topk.fill("20")
    root.get_by_role("button", name="Select top").click()
    accept = root.locator(".dfw-primary", has_text="(20)")
    accept.wait_for(timeout=20_000)
    assert root.locator(".dfw-tile[aria-selected=true]").count() == 20
    lab.screenshot_output(1, "visual_search_light.png")
    accept.click()
    root.locator(".dfw-msg", has_text="Labeled 20 items").wait_for(timeout=30_000)

    cur = lab.kernel_eval(
        "s.store.current().groupby(['source', 'label']).size().reset_index().values.tolist()")
    assert sorted(map(tuple, cur)) == sorted([("click", target, 1), ("search", target, 20)])
    badges = root.locator(".dfw-tile .dfw-badge", has_text=target)
    assert badges.count() == 20  # the page shows the new labels
    truth = lab.kernel_eval(
        "float((src.labels[s.history().query(\"source == 'search'\")['index'].to_numpy()]"
        f" == list(src.classes).index({target!r})).mean())")
    assert truth >= 0.6  # nearest neighbours of one example are mostly its class

    # a second class: its chip, then star a browse tile of that class (ground truth)
    pick = lab.kernel_eval(
        f"next(int(i) for i in vs._browse[:24] if src.classes[int(src.labels[i])] != {target!r})")
    second = lab.kernel_eval(f"src.classes[int(src.labels[{pick}])]")
    root.locator(".dfw-chip", has_text=second).first.click()
    root.locator(".dfw-vs-head", has_text="Browse").wait_for(timeout=30_000)
    tile = root.locator(f".dfw-tile[data-index='{pick}']")
    tile.hover()
    tile.locator(".dfw-star").click()
    root.locator(".dfw-vs-head", has_text="Nearest neighbours").wait_for(timeout=60_000)

    # one-shot proposal from the two classes' examples: preview, threshold, commit
    root.get_by_role("button", name="Propose from examples").click()
    root.locator("table.dfw-vs-counts").wait_for(timeout=60_000)
    root.locator(".dfw-vs-sample img").first.wait_for(timeout=30_000)
    assert root.locator(".dfw-vs-level").count() == 4  # samples at several confidence levels
    lab.page.wait_for_function(
        "() => [...document.querySelectorAll('.dfw-vs .dfw-vs-sample')].every("
        "(s) => s.querySelector('img')?.naturalWidth > 0)", timeout=30_000)
    thr = root.locator(".dfw-vs-thr")
    thr.fill("0.85")
    thr.press("Enter")
    thr.blur()
    lab.page.wait_for_function(
        "() => document.querySelector('.dfw-vs table.dfw-vs-counts th:nth-child(3)')"
        "?.textContent.includes('0.85')", timeout=20_000)
    commit = root.locator(".dfw-vs-prop .dfw-primary")
    shown = int(commit.text_content().split()[1].replace(",", ""))
    lab.screenshot_output(1, "visual_search_proposal.png")
    commit.click()
    root.locator(".dfw-msg", has_text="Committed").wait_for(timeout=60_000)
    n_proto = lab.kernel_eval("int((s.store.current()['source'] == 'prototype').sum())")
    assert n_proto == shown > 0

    lab.set_theme(DARK_THEME)
    shot = lab.screenshot_output(1, "visual_search_dark.png")
    lab.set_theme(LIGHT_THEME)
    assert shot.exists()

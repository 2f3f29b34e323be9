"""Labeler end to end: real JupyterLab, headless Chromium, a 60,000-item Fashion-MNIST
Session. A person labels 20 items with the keyboard only (plus one undo), the page
measures key-press-to-next-image, then the kernel restarts and the labels are still there."""

from __future__ import annotations

import json

import numpy as np

from harness import key_latencies, start_key_latency_probe

N_LABELS = 20


def _wait_index_change(lab, stage, old: int | None, timeout: float = 10.0) -> int:
    """Wait until the stage shows another item than ``old``; return the new index."""
    handle = stage.element_handle()
    lab.page.wait_for_function(
        "([el, old]) => el.dataset.index !== undefined && el.dataset.index !== old",
        arg=[handle, "" if old is None else str(old)],
        timeout=timeout * 1000,
    )
    return int(stage.get_attribute("data-index"))


def test_label_20_items_with_keyboard_survives_restart(lab, tmp_path, fmnist_train_emb, output_dir):
    # fmnist_train_emb: the embeddings are in the disk cache before the kernel asks for them
    project = tmp_path / "labeler_project"
    setup = (
        "import dfwidgets as dfw\n"
        "src = dfw.datasets.fashion_mnist(split='train')\n"
        "emb = dfw.embed(src, model='efficientnet_lite0', progress=False)\n"
        f"s = dfw.Session.open({str(project)!r}, source=src, embeddings=emb)\n"
        "len(src)"
    )
    show = "lab = dfw.Labeler(s, strategy='hybrid', batch=8)\nlab"
    reopen = (
        "import dfwidgets as dfw\n"
        f"s2 = dfw.Session.open({str(project)!r})\n"
        "cur = s2.store.current()"
    )
    lab.open_notebook("labeler_e2e.ipynb", [setup, show, reopen])
    lab.run_cell(0, timeout=600)
    lab.run_cell(1)
    root = lab.wait_for_widget(1, ".dfw-labeler")
    stage = root.locator(".dfw-lab-stage")
    shown = _wait_index_change(lab, stage, None, timeout=60)
    px = lab.wait_until_drawn(stage)
    assert px.shape[0] >= 200 and px.shape[1] >= 200  # the large (224 px) rendition

    truth = lab.kernel_eval("src.labels.tolist()")
    classes = lab.kernel_eval("lab.classes")
    keys = lab.kernel_eval("lab.class_keys")
    key_of = {c: k for c, k in zip(classes, keys)}
    names = lab.kernel_eval("list(src.classes)")
    assert len(truth) == 60_000 and set(names) <= set(classes)

    # key press -> next image drawn, measured in the page from outside the widget
    start_key_latency_probe(stage, "data-index")
    # a person clicks the widget (its status line), then types
    root.locator(".dfw-lab-status").click()
    answers: dict[int, str] = {}
    drawn_after: list[int] = []  # the item on the stage after each label key
    presses = 0
    while len(answers) < N_LABELS:
        name = names[truth[shown]]
        lab.page.wait_for_timeout(150)  # a fast person: several answers per second
        lab.page.keyboard.press(key_of[name])
        presses += 1
        answers[shown] = name
        previous, shown = shown, _wait_index_change(lab, stage, shown)
        drawn_after.append(shown)
        assert shown not in answers, "an answered item came back"
        if len(answers) == N_LABELS // 2 and presses == len(answers):
            lab.page.keyboard.press("z")  # undo: the last item comes back on the stage
            shown = _wait_index_change(lab, stage, shown)
            assert shown == previous
            del answers[shown]

    # every answer reaches the store (in message order) without the page waiting for it
    for _ in range(100):
        if lab.kernel_eval("int((s.label_array() >= 0).sum())") == N_LABELS:
            break
        lab.page.wait_for_timeout(100)
    got = lab.kernel_eval("{str(k): v for k, v in s.labels.items()}")
    assert {int(k): v for k, v in got.items()} == answers
    # the item on the stage is the Session's focus (the page reports it by message, like
    # the labels above, so it may arrive a moment after the last label)
    for _ in range(100):
        if lab.kernel_eval("s.focus") == shown:
            break
        lab.page.wait_for_timeout(100)
    assert lab.kernel_eval("s.focus") == shown

    records = [r for r in key_latencies(stage) if r["key"] != "z"]  # not the undo
    lat = [r["ms"] for r in records]
    assert len(lat) == presses, f"expected one key-to-image time per label key, got {len(lat)}"
    # each time, the next item
    assert [r["index"] for r in records] == [str(i) for i in drawn_after], records
    lat_ms = np.asarray(lat, dtype=float)
    assert (lat_ms > 0).all()
    record = {"n": int(lat_ms.size), "p50_ms": float(np.percentile(lat_ms, 50)),
              "p95_ms": float(np.percentile(lat_ms, 95)), "max_ms": float(lat_ms.max()),
              "items": 60_000, "values_ms": lat_ms.round(2).tolist()}
    (output_dir / "labeler_latency.json").write_text(json.dumps(record, indent=1))

    # looks: light, then dark (JupyterLab CSS variables)
    lab.screenshot_output(1, "labeler_light.png", ".dfw-labeler")
    lab.set_theme("JupyterLab Dark")
    lab.screenshot_output(1, "labeler_dark.png", ".dfw-labeler")
    dark = lab.pixels(root).astype(float).mean()
    lab.set_theme("JupyterLab Light")
    light = lab.pixels(root).astype(float).mean()
    assert dark < light - 60, (dark, light)

    # "Only the selection (N)": off while nothing is selected; a Python select enables it;
    # a click restricts the queue to the selection, and keyboard labels land inside it
    toggle = root.locator(".dfw-lab-restrict")
    assert toggle.is_disabled() and "(0)" in toggle.inner_text()
    picked = list(range(1000, 1040))
    lab.kernel_exec(f"s.select({picked})")
    lab.page.wait_for_function("(el) => !el.disabled && el.textContent.includes('(40)')",
                               arg=toggle.element_handle(), timeout=10_000)
    toggle.click()
    for _ in range(100):
        if int(stage.get_attribute("data-index") or -1) in picked:
            break
        lab.page.wait_for_timeout(100)
    assert lab.kernel_eval("lab.restrict_to_selection") is True
    root.locator(".dfw-lab-status").click()  # the keys go to the widget
    shown = int(stage.get_attribute("data-index"))
    for _ in range(3):
        assert shown in picked, f"item {shown} is outside the selection"
        answers[shown] = names[truth[shown]]
        lab.page.keyboard.press(key_of[answers[shown]])
        shown = _wait_index_change(lab, stage, shown)
    for _ in range(100):
        if lab.kernel_eval("int((s.label_array() >= 0).sum())") == N_LABELS + 3:
            break
        lab.page.wait_for_timeout(100)
    lab.screenshot_output(1, "labeler_only_selection.png", ".dfw-labeler")

    # restart the kernel, reopen the Session from its folder: all labels, source "click"
    ids = {i: lab.kernel_eval(f"str(s.ids[{i}])") for i in answers}
    lab.restart_kernel()
    lab.run_cell(2)
    cur = lab.kernel_eval("cur[['item_id', 'label', 'source']].values.tolist()")
    assert len(cur) == N_LABELS + 3
    by_id = {row[0]: (row[1], row[2]) for row in cur}
    for i, name in answers.items():
        assert by_id[ids[i]] == (name, "click")

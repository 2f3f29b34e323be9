"""Workbench widget state without a browser: the four views over one Session, the header
(counts, estimate, fitting state, next step) following Session events, the import offer
for a folder with class sub-folders, clear errors for bad inputs, and close()."""

from __future__ import annotations

import re
import threading
import time

import ipywidgets as W
import numpy as np
import pytest
from PIL import Image

import dfwidgets as dfw
from dfwidgets.widgets.workbench_header import (
    Throttle,
    accuracy_text,
    header_html,
    import_result_text,
)

CLASSES = ("circle", "square", "stripes")
PER_CLASS = 10


def _callbacks(session) -> int:
    """Number of callbacks registered on ``session`` (test-only peek)."""
    return len(session._events._callbacks)


def _label_truth(s, n, seed=0):
    """Label ``n`` random items with their true classes."""
    pick = np.random.default_rng(seed).choice(len(s.ids), n, replace=False)
    names = np.asarray(s.source.classes, dtype=object)
    s.label_many(pick, list(names[s.source.labels[pick]]), source="click")
    return pick


def _make_folder(root, per_class=PER_CLASS):
    """root/<class>/<k>.png: 3 classes of small, clearly different pictures."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:24, 0:24]
    shapes = {"circle": ((yy - 12) ** 2 + (xx - 12) ** 2 < 60),
              "square": ((abs(yy - 12) < 7) & (abs(xx - 12) < 7)),
              "stripes": (xx // 3) % 2 == 0}
    for name in CLASSES:
        (root / name).mkdir(parents=True)
        for k in range(per_class):
            img = np.where(shapes[name], 220, 30).astype(np.uint8)
            img = np.clip(img + rng.integers(-20, 20, img.shape), 0, 255).astype(np.uint8)
            Image.fromarray(np.stack([img, img // 2, 255 - img], -1)).save(root / name / f"{k}.png")
    return root


@pytest.fixture()
def session(fmnist_session):
    s = fmnist_session(400)
    s.start_layout("pca")  # the Workbench keeps the Session's layout: no UMAP in tests
    return s


def test_four_views_share_the_session_and_close_removes_listeners(session):
    before = _callbacks(session)
    wb = dfw.Workbench(session)
    assert isinstance(wb, W.VBox)
    assert wb.session is session
    for view in (wb.map, wb.search, wb.labeler, wb.trainer):
        assert view.session is session
    assert list(wb.tabs.titles) == ["Search", "Label", "Train", "Rules"]  # Rules: issue 18
    assert wb.tabs.children == (wb.search, wb.labeler, wb.trainer, wb.rules)
    assert wb.map.height == 560
    assert isinstance(wb.header, W.HTML) and "dfw-workbench" in wb._dom_classes
    assert _callbacks(session) > before
    wb.show("train")
    assert wb.tabs.selected_index == 2
    with pytest.raises(ValueError, match="Unknown tab"):
        wb.show("Nope")
    wb.close()
    assert _callbacks(session) == before
    assert wb.map.comm is None and wb.trainer.comm is None and wb.header.comm is None
    session.label([0], "T-shirt/top")  # the Session stays open: the user's, not ours
    assert session.labels.size == 1
    wb.close()  # twice is fine


def test_header_counts_next_step_and_live_updates(session):
    wb = dfw.Workbench(session)
    status = session.status()
    text = wb.header.value
    assert "<b>400</b> items" in text and "<b>0</b> labeled" in text
    assert "no model yet" in text
    assert status["next_step"] and "Next:" in text
    assert _html_text(status["next_step"]) in text
    # a label written anywhere updates the header (throttled, from the event)
    session.label([1, 2, 3], "Sneaker")
    wb.wait()
    assert "<b>3</b> labeled" in wb.header.value
    session.select([5, 6])
    wb.wait()
    assert "<b>2</b> selected" in wb.header.value
    assert _html_text(session.status()["next_step"]) in wb.header.value
    # no folder labels here: no offer; an import anyway is an inline message, not a traceback
    assert wb.import_offered == 0 and wb.import_button.layout.display == "none"
    wb._on_import_click()
    assert "dfw-wb-error" in wb.import_message.value or "Imported 0" in wb.import_message.value
    assert wb.map.layout["method"] == "pca"  # the Session's layout is kept
    wb.close()


def test_header_shows_the_estimate_after_a_fit(session):
    wb = dfw.Workbench(session)
    _label_truth(session, 80)
    session.fit()
    wb.wait()
    status = session.status()
    assert status["estimate"] is not None
    text = wb.header.value
    est = accuracy_text(status)
    assert re.fullmatch(r"\d{1,3}% \(\d{1,3}%–\d{1,3}%\)", est)
    assert est.startswith(f"{round(100 * status['estimate'])}%")
    assert "estimated accuracy" in text and est.split(" ")[0] in text
    assert est.split(" ")[1] in text
    assert "<b>80</b> labeled" in text and "no model yet" not in text
    wb.close()


def test_bad_inputs_give_clear_errors(tmp_path, session):
    with pytest.raises(FileNotFoundError, match="no_such_folder"):
        dfw.Workbench(tmp_path / "no_such_folder")
    afile = tmp_path / "a.png"
    Image.new("RGB", (8, 8)).save(afile)
    with pytest.raises(ValueError, match="not a folder"):
        dfw.Workbench(str(afile))
    with pytest.raises(TypeError, match="folder of images"):
        dfw.Workbench(42)
    with pytest.raises(TypeError, match="model only apply"):
        dfw.Workbench(session, model="pixels")
    with pytest.raises(TypeError, match="auto_fit only apply"):
        dfw.Workbench(session, auto_fit=False)
    before = _callbacks(session)
    with pytest.raises(ValueError, match="nope"):
        dfw.Workbench(session, strategy="nope")
    assert _callbacks(session) == before  # the views made before the error are closed


def test_folder_import_offer(tmp_path):
    folder = _make_folder(tmp_path / "photos")
    wb = dfw.Workbench(folder, model="pixels", auto_fit=False, map_layout="pca")
    s = wb.session
    try:
        assert (folder / ".dfwidgets").is_dir()
        n = len(CLASSES) * PER_CLASS
        assert len(s.ids) == n and s.folder_labels_available() == n
        assert wb.import_offered == n
        assert wb.import_button.description == f"Import {n} labels from the class sub-folders"
        assert wb.import_button.layout.display != "none"
        wb.import_button.click()  # the button's click handler, as a press in the page
        assert s.labels.size == n and sorted(set(s.labels)) == list(CLASSES)
        assert wb.import_offered == 0 and wb.import_button.layout.display == "none"
        assert f"Imported {n} labels" in wb.import_message.value
        wb.wait()
        assert f"<b>{n}</b> labeled" in wb.header.value and "<b>3</b> classes" in wb.header.value
        # the import can be undone from the message row, and offered again
        assert wb.undo_import_button.layout.display != "none"
        wb.undo_import_button.click()
        assert s.labels.size == 0 and wb.import_offered == n
        assert "Undid the import" in wb.import_message.value
        assert wb.undo_import_button.layout.display == "none"
        wb.import_button.click()
        assert s.labels.size == n and wb.import_offered == 0
        # pressing again (e.g. a stale page) imports nothing and says so, no traceback
        wb._on_import_click()
        assert s.labels.size == n
    finally:
        wb.close()
    assert s._labels.closed  # opened here: closed with the Workbench
    # reopening the folder reopens the project: the labels are there, no offer
    wb2 = dfw.Workbench(str(folder), model="pixels", auto_fit=False, map_layout="pca")
    try:
        assert wb2.session.labels.size == n and wb2.import_offered == 0
    finally:
        wb2.close()


def test_fit_error_and_import_texts():
    text = header_html({"n_items": 10, "fit_error": "singular matrix <x>"})
    assert "The model fit failed: singular matrix &lt;x&gt;" in text
    assert "fitting" in header_html({"fitting": True})
    assert accuracy_text({"estimate": 0.8412, "low": 0.81, "high": 0.87}) == "84% (81%–87%)"
    msg = import_result_text({"imported": 5, "skipped_labeled": 2, "n_unreadable": 1,
                              "n_unknown": 0, "classes": ["a", "b"]})
    assert "Imported 5 labels" in msg and "2 already labeled" in msg and "1 unreadable" in msg


def test_throttle_folds_bursts_into_few_calls():
    calls = []
    throttle = Throttle(lambda: calls.append(time.monotonic()), interval=0.2)
    threads = [threading.Thread(target=lambda: [throttle() for _ in range(50)])
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    throttle.flush()
    assert 1 <= len(calls) <= 3
    time.sleep(0.25)
    throttle()  # a later event still refreshes (the trailing state is shown)
    throttle.flush()
    assert len(calls) >= 2
    throttle.close()
    n = len(calls)
    throttle()
    time.sleep(0.3)
    assert len(calls) == n


def _html_text(text: str) -> str:
    import html

    return html.escape(text)


def test_a_failed_background_fit_shows_in_the_header(session, monkeypatch):
    """A background fit that raises is never silent: the header shows the error."""
    from dfwidgets.learn.linear_probe import LinearProbe
    from dfwidgets.learn.prototypes import PrototypeClassifier

    wb = dfw.Workbench(session)
    _label_truth(session, 60)
    session.fit()
    session.wait_for_fit(timeout=60)
    time.sleep(1.0)  # the header's throttled refreshes are over: only a new event moves it

    def broken(self, X, y, **kwargs):
        raise RuntimeError("out of memory in the probe")

    monkeypatch.setattr(LinearProbe, "fit", broken)
    monkeypatch.setattr(PrototypeClassifier, "fit", broken)
    session.fit(background=True)  # no label changed: a refit that fails
    assert session.wait_for_fit(timeout=60)
    assert session.fit_error_ == "RuntimeError: out of memory in the probe"
    deadline = time.monotonic() + 10
    while "out of memory in the probe" not in wb.header.value and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "The model fit failed: RuntimeError: out of memory in the probe" in wb.header.value
    wb.close()

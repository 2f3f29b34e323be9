"""Errors are seen (issue 16 item 7): a failed background fit shows in the status of the
views that depend on the model (Trainer, Labeler, Workbench header), with the reason; and
class names / user text are escaped wherever they go into HTML."""

from __future__ import annotations

import html
import re
import time
from pathlib import Path

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets.widgets.labeler import Labeler
from dfwidgets.widgets.workbench_header import header_html

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

NASTY = '<b>x</b> & "y"'
JS_SRC = Path(__file__).resolve().parents[2] / "js" / "src"


@pytest.fixture()
def session(fmnist_session):
    s = fmnist_session(400)
    names = np.asarray(s.source.classes, dtype=object)
    idx = np.arange(60)
    s.label_many(idx, list(names[s.source.labels[idx]]), source="click")
    s.fit()
    return s


def _fail_next_fit(session, monkeypatch, why: str) -> None:
    """The next fit raises ``RuntimeError(why)`` inside the model choice."""
    def broken(self, y, classes):
        raise RuntimeError(why)

    monkeypatch.setattr(type(session._fit), "_make_model", broken)
    session.fit(background=True)
    assert session.wait_for_fit(timeout=60)
    assert session.fit_error_ == f"RuntimeError: {why}"


def _until(check, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not check() and time.monotonic() < deadline:
        time.sleep(0.05)
    return check()


def test_a_failed_fit_shows_in_the_trainer_status_escaped(session, monkeypatch):
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    try:
        _fail_next_fit(session, monkeypatch, f"no memory for class {NASTY}")
        assert _until(lambda: "The model fit failed" in tr.status.value)
        assert html.escape(NASTY) in tr.status.value and NASTY not in tr.status.value
        assert "dfw-tr-error" in tr.status.value
        monkeypatch.undo()  # the next fit works: the status says so
        session.fit(background=True)
        assert session.wait_for_fit(timeout=60) and session.fit_error_ is None
        assert _until(lambda: "fits again" in tr.status.value)
    finally:
        tr.close()


def test_a_failed_fit_shows_in_the_labeler_status(session, monkeypatch):
    lab = Labeler(session)
    try:
        assert lab.status.get("fit_error") is None
        _fail_next_fit(session, monkeypatch, "the probe diverged")
        assert _until(lambda: lab.status.get("fit_error") == "RuntimeError: the probe diverged")
        monkeypatch.undo()
        session.fit(background=True)
        assert session.wait_for_fit(timeout=60)
        assert _until(lambda: lab.status.get("fit_error") is None)
    finally:
        lab.close()


def test_labeler_page_draws_the_fit_error_as_text():
    """The page shows status.fit_error with textContent (never as HTML)."""
    src = (JS_SRC / "lib" / "labeler_view.js").read_text()
    assert re.search(r"s\.fit_error\)\s*parts\.push\(h\(\"span\"", src)
    assert "The model fit failed: ${s.fit_error}" in src


def test_workbench_header_escapes_the_fit_error():
    text = header_html({"n_items": 10, "n_labeled": 2, "n_classes": 2,
                        "fit_error": f"ValueError: bad class {NASTY}"})
    assert "The model fit failed" in text and html.escape(NASTY) in text
    assert NASTY not in text


def test_class_names_are_escaped_in_trainer_captions(session):
    names = np.asarray(session.source.classes, dtype=object)
    session.rename_class(str(names[0]), NASTY)
    session.fit()
    tr = dfw.Trainer(session, embedder="efficientnet_lite0")
    try:
        tr._refresh_all()
        tr.show_class(NASTY)
        assert html.escape(NASTY) in tr.items_caption.value
        assert NASTY not in tr.items_caption.value
    finally:
        tr.close()


def test_visual_search_keeps_user_text_as_text(session):
    """VisualSearch sends class names and messages as plain trait text; its page (like
    every page of dfwidgets) writes them with textContent, never innerHTML."""
    vs = dfw.VisualSearch(session, k=20, page_size=6)
    try:
        vs._on_msg(vs, {"type": "add_class", "name": NASTY}, [])
        assert NASTY in vs.classes and vs.active_class == NASTY
        assert NASTY in vs.message  # raw text: the page escapes by using textContent
    finally:
        vs.close()


def test_no_page_writes_html_from_strings():
    """No JS source builds DOM from strings (innerHTML / outerHTML / insertAdjacentHTML /
    document.write): user text can only reach the page as text nodes."""
    bad = re.compile(r"\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write")
    offenders = [str(p.relative_to(JS_SRC)) for p in JS_SRC.rglob("*.js")
                 if bad.search(p.read_text())]
    assert offenders == []

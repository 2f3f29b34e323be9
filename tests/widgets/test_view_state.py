"""Shared view state: the Session's selection and focus, and the widgets that follow them.

First without any widget (what a script or the next Workbench relies on), then through
the EmbeddingMap (its lasso writes the selection, a Python select shows in it) and the
Labeler (its current item is the focus)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

N = 400


@pytest.fixture()
def session(fmnist_session):
    return fmnist_session(N)


class Events:
    """Records "selection_changed" and "focus_changed" payloads of a Session."""

    def __init__(self, session) -> None:
        self.selection: list[list[int]] = []
        self.focus: list[int] = []
        session.on("selection_changed", lambda idx: self.selection.append(idx.tolist()))
        session.on("focus_changed", self.focus.append)


# ------------------------------------------------------------------ without widgets
def test_selection_and_focus_events_without_widgets(session) -> None:
    ev = Events(session)
    session.select([5, 1, 5])
    session.select([1, 5])  # unchanged: no event
    session.select(np.array([9]), mode="add")
    session.select([1], mode="remove")
    session.clear_selection()
    session.clear_selection()
    assert ev.selection == [[1, 5], [1, 5, 9], [5, 9], []]
    session.set_focus(3)
    session.set_focus(3)
    session.set_focus(None)
    assert ev.focus == [3, -1] and session.focus == -1


def test_two_views_on_one_session_see_each_others_selection(session) -> None:
    """Two listeners (as two views would be) both follow a select made by either."""
    a: list[list[int]] = []
    b: list[list[int]] = []
    session.on("selection_changed", lambda idx: a.append(idx.tolist()))
    session.on("selection_changed", lambda idx: b.append(idx.tolist()))
    session.select([7, 8])
    assert a == b == [[7, 8]]


def test_select_from_another_thread_fires_once(session) -> None:
    ev = Events(session)
    done = threading.Event()
    threading.Thread(target=lambda: (session.select([2, 3]), done.set())).start()
    assert done.wait(5)
    assert ev.selection == [[2, 3]] and session.selection.tolist() == [2, 3]


def test_a_failing_listener_does_not_break_select(session) -> None:
    seen: list[int] = []

    def broken(idx) -> None:
        raise RuntimeError("widget bug")

    session.on("focus_changed", broken)
    session.on("focus_changed", seen.append)
    session.set_focus(4)
    assert session.focus == 4 and seen == [4]


# ------------------------------------------------------------------ with widgets
def test_map_lasso_writes_the_session_selection_and_follows_it(session) -> None:
    from dfwidgets.widgets.embedding_map import EmbeddingMap

    ev = Events(session)
    m = EmbeddingMap(session, layout="pca")
    try:
        # the page's lasso: sorted uint32 bytes in _selected
        m._selected = np.array([3, 10, 12], dtype=np.uint32).tobytes()
        assert session.selection.tolist() == [3, 10, 12]
        assert ev.selection == [[3, 10, 12]]
        # a select from Python (or another view) shows in the map
        session.select([1, 2], mode="add")
        assert m.selected.tolist() == [1, 2, 3, 10, 12]
        assert ev.selection[-1] == [1, 2, 3, 10, 12] and len(ev.selection) == 2
        m.selected = []
        assert session.selection.size == 0 and m.selected.size == 0
        assert len(ev.selection) == 3
    finally:
        m.close()
    session.select([4])  # a closed view no longer follows
    assert m.selected.size == 0


def test_two_maps_share_selection_and_layout(session) -> None:
    from dfwidgets.widgets.embedding_map import EmbeddingMap

    a = EmbeddingMap(session, layout="pca")
    b = EmbeddingMap(session, layout="pca")
    try:
        a._selected = np.array([6, 7], dtype=np.uint32).tobytes()
        assert b.selected.tolist() == [6, 7]
        np.testing.assert_array_equal(a.coordinates, b.coordinates)
        assert session.layout_status["method"] == "pca"
    finally:
        a.close()
        b.close()


def test_labeler_current_item_is_the_session_focus(session) -> None:
    import dfwidgets as dfw

    ev = Events(session)
    lab = dfw.Labeler(session, strategy="margin", batch=8, prefetch=8)
    try:
        first = lab.queue[0]
        assert session.focus == first and ev.focus[-1] == first
        truth = session.source.classes[int(session.source.labels[first])]
        key = lab.class_keys[lab.classes.index(truth)]
        lab._on_msg(lab, {"type": "key", "key": key, "indices": [first], "seq": "t:1"}, [])
        assert session.focus == lab.queue[0] != first
        assert ev.focus[-1] == lab.queue[0]
    finally:
        lab.close()

"""Linked views without a browser: every link between the map, the Labeler, VisualSearch and
the Trainer goes through the Session (selection, focus, highlight and their events), in
both directions where it makes sense. The page's side is simulated the way the page talks
to Python: trait writes (the map's lasso) and custom messages (keys, tile hovers)."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

N = 400


@pytest.fixture()
def session(fmnist_session):
    return fmnist_session(N)


@pytest.fixture()
def views(session):
    """(map, labeler, search) over one Session; closed after the test."""
    from dfwidgets.widgets.embedding_map import EmbeddingMap
    from dfwidgets.widgets.labeler import Labeler
    from dfwidgets.widgets.visual_search import VisualSearch

    m = EmbeddingMap(session, layout="pca")
    lab = Labeler(session, strategy="margin", batch=4, prefetch=4)
    vs = VisualSearch(session, k=30)
    yield m, lab, vs
    for view in (vs, lab, m):
        view.close()


def lasso(m, mask: np.ndarray) -> np.ndarray:
    """What the page sends after a lasso: sorted uint32 bytes in ``_selected``."""
    idx = np.flatnonzero(mask).astype(np.uint32)
    m._selected = idx.tobytes()
    return idx.astype(np.int64)


def press_truth(session, lab, index: int, seq: str) -> None:
    """The page's key press that labels ``index`` with its true class."""
    truth = session.source.classes[int(session.source.labels[index])]
    key = lab.class_keys[lab.classes.index(truth)]
    lab._on_msg(lab, {"type": "key", "key": key, "indices": [index], "seq": seq}, [])


# ------------------------------------------------------------------ selection
def test_map_lasso_restricts_the_labeler_and_feeds_search(session, views) -> None:
    m, lab, vs = views
    xy = m.coordinates
    sel = lasso(m, xy[:, 0] < np.quantile(xy[:, 0], 0.1))  # the left tenth of the map
    assert 20 <= sel.size <= 60
    np.testing.assert_array_equal(session.selection, sel)
    assert lab.selection_size == vs.selection_size == sel.size
    assert not set(lab.queue) <= set(sel.tolist())  # not restricted yet
    lab.restrict_to_selection = True  # the toolbar toggle
    assert lab.queue and set(lab.queue) <= set(sel.tolist())
    assert session.focus == lab.queue[0] and m.focus == lab.queue[0]
    # ten keyboard labels: all inside the selection, source "click"
    for k in range(10):
        lab.wait()
        press_truth(session, lab, lab.queue[0], f"t:{k}")
    lab.wait()
    rows = session.history()
    rows = rows[rows["source"] == "click"]
    assert len(rows) == 10 and set(rows["index"]) <= set(sel.tolist())
    assert set(lab.queue) <= set(sel.tolist()) and lab.message == ""
    # VisualSearch takes the same selection as examples
    vs.active_class = session.classes[0]
    vs._on_msg(vs, {"type": "use_selection"}, [])
    assert vs.message_level != "error", vs.message
    assert sorted(session.examples.item_indices(session.classes[0]).tolist()) == sel.tolist()
    assert vs.mode == "results" and not set(vs.results["index"]) & set(sel.tolist())


def test_python_select_updates_map_and_restricted_queue(session, views) -> None:
    m, lab, vs = views
    lab.restrict_to_selection = True
    assert lab.queue == [] and "Nothing is selected" in lab.message  # not a traceback
    assert session.focus == -1 and m.focus == -1
    first = np.arange(100, 140)
    session.select(first)
    assert m.selected.tolist() == first.tolist()
    assert lab.queue and set(lab.queue) <= set(first.tolist()) and lab.message == ""
    assert lab.selection_size == vs.selection_size == 40
    second = np.arange(300, 320)
    session.select(second)  # the queue follows the new selection
    assert m.selected.tolist() == second.tolist()
    assert lab.queue and set(lab.queue) <= set(second.tolist())
    session.clear_selection()
    assert m.selected.size == 0 and lab.queue == [] and vs.selection_size == 0
    lab.restrict_to_selection = False  # all items again
    assert len(lab.queue) >= 4 and lab.message == ""


def test_an_exhausted_selection_says_so(session, views) -> None:
    m, lab, _vs = views
    names = np.asarray(session.source.classes, dtype=object)
    session.label([10, 11], str(names[session.source.labels[10]]))  # elsewhere, before
    session.select([10, 11, 12])
    lab.restrict_to_selection = True
    assert lab.queue == [12]
    press_truth(session, lab, 12, "t:1")
    lab.wait()
    assert lab.queue == [] and lab.message_level == "info"
    assert "No unlabeled item is left in the selection (3 selected" in lab.message
    assert session.focus == -1 and m.focus == -1
    session.select([12, 13], mode="add")  # one more unlabeled item: the note goes
    assert lab.queue == [13] and lab.message == "" and m.focus == 13


def test_labeler_restricted_from_the_start(session) -> None:
    from dfwidgets.widgets.labeler import Labeler

    session.select(np.arange(50, 70))
    lab = Labeler(session, strategy="margin", batch=4, prefetch=4, restrict_to_selection=True)
    try:
        assert lab.restrict_to_selection and lab.selection_size == 20
        assert lab.queue and set(lab.queue) <= set(range(50, 70))
    finally:
        lab.close()
    session.select([1])  # a closed view no longer follows
    assert lab.selection_size == 20


# ------------------------------------------------------------------ focus
def test_labeler_current_item_is_the_map_focus(session, views) -> None:
    m, lab, _vs = views
    first = lab.queue[0]
    assert session.focus == first and m.focus == first
    press_truth(session, lab, first, "t:1")
    assert m.focus == session.focus == lab.queue[0] != first
    session.set_focus(7)  # from Python: the map follows
    assert m.focus == 7
    session.set_focus(None)
    assert m.focus == -1


def test_tile_hover_focuses_its_item(session, views) -> None:
    m, lab, vs = views
    vs.query(index=5)
    tile = int(vs.page_items[2]["index"])
    vs._on_msg(vs, {"type": "hover", "index": tile}, [])
    assert session.focus == tile and m.focus == tile
    vs._on_msg(vs, {"type": "hover", "index": -1}, [])
    assert session.focus == -1 and m.focus == -1
    # leaving after another view moved the focus leaves that view's focus alone
    vs._on_msg(vs, {"type": "hover", "index": tile}, [])
    session.set_focus(lab.queue[0])
    vs._on_msg(vs, {"type": "hover", "index": -1}, [])
    assert session.focus == lab.queue[0] == m.focus
    # a bad index is an inline message, not a traceback
    vs._on_msg(vs, {"type": "hover", "index": 10**6}, [])
    assert vs.message_level == "error" and "out of range" in vs.message


# ------------------------------------------------------------------ highlight
def test_search_results_are_the_map_highlight(session, views) -> None:
    m, _lab, vs = views
    assert m.highlighted.size == 0
    res = vs.query(index=5)
    expected = np.unique(res["index"].to_numpy())
    assert expected.size == 30
    np.testing.assert_array_equal(session.highlight, expected)
    np.testing.assert_array_equal(m.highlighted, expected)
    vs.reject(top=3, label=session.classes[0])  # rejected items leave the results
    expected = np.unique(vs.results["index"].to_numpy())
    np.testing.assert_array_equal(m.highlighted, expected)
    session.set_highlight([1, 2])  # from Python: the map follows
    assert m.highlighted.tolist() == [1, 2]
    vs.query(index=6)
    np.testing.assert_array_equal(m.highlighted, np.unique(vs.results["index"]))
    # clearing the query (no examples: back to browsing) clears the highlight
    session.examples.add_items(session.classes[1], [8], replace=True)
    vs.active_class = session.classes[1]  # searches with its example
    assert vs.mode == "results" and m.highlighted.size > 0
    vs._on_msg(vs, {"type": "clear_examples"}, [])
    assert vs.mode == "browse" and m.highlighted.size == 0 and session.highlight.size == 0


def test_closing_search_takes_its_highlight_back(session) -> None:
    from dfwidgets.widgets.visual_search import VisualSearch

    vs = VisualSearch(session, k=10)
    other = VisualSearch(session, k=10)  # never searched: leaves the highlight alone
    vs.query(index=3)
    other.close()
    assert session.highlight.size == 10
    vs.close()
    assert session.highlight.size == 0


# ------------------------------------------------------------------ trainer
@pytest.fixture()
def big(fmnist_session):
    """3,000 items: the 2,000-item ground-truth holdout leaves 1,000 to label."""
    return fmnist_session(3000)


@pytest.fixture()
def trained(big):
    """A Trainer after a linear probe on 80 true labels (none in the holdout)."""
    import dfwidgets as dfw

    session = big
    holdout = set(session.holdout_indices().tolist())
    pool = np.array([i for i in range(len(session.ids)) if i not in holdout])
    pick = np.random.default_rng(0).choice(pool, min(80, pool.size), replace=False)
    names = np.asarray(session.source.classes, dtype=object)
    session.label_many(pick, list(names[session.source.labels[pick]]), source="click")
    tr = dfw.Trainer(session)
    tr.train(mode="probe")
    assert session.predictions_ is not None, tr.status.value
    yield tr
    tr.close()


def _eval_items(session) -> tuple[np.ndarray, np.ndarray]:
    """(items, true class names) of the ground-truth holdout, computed here again."""
    h = session.holdout_indices()
    h = h[session.label_array()[h] < 0]
    names = np.asarray(session.source.classes, dtype=object)
    return h, names[session.source.labels[h]]


def _click(trace, x, y) -> None:
    """What plotly's frontend does on a click: the trace's click callbacks."""
    from plotly.callbacks import Points

    trace._dispatch_on_click(Points(point_inds=[0], xs=[x], ys=[y], trace_name=trace.name,
                                    trace_index=0), None)


def test_trainer_bar_click_selects_that_class(big, trained) -> None:
    from dfwidgets.widgets.embedding_map import EmbeddingMap

    session = big
    m = EmbeddingMap(session, layout="pca")
    try:
        items, truth = _eval_items(session)
        bar = trained.class_fig.data[0]
        cls = str(bar.x[int(np.argmin(bar.y))])  # the worst class
        _click(bar, cls, float(min(bar.y)))
        expected = np.sort(items[truth == cls])
        assert expected.size > 0
        np.testing.assert_array_equal(session.selection, expected)
        np.testing.assert_array_equal(m.selected, expected)
        assert f"<b>{expected.size}</b> item(s) of class <b>{cls}</b>" in \
            trained.items_caption.value
        # a confusion cell: the items of that true class predicted as that class
        pred = np.asarray(session.classes, dtype=object)[session.predictions_[items]]
        wrong = np.flatnonzero(truth != pred)
        t, p = str(truth[wrong[0]]), str(pred[wrong[0]])
        _click(trained.confusion_fig.data[0], p, t)
        np.testing.assert_array_equal(m.selected, np.sort(items[(truth == t) & (pred == p)]))
        trained._on_bar("no such class")  # an inline message, not a traceback
        assert "dfw-tr-error" in trained.status.value
    finally:
        m.close()


def test_epoch_chart_is_hidden_until_fine_tuning_reports(trained) -> None:
    assert not trained.epochs_shown and "epoch" in trained.charts.hidden
    assert len(trained.epoch_fig.data[1].x or ()) == 0
    trained._on_epoch({"epoch": 0, "train_loss": float("nan"), "train_acc": float("nan"),
                       "val_loss": 0.9, "val_acc": 0.7, "seconds": 0.0})
    assert trained.epochs_shown and list(trained.epoch_fig.data[1].x) == [0]

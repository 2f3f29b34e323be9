"""EmbeddingMap widget state without a browser: the page's messages and binary state
updates (as ipywidgets delivers them) drive a real Session over Fashion-MNIST."""

from __future__ import annotations

import io

import numpy as np
import pytest
import traitlets
from PIL import Image

from dfwidgets.session import Session
from dfwidgets.widgets.embedding_map import EmbeddingMap

N = 400


@pytest.fixture()
def session(tmp_path, fmnist_test, fmnist_test_emb):
    s = Session.open(tmp_path / "proj", source=fmnist_test.subset(np.arange(N)),
                     embeddings=fmnist_test_emb[:N], auto_fit=False)
    yield s
    s.close()


@pytest.fixture()
def sent(monkeypatch):
    """Record every comm message a widget sends: list of (msg, buffers)."""
    log: list[tuple[dict, list]] = []

    def attach(widget):
        monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: log.append((msg, buffers or [])))
        return log

    return attach


@pytest.fixture()
def m(session):
    w = EmbeddingMap(session, layout="pca")
    yield w
    w.close()


def from_page_update(widget, name: str, payload: bytes) -> None:
    """A state update from the page with a binary buffer, the way ipywidgets' comm does it."""
    widget._handle_msg({"content": {"data": {"method": "update", "state": {name: None},
                                             "buffer_paths": [[name]]}},
                        "buffers": [memoryview(payload)]})


def from_page_msg(widget, content: dict) -> None:
    widget._handle_msg({"content": {"data": {"method": "custom", "content": content}},
                        "buffers": []})


def test_binary_traits_have_the_right_shapes(m):
    xy = np.frombuffer(m._coords, dtype=np.float32).reshape(-1, 2)
    assert xy.shape == (N, 2) and np.abs(xy).max() <= 0.951
    np.testing.assert_array_equal(xy, m.coordinates)
    codes = np.frombuffer(m._color_codes, dtype=np.uint8)
    assert codes.shape == (N,) and (codes == 0).all()  # nothing labeled yet: all "unlabeled"
    assert m._legend["items"][-1] == {"name": "unlabeled", "color": m._palette[0], "count": N}
    assert m._n == N and m._layout_method == "pca" and m._layout_error == ""
    assert m._color_modes[:4] == ["label", "prediction", "uncertainty", "difficulty"]


def test_selection_from_page_reaches_python_and_bulk_label_reaches_store(m, session):
    picked = np.array([7, 3, 250, 42], dtype=np.uint32)
    from_page_update(m, "_selected", picked.tobytes())  # memoryview, like a real comm
    assert m.selected.dtype == np.uint32
    np.testing.assert_array_equal(m.selected, np.sort(picked))

    from_page_msg(m, {"type": "label_selection", "label": "Sneaker"})  # the widget's button
    cur = session.store.current().set_index("item_id")
    ids = session.ids[np.sort(picked)]
    assert list(cur.loc[ids, "label"]) == ["Sneaker"] * 4
    assert set(cur.loc[ids, "source"]) == {"bulk"}
    assert m._message["kind"] == "ok" and "Labeled 4 items" in m._message["text"]
    np.testing.assert_array_equal(np.flatnonzero(session.label_array() >= 0), np.sort(picked))

    # the Python API does the same and creates new classes on the fly
    m.selected = [1, 2]
    assert m.label_selection("odd ones") == 2
    assert "odd ones" in session.classes and "odd ones" in m._classes
    assert session.history()["source"].eq("bulk").all()

    from_page_msg(m, {"type": "undo_bulk"})
    assert "odd ones" not in set(session.labels.values)


def test_user_mistakes_give_messages_and_lose_nothing(m, session):
    m.selected = [5]
    m.label_selection("Bag")
    m.selected = []
    from_page_msg(m, {"type": "label_selection", "label": "Coat"})
    assert m._message["kind"] == "error" and "Nothing is selected" in m._message["text"]
    m.selected = [5, 6]
    from_page_msg(m, {"type": "label_selection", "label": "   "})
    assert m._message["kind"] == "error" and "class name" in m._message["text"]
    assert dict(session.labels) == {5: "Bag"}  # nothing lost, nothing added

    with pytest.raises(ValueError, match="Nothing is selected"):
        m.selected = []
        m.label_selection("Coat")
    with pytest.raises(IndexError, match="out of range"):
        m.selected = [N]
    m.selected = [5, 6]
    from_page_update(m, "_selected", np.array([N + 5], np.uint32).tobytes())  # ipywidgets logs it
    np.testing.assert_array_equal(m.selected, [5, 6])  # the bad update was refused
    with pytest.raises(traitlets.TraitError, match="out of range"):
        m._selected = np.array([N + 5], np.uint32).tobytes()
    with pytest.raises(ValueError, match="color_by must be one of"):
        m.color_by = "colour"
    with pytest.raises(ValueError, match=r"shape \(400,\)"):
        m.color_by = np.zeros(3)


def test_colour_updates_send_only_the_colour_buffer(m, session, sent):
    log = sent(m)
    session.label([0, 1, 2], "Trouser", source="click")  # labels_changed from elsewhere
    m.color_by = np.arange(N, dtype=float)               # a custom ramp
    m.color_by = "label"
    updates = [msg for msg, _ in log if msg.get("method") == "update"]
    assert len(updates) >= 3
    for msg, buffers in log:
        if msg.get("method") != "update":
            continue
        assert "_coords" not in msg["state"] and ["_coords"] not in msg["buffer_paths"]
        assert set(msg["state"]) <= {"_color_codes", "_palette", "_legend", "_color_by_name", "_message"}
        for path, buf in zip(msg["buffer_paths"], buffers):
            assert path == ["_color_codes"] and len(buf) == N  # one uint8 per point
    codes = np.frombuffer(m._color_codes, dtype=np.uint8)
    assert set(codes[:3]) == {session.classes.index("Trouser") + 1} and (codes[3:] == 0).all()
    trouser = next(it for it in m._legend["items"] if it["name"] == "Trouser")
    assert trouser["count"] == 3


def test_prediction_colours_follow_model_updates(m, session, fmnist_test):
    m.color_by = "prediction"
    assert "No model yet" in m._message["text"]
    y = fmnist_test.labels[:N]
    first = {c: np.flatnonzero(y == c)[:5] for c in (1, 7, 9)}  # Trouser, Sneaker, Ankle boot
    for c, idx in first.items():
        session.label(idx, fmnist_test.classes[c], source="click")
    session.fit()  # emits model_updated -> recolour
    pred = session.predictions_
    codes = np.frombuffer(m._color_codes, dtype=np.uint8)
    np.testing.assert_array_equal(codes, pred + 1)
    counts = {it["name"]: it["count"] for it in m._legend["items"]}
    assert sum(counts.values()) == N and counts["Trouser"] > 0

    m.color_by = "uncertainty"
    assert m._legend["kind"] == "continuous"
    u = session.uncertainty_
    codes = np.frombuffer(m._color_codes, dtype=np.uint8).astype(int)
    assert np.corrcoef(codes, u)[0, 1] > 0.99  # the ramp follows 1 - max p


def test_hover_info_and_image_replies(m, session, sent):
    log = sent(m)
    session.label([9], "Dress", source="click")
    from_page_msg(m, {"type": "info", "index": 9, "request_id": 11})
    assert log[-2][0]["content"] == {"type": "invalidate"}  # labels changed: hover cache dropped
    msg = log[-1][0]["content"]
    assert msg == {"type": "info", "request_id": 11, "index": 9, "id": str(session.ids[9]),
                   "label": "Dress"}
    assert m.thumbs.requests == 0 and len(m.thumbs) == 0  # opening the map made no thumbnails
    # the pinned item's image: the one image path (lib/images.js -> reply_images)
    from_page_msg(m, {"type": "images", "indices": [3, N + 2], "edge": 96, "request_id": 13})
    msg, buffers = [(mm, b) for mm, b in log if mm.get("method") == "custom"][-1]
    content = msg["content"]
    assert content["request_id"] == 13 and content["missing"] == [N + 2] and len(buffers) == 1
    assert content["items"] == [{"index": 3, "mime": "image/png", "width": 28, "height": 28}]
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(buffers[0])).convert("L")),
                                  np.asarray(session.source[3].convert("L")))
    from_page_msg(m, {"type": "info", "index": N + 1, "request_id": 14})  # bad index: error reply
    msg = [mm for mm, _ in log if mm.get("method") == "custom"][-1]["content"]
    assert msg["request_id"] == 14 and "out of range" in msg["error"]


def test_a_given_layout_array_is_checked(session):
    xy = np.random.default_rng(0).normal(size=(N, 2))
    w = EmbeddingMap(session, layout=xy)
    assert w._layout_method == "custom" and w.layout["method"] == "given"
    assert session.layout_status["method"] == "given"
    np.testing.assert_allclose(session.layout_coords, xy, rtol=1e-6)
    with pytest.raises(ValueError, match=r"shape \(400, 2\)"):
        EmbeddingMap(session, layout=xy[:10])
    w.close()


def test_lasso_writes_the_session_selection_and_follows_it(m, session):
    events: list[np.ndarray] = []
    session.on("selection_changed", events.append)
    # the page's lasso -> the Session's selection (and its event)
    from_page_update(m, "_selected", np.array([9, 4, 120], np.uint32).tobytes())
    np.testing.assert_array_equal(session.selection, [4, 9, 120])
    assert session.selection.dtype == np.uint32 and len(events) == 1
    np.testing.assert_array_equal(events[0], [4, 9, 120])
    # a Python select (from any view or script) -> the map's `selected` and its trait
    session.select([7, 3])
    np.testing.assert_array_equal(m.selected, [3, 7])
    assert np.frombuffer(m._selected, np.uint32).tolist() == [3, 7] and len(events) == 2
    session.select([300], mode="add")
    session.select(np.arange(N) < 5, mode="remove")  # a bool mask
    np.testing.assert_array_equal(m.selected, [7, 300])
    # the map's own setter goes through the Session; the same selection again: no event
    m.selected = [300, 7]
    assert len(events) == 4
    m.selected = []
    assert session.selection.size == 0 and m.selected.size == 0 and len(events) == 5
    # a second map over the same Session starts from the shared selection
    session.select([11, 12])
    other = EmbeddingMap(session, layout="pca")
    try:
        np.testing.assert_array_equal(other.selected, [11, 12])
        from_page_update(other, "_selected", np.array([42], np.uint32).tobytes())
        np.testing.assert_array_equal(m.selected, [42])  # the first map follows
    finally:
        other.close()
    m.close()
    session.select([1])  # a closed map no longer follows
    np.testing.assert_array_equal(np.frombuffer(m._selected, np.uint32), [42])


def test_predictions_are_named_by_the_models_classes(m, session, fmnist_test):
    """The map names predictions like the Labeler does (session.predicted_labels), even
    when the Session's classes are in another order than the model's columns."""
    y = fmnist_test.labels[:N]
    for c in (9, 1, 7):  # Ankle boot, Trouser, Sneaker
        session.label(np.flatnonzero(y == c)[:5], fmnist_test.classes[c], source="click")
    session.fit()
    m.color_by = "prediction"
    # classes change after the fit (the model's columns stay): "T-shirt/top" goes, so the
    # Session's class positions no longer match the model's columns
    session.merge_classes(["T-shirt/top", "Shirt"], into="Shirt")
    assert session.classes[0] != session.model_classes_[0]
    names = session.predicted_labels()
    codes = np.frombuffer(m._color_codes, dtype=np.uint8)
    for i in range(0, N, 37):
        assert m._legend["items"][codes[i] - 1]["name"] == names[i]
        info = m.item_info(i)
        assert info["prediction"] == names[i]
        assert info["confidence"] == pytest.approx(float(session.probs_[i].max()), abs=1e-6)
    m.color_by = "difficulty"
    assert m._legend["title"] == "difficulty" and m._message.get("kind") != "error"
    assert {it["name"] for it in m._legend["items"]} <= {"easy", "medium", "hard", "none"}
    assert sum(it["count"] for it in m._legend["items"]) == N


def test_a_failed_umap_layout_is_said_in_the_map_and_pca_stays(tmp_path, monkeypatch):
    """A background layout failure is never silent: the map says so and keeps PCA."""
    import dfwidgets as dfw
    from dfwidgets.layout import LayoutComputer

    def broken(self, x):
        raise RuntimeError("numba could not compile")

    monkeypatch.setattr(LayoutComputer, "_fit_umap", broken)
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))  # nothing cached: UMAP runs
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 255, size=(60, 8, 8), dtype=np.uint8)
    src = dfw.ImageSource.from_array(arr)
    emb = rng.normal(size=(60, 16)).astype(np.float32)
    s = Session.open(tmp_path / "proj", source=src, embeddings=emb, auto_fit=False)
    try:
        m = EmbeddingMap(s, layout="umap")
        s.wait_for_layout(timeout=30)
        status = s.layout_status
        assert status["state"] == "failed" and "numba could not compile" in status["error"]
        assert m._message["kind"] == "error"
        assert "The UMAP layout failed (" in m._message["text"]
        assert "numba could not compile" in m._message["text"]
        assert np.frombuffer(m._coords, np.float32).reshape(-1, 2).shape == (60, 2)  # PCA drawn
        m.close()
    finally:
        s.close()


def test_hover_thumbnails_are_made_on_demand_and_lru_cached(m, session, sent):
    """Only what the page asks for is encoded; a second hover comes from the cache; the
    cache is bounded (least recently used items go first)."""
    log = sent(m)
    m.thumbs.max_items = 3
    for rid, i in enumerate([5, 6, 5, 7, 8, 5]):
        from_page_msg(m, {"type": "images", "indices": [i], "edge": 72, "request_id": 100 + rid})
    replies = [mm["content"] for mm, _ in log if mm.get("method") == "custom"]
    assert [r["items"][0]["index"] for r in replies] == [5, 6, 5, 7, 8, 5]
    assert m.thumbs.requests == 6 and m.thumbs.built == 4 and m.thumbs.hits == 2
    assert len(m.thumbs) == 3  # 6 was dropped (least recently used), 5 was kept
    from_page_msg(m, {"type": "images", "indices": [6], "edge": 72, "request_id": 200})
    assert m.thumbs.built == 5


def test_the_status_line_says_why_a_layout_failed(tmp_path, monkeypatch):
    """The map's status line (``_layout_method`` + ``_layout_error``) carries the reason
    of a failed UMAP, not "computing UMAP…" forever; a layout that cannot even start
    (e.g. umap-learn missing) does not break the map either."""
    import dfwidgets as dfw
    from dfwidgets.layout import LayoutComputer

    def missing(self, x):
        raise ImportError("umap-learn is not installed: pip install umap-learn")

    monkeypatch.setattr(LayoutComputer, "_fit_umap", missing)
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))
    rng = np.random.default_rng(1)
    src = dfw.ImageSource.from_array(rng.integers(0, 255, size=(50, 8, 8), dtype=np.uint8))
    s = Session.open(tmp_path / "proj", source=src,
                     embeddings=rng.normal(size=(50, 16)).astype(np.float32), auto_fit=False)
    try:
        m = EmbeddingMap(s, layout="umap")
        s.wait_for_layout(timeout=30)
        assert s.layout_status["state"] == "failed"
        assert m._layout_method == "pca"  # what is drawn
        assert "umap-learn is not installed" in m._layout_error
        m.close()

        def cannot_start(*args, **kwargs):
            raise RuntimeError("no layout today")

        monkeypatch.setattr(type(s), "start_layout", cannot_start)
        m2 = EmbeddingMap(s, layout="umap")  # no traceback for the user
        assert m2._n == 50 and len(m2._coords) == 50 * 8
        m2.close()
    finally:
        s.close()


def test_the_lasso_arrives_as_one_binary_message(m, session, sent):
    """The page sends a lasso/box selection as a custom message with one uint32 buffer
    (not a widget sync, which waits for the kernel's reply to the previous sync)."""
    log = sent(m)
    events: list[np.ndarray] = []
    session.on("selection_changed", events.append)
    picked = np.arange(0, N, 3, dtype=np.uint32)
    m._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "select"}}},
                   "buffers": [memoryview(picked.tobytes())]})
    np.testing.assert_array_equal(session.selection, picked)
    assert len(events) == 1 and m._selected == picked.tobytes()
    # the echo to the page is the trait update (a buffer), no JSON list of indices
    assert not any(isinstance(v, list) and len(v) > 100 for msg, _ in log for v in msg.values())
    # out of range: the selection stays, the page shows why
    m._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "select"}}},
                   "buffers": [memoryview(np.array([N + 3], np.uint32).tobytes())]})
    np.testing.assert_array_equal(session.selection, picked)
    assert "out of range" in m._message["text"] and m._message["kind"] == "error"
    # an empty buffer list clears it
    m._handle_msg({"content": {"data": {"method": "custom", "content": {"type": "select"}}},
                   "buffers": []})
    assert session.selection.size == 0 and len(events) == 2
    # a large selection comes as a bit mask (N bits, little bit order)
    mask = np.zeros(N, bool)
    mask[picked] = True
    m._handle_msg({"content": {"data": {"method": "custom",
                                        "content": {"type": "select", "bits": True}}},
                   "buffers": [memoryview(np.packbits(mask, bitorder="little").tobytes())]})
    np.testing.assert_array_equal(session.selection, picked)

"""Labeler widget state, no browser: the messages a key press / click sends are fed to the
widget's handler exactly as the browser would send them. Real Session, real SQLite store,
Fashion-MNIST test images with efficientnet_lite0 embeddings."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import dfwidgets as dfw
from dfwidgets.store import LabelStore

N = 600
PNG = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture()
def session(fmnist_session):
    return fmnist_session(N)


class Recorder:
    """Keeps the custom messages the widget sends to the browser (and still sends them)."""

    def __init__(self, widget):
        self.sent: list[tuple[dict, list]] = []
        original = widget.send

        def send(content, buffers=None):
            self.sent.append((content, list(buffers or [])))
            return original(content, buffers=buffers)

        widget.send = send

    def of(self, kind: str) -> list[tuple[dict, list]]:
        return [m for m in self.sent if m[0].get("type") == kind]


def press(lab, key: str, indices=None, seq="t:1"):
    """What the view sends for a key press on the shown item."""
    if indices is None:
        indices = [lab.queue[0]]
    lab._on_msg(lab, {"type": "key", "key": key, "indices": indices, "seq": seq}, [])


def ask_images(lab, indices, *, request_id=1, edge=None):
    """What lib/images.js sends for the images of ``indices``."""
    lab._on_msg(lab, {"type": "images", "indices": list(indices), "request_id": request_id,
                      "edge": lab.image_size if edge is None else edge}, [])


def truth(session, i: int) -> str:
    return session.source.classes[int(session.source.labels[i])]


def key_for(lab, name: str) -> str:
    return lab.class_keys[lab.classes.index(name)]


@pytest.fixture()
def lab(session):
    widget = dfw.Labeler(session, strategy="margin", batch=8, prefetch=8)
    yield widget
    widget.close()


def test_initial_state_queue_keys_and_images(lab, session):
    assert lab.classes == list(session.classes) and len(lab.classes) == 10
    assert lab.class_keys == list("1234567890")
    # shown + 8 prefetched, + a batch of 8 so the Session is asked once per 8 answers
    assert len(lab.queue) == 17 and len(set(lab.queue)) == 17
    assert lab.status["labeled"] == 0 and lab.status["strategy"] == "typiclust"
    rec = Recorder(lab)
    lab._on_msg(lab, {"type": "hello"}, [])  # a view rendered: the facts of the queue
    (content, buffers), = rec.of("items")
    assert [m["index"] for m in content["items"]] == lab.queue and buffers == []
    assert content["items"][0]["id"] == str(session.ids[lab.queue[0]])
    # the page asks for the images of the queue: one binary buffer per item
    ask_images(lab, lab.queue, request_id=5)
    (content, buffers), = rec.of("images")
    assert content["request_id"] == 5 and content["missing"] == []
    assert [m["index"] for m in content["items"]] == lab.queue
    assert len(buffers) == 17 and all(b[:8] == PNG for b in buffers)
    assert content["items"][0]["mime"] == "image/png"
    assert (content["items"][0]["width"], content["items"][0]["height"]) == (28, 28)


def test_key_press_labels_shown_item_writes_store_and_advances(lab, session, tmp_path):
    rec = Recorder(lab)
    shown, nxt = lab.queue[:2]
    name = truth(session, shown)
    press(lab, key_for(lab, name), seq="v:1")
    # the store (a separate connection to the SQLite file) has it, source "click"
    cur = LabelStore(tmp_path / "proj" / "labels.sqlite").current()
    assert cur[["item_id", "label", "source"]].values.tolist() == [
        [str(session.ids[shown]), name, "click"]]
    assert lab.queue[0] == nxt and shown not in lab.queue and len(lab.queue) >= 9
    assert rec.of("ack")[0][0] == {"type": "ack", "seq": "v:1", "indices": [shown]}
    assert lab.status["labeled"] == 1 and lab.message == ""
    # after 8 more answers the queue is topped up and the new items' facts are sent ahead
    assert rec.of("items") == []
    for n in range(8):
        press(lab, key_for(lab, truth(session, lab.queue[0])), seq=f"v:{n + 2}")
    assert lab.wait(), "the background refill did not finish"
    (content, buffers), = rec.of("items")
    new = [m["index"] for m in content["items"]]
    assert len(new) == 9 and len(lab.queue) == 17 and set(new) <= set(lab.queue) and buffers == []
    ask_images(lab, new)  # ... and the page fetches their images ahead of time
    (content, buffers), = rec.of("images")
    assert [m["index"] for m in content["items"]] == new and len(buffers) == len(new)


def test_undo_key_reverts_store_and_queue(lab, session):
    shown = lab.queue[0]
    press(lab, key_for(lab, truth(session, shown)))
    rec = Recorder(lab)
    press(lab, "z", indices=[])
    assert session.label_array()[shown] == -1
    assert lab.queue[0] == shown
    assert rec.of("undone")[0][0]["indices"] == [shown]
    assert lab.status["labeled"] == 0
    press(lab, "Backspace", indices=[])  # nothing left: a hint, no traceback
    assert lab.message == "Nothing to undo yet."


def test_skip_moves_on_without_label(lab, session):
    shown = lab.queue[0]
    press(lab, " ")
    assert shown not in lab.queue and session.label_array()[shown] == -1
    press(lab, "s")
    assert len(lab.queue) >= 9


@pytest.mark.slow
def test_retrain_reorders_queue_without_repeating_answers(lab, session):
    answered = []
    for n in range(24):
        lab.wait()  # a person's pace: the background refill keeps up
        i = lab.queue[0]
        press(lab, key_for(lab, truth(session, i)), seq=f"v:{n}")
        answered.append(i)
    assert lab.wait()
    rec = Recorder(lab)
    front = lab.queue[:3]
    before = lab.queue
    session.fit()  # emits "model_updated": the widget reorders
    assert lab.status["strategy"] == "margin"
    assert lab.queue[:3] == front  # the view may already show these
    assert lab.queue != before
    assert not set(lab.queue) & set(answered)
    # guesses for items the view already has, images for new ones
    guesses = rec.of("guesses")[0][0]["items"]
    assert all(len(g["guesses"]) == 3 for g in guesses)
    top = guesses[0]["guesses"]
    assert top[0][0] in lab.classes and top[0][1] >= top[1][1] >= top[2][1]
    # answering on goes on without repeats
    for n in range(10):
        lab.wait()
        i = lab.queue[0]
        assert i not in answered
        press(lab, key_for(lab, truth(session, i)), seq=f"w:{n}")
        answered.append(i)
    assert int((session.label_array() >= 0).sum()) == 34
    assert lab.status["per_minute"] is not None and lab.status["per_minute"] > 0


def test_user_mistakes_show_inline_and_lose_nothing(lab, session):
    rec = Recorder(lab)
    shown = lab.queue[0]
    press(lab, "y", seq="v:9")  # not bound with 10 classes
    assert lab.message_level == "error" and "not bound" in lab.message
    lab._on_msg(lab, {"type": "label", "indices": [shown], "label": "Zebra", "seq": "v:10"}, [])
    assert "Unknown class 'Zebra'" in lab.message
    lab._on_msg(lab, {"type": "label", "indices": [N + 3], "label": lab.classes[0],
                      "seq": "v:11"}, [])
    assert "out of range" in lab.message
    errors = rec.of("error")
    assert [e[0]["seq"] for e in errors] == ["v:9", "v:10", "v:11"]
    assert errors[1][0]["indices"] == [shown]  # the view puts it back
    assert lab.queue[0] == shown and int((session.label_array() >= 0).sum()) == 0
    lab._on_msg(lab, {"type": "nonsense"}, [])
    assert "Unknown message type" in lab.message


def test_add_class_from_widget(lab, session):
    lab._on_msg(lab, {"type": "add_class", "name": "  Hat "}, [])
    assert "Hat" in session.classes and lab.classes[-1] == "Hat" and lab.class_keys[-1] == "q"
    assert lab.message_level == "info"
    lab._on_msg(lab, {"type": "add_class", "name": "Hat"}, [])
    assert "already" in lab.message and lab.message_level == "error"
    lab._on_msg(lab, {"type": "add_class", "name": ""}, [])
    assert "Type a class name" in lab.message
    shown = lab.queue[0]
    press(lab, "q")  # the new class, no examples before
    assert session.labels[shown] == "Hat"


def test_grid_mode_bulk_all_remaining(lab, session):
    lab.mode = "grid"
    assert len(lab.queue) >= lab.page_size + 8
    page = lab.queue[: lab.page_size]
    first = page[0]
    press(lab, key_for(lab, truth(session, first)), indices=[first])
    rest = page[1:]
    lab._on_msg(lab, {"type": "label", "indices": rest, "label": lab.classes[0],
                      "source": "bulk", "seq": "g:1"}, [])
    cur = session.store.current().set_index("item_id")
    assert cur.loc[str(session.ids[first]), "source"] == "click"
    assert (cur.loc[[str(session.ids[i]) for i in rest], "source"] == "bulk").all()
    assert not set(lab.queue) & set(page)
    lab.mode = "nonsense"
    assert lab.mode == "grid" and "Unknown mode" in lab.message


@pytest.mark.slow
def test_review_mode_confirms_and_corrects_with_source_review(session):
    rng = np.random.default_rng(0)
    idx = rng.choice(N, 300, replace=False)
    labels = [truth(session, i) for i in idx]
    flipped = idx[:20]
    for j in range(20):  # deliberate mistakes: the "next" class
        labels[j] = session.source.classes[(int(session.source.labels[idx[j]]) + 1) % 10]
    session.label_many(idx, labels, source="bulk")
    session.fit()
    lab = dfw.Labeler(session, mode="review")
    try:
        assert lab.review_queue, lab.message
        assert len(set(lab.review_queue) & set(flipped.tolist())) >= 5
        assert lab.status["issues"] == len(lab.review_queue)
        first, second = lab.review_queue[:2]
        press(lab, key_for(lab, truth(session, first)), indices=[first])
        press(lab, "Enter", indices=[second])
        cur = session.store.current().set_index("item_id")
        assert cur.loc[str(session.ids[first]), "source"] == "review"
        assert cur.loc[str(session.ids[first]), "label"] == truth(session, first)
        assert cur.loc[str(session.ids[second]), "source"] == "review"
        assert first not in lab.review_queue and second not in lab.review_queue
    finally:
        lab.close()


def test_images_reply_with_buffers_and_name_the_missing_ones(lab, session):
    rec = Recorder(lab)
    ask_images(lab, [3, N + 7, -1, 5, "x", 2.5], edge=64, request_id=9)
    (content, buffers), = rec.of("images")
    assert content["request_id"] == 9
    assert [m["index"] for m in content["items"]] == [3, 5] and len(buffers) == 2
    assert content["missing"] == [N + 7, -1, "x", 2.5]
    for meta, buf in zip(content["items"], buffers):
        img = Image.open(io.BytesIO(buf))
        assert meta["mime"] == "image/png" and img.size == (meta["width"], meta["height"])
        np.testing.assert_array_equal(np.asarray(img.convert("L")),
                                      np.asarray(session.source[meta["index"]].convert("L")))
    # a large edge: the same small image (native size, the page scales it up)
    ask_images(lab, [3], edge=1024, request_id=10)
    (content, buffers) = rec.of("images")[-1]
    assert content["items"][0]["width"] == 28 and buffers[0][:8] == PNG


def test_current_item_is_the_session_focus(lab, session):
    events: list[int] = []
    session.on("focus_changed", events.append)
    shown, nxt = lab.queue[:2]
    assert session.focus == shown
    press(lab, key_for(lab, truth(session, shown)))
    assert session.focus == nxt and events == [nxt]
    press(lab, " ")  # skip: the next one
    assert session.focus == lab.queue[0] != nxt and events[-1] == lab.queue[0]
    press(lab, "z", indices=[])  # undo the skip: the skipped item is current again
    assert session.focus == nxt == lab.queue[0] and events[-1] == nxt
    n_events = len(events)
    lab._on_msg(lab, {"type": "hello"}, [])  # a new view: no change, no event
    assert len(events) == n_events
    lab.mode = "review"  # no model yet: nothing to review, no item in focus
    assert lab.review_queue == [] and session.focus == -1 and events[-1] == -1
    lab.mode = "single"
    assert session.focus == lab.queue[0] == nxt and events[-1] == nxt

"""VisualSearch widget state without a browser: the page's messages drive a real Session.
Traits carry indices only; images reach the page as binary buffers on request."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.index import NearestNeighborIndex
from dfwidgets.session import Session
from dfwidgets.thumbs import encode_image
from dfwidgets.widgets.visual_search import VisualSearch


@pytest.fixture()
def vs(tmp_path, fmnist_test, fmnist_test_emb):
    s = Session.open(tmp_path / "proj", source=fmnist_test, embeddings=fmnist_test_emb,
                     model="efficientnet_lite0", auto_fit=False)
    w = VisualSearch(s, k=100, page_size=12)
    yield w
    w.close()
    s.close()


def page_msg(w, content, buffers=()):
    """What the browser sends (anywidget custom message)."""
    w._on_msg(w, content, list(buffers))


def page_images(w, monkeypatch, indices, request_id=7):
    """The page's image request (js/src/lib/images.js) -> (reply content, buffers)."""
    sent = []
    monkeypatch.setattr(w, "send", lambda content, buffers=None: sent.append((content, buffers)))
    page_msg(w, {"type": "images", "indices": list(indices), "edge": w.thumb_size,
                 "request_id": request_id})
    assert len(sent) == 1
    content, buffers = sent[0]
    assert content["type"] == "images" and content["request_id"] == request_id
    assert len(buffers) == len(content["items"])
    return content, buffers


def test_query_matches_exact_search_and_accept_is_undoable(vs, fmnist_test_emb, monkeypatch):
    res = vs.query(index=42)
    assert list(res.columns) == ["index", "similarity", "label"]
    assert len(res) == 100 and 42 not in set(res["index"])
    ref_s, ref_i = NearestNeighborIndex(fmnist_test_emb, backend="exact").search(
        fmnist_test_emb[42], 100, exclude=[42])
    np.testing.assert_array_equal(res["index"], ref_i[0])
    np.testing.assert_allclose(res["similarity"], ref_s[0], atol=1e-5)
    assert vs.mode == "results" and vs.n_pages == 9 and len(vs.page_items) == 12
    assert set(vs.page_items[0]) == {"index", "rank", "similarity", "label"}  # no image bytes
    shown = [it["index"] for it in vs.page_items]
    content, buffers = page_images(vs, monkeypatch, shown)
    assert [m["index"] for m in content["items"]] == shown and content["missing"] == []
    assert all(bytes(b)[:4] == b"\x89PNG" for b in buffers)  # 28x28 items: native PNG
    assert {(m["mime"], m["width"], m["height"]) for m in content["items"]} == {("image/png", 28, 28)}

    n = vs.accept(top=20, label="Sneaker")
    assert n == 20
    cur = vs.session.store.current()
    assert set(cur["source"]) == {"search"} and len(cur) == 20
    assert set(cur["label"]) == {"Sneaker"}
    assert vs.session.undo(source="search") == 20
    assert len(vs.session.labels) == 0


def test_star_a_tile_select_top_and_accept_from_the_page(vs, fmnist_test):
    assert vs.mode == "browse" and len(vs.page_items) == 12
    target = fmnist_test.classes[fmnist_test.labels[vs.page_items[0]["index"]]]
    vs.active_class = target
    item = vs.page_items[0]["index"]
    page_msg(vs, {"type": "example_item", "index": item})
    assert vs.message_level == "info", vs.message
    assert vs.mode == "results" and vs.session.labels[item] == target
    assert [e["index"] for e in vs.examples] == [item]
    page_msg(vs, {"type": "select_top", "k": 20})
    assert vs.selected == vs.results["index"][:20].tolist()
    page_msg(vs, {"type": "accept"})
    hist = vs.session.history()
    assert (hist["source"] == "search").sum() == 20 and (hist["source"] == "click").sum() == 1
    # neighbours of one example are mostly its own class (Fashion-MNIST ground truth)
    got = hist.loc[hist["source"] == "search", "index"].to_numpy()
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[got]]
    assert (truth == target).mean() >= 0.6
    assert vs.selected == []


def test_reject_keeps_hard_negatives_and_drops_results(vs):
    vs.session.add_class("Bag")
    vs.active_class = "Bag"
    vs.query(index=7)
    first = vs.results["index"][:3].tolist()
    vs.selected = first
    page_msg(vs, {"type": "reject"})
    neg = vs.session.store.negatives()
    assert set(neg["label"]) == {"Bag"} and len(neg) == 3
    assert not set(first) & set(vs.results["index"])
    assert len(vs.session.labels) == 0


@pytest.mark.slow
def test_bad_upload_and_text_on_image_model_give_inline_messages(vs, fmnist_test):
    assert vs.text_enabled is False and "CLIP" in vs.text_reason
    page_msg(vs, {"type": "upload", "name": "notes.txt"}, [b"definitely not an image"])
    assert vs.message_level == "error" and "notes.txt" in vs.message and "PNG" in vs.message
    page_msg(vs, {"type": "text", "text": "a red sneaker"})
    assert vs.message_level == "error" and "CLIP" in vs.message
    page_msg(vs, {"type": "add_class", "name": vs.session.classes[0]})
    assert vs.message_level == "error" and "already" in vs.message
    assert len(vs.session.labels) == 0

    # a good upload becomes the active class's example and searches
    png = encode_image(fmnist_test[3])
    page_msg(vs, {"type": "upload", "name": "shoe.png"}, [png])
    assert vs.message_level == "info", vs.message
    assert vs.examples[-1]["kind"] == "image" and vs.mode == "results"
    assert vs.results["similarity"].iloc[0] > 0.9


def test_add_rename_class_and_use_selection(vs):
    page_msg(vs, {"type": "add_class", "name": "Shoe"})
    assert vs.active_class == "Shoe" and "Shoe" in vs.classes
    vs.use_selection(np.array([5, 9, 11]))
    assert len(vs.examples) == 3 and vs.mode == "results"
    assert len(vs.session.labels) == 0  # a selection used as examples labels nothing
    page_msg(vs, {"type": "rename_class", "old": "Shoe", "new": "Footwear"})
    assert vs.active_class == "Footwear" and "Shoe" not in vs.classes
    assert [e["index"] for e in vs.examples] == [5, 9, 11]
    assert [e["index"] for e in vs.session.examples.all()["Footwear"]] == [5, 9, 11]
    page_msg(vs, {"type": "page", "page": 1})
    assert vs.message_level == "error"  # unknown action: inline, no exception

    # the Session's shared selection (e.g. a lasso in the map) as the examples
    vs.session.select([30, 31])
    res = vs.use_selection(label="Footwear")
    assert [e["index"] for e in vs.examples] == [30, 31] and vs.query_label == "examples of Footwear"
    assert not {30, 31} & set(res["index"]) and len(vs.session.labels) == 0
    vs.session.clear_selection()
    with pytest.raises(ValueError, match="selection is empty"):
        vs.use_selection()


def test_page_errors_are_inline_and_close_stops_following(vs, monkeypatch):
    content, buffers = page_images(vs, monkeypatch, [0, -1, len(vs.session.ids)])
    assert [m["index"] for m in content["items"]] == [0] and len(buffers) == 1
    assert sorted(content["missing"]) == [-1, len(vs.session.ids)]
    page_msg(vs, {"type": "select_top", "k": "x"})
    assert vs.message_level == "error"
    page_msg(vs, {"type": "example_item", "index": 10**9})
    assert vs.message_level == "error" and "out of range" in vs.message

    rendered = []
    monkeypatch.setattr(vs, "_render_page", lambda *a: rendered.append(a))
    vs.session.label([0], "Bag")
    assert len(rendered) == 1  # labels_changed re-renders the page
    vs.close()
    vs.session.label([1], "Bag")
    assert len(rendered) == 1  # a closed view no longer follows the Session


def test_proposal_preview_commit_and_undo_from_the_page(vs, fmnist_test, monkeypatch):
    page_msg(vs, {"type": "propose", "method": "prototype"})
    assert vs.message_level == "error" and "at least 2 classes" in vs.message
    for k, name in enumerate(fmnist_test.classes):  # one example per class
        vs.session.label([int(np.flatnonzero(fmnist_test.labels == k)[0])], name)
    page_msg(vs, {"type": "propose", "method": "zero-shot"})
    assert vs.message_level == "error" and "CLIP" in vs.message
    page_msg(vs, {"type": "propose", "method": "prototype"})
    assert vs.message_level == "info", vs.message
    assert vs.proposal_method == "prototype"
    total = sum(r["proposed"] for r in vs.proposal_summary)
    assert total == len(fmnist_test) - 10
    levels = {s["level"] for s in vs.proposal_samples}
    assert levels and levels <= {0.99, 0.9, 0.7, 0.5}
    assert all(set(s) == {"label", "level", "index", "confidence"} for s in vs.proposal_samples)
    content, buffers = page_images(vs, monkeypatch, [s["index"] for s in vs.proposal_samples])
    assert [m["index"] for m in content["items"]] == [s["index"] for s in vs.proposal_samples]
    assert all(bytes(b)[:4] == b"\x89PNG" for b in buffers)

    assert vs.only_near_examples  # "none of these" (open set) is on by default

    # "none of these" (open set, the page's "only items close to an example" checkbox):
    # items far from every example are left out, and the preview says so
    prop = vs.session.proposal_
    out = int((~prop["kept"]).sum())
    assert out > 0 and vs.proposal_left_out["count"] == out
    assert "far" in vs.proposal_left_out["reason"] and f"{out:,} left out" in vs.message
    assert sum(r["left_out"] for r in vs.proposal_summary) == out
    assert not {s["index"] for s in vs.proposal_samples} & set(prop.loc[~prop["kept"], "index"])

    vs.min_confidence = 0.5  # the page's threshold box
    above = sum(r["above_threshold"] for r in vs.proposal_summary)
    expect = int(((prop["confidence"] >= 0.5) & prop["kept"]).sum())
    assert above == expect > 0
    page_msg(vs, {"type": "commit"})
    cur = vs.session.store.current()
    assert (cur["source"] == "prototype").sum() == expect
    assert vs.proposal_method == "" and "Committed" in vs.message
    assert vs.proposal_left_out == {}
    page_msg(vs, {"type": "undo_proposal"})
    assert (vs.session.store.current()["source"] == "prototype").sum() == 0
    assert len(vs.session.labels) == 10
    page_msg(vs, {"type": "undo_proposal"})
    assert vs.message_level == "error" and "no committed proposal" in vs.message

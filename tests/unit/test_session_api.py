"""The Session's public API for views (issue 13): checks, change detection, predictions as
names, selection and focus, the shared layout, neighbours, the embedder, item images,
evaluation and review items."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from session_helpers import N_SMALL, label_truth

from dfwidgets.session import Session

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def session(fmnist_session):
    """The ``small`` project's Session (conftest.py) with its embedder's name."""
    return fmnist_session(N_SMALL, split="train", model="efficientnet_lite0")




# ------------------------------------------------------------------ checks, version
def test_check_indices_accepts_ints_and_masks_and_explains_errors(session: Session) -> None:
    n = len(session.ids)
    assert session.check_indices([5, 3, 5]).tolist() == [3, 5]
    assert session.check_indices([5, 3, 5], unique=False).tolist() == [5, 3, 5]
    assert session.check_indices(7).dtype == np.int64
    mask = np.zeros(n, bool)
    mask[[2, 9]] = True
    assert session.check_indices(mask).tolist() == [2, 9]
    with pytest.raises(ValueError, match="boolean mask must have shape"):
        session.check_indices(np.zeros(3, bool))
    with pytest.raises(ValueError, match="No items given"):
        session.check_indices([])
    with pytest.raises(TypeError, match="indices_of"):
        session.check_indices([1.5])
    with pytest.raises(IndexError, match=f"source has {n} items"):
        session.check_indices([n])
    with pytest.raises(IndexError):
        session.check_indices([-1])
    with pytest.raises(ValueError, match="1-D"):
        session.check_indices([[1, 2]])


def test_strategies_and_check_strategy(session: Session) -> None:
    assert "margin" in session.strategies and "hybrid" in session.strategies
    assert session.check_strategy("margin") == "margin"
    with pytest.raises(ValueError, match="use one of random"):
        session.check_strategy("nope")


def test_version_changes_on_every_write(session: Session) -> None:
    v0 = session.version
    session.label([1], "Bag")
    v1 = session.version
    assert v1 != v0
    session.add_class("Hat")
    assert session.version != v1
    assert isinstance(session.version, int)


# ------------------------------------------------------------------ predictions
def test_predicted_labels_and_confidence(session: Session) -> None:
    assert session.predicted_labels() is None and session.confidence_ is None
    assert session.difficulty() is None
    label_truth(session, np.arange(200))
    session.fit()
    names = session.predicted_labels()
    assert names.shape == (len(session.ids),) and names.dtype == object
    assert set(names) <= set(session.model_classes_)
    assert np.array_equal(names, np.asarray(session.model_classes_, object)
                          [session.probs_.argmax(axis=1)])
    conf = session.confidence_
    assert conf.dtype == np.float32
    np.testing.assert_allclose(conf, session.probs_.max(axis=1), rtol=1e-6)
    # a class added after the fit does not shift the names (model_classes_ decides)
    before = names.copy()
    session.add_class("Aaa first")  # sorted first would shift a lookup in `classes`
    session.rename_class("T-shirt/top", "Top")
    after = session.predicted_labels()
    assert np.array_equal(after == "Top", before == "T-shirt/top")
    assert np.array_equal(after[before != "T-shirt/top"], before[before != "T-shirt/top"])
    diff = session.difficulty()
    assert isinstance(diff, pd.Series) and len(diff) == len(session.ids)
    assert set(diff.astype(str)) <= {"easy", "medium", "hard"}


# ------------------------------------------------------------------ selection and focus
def test_selection_modes_masks_and_events(session: Session) -> None:
    seen: list[np.ndarray] = []
    session.on("selection_changed", seen.append)
    assert session.selection.dtype == np.uint32 and session.selection.size == 0
    session.select([9, 3, 3, 7])
    assert session.selection.tolist() == [3, 7, 9] and session.selection.dtype == np.uint32
    assert len(seen) == 1 and seen[0].tolist() == [3, 7, 9] and seen[0].dtype == np.uint32
    session.select([7, 3, 9])  # same set: no event
    assert len(seen) == 1
    session.select([1, 3], mode="add")
    assert session.selection.tolist() == [1, 3, 7, 9] and len(seen) == 2
    session.select(np.array([3, 100], dtype=np.uint32), mode="remove")
    assert session.selection.tolist() == [1, 7, 9] and len(seen) == 3
    session.select([100], mode="remove")  # nothing to remove: unchanged
    assert len(seen) == 3
    mask = np.zeros(len(session.ids), bool)
    mask[[4, 5]] = True
    session.select(mask)
    assert session.selection.tolist() == [4, 5]
    got = session.selection
    got[0] = 99  # a copy: the Session's selection is unchanged
    assert session.selection.tolist() == [4, 5]
    session.clear_selection()
    assert session.selection.size == 0 and seen[-1].size == 0
    n_events = len(seen)
    session.clear_selection()
    session.select([])
    assert len(seen) == n_events
    with pytest.raises(IndexError):
        session.select([len(session.ids)])
    with pytest.raises(ValueError, match="mode"):
        session.select([1], mode="toggle")
    with pytest.raises(TypeError):
        session.select([0.5])
    assert len(seen) == n_events


def test_focus_and_its_event(session: Session) -> None:
    seen: list[int] = []
    session.on("focus_changed", seen.append)
    assert session.focus == -1
    session.set_focus(12)
    session.set_focus(np.int64(12))  # unchanged: no event
    assert session.focus == 12 and seen == [12]
    session.set_focus(None)
    assert session.focus == -1 and seen == [12, -1]
    session.set_focus(-1)
    assert seen == [12, -1]
    with pytest.raises(IndexError):
        session.set_focus(len(session.ids))
    with pytest.raises(IndexError):
        session.set_focus(-2)
    with pytest.raises(TypeError):
        session.set_focus(1.0)
    assert session.focus == -1


def test_highlight_and_its_event(session: Session) -> None:
    seen: list[np.ndarray] = []
    session.on("highlight_changed", seen.append)
    assert session.highlight.dtype == np.uint32 and session.highlight.size == 0
    session.set_highlight([8, 2, 8])
    assert session.highlight.tolist() == [2, 8] and session.highlight.dtype == np.uint32
    assert len(seen) == 1 and seen[0].tolist() == [2, 8] and seen[0].dtype == np.uint32
    session.set_highlight(np.array([2, 8], dtype=np.int64))  # same set: no event
    assert len(seen) == 1
    got = session.highlight
    got[0] = 99  # a copy
    assert session.highlight.tolist() == [2, 8]
    mask = np.zeros(len(session.ids), bool)
    mask[5] = True
    session.set_highlight(mask)
    assert session.highlight.tolist() == [5] and len(seen) == 2
    session.set_highlight(None)
    assert session.highlight.size == 0 and seen[-1].size == 0 and len(seen) == 3
    session.set_highlight([])  # already empty: no event
    assert len(seen) == 3
    with pytest.raises(IndexError):
        session.set_highlight([len(session.ids)])
    with pytest.raises(TypeError):
        session.set_highlight([0.5])
    assert session.selection.size == 0 and session.focus == -1  # independent state
    assert len(seen) == 3


@pytest.mark.parametrize("fitted", [False, True])
def test_next_batch_within_returns_only_items_of_the_selection(session: Session,
                                                               fitted: bool) -> None:
    label_truth(session, np.arange(0, 200))
    if fitted:
        session.fit()
    inside = np.arange(150, 400, 3)  # some labeled (< 200), most not
    unlabeled_inside = set(inside[inside >= 200].tolist())
    for strategy in session.strategies:
        got = session.next_batch(8, strategy=strategy, within=inside)
        assert got.dtype == np.int64 and got.size == 8, strategy
        assert set(got.tolist()) <= unlabeled_inside, strategy
        assert len(set(got.tolist())) == got.size, strategy
    mask = np.zeros(len(session.ids), bool)
    mask[[250, 260, 270]] = True
    got = session.next_batch(10, within=mask, exclude=[260])
    assert sorted(got.tolist()) == [250, 270]
    session.select(inside)
    assert set(session.next_batch(5, within=session.selection).tolist()) <= unlabeled_inside


def test_next_batch_within_draws_no_audit_items(session: Session) -> None:
    before = session.audit_mask().sum()
    for _ in range(5):
        session.next_batch(10, within=np.arange(1000, 1100))
    assert session.audit_mask().sum() == before
    session.next_batch(20)  # the whole pool: audit items as before
    assert session.audit_mask().sum() > before


def test_next_batch_within_an_empty_or_labeled_selection(session: Session) -> None:
    with pytest.raises(ValueError, match="No unlabeled items in the selection.*empty"):
        session.next_batch(5, within=[])
    with pytest.raises(ValueError, match="No unlabeled items in the selection.*empty"):
        session.next_batch(5, within=session.selection)
    label_truth(session, [3, 4, 5])
    with pytest.raises(ValueError, match="No unlabeled items in the selection.*labeled"):
        session.next_batch(5, within=[3, 4, 5])
    with pytest.raises(ValueError, match="No unlabeled items in the selection"):
        session.next_batch(5, within=[6], exclude=[6])
    with pytest.raises(IndexError):
        session.next_batch(5, within=[len(session.ids)])


def test_unknown_event_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="selection_changed"):
        session.on("selected", print)


# ------------------------------------------------------------------ layout
def test_layout_pca_at_once_then_umap_in_background(tmp_path: Path, small, monkeypatch) -> None:
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(REPO / ".dfw_cache" / "numba"))
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))  # no cached UMAP
    src, emb = small
    idx = np.arange(300)
    s = Session.open(tmp_path / "lay", source=src.subset(idx), embeddings=emb[idx],
                     auto_fit=False)
    try:
        assert s.layout_coords is None
        assert s.layout_status == {"method": None, "state": "none", "error": None, "stage": None}
        events: list[dict] = []
        done = threading.Event()

        def changed(sess: Session) -> None:
            events.append(sess.layout_status)
            if sess.layout_status["state"] != "computing":
                done.set()

        s.on("layout_changed", changed)
        s.start_layout("umap")
        pca = s.layout_coords
        assert pca is not None and pca.shape == (300, 2) and pca.dtype == np.float32
        status = s.layout_status
        if status["state"] == "computing":  # the usual case: UMAP takes a while
            assert status["method"] == "pca"
        s.start_layout("umap")  # the same method again: no-op
        assert s.wait_for_layout(timeout=300)
        assert done.wait(10)
        assert s.layout_status == {"method": "umap", "state": "done", "error": None, "stage": None}
        xy = s.layout_coords
        assert xy.shape == (300, 2) and np.isfinite(xy).all() and not np.allclose(xy, pca)
        assert events[-1]["method"] == "umap" and len(events) <= 2
        assert [e["state"] for e in events].count("done") == 1
        with pytest.raises(ValueError):
            xy[0, 0] = 1.0  # read-only: views share it
        # coordinates given by the user
        with pytest.raises(ValueError, match=r"\(300, 2\)"):
            s.set_layout(np.zeros((299, 2)))
        with pytest.raises(ValueError, match="finite"):
            s.set_layout(np.full((300, 2), np.nan))
        given = np.random.default_rng(0).normal(size=(300, 2))
        s.set_layout(given)
        assert s.layout_status["method"] == "given" and s.layout_status["state"] == "done"
        np.testing.assert_allclose(s.layout_coords, given.astype(np.float32))
        assert events[-1]["method"] == "given"
        s.start_layout("pca")  # PCA is immediate
        assert s.layout_status == {"method": "pca", "state": "done", "error": None, "stage": None}
        with pytest.raises(ValueError, match="umap"):
            s.start_layout("tsne")
    finally:
        s.close()


# ------------------------------------------------------------------ neighbours
def test_nearest_equals_brute_force(session: Session) -> None:
    emb = session.embeddings
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    q = emb[[3, 50, 400]] + 0.01
    scores, idx = session.nearest(q, k=5)
    qu = q / np.linalg.norm(q, axis=1, keepdims=True)
    brute = np.argsort(-(qu @ unit.T), axis=1, kind="stable")[:, :5]
    assert idx.dtype == np.int64 and scores.dtype == np.float32 and idx.shape == (3, 5)
    assert np.array_equal(idx, brute)
    np.testing.assert_allclose(scores, np.take_along_axis(qu @ unit.T, brute, 1), atol=1e-5)
    _, i2 = session.nearest_to_items([3, 50], k=4)
    assert 3 not in i2[0] and 50 not in i2[1]
    sims = unit[[3, 50]] @ unit.T
    sims[0, 3] = sims[1, 50] = -np.inf
    assert np.array_equal(i2, np.argsort(-sims, axis=1, kind="stable")[:, :4])
    _, i3 = session.nearest_to_items([3], k=1, exclude_self=False)
    assert i3[0, 0] == 3
    _, i4 = session.nearest(emb[3], k=3, exclude=np.array([3]))
    assert 3 not in i4[0]
    with pytest.raises(IndexError):
        session.nearest_to_items([len(session.ids)], k=2)


# ------------------------------------------------------------------ embedder
def test_offline_backbone_has_no_text_and_embeds_images(session: Session) -> None:
    ok, why = session.supports_text()
    assert ok is False and "ViT-B-32" in why and "prototype" in why
    with pytest.raises(ValueError, match="embeds images only"):
        session.embed_text(["a photo of a sneaker"])
    emb = session.embedder()
    assert emb is not None and emb is session.embedder() and not emb.supports_text
    img = np.asarray(session.source.array[7])
    vec = session.embed_image(img)
    assert vec.shape == (session.embeddings.shape[1],) and vec.dtype == np.float32
    assert abs(float(np.linalg.norm(vec)) - 1.0) < 1e-5
    stored = session.embeddings[7] / np.linalg.norm(session.embeddings[7])
    assert float(vec @ stored) > 0.95  # the same image, the same model
    with pytest.raises(ValueError, match="not an image"):
        session.embed_image(b"not an image")
    with pytest.raises(ValueError, match="No image file"):
        session.embed_image("/nonexistent/x.png")


def test_unknown_embedder(tmp_path: Path, small) -> None:
    src, emb = small
    s = Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False)
    try:
        assert s.model_name is None and s.embedder() is None
        ok, why = s.supports_text()
        assert not ok and "model=" in why
        with pytest.raises(ValueError, match="does not know which model"):
            s.embed_image(np.zeros((8, 8), np.uint8))
    finally:
        s.close()


# ------------------------------------------------------------------ item images
def test_item_image_bytes(session: Session) -> None:
    from PIL import Image

    data, mime, (w, h) = session.item_image_bytes(4, edge=96)
    assert mime == "image/png" and (w, h) == (28, 28)  # small: native PNG
    img = np.asarray(Image.open(io.BytesIO(data)))
    assert np.array_equal(img, np.asarray(session.source.array[4]))
    data, mime, size = session.item_image_bytes(4, edge=20)
    assert mime == "image/jpeg" and size == (28, 28)
    with pytest.raises(IndexError):
        session.item_image_bytes(len(session.ids), edge=96)
    with pytest.raises(TypeError):
        session.item_image_bytes([1, 2], edge=96)


# ------------------------------------------------------------------ evaluation items
def test_holdout_and_eval_items_with_ground_truth(session: Session) -> None:
    hold = session.holdout_indices()
    assert hold.dtype == np.int64 and len(hold) == 2000 and np.all(np.diff(hold) > 0)
    assert np.array_equal(hold, session.holdout_indices())
    session.label(hold[:5], "Bag")
    idx, truth, kind = session.eval_items()
    assert kind == "ground truth" and len(idx) == 1995 and not set(hold[:5]) & set(idx)
    names = np.asarray(session.source.classes, object)[np.asarray(session.source.labels)[idx]]
    assert np.array_equal(np.asarray(session.classes, object)[truth], names)
    assert session.audit_mask().dtype == bool and not session.audit_mask().any()


def test_eval_items_from_audit_answers_without_ground_truth(tmp_path: Path, small) -> None:
    from dfwidgets.data import ImageSource

    src, emb = small
    plain = ImageSource.from_array(np.asarray(src.array))  # no labels
    s = Session.open(tmp_path / "nolab", source=plain, embeddings=emb, auto_fit=False)
    try:
        assert s.holdout_indices().size == 0
        assert s.eval_items() is None
        s.add_class("A")
        s.add_class("B")
        batch = s.next_batch(40, strategy="random")
        audit = np.flatnonzero(s.audit_mask())
        assert audit.size > 0 and set(audit) <= set(batch)
        s.label(audit[:1], "A")
        s.label(audit[1:], "B")
        idx, codes, kind = s.eval_items()
        assert kind == "audit labels" and np.array_equal(idx, audit)
        assert codes.tolist() == [0] + [1] * (len(audit) - 1)
    finally:
        s.close()


def test_review_items_skip_items_already_reviewed(session: Session) -> None:
    issues = pd.DataFrame({"index": [30, 10, 20], "item_id": session.ids[[30, 10, 20]],
                           "given": "Bag", "suggested": "Coat", "score": [0.9, 0.8, 0.7]})
    session.label([10, 20, 30], "Bag")
    assert session.review_items(issues).tolist() == [30, 10, 20]  # issue order kept
    session.label([10], "Coat", source="review")
    assert session.review_items(issues).tolist() == [30, 20]
    session.label([10], "Bag", source="click")  # relabeled after the review: pending again
    assert session.review_items(issues).tolist() == [30, 10, 20]
    assert session.review_items(issues.iloc[:0]).size == 0
    assert session.review_items().dtype == np.int64  # computes label_issues() itself

"""One-shot (prototype) and zero-shot proposals over a real Session on Fashion-MNIST, the
Session's class examples (kept through renames and merges); and the pure
functions of ``learn/proposals.py`` on small arrays."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn import proposals
from dfwidgets.session import Session
from dfwidgets.thumbs import encode_image


@pytest.fixture()
def session(tmp_path, fmnist_test, fmnist_test_emb):
    s = Session.open(tmp_path / "proj", source=fmnist_test, embeddings=fmnist_test_emb,
                     model="efficientnet_lite0", auto_fit=False)
    yield s
    s.close()


def one_per_class(src) -> dict[str, int]:
    """The first item of each true class (what a user clicking one example would give)."""
    return {name: int(np.flatnonzero(src.labels == k)[0]) for k, name in enumerate(src.classes)}


def test_prototype_proposal_covers_unlabeled_items_and_beats_chance(session, fmnist_test):
    examples = one_per_class(fmnist_test)
    for name, i in examples.items():
        session.label([i], name)
    prop = session.propose(method="prototype", open_set=False)
    assert list(prop.columns) == ["index", "label", "confidence", "kept"]
    assert prop["kept"].all() and prop.attrs["left_out"] == 0
    assert len(prop) == len(fmnist_test) - 10
    assert not np.isin(prop["index"], list(examples.values())).any()
    assert prop["confidence"].is_monotonic_decreasing
    assert set(prop["label"]) <= set(fmnist_test.classes)
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[prop["index"]]]
    correct = truth == prop["label"].to_numpy()
    assert correct.mean() > 0.4  # chance is 0.1
    # the items the open-set rule keeps (near an example) are right far more often
    near = session.propose(method="prototype", open_set=True)
    kept = near[near["kept"]]
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[kept["index"]]]
    assert len(kept) >= 3
    assert (truth == kept["label"].to_numpy()).mean() > correct.mean() + 0.2
    assert session.proposal_ is near


def test_commit_writes_only_above_threshold_keeps_labels_and_undoes(session, fmnist_test):
    examples = one_per_class(fmnist_test)
    prop = session.propose(method="prototype", examples=examples, open_set=False)
    assert len(session.labels) == 0  # examples= does not label anything
    assert len(prop) == len(fmnist_test)

    threshold = float(prop["confidence"].quantile(0.8))
    above = prop[prop["confidence"] >= threshold]
    # the user labels one proposed item by hand after the proposal: it must survive
    mine = int(above["index"].iloc[0])
    other = next(c for c in fmnist_test.classes if c != above["label"].iloc[0])
    session.label([mine], other, source="click")

    summary = proposals.summarize_proposal(prop, min_confidence=threshold)
    assert summary["above_threshold"].sum() == len(above)
    assert summary["proposed"].sum() == len(prop)

    written = session.commit_proposal(min_confidence=threshold)
    assert written == len(above) - 1
    current = session.store.current()
    assert (current["source"] == "prototype").sum() == written
    labels = session.labels
    assert labels[mine] == other
    expect = above[above["index"] != mine]
    assert (labels[expect["index"].to_numpy()].to_numpy() == expect["label"].to_numpy()).all()

    reverted = session.undo(source="prototype")
    assert reverted == written
    assert session.labels.to_dict() == {mine: other}


def test_zero_shot_on_image_only_model_names_the_fix(session):
    with pytest.raises(ValueError, match="CLIP") as err:
        session.propose(method="zero-shot", prompts={"Sneaker": "a photo of a sneaker",
                                                     "Bag": "a photo of a bag"})
    assert "efficientnet_lite0" in str(err.value) and "ViT-B-32" in str(err.value)
    ok, why = session.supports_text()
    assert not ok and "images only" in why
    with pytest.raises(ValueError, match="CLIP"):
        session.examples.add("Sneaker", text="a red sneaker")
    assert session.examples.all() == {}


def test_clear_errors(session, fmnist_test):
    with pytest.raises(ValueError, match="no proposal yet"):
        session.commit_proposal()
    session.label([0], fmnist_test.classes[fmnist_test.labels[0]])
    with pytest.raises(ValueError, match="at least 2 classes"):
        session.propose(method="prototype")
    with pytest.raises(ValueError, match="method must be"):
        session.propose(method="kmeans")
    session.propose(method="prototype", examples={"A": 1, "B": [2, 3]})
    with pytest.raises(ValueError, match="between 0 and 1"):
        session.commit_proposal(min_confidence=90)
    with pytest.raises(ValueError, match="not classes"):
        session.commit_proposal(labels=["Zebra"])
    assert len(session.labels) == 1  # nothing written by the failed calls


def test_samples_at_several_confidence_levels(session, fmnist_test):
    prop = session.propose(method="prototype", examples=one_per_class(fmnist_test),
                           open_set=False)
    samples = proposals.proposal_samples(prop, levels=(0.9, 0.5), per_class=2)
    assert samples.equals(session.examples.samples(levels=(0.9, 0.5), per_class=2))
    assert set(samples["level"]) == {0.9, 0.5}
    assert not samples["index"].duplicated().any()
    assert samples.groupby(["label", "level"]).size().max() <= 2
    by_level = samples.groupby("level")["confidence"].mean()
    assert by_level[0.9] > by_level[0.5]


@pytest.mark.slow
def test_uploaded_image_is_embedded_with_the_session_model(session, fmnist_test,
                                                           fmnist_test_emb):
    item = 17
    png = encode_image(fmnist_test[item])
    vec = session.embed_image(png)
    assert vec.shape == (fmnist_test_emb.shape[1],)
    assert float(vec @ fmnist_test_emb[item]) > 0.98
    with pytest.raises(ValueError, match="not an image"):
        session.embed_image(b"this is not a picture")

    # an outside image kept as a class example counts for the prototypes
    name = fmnist_test.classes[fmnist_test.labels[item]]
    session.examples.add(name, image=png)
    assert session.examples.vectors(name).shape == (1, fmnist_test_emb.shape[1])
    other = int(np.flatnonzero(fmnist_test.labels != fmnist_test.labels[item])[0])
    session.label([other], fmnist_test.classes[fmnist_test.labels[other]])
    prop = session.propose(method="prototype")
    assert set(prop.attrs["classes"]) == {name, fmnist_test.classes[fmnist_test.labels[other]]}
    # reopening the project keeps the uploaded example
    reopened = Session.open(session.path, auto_fit=False)
    try:
        assert reopened.examples.all()[name][0]["kind"] == "image"
    finally:
        reopened.close()


@pytest.mark.slow
def test_zero_shot_commit_and_undo_with_a_text_model(tmp_path, fmnist_test):
    """The zero-shot path end to end through a real open_clip ViT-B-32 text tower. Its
    pretrained weights are not reachable offline, so the model is randomly initialised:
    this checks the mechanics (prompts -> proposal -> commit -> undo), not accuracy."""
    import dfwidgets as dfw
    from dfwidgets.data import ImageSource

    clip = dfw.get_embedder("ViT-B-32", pretrained="random")
    small = ImageSource.from_array(fmnist_test.array[:8])
    s = Session.open(tmp_path / "clip", source=small, model=clip, auto_fit=False)
    try:
        assert s.supports_text() == (True, "")
        prompts = {"Sneaker": "a photo of a sneaker", "Bag": ["a photo of a bag", "a handbag"]}
        prop = s.propose(method="zero-shot", prompts=prompts, open_set=False)
        assert len(prop) == 8 and set(prop["label"]) <= {"Sneaker", "Bag"}
        assert prop["confidence"].between(0.5, 1.0).all()
        assert prop.attrs["source"] == "zero-shot"
        s.label([0], "Bag")  # a label given after the proposal is kept
        assert s.commit_proposal(min_confidence=0.0) == 7
        cur = s.store.current()
        assert (cur["source"] == "zero-shot").sum() == 7 and len(cur) == 8
        assert s.undo(source="zero-shot") == 7
        assert s.labels.to_dict() == {0: "Bag"}
        example = s.examples.add("Sneaker", text="a red sneaker")
        assert example["kind"] == "text" and len(example["vector"]) == clip.dim
        assert s.examples.vectors("Sneaker").shape == (1, clip.dim)
    finally:
        s.close()


def test_examples_survive_rename_and_merge_and_reopen(session, fmnist_test_emb):
    shoe = session.examples.add("Shoe", index=3, label_item=False)
    assert shoe == {"kind": "item", "id": str(session.ids[3])}
    session.examples.add("Shoe", index=8)  # labeled "Shoe" as well (source "click")
    assert session.examples.add_items("Boot", [20, 21]) == 2
    assert len(session.labels) == 1 and session.labels[8] == "Shoe"
    before = session.examples.vectors("Shoe")
    np.testing.assert_allclose(before, fmnist_test_emb[[3, 8]] / np.linalg.norm(
        fmnist_test_emb[[3, 8]], axis=1, keepdims=True), atol=1e-6)

    session.rename_class("Shoe", "Footwear")
    kept = session.examples.all()
    assert "Shoe" not in kept and [e["index"] for e in kept["Footwear"]] == [3, 8]
    np.testing.assert_array_equal(session.examples.vectors("Footwear"), before)
    assert session.examples.vectors("Shoe").shape == (0, fmnist_test_emb.shape[1])

    session.merge_classes(["Footwear", "Boot"], into="Shoes")
    kept = session.examples.all()
    assert set(kept) == {"Shoes"}
    assert sorted(e["index"] for e in kept["Shoes"]) == [3, 8, 20, 21]
    assert session.examples.item_indices("Shoes").tolist() == [3, 8, 20, 21]
    assert session.labels[8] == "Shoes"

    reopened = Session.open(session.path, auto_fit=False)
    try:
        assert sorted(e["index"] for e in reopened.examples.all()["Shoes"]) == [3, 8, 20, 21]
    finally:
        reopened.close()
    session.examples.clear("Shoes")
    assert session.examples.all() == {}


def test_examples_add_validates_and_replaces(session):
    with pytest.raises(ValueError, match="exactly one"):
        session.examples.add("Shoe")
    with pytest.raises(ValueError, match="exactly one"):
        session.examples.add("Shoe", index=1, text="a shoe")
    with pytest.raises(ValueError, match="class name"):
        session.examples.add("  ", index=1)
    with pytest.raises(IndexError):
        session.examples.add("Shoe", index=len(session.ids))
    session.examples.add("Shoe", index=1, label_item=False)
    session.examples.add("Shoe", index=1, label_item=False)  # the same example is kept once
    session.examples.add("Shoe", index=2, label_item=False, replace=True)
    assert [e["index"] for e in session.examples.all()["Shoe"]] == [2]
    assert "Shoe" in session.classes and len(session.labels) == 0


def test_kept_examples_and_negatives_shape_the_default_proposal(session, fmnist_test):
    """Unlabeled item examples count as prototypes; a hard negative moves its class."""
    from dfwidgets.learn.proposals import propose_prototypes

    ex = one_per_class(fmnist_test)
    names = list(ex)[:3]
    for name in names:
        session.examples.add(name, index=ex[name], label_item=False)
    prop = session.propose(method="prototype")
    assert sorted(prop.attrs["classes"]) == sorted(names) and len(prop) == len(fmnist_test)
    emb = session.embeddings
    expect = propose_prototypes(emb[[ex[n] for n in names]], names, emb, np.arange(len(emb)),
                                open_set=False)  # the Session's default: the closed set
    np.testing.assert_array_equal(prop["index"], expect["index"])

    mine = prop.loc[(prop["label"] == names[0]) & ~prop["index"].isin(list(ex.values())), "index"]
    wrong = int(mine.iloc[0])  # the surest non-example item of class 0, marked "not class 0"
    session.add_negatives([wrong], names[0])
    again = session.propose(method="prototype")
    expect = propose_prototypes(emb[[ex[n] for n in names]], names, emb, np.arange(len(emb)),
                                X_negative=emb[[wrong]], y_negative=[names[0]], open_set=False)
    np.testing.assert_array_equal(again["index"], expect["index"])
    np.testing.assert_allclose(again["confidence"], expect["confidence"], rtol=1e-6)
    assert not again.equals(prop)


# ====================================================================== pure functions
def clusters(seed: int = 0, n: int = 30, d: int = 16):
    """Three well separated unit-vector clusters: (centres (3, d), X (n, d), y (n,) codes)."""
    rng = np.random.default_rng(seed)
    centres = np.linalg.qr(rng.normal(size=(d, 3)))[0].T.astype(np.float32)
    y = np.arange(n) % 3
    X = centres[y] + 0.1 * rng.normal(size=(n, d)).astype(np.float32)
    return centres, (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32), y


def test_propose_prototypes_labels_the_pool_most_confident_first():
    from dfwidgets.learn.models import PrototypeClassifier

    centres, X, y = clusters()
    names = np.array(["a", "b", "c"], dtype=object)
    pool = np.arange(100, 100 + len(X))  # item indices need not be positions
    from dfwidgets.learn.open_set import center

    prop = proposals.propose_prototypes(centres, names, X, pool, open_set=False)
    assert list(prop.columns) == ["index", "label", "confidence", "kept"]
    assert prop["index"].dtype == np.int64 and prop["confidence"].dtype == np.float32
    assert prop.attrs == {"method": "prototype", "source": "prototype", "classes": ["a", "b", "c"],
                          "left_out": 0, "left_out_reason": ""}
    assert sorted(prop["index"]) == pool.tolist()
    assert prop["confidence"].is_monotonic_decreasing
    truth = dict(zip(pool.tolist(), names[y]))
    assert all(truth[i] == lab for i, lab in zip(prop["index"], prop["label"]))
    # closed set: the classifier on the raw embeddings, exactly
    ref = PrototypeClassifier().fit(centres, names).predict_proba(X).max(axis=1)
    got = prop.set_index("index")["confidence"].reindex(pool).to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    # open set: the prototypes live in embeddings centred on the pool mean
    mean = X.mean(axis=0)
    C, Xc = center(centres, mean), center(X, mean)
    T = proposals.TEMPERATURE
    prop = proposals.propose_prototypes(centres, names, X, pool, open_set=True)
    ref = PrototypeClassifier(temperature=T).fit(C, names).predict_proba(Xc).max(axis=1)
    got = prop.set_index("index")["confidence"].reindex(pool).to_numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-6)

    # a hard negative ("item 0 is not a") pushes a's prototype away: exactly the classifier's
    neg = proposals.propose_prototypes(centres, names, X, pool, X_negative=X[:1], y_negative=["a"])
    ref = PrototypeClassifier(temperature=T).fit(C, names, X_negative=Xc[:1],
                                                 y_negative=np.array(["a"], object))
    got = neg.set_index("index")["confidence"].reindex(pool).to_numpy()
    np.testing.assert_allclose(got, ref.predict_proba(Xc).max(axis=1), rtol=1e-5)
    assert got[0] < prop.set_index("index").loc[100, "confidence"]

    with pytest.raises(ValueError, match="at least 2 classes"):
        proposals.propose_prototypes(centres[:1], ["a"], X, pool)
    with pytest.raises(ValueError, match="pool_indices"):
        proposals.propose_prototypes(centres, names, X, pool[:-1])


def test_propose_zero_shot_uses_the_text_embedder_and_prompts():
    centres, X, y = clusters(seed=1)
    text = {"a photo of a cat": centres[0], "a photo of a dog": centres[1], "cow!": centres[2]}
    asked: list[str] = []

    def embed_text(prompts: list[str]) -> np.ndarray:
        asked.extend(prompts)
        return np.stack([text[p] for p in prompts])

    prop = proposals.propose_zero_shot(X, np.arange(len(X)), classes=["cat", "dog", "cow"],
                                       text_embedder=embed_text, templates=["a photo of a {}"],
                                       prompts={"cow": "cow!"})
    assert sorted(asked) == sorted(text)  # templates filled with names; prompts override
    assert prop.attrs["source"] == "zero-shot" and prop.attrs["classes"] == ["cat", "dog", "cow"]
    names = np.array(["cat", "dog", "cow"], dtype=object)
    assert (prop.sort_values("index")["label"].to_numpy() == names[y]).all()
    assert prop["confidence"].between(1 / 3, 1.0).all() and prop["confidence"].is_monotonic_decreasing
    with pytest.raises(ValueError, match="at least 2 classes"):
        proposals.propose_zero_shot(X, np.arange(len(X)), classes=["cat"], text_embedder=embed_text)


def test_proposal_frame_ties_empty_pool_and_bad_shapes():
    probs = np.array([[0.2, 0.8], [0.8, 0.2], [0.5, 0.5]], np.float32)
    prop = proposals.proposal_frame(probs, ["x", "y"], np.array([7, 3, 5]), method="prototype")
    assert prop["index"].tolist() == [3, 7, 5]  # equal confidence: lower index first
    assert prop["label"].tolist() == ["x", "y", "x"]
    empty = proposals.proposal_frame(np.zeros((0, 2)), ["x", "y"], np.zeros(0, int), method="zero-shot")
    assert len(empty) == 0
    assert list(empty.columns) == ["index", "label", "confidence", "kept"]
    assert empty.attrs["source"] == "zero-shot"
    assert proposals.summarize_proposal(empty)["proposed"].tolist() == [0, 0]
    with pytest.raises(ValueError, match="shape"):
        proposals.proposal_frame(probs[:2], ["x", "y"], np.array([7, 3, 5]), method="prototype")
    with pytest.raises(ValueError, match="method must be"):
        proposals.proposal_frame(probs, ["x", "y"], np.array([7, 3, 5]), method="kmeans")
    assert proposals.check_method("zero-shot") == "zero-shot"


def hand_proposal():
    """A proposal of 6 items over classes a, b, c (c gets nothing)."""
    probs = np.array([[0.95, 0.05, 0], [0.91, 0.09, 0], [0.6, 0.4, 0],
                      [0.02, 0.98, 0], [0.3, 0.7, 0], [0.45, 0.55, 0]], np.float32)
    return proposals.proposal_frame(probs, ["a", "b", "c"], np.arange(10, 16), method="prototype")


def test_summarize_proposal_counts_per_class():
    summary = proposals.summarize_proposal(hand_proposal(), min_confidence=0.9)
    rows = {r["label"]: r for r in summary.to_dict("records")}
    assert summary["label"].tolist() == ["a", "b", "c"]  # most above threshold first
    assert (rows["a"]["proposed"], rows["a"]["above_threshold"]) == (3, 2)
    assert (rows["b"]["proposed"], rows["b"]["above_threshold"]) == (3, 1)
    assert (rows["c"]["proposed"], rows["c"]["above_threshold"]) == (0, 0)
    assert rows["a"]["median_confidence"] == pytest.approx(0.91)
    assert rows["b"]["median_confidence"] == pytest.approx(0.7)
    assert np.isnan(rows["c"]["median_confidence"])
    for bad in (1.5, -0.1, "0.9", None):
        with pytest.raises(ValueError, match="between 0 and 1"):
            proposals.summarize_proposal(hand_proposal(), min_confidence=bad)


def test_select_for_commit_skips_labeled_items_and_filters_classes():
    prop = hand_proposal()
    labels_now = np.full(20, -1)
    idx, names, source = proposals.select_for_commit(prop, labels_now, min_confidence=0.9)
    assert (idx.tolist(), names, source) == ([13, 10, 11], ["b", "a", "a"], "prototype")
    labels_now[10] = 2  # labeled since the proposal: never overwritten
    idx, names, _ = proposals.select_for_commit(prop, labels_now, min_confidence=0.5)
    assert idx.tolist() == [13, 11, 14, 12, 15] and names == ["b", "a", "b", "a", "b"]
    idx, names, _ = proposals.select_for_commit(prop, labels_now, min_confidence=0.5, labels=["b"])
    assert idx.tolist() == [13, 14, 15] and set(names) == {"b"}
    idx, names, _ = proposals.select_for_commit(prop, labels_now, min_confidence=1.0)
    assert len(idx) == 0 and names == []
    with pytest.raises(ValueError, match="not classes"):
        proposals.select_for_commit(prop, labels_now, labels=["zebra"])
    with pytest.raises(ValueError, match="between 0 and 1"):
        proposals.select_for_commit(prop, labels_now, min_confidence=90)
    plain = prop.copy()
    plain.attrs = {}
    with pytest.raises(ValueError, match="not a proposal"):
        proposals.select_for_commit(plain, labels_now)


def test_proposal_samples_pick_items_near_each_level_once():
    samples = proposals.proposal_samples(hand_proposal(), levels=(0.9, 0.5), per_class=1)
    got = {(r.label, r.level): r.index for r in samples.itertuples()}
    assert got == {("a", 0.9): 11, ("a", 0.5): 12, ("b", 0.9): 13, ("b", 0.5): 15}
    assert not samples["index"].duplicated().any()


def test_none_of_these_leaves_out_items_far_from_every_example(session, fmnist_test):
    """Examples of 2 of the 10 classes: the closed-set proposal forces every item into
    one of them; the open-set rule keeps only items near an example, and what a commit at
    the default threshold writes is (almost) all right."""
    y = fmnist_test.labels
    names = np.asarray(fmnist_test.classes, dtype=object)
    rng = np.random.default_rng(0)
    two = {str(names[c]): rng.choice(np.flatnonzero(y == c), 5, replace=False).tolist()
           for c in (1, 7)}  # Trouser, Sneaker
    closed = session.propose(method="prototype", examples=two, open_set=False)
    prop = session.propose(method="prototype", examples=two, open_set=True)
    assert prop.attrs["left_out"] == int((~prop["kept"]).sum()) > 0.9 * len(prop)
    assert "farther from the examples of their class" in prop.attrs["left_out_reason"]
    summary = session.examples.summary(min_confidence=0.9)
    assert summary["left_out"].sum() == prop.attrs["left_out"]
    assert not session.examples.samples()["index"].isin(prop.loc[~prop["kept"], "index"]).any()

    def precision(frame):
        pick = frame[frame["kept"] & (frame["confidence"] >= 0.9)]
        truth = names[y[pick["index"].to_numpy()]]
        return (truth == pick["label"].to_numpy()).mean(), len(pick)

    closed_prec, closed_n = precision(closed)
    prec, n = precision(prop)
    assert closed_prec < 0.5 and n >= 1 and prec >= 0.95, (closed_prec, closed_n, prec, n)
    assert session.commit_proposal() == n  # the default threshold commits the kept ones
    written = session.labels
    assert set(written.index) == set(prop.loc[prop["kept"] & (prop["confidence"] >= 0.9),
                                              "index"])


def test_open_set_rule_on_small_arrays():
    """Pure: an item far from both examples is left out; ones near an example are kept."""
    from dfwidgets.learn import open_set

    centres, X, _ = clusters()  # 10 items around each of 3 centres
    rng = np.random.default_rng(1)
    far = rng.normal(size=(5, X.shape[1])).astype(np.float32)  # items of no named class
    pool = np.concatenate([X, far])
    prop = proposals.propose_prototypes(centres, ["a", "b", "c"], pool, np.arange(35),
                                        k=10, density_quantile=0.0)
    kept = prop.set_index("index").sort_index()["kept"].to_numpy()
    assert kept[:30].mean() >= 0.8 and not kept[30:].any()
    assert prop.attrs["left_out"] == int((~kept).sum()) >= 5
    with pytest.raises(ValueError, match="density_quantile"):
        open_set.near_examples(pool[:2], np.array([0, 1]), pool, np.zeros(45, int),
                               density_quantile=2.0)
    sims = np.array([[0.9, 0.1], [0.2, 0.2], [0.21, 0.19], [0.19, 0.2], [0.2, 0.21]])
    rule = open_set.text_outliers(sims, sims.argmax(axis=1), z=2.0)
    assert rule.kept.tolist() == [True, False, False, False, False]


def test_open_set_needs_agreement_of_the_examples_not_their_union():
    """One of a class's five examples sits among items of a class nobody named: the union
    of the examples' neighbourhoods would keep those items, the examples' agreement (their
    mean direction) does not; a lone example's items whose neighbours are not kept for
    its class are left out too."""
    from dfwidgets.learn import open_set

    rng = np.random.default_rng(3)
    d = 16
    centres = np.linalg.qr(rng.normal(size=(d, 3)))[0].T.astype(np.float32)  # a, b, unnamed

    def around(c, n, spread=0.05):
        return (centres[c] + spread * rng.normal(size=(n, d))).astype(np.float32)

    pool = np.concatenate([around(0, 40), around(1, 40), around(2, 40)])
    truth = np.repeat([0, 1, 2], 40)
    examples = np.concatenate([around(0, 4), around(2, 1), around(1, 5)])  # a's 5th: unnamed
    ex_class = np.array([0] * 5 + [1] * 5)
    proposed = np.where(truth == 2, 0, truth)  # the unnamed items proposed as a
    rule = open_set.near_examples(examples, ex_class, pool, proposed, k=40,
                                  density_quantile=0.0)
    assert not rule.kept[truth == 2].any()
    assert rule.kept[truth == 0].sum() >= 8 and rule.kept[truth == 1].sum() >= 8
    assert rule.radius.shape == (2,)
    assert "farther from the examples of their class" in rule.reason
    # the old rule (any example's own radius) would have kept the unnamed items
    S = open_set.center(pool, pool.mean(0)) @ open_set.center(examples, pool.mean(0)).T
    kth = -np.partition(-S, 39, axis=0)[39]
    union = ((S >= kth) & (proposed[:, None] == ex_class[None])).any(axis=1)
    assert union[truth == 2].mean() > 0.5

    # one example per class: a kept item also needs its nearest items kept for its class
    args = (examples[[0, 5]], np.array([0, 1]), pool, proposed)
    loose = open_set.near_examples(*args, k=60, density_quantile=0.0, agree=0.0)
    strict = open_set.near_examples(*args, k=60, density_quantile=0.0, neighbours=5,
                                    agree=1.0)
    assert not loose.kept[truth == 2].any() and loose.kept.sum() >= 4
    assert not (strict.kept & ~loose.kept).any()
    with pytest.raises(ValueError, match="agree"):
        open_set.near_examples(examples, ex_class, pool, proposed, agree=1.5)


def test_whitening_in_steps_and_from_a_sample_matches_the_whole_pool(monkeypatch):
    """A large pool is whitened in row steps (same numbers) and its covariance taken from a
    fixed sample (nearly the same space: the kept items barely change)."""
    from dfwidgets.learn import open_set as OS
    from dfwidgets.learn import whitening as WH

    rng = np.random.default_rng(3)
    centres = rng.normal(size=(6, 16)) * np.linspace(5.0, 0.5, 16)
    cluster = rng.integers(0, 6, 3000)
    X = (centres[cluster] + rng.normal(size=(3000, 16)) * 0.3).astype(np.float32)
    mean = X.mean(axis=0)
    W = WH.whitener(X, mean, alpha=OS.WHITEN_SHRINK)
    whole = WH.whiten(X, mean, W)
    monkeypatch.setattr(WH, "ROWS_PER_STEP", 7)
    np.testing.assert_allclose(WH.whiten(X, mean, W), whole, rtol=1e-5, atol=1e-6)
    ex = np.concatenate([np.flatnonzero(cluster == 0)[:3], np.flatnonzero(cluster == 1)[:3]])
    ex_cls, pool_cls = np.repeat([0, 1], 3), (cluster == 1).astype(np.int64)
    full = OS.near_examples(X[ex], ex_cls, X, pool_cls, k=400, density_quantile=0.0).kept
    monkeypatch.setattr(WH, "COV_SAMPLE", 1500)
    assert not np.allclose(WH.whitener(X, mean, alpha=OS.WHITEN_SHRINK), W)  # the sample was used
    sampled = OS.near_examples(X[ex], ex_cls, X, pool_cls, k=400, density_quantile=0.0).kept
    assert full.sum() > 300 and set(cluster[full]) <= {0, 1}
    assert (full & sampled).sum() / (full | sampled).sum() > 0.9


def test_open_set_builds_one_exact_index_per_call(monkeypatch):
    """The density floor and the one-example agreement search the same index."""
    from dfwidgets.learn import open_set as OS

    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 8)).astype(np.float32)
    built = []
    real = OS._exact_index
    monkeypatch.setattr(OS, "_exact_index", lambda Xp: built.append(len(Xp)) or real(Xp))
    out = OS.near_examples(X[:1], np.array([0]), X, np.zeros(400, np.int64), k=50,
                           density_quantile=0.0)
    assert built == [400] and out.kept.shape == (400,)

"""One-shot (prototype) and zero-shot proposals over a real Session on Fashion-MNIST."""

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
    prop = session.propose(method="prototype")
    assert list(prop.columns) == ["index", "label", "confidence"]
    assert len(prop) == len(fmnist_test) - 10
    assert not np.isin(prop["index"], list(examples.values())).any()
    assert prop["confidence"].is_monotonic_decreasing
    assert set(prop["label"]) <= set(fmnist_test.classes)
    truth = np.asarray(fmnist_test.classes, dtype=object)[fmnist_test.labels[prop["index"]]]
    correct = truth == prop["label"].to_numpy()
    assert correct.mean() > 0.4  # chance is 0.1
    top = correct[: len(correct) // 10]
    assert top.mean() > correct.mean() + 0.03  # confidence ranks right answers first
    assert session.proposal_ is prop


def test_commit_writes_only_above_threshold_keeps_labels_and_undoes(session, fmnist_test):
    examples = one_per_class(fmnist_test)
    prop = session.propose(method="prototype", examples=examples)
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
    ok, why = proposals.supports_text(session)
    assert not ok and "images only" in why
    with pytest.raises(ValueError, match="CLIP"):
        proposals.add_example(session, "Sneaker", text="a red sneaker")


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
    prop = session.propose(method="prototype", examples=one_per_class(fmnist_test))
    samples = proposals.proposal_samples(prop, levels=(0.9, 0.5), per_class=2)
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
    vec = proposals.embed_query_image(session, png)
    assert vec.shape == (fmnist_test_emb.shape[1],)
    assert float(vec @ fmnist_test_emb[item]) > 0.98
    with pytest.raises(ValueError, match="not an image"):
        proposals.embed_query_image(session, b"this is not a picture")

    # an outside image kept as a class example counts for the prototypes
    name = fmnist_test.classes[fmnist_test.labels[item]]
    proposals.add_example(session, name, image=png)
    assert proposals.example_vectors(session, name).shape == (1, fmnist_test_emb.shape[1])
    other = int(np.flatnonzero(fmnist_test.labels != fmnist_test.labels[item])[0])
    session.label([other], fmnist_test.classes[fmnist_test.labels[other]])
    prop = session.propose(method="prototype")
    assert set(prop.attrs["classes"]) == {name, fmnist_test.classes[fmnist_test.labels[other]]}
    # reopening the project keeps the uploaded example
    reopened = Session.open(session.path, auto_fit=False)
    try:
        assert proposals.class_examples(reopened)[name][0]["kind"] == "image"
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
        assert proposals.supports_text(s) == (True, "")
        prompts = {"Sneaker": "a photo of a sneaker", "Bag": ["a photo of a bag", "a handbag"]}
        prop = s.propose(method="zero-shot", prompts=prompts)
        assert len(prop) == 8 and set(prop["label"]) <= {"Sneaker", "Bag"}
        assert prop["confidence"].between(0.5, 1.0).all()
        assert prop.attrs["source"] == "zero-shot"
        s.label([0], "Bag")  # a label given after the proposal is kept
        assert s.commit_proposal(min_confidence=0.0) == 7
        cur = s.store.current()
        assert (cur["source"] == "zero-shot").sum() == 7 and len(cur) == 8
        assert s.undo(source="zero-shot") == 7
        assert s.labels.to_dict() == {0: "Bag"}
        example = proposals.add_example(s, "Sneaker", text="a red sneaker")
        assert example["kind"] == "text" and len(example["vector"]) == clip.dim
        assert proposals.example_vectors(s, "Sneaker").shape == (1, clip.dim)
    finally:
        s.close()

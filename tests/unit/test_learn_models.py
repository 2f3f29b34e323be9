"""Learners over real Fashion-MNIST embeddings (offline efficientnet_lite0 backbone)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from dfwidgets.learn.models import (
    IMAGENET_TEMPLATES,
    BlendedClassifier,
    LinearProbe,
    PrototypeClassifier,
    ZeroShotClassifier,
)

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def fm(fmnist_sample):
    """2,000 train and 2,000 test items (random, seeded), labels as class names."""
    return fmnist_sample(2000, 2000)


# ------------------------------------------------------------------ LinearProbe
def test_probe_accuracy_on_2k_real_labels(fm):
    probe = LinearProbe().fit(fm["X"], fm["y"])
    proba = probe.predict_proba(fm["Xt"])
    assert proba.shape == (2000, 10) and proba.dtype == np.float32
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-5)
    acc = (probe.predict(fm["Xt"]) == fm["yt"]).mean()
    assert acc > 0.80, acc
    assert list(probe.classes_) == sorted(fm["classes"])  # sorted unique labels by default


def test_probe_fixed_class_order_and_empty_class(fm):
    order = list(reversed(fm["classes"])) + ["Hat"]  # "Hat" has no example yet
    probe = LinearProbe(classes=order).fit(fm["X"][:500], fm["y"][:500])
    assert list(probe.classes_) == order
    proba = probe.predict_proba(fm["Xt"][:200])
    assert proba.shape == (200, 11)
    assert proba[:, -1].max() < 0.05  # never seen: never likely
    with pytest.raises(ValueError, match="not in classes"):
        LinearProbe(classes=["T-shirt/top", "Trouser"]).fit(fm["X"][:50], fm["y"][:50])


def test_probe_integer_labels(fm):
    codes = np.unique(fm["y"], return_inverse=True)[1]
    probe = LinearProbe().fit(fm["X"][:300], codes[:300])
    assert probe.classes_.dtype.kind == "i"
    assert set(probe.predict(fm["Xt"][:50]).tolist()) <= set(range(10))


def test_probe_warm_start_copies_rows_when_classes_grow(fm):
    X, y = fm["X"], fm["y"]
    first = np.isin(y, ["Trouser", "Bag", "Sneaker"])
    probe = LinearProbe().fit(X[first][:60], y[first][:60])
    old = dict(zip(probe.classes_, probe.coef_))
    old_pred = probe.predict(fm["Xt"])
    # refit with zero iterations: the new model must be the old one, rows copied by name
    probe.set_params(max_iter=1, classes=["Bag", "Coat", "Sneaker", "Trouser"])
    probe.fit(X[:80], np.where(np.isin(y[:80], list(old)), y[:80], "Coat"))
    for c, row in old.items():
        i = list(probe.classes_).index(c)
        cos = row @ probe.coef_[i] / np.linalg.norm(row) / np.linalg.norm(probe.coef_[i])
        assert cos > 0.95, (c, cos)
    agree = (probe.predict(fm["Xt"]) == old_pred)[np.isin(old_pred, list(old))].mean()
    assert agree > 0.9


def test_probe_warm_refit_needs_fewer_iterations(fm):
    X, y = fm["X"], fm["y"]
    warm = LinearProbe().fit(X[:900], y[:900])
    cold_iters = LinearProbe(warm_start=False).fit(X[:1000], y[:1000]).n_iter_
    warm.fit(X[:1000], y[:1000])
    assert warm.n_iter_ < cold_iters, (warm.n_iter_, cold_iters)


def test_probe_validation_early_stopping(fm):
    probe = LinearProbe(early_stopping="validation").fit(fm["X"][:600], fm["y"][:600])
    assert probe.n_iter_ <= probe.max_iter
    assert (probe.predict(fm["Xt"]) == fm["yt"]).mean() > 0.7


def test_probe_mc_samples_for_bald(fm):
    probe = LinearProbe(n_members=5).fit(fm["X"][:200], fm["y"][:200])
    mc = probe.predict_proba_mc(fm["Xt"][:300])
    assert mc.shape == (5, 300, 10) and mc.dtype == np.float32
    np.testing.assert_allclose(mc.sum(axis=2), 1.0, atol=1e-5)
    assert mc.std(axis=0).max() > 0.01  # members trained on different resamples disagree
    again = probe.predict_proba_mc(fm["Xt"][:300])
    np.testing.assert_array_equal(mc, again)  # cached and seeded


def test_probe_sklearn_clone_and_pickle(fm):
    probe = LinearProbe(C=0.5, classes=fm["classes"])
    assert clone(probe).get_params()["C"] == 0.5
    probe.fit(fm["X"][:200], fm["y"][:200])
    back = pickle.loads(pickle.dumps(probe))
    np.testing.assert_array_equal(back.predict_proba(fm["Xt"][:20]),
                                  probe.predict_proba(fm["Xt"][:20]))


def test_probe_bad_input_errors(fm):
    X, y = fm["X"][:100].copy(), fm["y"][:100]
    X[[3, 17], 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values in 2 row\(s\): \[3, 17\]"):
        LinearProbe().fit(X, y)
    with pytest.raises(ValueError, match="at least 2 classes.*'Bag'"):
        LinearProbe().fit(fm["X"][:5], ["Bag"] * 5)
    with pytest.raises(ValueError, match="99 labels but the embeddings have 100 rows"):
        LinearProbe().fit(fm["X"][:100], y[:99])
    with pytest.raises(ValueError, match="2-D"):
        LinearProbe().fit(fm["X"][0], y[:1])
    probe = LinearProbe().fit(fm["X"][:100], y)
    with pytest.raises(ValueError, match="fitted on 512"):
        probe.predict_proba(fm["X"][:5, :100])
    with pytest.raises(RuntimeError, match="not fitted"):
        LinearProbe().predict_proba(fm["X"][:5])


# ------------------------------------------------------------ PrototypeClassifier
def test_prototypes_one_shot_beats_chance_by_far(fm):
    X, y = fm["X"], fm["y"]
    first = np.array([np.flatnonzero(y == c)[0] for c in fm["classes"]])
    proto = PrototypeClassifier().fit(X[first], y[first])
    acc = (proto.predict(fm["Xt"]) == fm["yt"]).mean()
    assert acc > 0.35, acc  # 1 example per class; chance is 0.10
    five = np.concatenate([np.flatnonzero(y == c)[:5] for c in fm["classes"]])
    acc5 = (PrototypeClassifier().fit(X[five], y[five]).predict(fm["Xt"]) == fm["yt"]).mean()
    assert acc5 > acc


def test_prototypes_hard_negatives_push_away(fm):
    X, y = fm["X"], fm["y"]
    shirts = np.flatnonzero(y == "Shirt")[:3]
    tops = np.flatnonzero(y == "T-shirt/top")[:3]
    bags = np.flatnonzero(y == "Bag")[:3]
    idx = np.concatenate([shirts, bags])
    plain = PrototypeClassifier().fit(X[idx], y[idx])
    negs = tops  # T-shirts marked as "not Shirt"
    pushed = PrototypeClassifier().fit(X[idx], y[idx], X_negative=X[negs],
                                       y_negative=["Shirt"] * len(negs))
    test_tops = fm["Xt"][fm["yt"] == "T-shirt/top"]
    s_plain = plain.similarity(test_tops)[:, list(plain.classes_).index("Shirt")].mean()
    s_pushed = pushed.similarity(test_tops)[:, list(pushed.classes_).index("Shirt")].mean()
    assert s_pushed < s_plain


def test_prototypes_class_without_example_gets_zero(fm):
    proto = PrototypeClassifier(classes=["Bag", "Sneaker", "Hat"])
    idx = np.flatnonzero(np.isin(fm["y"], ["Bag", "Sneaker"]))[:10]
    proba = proto.fit(fm["X"][idx], fm["y"][idx]).predict_proba(fm["Xt"][:50])
    assert proba.shape == (50, 3) and np.all(proba[:, 2] == 0)


# ------------------------------------------------------------ ZeroShotClassifier
def test_zero_shot_with_precomputed_text_embeddings(fm):
    # stand-in "text" vectors: mean embedding of 20 images per class (no CLIP weights here)
    X, y = fm["X"], fm["y"]
    text = np.stack([X[y == c][:20].mean(axis=0) for c in fm["classes"]])
    zs = ZeroShotClassifier(fm["classes"], text_embeddings=text)
    proba = zs.predict_proba(fm["Xt"])
    assert proba.shape == (2000, 10) and zs.class_embeddings_.shape == (10, 512)
    assert (zs.predict(fm["Xt"]) == fm["yt"]).mean() > 0.5
    as_dict = ZeroShotClassifier(fm["classes"], text_embeddings=dict(zip(fm["classes"], text)))
    np.testing.assert_allclose(as_dict.predict_proba(fm["Xt"][:10]), proba[:10], atol=1e-4)


def test_zero_shot_prompts_and_templates():
    seen: list[str] = []

    def encode(texts: list[str]) -> np.ndarray:  # deterministic toy text encoder
        seen.extend(texts)
        return np.stack([[len(t), t.count("o"), 1.0] for t in texts]).astype(np.float32)

    zs = ZeroShotClassifier(["cat", "dog"], text_embedder=encode,
                            prompts={"dog": ["a good dog", "a puppy"]}).fit()
    assert seen[: len(IMAGENET_TEMPLATES)] == [t.format("cat") for t in IMAGENET_TEMPLATES]
    assert seen[len(IMAGENET_TEMPLATES):] == ["a good dog", "a puppy"]
    assert zs.class_embeddings_.shape == (2, 3)
    with pytest.raises(ValueError, match="same CLIP model"):
        zs.predict_proba(np.ones((4, 7), np.float32))
    with pytest.raises(ValueError, match=r"needs a '\{\}'|need a '\{\}'"):
        ZeroShotClassifier(["a", "b"], text_embedder=encode, templates=["no slot"]).fit()
    with pytest.raises(ValueError, match="text_embedder= .* or text_embeddings="):
        ZeroShotClassifier(["a", "b"]).fit()


def test_zero_shot_offline_backbone_has_no_text_tower():
    from dfwidgets.embed import get_embedder

    backbone = get_embedder("efficientnet_lite0")
    with pytest.raises(ValueError, match="no text tower.*CLIP"):
        ZeroShotClassifier(["Bag", "Sneaker"], text_embedder=backbone).fit()


# ------------------------------------------------------------ BlendedClassifier
def test_blended_hands_over_from_prior_to_probe(fm):
    X, y = fm["X"], fm["y"]
    # a deliberately weak prior: class means of 2 images per class
    text = np.stack([X[y == c][:2].mean(axis=0) for c in fm["classes"]])
    prior = ZeroShotClassifier(fm["classes"], text_embeddings=text)
    prior_acc = (prior.predict(fm["Xt"]) == fm["yt"]).mean()

    # labels of one class only: the probe cannot fit, the prior decides alone
    bags = np.flatnonzero(y == "Bag")[:3]
    alone = BlendedClassifier(prior, LinearProbe()).fit(X[bags], y[bags])
    assert alone.supervised_ is None
    np.testing.assert_allclose(alone.predict_proba(fm["Xt"][:50]),
                               prior.predict_proba(fm["Xt"][:50]), atol=1e-6)

    # many labels: weights near 1, as good as the probe and better than the prior
    many = BlendedClassifier(prior, LinearProbe()).fit(X[:1500], y[:1500])
    assert many.weights_.min() > 0.9
    acc = (many.predict(fm["Xt"]) == fm["yt"]).mean()
    assert acc > prior_acc + 0.05 and acc > 0.8

    # few labels per class: weight n / (n + prior_weight)
    few = np.concatenate([np.flatnonzero(y == c)[:2] for c in fm["classes"]])
    blend = BlendedClassifier(prior, LinearProbe(), prior_weight=5.0).fit(X[few], y[few])
    np.testing.assert_allclose(blend.weights_, 2 / 7)
    np.testing.assert_allclose(blend.predict_proba(fm["Xt"][:20]).sum(axis=1), 1, atol=1e-5)

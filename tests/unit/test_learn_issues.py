"""Label errors (confident learning) and difficulty on real Fashion-MNIST embeddings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dfwidgets.learn.issues import difficulty, find_label_issues, out_of_fold_probs

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def noisy(fmnist_train, fmnist_train_emb):
    """2,000 real items with 5% of the labels flipped to another class."""
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(len(fmnist_train_emb), 2000, replace=False))
    names = np.asarray(fmnist_train.classes, dtype=object)
    codes = fmnist_train.labels[idx].copy()
    flipped = rng.choice(2000, 100, replace=False)
    codes[flipped] = (codes[flipped] + rng.integers(1, 10, 100)) % 10
    return {"X": fmnist_train_emb[idx], "y": names[codes], "flipped": flipped,
            "truth": names[fmnist_train.labels[idx]]}


@pytest.fixture(scope="module")
def found(noisy):
    return find_label_issues(noisy["X"], noisy["y"])


def test_flipped_labels_are_found_first(noisy, found):
    assert list(found.columns) == ["index", "given", "suggested", "score"]
    top = found["index"].to_numpy()[: len(noisy["flipped"])]
    recall = np.isin(noisy["flipped"], top).mean()
    assert recall > 0.5, recall
    assert found["score"].is_monotonic_increasing  # ranked by self-confidence
    # for found flipped items the suggestion is mostly the true class
    hits = found[np.isin(found["index"], noisy["flipped"])]
    assert (hits["suggested"].to_numpy() == noisy["truth"][hits["index"]]).mean() > 0.6
    assert (hits["given"].to_numpy() == noisy["y"][hits["index"]]).all()


def test_difficulty_from_out_of_fold_probs(noisy):
    classes, probs = out_of_fold_probs(noisy["X"], noisy["y"], n_folds=3)
    assert probs.shape == (2000, 10) and list(classes) == sorted(set(noisy["y"]))
    codes = np.searchsorted(classes, noisy["y"])
    level = difficulty(probs, codes)
    assert isinstance(level.dtype, pd.CategoricalDtype)
    assert list(level.cat.categories) == ["easy", "medium", "hard"]
    flipped = np.zeros(2000, dtype=bool)
    flipped[noisy["flipped"]] = True
    # wrong labels are hard far more often than right ones
    assert (level[flipped] == "hard").mean() > 2 * (level[~flipped] == "hard").mean()
    unlabeled = difficulty(probs)  # no labels: the top probability decides
    assert (unlabeled == "easy").mean() >= (level == "easy").mean()


def test_difficulty_thresholds_and_errors():
    probs = np.array([[0.95, 0.05], [0.6, 0.4], [0.3, 0.7]], dtype=np.float32)
    assert difficulty(probs, np.array([0, 0, 0])).tolist() == ["easy", "medium", "hard"]
    assert difficulty(probs, np.array([-1, -1, 1])).tolist() == ["easy", "medium", "medium"]
    with pytest.raises(ValueError, match="integer column indices"):
        difficulty(probs, np.array(["a", "b", "c"]))
    with pytest.raises(ValueError, match="class index 5"):
        difficulty(probs, np.array([0, 5, 1]))


def test_label_issues_bad_input(noisy):
    with pytest.raises(ValueError, match="at least 2 classes with 2\\+ labels"):
        find_label_issues(noisy["X"][:10], ["Bag"] * 10)
    X = noisy["X"][:50].copy()
    X[[2, 9]] = np.nan
    with pytest.raises(ValueError, match=r"\[2, 9\]"):
        find_label_issues(X, noisy["y"][:50])
    with pytest.raises(ValueError, match="pred_probs must have shape"):
        find_label_issues(noisy["X"][:50], noisy["y"][:50], pred_probs=np.ones((50, 3)))


def test_cleanlab_never_starts_a_process_pool(noisy, monkeypatch):
    """Label issues and the data-issue report run cleanlab in this process: a forked
    multiprocessing.Pool can hang for ever inside a threaded Jupyter kernel."""
    import multiprocessing

    from dfwidgets.learn import data_issues as DI

    def no_pool(*args, **kwargs):
        raise AssertionError("cleanlab started a multiprocessing.Pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    assert len(find_label_issues(noisy["X"], noisy["y"])) > 0
    names = sorted(set(noisy["y"].tolist()))
    codes = np.searchsorted(names, noisy["y"])
    _, probs = out_of_fold_probs(noisy["X"], noisy["y"])
    graph = DI.knn_graph(*DI.knn_search(noisy["X"], 10))
    report = DI.find_data_issues(graph=graph, labels=codes, pred_probs=probs,
                                 class_names=names)
    assert (report["kind"] == "label_error").sum() > 0

"""learn/whitening.py: the whitener, whitened rows, and why the neighbours rule uses them."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.learn.label_spreading import spread_labels
from dfwidgets.learn.neighbour_smoothing import knn_table
from dfwidgets.learn.whitening import whiten, whitened_rows, whitener


def _two_classes_hidden_by_a_loud_direction(n: int = 2000, seed: int = 0):
    """(X (n, 20), y (n,)): classes that differ only along 16 quiet directions, buried
    under 3 loud ones (as a few directions such as brightness dominate an embedding)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, 20)) * 0.1
    X[:, :3] = rng.normal(size=(n, 3)) * 5.0  # loud, says nothing about the class
    X[:, 3:19] += np.where(y[:, None] == 1, 0.1, -0.1)  # quiet, says everything
    X[:, 19] += 3.0  # a shared offset, as embeddings have
    return X.astype(np.float32), y


def test_whitener_gives_unit_variance_along_each_direction_up_to_the_shrinkage():
    X, _ = _two_classes_hidden_by_a_loud_direction()
    mean = X.mean(axis=0)
    Z = (X - mean) @ whitener(X, mean, alpha=1e-6)
    assert np.abs(np.cov(Z.T) - np.eye(20)).max() < 0.02
    W = whitener(X, mean, alpha=0.01)  # no direction stretched more than 1/sqrt(0.01)
    gains = np.linalg.svd(W, compute_uv=False)
    assert gains.max() / gains.min() <= 1 / np.sqrt(0.01) + 1e-3
    rows = whitened_rows(X)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(rows, whiten(X, mean, whitener(X, mean, alpha=0.01)), atol=1e-4)


def test_whitened_graph_finds_the_classes_a_loud_direction_hides():
    """Nearest neighbours share the class far more often after whitening, and labels
    spread over that graph are right far more often (the reason the neighbours rule uses
    it)."""
    X, y = _two_classes_hidden_by_a_loud_direction()
    raw = knn_table(X, k=10, cache=False)[1]
    white = knn_table(whitened_rows(X), k=10, cache=False)[1]
    agree_raw = (y[raw] == y[:, None]).mean()
    agree_white = (y[white] == y[:, None]).mean()
    assert agree_white > 0.95 and agree_raw < 0.7
    seeds = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    acc = [(spread_labels(t, seeds, y[seeds], 2).argmax(axis=1) == y).mean() for t in (raw, white)]
    assert acc[1] > 0.95 and acc[0] < 0.7


@pytest.mark.parametrize("bad", [np.zeros((0, 4), np.float32), np.zeros(5, np.float32)])
def test_whitened_rows_rejects_an_empty_or_flat_pool(bad):
    with pytest.raises(ValueError, match=r"\(N, D\) pool"):
        whitened_rows(bad)


def test_whitener_rejects_a_shrinkage_that_is_not_positive():
    X, _ = _two_classes_hidden_by_a_loud_direction(n=50)
    with pytest.raises(ValueError, match="alpha must be > 0"):
        whitener(X, X.mean(axis=0), alpha=0.0)


def test_whitened_table_is_built_once_per_pool_and_shared(monkeypatch):
    """probcover keeps the whitened pool's table: a second call (or a smaller k) builds
    nothing, a Session's handover (remember_whitened) is used as is, another pool's
    table replaces it."""
    from dfwidgets.learn import neighbour_smoothing as ns
    from dfwidgets.learn import probcover

    X, _ = _two_classes_hidden_by_a_loud_direction(n=500)
    monkeypatch.setattr(probcover, "_CACHE", {})  # no table from another test
    calls = []
    real = ns.knn_table
    monkeypatch.setattr(ns, "knn_table", lambda *a, **kw: calls.append(kw["k"]) or real(*a, **kw))
    t20 = probcover.whitened_table(X, k=20)
    assert calls == [20] and t20.shape == (500, 20)
    np.testing.assert_array_equal(probcover.whitened_table(X, k=10), t20[:, :10])
    assert calls == [20]
    exact = knn_table(whitened_rows(X), k=20, cache=False)[1]
    np.testing.assert_array_equal(t20, exact)
    other = X[::-1].copy()
    given = np.tile(np.arange(20, dtype=np.int64), (500, 1))
    probcover.remember_whitened(other, given)
    np.testing.assert_array_equal(probcover.whitened_table(other, k=20), given)
    probcover.whitened_table(X, k=20)  # the first pool's table was dropped: built again
    assert calls == [20, 20]


def test_coverage_margin_covers_the_whitened_graph(monkeypatch):
    from dfwidgets.learn import probcover
    from dfwidgets.learn.strategies_cold import COVER_KNN, coverage_margin

    X, _ = _two_classes_hidden_by_a_loud_direction(n=400)
    asked = []
    real = probcover.whitened_table
    monkeypatch.setattr(probcover, "whitened_table",
                        lambda X, *, k: asked.append(k) or real(X, k=k))
    labeled = np.zeros(len(X), bool)
    labeled[:10] = True
    probs = np.full((len(X), 2), 0.5, np.float32)
    picks = coverage_margin(probs, X, labeled, 5, np.random.default_rng(0))
    assert asked == [COVER_KNN] and len(set(picks.tolist())) == 5 and not labeled[picks].any()

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

"""layout.py on real Fashion-MNIST embeddings from the offline backbone."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from dfwidgets.layout import LayoutComputer, _key, compute_layout

N = 1000


@pytest.fixture(scope="module")
def data(fmnist_test, fmnist_test_emb):
    return fmnist_test_emb[:N], fmnist_test.labels[:N]


def knn_accuracy(xy: np.ndarray, y: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-NN class accuracy in the 2-D layout (how well classes stay together)."""
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1)[:, :k]
    votes = np.apply_along_axis(lambda r: np.bincount(r, minlength=10).argmax(), 1, y[nn])
    return float((votes == y).mean())


def test_pca_layout_is_immediate_and_matches_principal_components(data, tmp_path):
    emb, y = data
    xy = compute_layout(emb, method="pca", cache_dir=tmp_path, progress=False)
    assert xy.shape == (N, 2) and xy.dtype == np.float32
    centered = emb - emb.mean(axis=0)
    var = xy.var(axis=0)
    assert var[0] >= var[1]
    # the first two principal components carry the most variance of any 2 directions
    top = np.linalg.svd(centered, full_matrices=False)[2][:2]
    np.testing.assert_allclose(np.abs(xy), np.abs(centered @ top.T), rtol=1e-3, atol=1e-3)
    assert knn_accuracy(xy, y) > 0.4  # far above chance (0.1) already


@pytest.mark.slow
def test_umap_in_background_then_cached_then_transform(data, tmp_path):
    emb, y = data[0][:600], data[1][:600]
    done = threading.Event()
    got: list[np.ndarray] = []
    lc = LayoutComputer(cache_dir=tmp_path, progress=False).fit(
        emb, background=True, callback=lambda xy: (got.append(xy), done.set())
    )
    # PCA is there at once while UMAP runs
    assert lc.pca_embedding_.shape == (600, 2)
    xy = lc.wait(timeout=600)
    assert done.wait(5) and len(got) == 1 and got[0] is xy
    assert lc.method_ == "umap" and xy.shape == (600, 2) and xy.dtype == np.float32
    # UMAP (cosine) keeps classes together better than the PCA view
    acc_umap, acc_pca = knn_accuracy(xy, y), knn_accuracy(lc.pca_embedding_, y)
    # (no fixed seed any more: both cores; 0.67-0.74 over runs at 600 items)
    assert acc_umap > 0.62 and acc_umap > acc_pca + 0.1, (acc_umap, acc_pca)

    # the second time comes from the disk cache (same key), no UMAP run
    again = LayoutComputer(cache_dir=tmp_path, progress=False)
    again._fit_umap = None  # would raise TypeError if UMAP ran
    np.testing.assert_array_equal(again.fit(emb).wait(), xy)
    assert again.done and again.stage_ == "done"
    assert len(list((tmp_path / "layout").glob("*.npy"))) == 1
    # only coordinates are cached: no model file, nothing executable (no pickle)
    assert [p.suffix for p in (tmp_path / "layout").iterdir()] == [".npy"]
    params = dict(again._params(), n_neighbors=10)
    assert _key(emb, params) != again.cache_key_ == _key(emb, again._params())  # params in the key

    # new items land where their look-alikes are: transform the first 50 items again
    # (placed among their nearest laid-out items; a fresh process does the same)
    placed = again.transform(emb[:50])
    assert placed.shape == (50, 2)
    spread = np.median(np.linalg.norm(xy - np.median(xy, axis=0), axis=1))
    assert np.median(np.linalg.norm(placed - xy[:50], axis=1)) < 0.25 * spread


def test_bad_embeddings_get_clear_errors(data, tmp_path):
    emb, _ = data
    with pytest.raises(ValueError, match=r"2-D array \(N, D\)"):
        compute_layout(emb[0], method="pca", cache_dir=tmp_path)
    bad = emb[:20].copy()
    bad[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN or inf in 1 rows.*3"):
        compute_layout(bad, method="pca", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="method must be"):
        LayoutComputer(method="tsne").fit(emb[:20])
    lc = LayoutComputer(method="pca", cache_dir=tmp_path).fit(emb[:50])
    with pytest.raises(ValueError, match=r"shape \(M, 512\)"):
        lc.transform(emb[:5, :100])

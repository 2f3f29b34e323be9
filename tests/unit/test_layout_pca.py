"""The PCA first view (layout.pca_fit / LayoutComputer._fit_pca): numpy only, same result
as scikit-learn's PCA up to sign, NaN/inf found inside the projection pass."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from sklearn.decomposition import PCA

from dfwidgets import layout
from dfwidgets.layout import LayoutComputer, pca_fit


@pytest.fixture(scope="module")
def emb(fmnist_test_emb):
    return np.ascontiguousarray(fmnist_test_emb[:3000], dtype=np.float32)


def _same_up_to_sign(a: np.ndarray, b: np.ndarray, atol: float) -> None:
    """Columns of a and b (n, k) equal up to a sign each."""
    signs = np.sign((a * b).sum(axis=0))
    np.testing.assert_allclose(a * signs, b, atol=atol)


def test_components_match_scikit_learn_up_to_sign(emb):
    mean, comps = pca_fit(emb, 50)
    ref = PCA(n_components=50, svd_solver="full").fit(emb)
    np.testing.assert_allclose(mean, ref.mean_, atol=1e-5)
    # well-separated leading components agree closely; all 50 span the same space
    _same_up_to_sign(comps[:10].T, ref.components_[:10].T.astype(np.float32), atol=2e-3)
    overlap = np.linalg.svd(comps @ ref.components_.T.astype(np.float32), compute_uv=False)
    assert overlap.min() > 0.99, overlap.min()
    # deterministic sign: largest-magnitude entry of each component is positive
    assert (comps[np.arange(50), np.abs(comps).argmax(axis=1)] > 0).all()


def test_first_view_equals_scikit_learn_projection_on_the_same_sample(emb, monkeypatch):
    monkeypatch.setattr(layout, "_PCA_FIT_ROWS", 1000)  # fit on a sample, project all
    lc = LayoutComputer(method="pca", cache=False, progress=False).fit(emb)
    pick = np.sort(np.random.default_rng(0).choice(len(emb), 1000, replace=False))
    ref = PCA(n_components=2, svd_solver="full").fit(emb[pick]).transform(emb)
    assert lc.pca_embedding_.shape == (len(emb), 2) and lc.pca_embedding_.dtype == np.float32
    _same_up_to_sign(lc.pca_embedding_, ref.astype(np.float32), atol=2e-3 * np.abs(ref).max())
    # the 50-d reduction UMAP sees is the same projection, first two columns included
    np.testing.assert_allclose(lc._reduced_rows()[:, :2], lc.pca_embedding_, atol=1e-4)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_bad_rows_outside_the_sample_are_found_even_on_a_dead_feature(emb, monkeypatch, value):
    monkeypatch.setattr(layout, "_PCA_FIT_ROWS", 500)
    x = emb.copy()
    x[:, 7] = 0.0  # a feature that is zero everywhere: its weight in every component is ~0
    pick = set(np.random.default_rng(0).choice(len(x), 500, replace=False).tolist())
    outside = [i for i in range(len(x)) if i not in pick][:2]
    x[outside, 7] = value
    with pytest.raises(ValueError, match=f"NaN or inf in 2 rows.*{outside[0]}"):
        LayoutComputer(method="pca", cache=False).fit(x)
    # finite but huge rows whose projection overflows are not reported
    y = emb.copy()
    y[outside[0]] = 3e38
    assert LayoutComputer(method="pca", cache=False).fit(y).pca_embedding_.shape == (len(y), 2)


def test_the_first_view_does_not_import_scikit_learn():
    code = ("import sys, numpy as np\n"
            "from dfwidgets.layout import LayoutComputer\n"
            "x = np.random.default_rng(0).normal(size=(500, 64)).astype(np.float32)\n"
            "LayoutComputer(method='pca', cache=False).fit(x)\n"
            "assert 'sklearn' not in sys.modules, 'scikit-learn was imported'\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr[-2000:]

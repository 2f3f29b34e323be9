"""The fast UMAP layout on real Fashion-MNIST embeddings: as faithful as plain umap-learn,
the large-set path (sample + placement), the GPU fallback, and a clear failure when
umap-learn is missing."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from dfwidgets import layout_umap
from dfwidgets.layout import LayoutComputer, LayoutFailed, compute_layout
from dfwidgets.layout_knn import exact_knn, place_by_neighbours
from dfwidgets.layout_quality import layout_quality

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def emb(fmnist_test_emb):
    return np.ascontiguousarray(fmnist_test_emb[:1500])


@pytest.mark.slow
def test_quality_matches_plain_umap_on_real_embeddings(emb, tmp_path):
    """Trustworthiness and 10-NN preservation within 0.02 / 0.03 of plain
    umap.UMAP(metric="cosine") on the same 1,500 real embeddings."""
    import umap

    ours = compute_layout(emb, cache_dir=tmp_path, progress=False)
    plain = umap.UMAP(metric="cosine").fit_transform(emb)
    q_ours, q_plain = layout_quality(emb, ours), layout_quality(emb, plain)
    assert q_plain["trustworthiness"] > 0.95  # the metric itself is sane
    assert q_ours["trustworthiness"] >= q_plain["trustworthiness"] - 0.02, (q_ours, q_plain)
    assert q_ours["knn_preservation"] >= q_plain["knn_preservation"] - 0.03, (q_ours, q_plain)
    # far better than the PCA view it starts from
    q_pca = layout_quality(emb, compute_layout(emb, method="pca", cache=False))
    assert q_ours["knn_preservation"] > q_pca["knn_preservation"] + 0.1


def test_umap_gets_the_faiss_graph_and_never_builds_its_own(emb, monkeypatch, tmp_path):
    """The neighbour graph handed to umap-learn is faiss's (N, k) graph, so pynndescent
    (a minute of JIT compiling in a fresh process) never runs."""
    import pynndescent
    import umap

    seen = {}
    real_fit = umap.UMAP.fit

    def spy_fit(self, x, *args, **kwargs):
        seen["knn"] = self.precomputed_knn
        return real_fit(self, x, *args, **kwargs)

    def no_nndescent(*args, **kwargs):
        raise AssertionError("UMAP built its own neighbour graph")

    monkeypatch.setattr(umap.UMAP, "fit", spy_fit)
    monkeypatch.setattr(pynndescent.NNDescent, "__init__", no_nndescent)
    x = emb[:600]
    xy = layout_umap.umap_coords(x, init=x[:, :2].copy(), backend="umap-learn")
    assert xy.shape == (600, 2) and np.isfinite(xy).all()
    idx, dist = seen["knn"][0], seen["knn"][1]
    want_idx, _ = exact_knn(x, k=15)
    assert idx.shape == (600, 15) and (idx[:, 0] == np.arange(600)).all()
    assert (idx == want_idx).mean() > 0.99


def test_exact_knn_puts_each_row_first_even_with_duplicates(emb):
    x = np.concatenate([emb[:50], emb[:5]])  # rows 50..54 duplicate rows 0..4
    idx, dist = exact_knn(x, k=4)
    assert idx.shape == dist.shape == (55, 4) and idx.dtype == np.int32
    assert (idx[:, 0] == np.arange(55)).all() and (dist[:, 0] == 0).all()
    assert idx[50, 1] == 0 and dist[50, 1] < 1e-5  # the duplicate is the next neighbour
    assert (np.diff(dist, axis=1) >= -1e-6).all()


def test_placement_puts_items_among_their_nearest_laid_out_items(emb, fmnist_test):
    y = fmnist_test.labels[:1500]
    angle = 2 * np.pi * np.arange(10) / 10
    centres = 10 * np.stack([np.cos(angle), np.sin(angle)], axis=1)  # a circle of classes
    base_xy = centres[y[:1000]].astype(np.float32)
    placed = place_by_neighbours(emb[1000:], emb[:1000], base_xy, k=10)
    assert placed.shape == (500, 2) and placed.dtype == np.float32
    nearest_centre = ((placed[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
    # new items land by their class (measured 0.67; the 10-NN majority vote itself: 0.80)
    assert (nearest_centre == y[1000:]).mean() > 0.62


@pytest.mark.slow
def test_a_large_set_is_a_sample_layout_plus_placement(emb, monkeypatch, tmp_path):
    """Above SAMPLE_MAX rows UMAP runs on a sample; the rest is placed (here 600 of 1,500)."""
    monkeypatch.setattr(layout_umap, "SAMPLE_MAX", 600)
    seen = []
    real = layout_umap._umap_learn_coords
    monkeypatch.setattr(layout_umap, "_umap_learn_coords",
                        lambda x, **kw: seen.append(len(x)) or real(x, **kw))
    lc = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb)
    xy = lc.wait()
    assert seen == [600] and xy.shape == (1500, 2) and np.isfinite(xy).all()
    q = layout_quality(emb, xy)
    q_pca = layout_quality(emb, lc.pca_embedding_)
    assert q["trustworthiness"] > 0.9 and q["knn_preservation"] > q_pca["knn_preservation"]


def test_without_umap_learn_the_reason_and_the_fix_are_given(emb, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "umap", None)  # `import umap` raises ImportError
    monkeypatch.setattr(layout_umap, "cuml_available", lambda: False)
    with pytest.raises(LayoutFailed, match=r'pip install "dfwidgets\[umap\]"'):
        compute_layout(emb[:200], cache_dir=tmp_path, progress=False)
    lc = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb[:200], background=True)
    with pytest.raises(LayoutFailed, match="umap-learn, which is not installed"):
        lc.wait(timeout=60)
    assert lc.method_ == "pca" and lc.embedding_.shape == (200, 2)  # PCA stays
    assert "not installed" in lc.error_message_
    assert not list((tmp_path / "layout").glob("*"))  # nothing cached for a failure


def test_the_session_status_says_umap_learn_is_missing(fmnist_session, monkeypatch, tmp_path):
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))  # no cached layout to find
    monkeypatch.setitem(sys.modules, "umap", None)
    monkeypatch.setattr(layout_umap, "cuml_available", lambda: False)
    s = fmnist_session(120)
    s.start_layout("umap")
    assert s.wait_for_layout(timeout=60)
    status = s.layout_status
    assert status["state"] == "failed" and status["method"] == "pca"
    assert status["error"].startswith("UMAP layouts need umap-learn")
    assert 'pip install "dfwidgets[umap]"' in status["error"]
    assert s.layout_coords.shape == (120, 2)  # the PCA view is still drawn


def test_gpu_is_used_only_when_cuml_and_cuda_are_there(monkeypatch):
    monkeypatch.setitem(sys.modules, "cuml", None)
    assert layout_umap.cuml_available() is False
    calls = []
    monkeypatch.setattr(layout_umap, "cuml_available", lambda: True)
    monkeypatch.setattr(layout_umap, "_cuml_coords",
                        lambda x, **kw: calls.append(kw) or np.zeros((len(x), 2), np.float32))
    xy = layout_umap.umap_coords(np.ones((10, 4), np.float32), init=np.zeros((10, 2)))
    assert xy.shape == (10, 2) and calls and calls[0]["n_neighbors"] == 15


def test_epochs_shrink_as_the_set_grows():
    e = [layout_umap.n_epochs(n) for n in (1_000, 5_000, 20_000, 50_000, 1_000_000)]
    assert e == sorted(e, reverse=True) and e[2] >= 150 and e[-1] >= 100

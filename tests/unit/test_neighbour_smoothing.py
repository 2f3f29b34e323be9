"""NeighbourSmoothing: the kNN graph, the smoothed features, the disk cache, the Session
and simulate using them, and what it buys on real Fashion-MNIST embeddings."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets.learn import neighbour_smoothing as ns_mod
from dfwidgets.learn.linear_probe import LinearProbe
from dfwidgets.learn.neighbour_smoothing import NeighbourSmoothing
from dfwidgets.session import Session


def brute_knn(X: np.ndarray, k: int) -> np.ndarray:
    U = X / np.linalg.norm(X, axis=1, keepdims=True)
    S = U @ U.T
    np.fill_diagonal(S, -np.inf)
    return np.argsort(-S, axis=1)[:, :k]


@pytest.fixture
def cache(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "neighbours"


@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(20, 32))
    return (centers[rng.integers(0, 20, 1500)] + 0.3 * rng.normal(size=(1500, 32))).astype(
        np.float32)


def test_graph_is_the_exact_knn_without_self(blobs, cache) -> None:
    sm = NeighbourSmoothing(k=7, alpha=0.5).fit(blobs)
    assert sm.neighbours_.shape == (1500, 7) and sm.neighbours_.dtype == np.int32
    assert not (sm.neighbours_ == np.arange(1500)[:, None]).any()
    want = brute_knn(blobs, 7)
    same = np.mean([len(set(a) & set(b)) / 7 for a, b in zip(sm.neighbours_, want)])
    assert same > 0.999


def test_transform_adds_alpha_times_the_neighbour_mean(blobs, cache) -> None:
    sm = NeighbourSmoothing(k=5, alpha=0.3).fit(blobs)
    out = sm.transform()
    want = blobs + 0.3 * blobs[brute_knn(blobs, 5)].mean(axis=1)
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
    assert out.dtype == np.float32
    # new rows: neighbours searched in the pool (a pool row finds itself first)
    new = sm.transform(blobs[:4] * 2.0)
    U = blobs / np.linalg.norm(blobs, axis=1, keepdims=True)
    order = np.argsort(-(U[:4] @ U.T), axis=1)[:, :5]
    np.testing.assert_allclose(new, blobs[:4] * 2.0 + 0.3 * blobs[order].mean(axis=1),
                               rtol=1e-5, atol=1e-5)


def test_alpha_zero_is_the_identity(blobs, cache) -> None:
    sm = NeighbourSmoothing(alpha=0.0).fit(blobs)
    np.testing.assert_array_equal(sm.transform(), blobs)
    np.testing.assert_array_equal(sm.transform(blobs[:3]), blobs[:3])


def test_bad_input_names_the_problem(blobs, cache) -> None:
    with pytest.raises(ValueError, match="k must be"):
        NeighbourSmoothing(k=0)
    with pytest.raises(ValueError, match="alpha"):
        NeighbourSmoothing(alpha=float("nan"))
    with pytest.raises(ValueError, match="alpha"):
        NeighbourSmoothing(alpha=-1)
    with pytest.raises(RuntimeError, match="not fitted"):
        NeighbourSmoothing().transform()
    bad = blobs.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN|finite"):
        NeighbourSmoothing().fit(bad)
    sm = NeighbourSmoothing().fit(blobs)
    with pytest.raises(ValueError, match="32"):
        sm.transform(np.ones((2, 5), np.float32))


def test_graph_is_cached_and_a_damaged_cache_is_rebuilt(blobs, cache, monkeypatch,
                                                         caplog) -> None:
    first = NeighbourSmoothing(k=6).fit(blobs).neighbours_
    files = list(cache.glob("*.npy"))
    assert len(files) == 1

    def boom(*a, **k):
        raise AssertionError("the cached graph should have been read")

    real_knn = ns_mod._knn
    monkeypatch.setattr(ns_mod, "_knn", boom)
    np.testing.assert_array_equal(NeighbourSmoothing(k=6).fit(blobs).neighbours_, first)
    monkeypatch.setattr(ns_mod, "_knn", real_knn)
    files[0].write_bytes(b"not a numpy file")
    with caplog.at_level(logging.WARNING):
        again = NeighbourSmoothing(k=6).fit(blobs).neighbours_
    assert "unreadable neighbour cache" in caplog.text
    np.testing.assert_array_equal(again, first)


def test_hnsw_path_matches_the_exact_graph(blobs, cache, monkeypatch) -> None:
    pytest.importorskip("faiss")
    monkeypatch.setattr(ns_mod, "HNSW_FROM", 100)
    approx = NeighbourSmoothing(k=10, cache=False).fit(blobs).neighbours_
    assert not (approx == np.arange(len(blobs))[:, None]).any()
    want = brute_knn(blobs, 10)
    recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx, want)])
    assert recall > 0.95


def test_smoothing_helps_a_probe_on_fashion_mnist(fmnist_train_emb, fmnist_train) -> None:
    """Real embeddings: the first 10,000 train items as the pool, the next 5,000 held out; a
    probe on 200 random labels, 3 seeds (measured: +0.6 to +1.7 points for seeds 0-2, +0.3
    to +1.7 over seeds 0-9; a 50,000-item pool gave +1.3 to +1.6 at ~10x the kNN cost).
    Uses the shared cache."""
    X = np.ascontiguousarray(fmnist_train_emb[:15000])
    y = np.asarray(fmnist_train.labels)[:15000]
    pool, held = slice(0, 10000), slice(10000, 15000)
    sm = NeighbourSmoothing().fit(X[pool])
    S_pool, S_test = sm.transform(), sm.transform(X[held])
    gains = []
    for seed in range(3):
        idx = np.random.default_rng(seed).choice(10000, 200, replace=False)
        raw = (LinearProbe().fit(X[idx], y[idx]).predict(X[held]) == y[held]).mean()
        smooth = (LinearProbe().fit(S_pool[idx], y[idx]).predict(S_test) == y[held]).mean()
        gains.append(smooth - raw)
    assert min(gains) > 0 and np.mean(gains) > 0.006, gains


@pytest.fixture(scope="module")
def items1200(fmnist_train, fmnist_train_emb):
    """The first 1,200 Fashion-MNIST train items: (ImageSource, (1200, D) embeddings,
    (1200,) ground-truth class codes)."""
    idx = np.arange(1200)
    src = fmnist_train.subset(idx)
    return src, np.ascontiguousarray(fmnist_train_emb[idx]), np.asarray(src.labels)


def test_session_fits_on_smoothed_features_and_can_turn_it_off(tmp_path, items1200,
                                                                 cache) -> None:
    src, emb, gt = items1200
    with Session.open(tmp_path / "on", source=src, embeddings=emb, auto_fit=False,
                      smoothing=0.5) as s:
        assert s.smoothing == 0.5
        assert not np.array_equal(s.model_features, s.embeddings)
        for c, name in enumerate(src.classes):
            s.label(np.flatnonzero(gt == c)[:5], name)
        s.fit()
        probs = s.model_.predict_proba(s.model_features)
        np.testing.assert_allclose(s.probs_, probs, atol=1e-6)
    with Session.open(tmp_path / "off", source=src, embeddings=emb, auto_fit=False) as s:
        assert s.smoothing == 0  # the default: raw embeddings
        assert s.model_features is s.embeddings
    with pytest.raises(ValueError, match="smoothing"):
        Session.open(tmp_path / "bad", source=src, embeddings=emb, smoothing=-1)


def test_saved_model_with_other_smoothing_is_refitted(tmp_path, items1200, cache,
                                                      caplog) -> None:
    src, emb, gt = items1200
    with Session.open(tmp_path / "p", source=src, embeddings=emb, auto_fit=False,
                      smoothing=0.5) as s:
        for c, name in enumerate(src.classes):
            s.label(np.flatnonzero(gt == c)[:5], name)
        s.fit()
        n = len(s.labels)
    with caplog.at_level(logging.WARNING):
        s = Session.open(tmp_path / "p", auto_fit=False, smoothing=0)
    try:
        assert "smoothing" in caplog.text
        assert len(s.labels) == n  # labels untouched
        s.fit()
        assert s.probs_ is not None
    finally:
        s.close()


def test_simulate_uses_smoothing_and_records_it(fmnist_train_emb, fmnist_train,
                                                cache) -> None:
    X = np.ascontiguousarray(fmnist_train_emb[:3000])
    y = np.asarray(fmnist_train.classes, dtype=object)[np.asarray(fmnist_train.labels)[:3000]]
    on = dfw.simulate(X, y, strategies=["random"], budgets=[50, 100], seeds=[0],
                      progress=False, smoothing=0.5)
    off = dfw.simulate(X, y, strategies=["random"], budgets=[50, 100], seeds=[0],
                       progress=False)
    assert on.settings["smoothing"] == 0.5 and off.settings["smoothing"] == 0
    assert not np.allclose(on.curves["accuracy"], off.curves["accuracy"])


def with_far_cluster(blobs: np.ndarray) -> np.ndarray:
    """``blobs`` (1500, 32) plus a far cluster of 40 rows (the last 40)."""
    rng = np.random.default_rng(1)
    far = (rng.normal(size=(1, 32)) * 8 + 0.3 * rng.normal(size=(40, 32))).astype(np.float32)
    return np.concatenate([blobs, far])


def assert_close_to_exact(pool: np.ndarray, sims: np.ndarray, idx: np.ndarray) -> None:
    """recall@10 >= 0.97 against brute force, the far cluster (rows 1500+) linked only to
    itself, ``sims`` the exact cosines, sorted."""
    want = brute_knn(pool, 10)
    assert np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, want)]) >= 0.97
    assert (idx[1500:] >= 1500).all() and (idx[:1500] < 1500).all()
    U = pool / np.linalg.norm(pool, axis=1, keepdims=True)
    np.testing.assert_allclose(sims, np.einsum("id,ikd->ik", U, U[idx]), atol=1e-5)
    assert (np.diff(sims, axis=1) <= 1e-6).all()


def test_large_pool_table_is_close_to_exact_and_keeps_a_separate_cluster_apart(
        blobs, cache, monkeypatch) -> None:
    """Above HNSW_FROM rows the shared table comes from a faiss inverted-file index: recall
    close to exact, sims exact and sorted, and a small far cluster never links to the rest
    (the data-issue outlier rule finds such a cluster as a component of the graph)."""
    from dfwidgets.learn import neighbour_smoothing as ns

    pool = with_far_cluster(blobs)
    monkeypatch.setattr(ns, "HNSW_FROM", 1000)
    monkeypatch.setattr(ns, "_knn", lambda *a, **kw: pytest.fail("the exact path was used"))
    sims, idx = ns.knn_table(pool, k=10, cache=False)
    assert_close_to_exact(pool, sims, idx)


def test_very_large_pool_table_uses_compressed_rows_and_stays_close_to_exact(
        blobs, cache, monkeypatch) -> None:
    """From COMPRESSED_FROM rows the index holds rows projected to COMPRESSED_DIMS and
    8-bit quantized; its candidates are re-ranked exactly, so the table is as close to
    exact as the full rows' (sims exact and sorted, no self, a far cluster kept apart), and
    it is cached under its own name. Like real embeddings, the pool's spectrum decays
    (isotropic noise would hide within-cluster order in the dropped directions) and its
    rows share a mean direction (a centred projection would rank by the wrong products)."""
    from dfwidgets.learn import knn_index
    from dfwidgets.learn import neighbour_smoothing as ns

    pool = (with_far_cluster(blobs) + 2.0) * (0.85 ** np.arange(32)).astype(np.float32)
    built = []
    real = knn_index.compressed_inner_product_index
    monkeypatch.setattr(knn_index, "compressed_inner_product_index",
                        lambda base, **kw: built.append(kw["dims"]) or real(base, **kw))
    monkeypatch.setattr(ns, "HNSW_FROM", 1000)
    monkeypatch.setattr(ns, "COMPRESSED_FROM", 1000)
    monkeypatch.setattr(ns, "COMPRESSED_DIMS", 16)
    sims, idx = ns.knn_table(pool, k=10)
    assert built == [16]
    assert not (idx == np.arange(len(pool))[:, None]).any()
    assert_close_to_exact(pool, sims, idx)
    assert [f.name.endswith("_k10_ivf32sq16.npy") for f in cache.iterdir()] == [True]

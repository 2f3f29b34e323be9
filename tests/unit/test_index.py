"""NearestNeighborIndex: exact search equals brute force; faiss reaches recall@10 >= 0.99."""

from __future__ import annotations

import numpy as np
import pytest

from dfwidgets.index import NearestNeighborIndex


def unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(x: np.ndarray, q: np.ndarray, k: int, exclude=None):
    """Reference: full similarity matrix and a full sort."""
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = (qn.astype(np.float64) @ xn.T.astype(np.float64))
    if exclude is not None:
        for r, e in enumerate(exclude):
            s[r, e] = -np.inf
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(s, order, 1), order


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(7)
    return unit(rng, 3000, 24), unit(rng, 9, 24)


@pytest.mark.parametrize("chunk_bytes", [4096, 64 * 2**20])
def test_exact_equals_brute_force(data, chunk_bytes):
    x, q = data
    index = NearestNeighborIndex(x, backend="exact", chunk_bytes=chunk_bytes)
    scores, idx = index.search(q, 15)
    ref_s, ref_i = brute_force(x, q, 15)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    assert scores.shape == idx.shape == (9, 15)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0)


def test_unnormalised_input_and_single_query(data):
    x, q = data
    scale = np.linspace(0.5, 3.0, len(x), dtype=np.float32)[:, None]
    index = NearestNeighborIndex(x * scale, backend="exact")
    scores, idx = index.search(q[0] * 7.0, 5)
    ref_s, ref_i = brute_force(x, q[:1], 5)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)


def test_query_item_finds_itself_unless_excluded(data):
    x, _ = data
    items = np.array([3, 500, 2999])
    index = NearestNeighborIndex(x, backend="exact", chunk_bytes=4096)
    scores, idx = index.search(x[items], 4)
    np.testing.assert_array_equal(idx[:, 0], items)
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-5)

    scores, idx = index.search(x[items], 4, exclude=[[i] for i in items])
    assert not np.any(idx == items[:, None])
    ref_s, ref_i = brute_force(x, x[items], 4, exclude=[[i] for i in items])
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(scores, ref_s, atol=1e-5)


def test_global_exclude_matches_brute_force(data):
    x, q = data
    index = NearestNeighborIndex(x, backend="exact", chunk_bytes=8192)
    first = index.search(q, 10)[1]
    banned = np.unique(first[:, :5])  # the best hits of every query are forbidden
    _, idx = index.search(q, 10, exclude=banned)
    _, ref = brute_force(x, q, 10, exclude=[banned] * len(q))
    np.testing.assert_array_equal(idx, ref)
    assert not np.isin(idx, banned).any()


def test_k_larger_than_available_is_padded():
    rng = np.random.default_rng(0)
    x = unit(rng, 6, 4)
    index = NearestNeighborIndex(x, backend="exact")
    scores, idx = index.search(x[:2], 10, exclude=[0, 1])
    assert idx.shape == (2, 10)
    assert (idx[:, :4] >= 2).all() and (idx[:, 4:] == -1).all()
    assert np.isneginf(scores[:, 4:]).all() and np.isfinite(scores[:, :4]).all()


def test_clear_errors(data):
    x, q = data
    index = NearestNeighborIndex(x, backend="exact")
    with pytest.raises(ValueError, match="same model"):
        index.search(q[:, :10], 3)
    with pytest.raises(ValueError, match="positive integer"):
        index.search(q, 0)
    with pytest.raises(ValueError, match="outside"):
        index.search(q, 3, exclude=[len(x)])
    with pytest.raises(ValueError, match="boolean mask"):
        index.search(q, 3, exclude=np.zeros(len(x), bool))
    with pytest.raises(ValueError, match="per-query"):
        index.search(q, 3, exclude=[[1], [2]])
    bad = x.copy()
    bad[5, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NearestNeighborIndex(bad)
    with pytest.raises(ValueError, match="backend"):
        NearestNeighborIndex(x, backend="annoy")
    with pytest.raises(ValueError, match="2-D"):
        NearestNeighborIndex(x[0])


def recall_at(approx: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact)]))


def test_faiss_recall_against_exact():
    pytest.importorskip("faiss", reason='faiss comes with pip install "dfwidgets[index]"')
    rng = np.random.default_rng(1)
    x = unit(rng, 20_000, 64)  # random vectors: the hardest case for approximate search
    q = unit(rng, 50, 64)
    approx = NearestNeighborIndex(x, backend="faiss")
    exact = NearestNeighborIndex(x, backend="exact")
    assert approx.backend_ == "faiss" and exact.backend_ == "exact"
    s_a, i_a = approx.search(q, 10)
    _, i_e = exact.search(q, 10)
    assert recall_at(i_a, i_e) >= 0.99
    # re-ranked scores are exact cosine similarities of the returned items
    np.testing.assert_allclose(s_a, np.einsum("qkd,qd->qk", x[i_a], q), atol=1e-5)

    # excluding each query's own item works on the faiss path too
    items = np.arange(0, 200, 20)
    _, i_self = approx.search(x[items], 10, exclude=[[i] for i in items])
    _, i_ref = exact.search(x[items], 10, exclude=[[i] for i in items])
    assert not np.any(i_self == items[:, None])
    assert recall_at(i_self, i_ref) >= 0.99


def test_auto_backend_uses_threshold():
    pytest.importorskip("faiss", reason='faiss comes with pip install "dfwidgets[index]"')
    rng = np.random.default_rng(2)
    x = unit(rng, 5000, 16)
    assert NearestNeighborIndex(x, backend="auto").backend_ == "exact"
    big = NearestNeighborIndex(x, backend="auto", faiss_threshold=4000)
    assert big.backend_ == "faiss" and big.build_seconds_ > 0

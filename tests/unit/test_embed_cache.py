"""EmbeddingCache: hits, misses, isolation by key, atomic shards, concurrent writers."""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os

import numpy as np
import pytest

from dfwidgets.embed_cache import EmbeddingCache


def _hashes(names: list[str]) -> np.ndarray:
    return np.array([hashlib.blake2b(n.encode(), digest_size=16).digest() for n in names], dtype="S16")


def _vectors(n: int, d: int = 8, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=(n, d)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_empty_cache_misses_everything(tmp_path):
    cache = EmbeddingCache("model-a/v1", cache_dir=tmp_path)
    found, vectors = cache.lookup(_hashes(["a", "b"]))
    assert found.tolist() == [False, False]
    assert vectors is None
    assert len(cache) == 0


def test_add_then_lookup_returns_exact_vectors_and_partial_hits(tmp_path):
    cache = EmbeddingCache("model-a/v1", cache_dir=tmp_path)
    names = [f"img{i}" for i in range(10)]
    vecs = _vectors(10)
    cache.add(_hashes(names[:6]), vecs[:6])
    query = _hashes(["img8", "img2", "img5", "img9", "img0"])
    found, got = cache.lookup(query)
    assert found.tolist() == [False, True, True, False, True]
    np.testing.assert_array_equal(got[1], vecs[2])
    np.testing.assert_array_equal(got[2], vecs[5])
    np.testing.assert_array_equal(got[4], vecs[0])
    assert not got[0].any() and not got[3].any()
    assert got.dtype == np.float32


def test_keys_are_isolated_and_location_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "env"))
    a = EmbeddingCache("model-a/v1")
    b = EmbeddingCache("model-a/v2")
    assert a.path.parent == tmp_path / "env" / "embeddings"
    assert a.path != b.path
    a.add(_hashes(["x"]), _vectors(1))
    assert b.lookup(_hashes(["x"]))[0].tolist() == [False]
    assert a.lookup(_hashes(["x"]))[0].tolist() == [True]
    explicit = EmbeddingCache("model-a/v1", cache_dir=tmp_path / "arg")
    assert explicit.path.parent == tmp_path / "arg" / "embeddings"


def test_compaction_merges_shards_without_losing_items(tmp_path):
    cache = EmbeddingCache("k", cache_dir=tmp_path, max_shards=3)
    vecs = _vectors(40)
    names = [f"i{i}" for i in range(40)]
    for start in range(0, 40, 5):  # 8 adds -> compactions along the way
        cache.add(_hashes(names[start:start + 5]), vecs[start:start + 5])
    assert len(list(cache.path.glob("shard-*.hashes.npy"))) <= 3
    found, got = cache.lookup(_hashes(names))
    assert found.all()
    np.testing.assert_array_equal(got, vecs)
    assert len(cache) == 40


def test_leftovers_of_a_killed_writer_are_ignored(tmp_path, caplog):
    cache = EmbeddingCache("k", cache_dir=tmp_path)
    vec = _vectors(1)
    cache.add(_hashes(["a"]), vec)
    # a killed process leaves only its temp file; a broken shard must not break reads
    (cache.path / ".tmp-deadbeef").write_bytes(b"half a zip")
    (cache.path / "shard-00000000000000000000-broken.hashes.npy").write_bytes(b"not a zip file")
    with caplog.at_level("WARNING", logger="dfwidgets.embed_cache"):
        found, got = cache.lookup(_hashes(["a", "b"]))
    assert found.tolist() == [True, False]
    np.testing.assert_array_equal(got[0], vec[0])
    assert "unreadable embedding cache shard" in caplog.text


def test_add_rejects_mismatched_shapes(tmp_path):
    cache = EmbeddingCache("k", cache_dir=tmp_path)
    with pytest.raises(ValueError, match="hashes"):
        cache.add(_hashes(["a", "b"]), _vectors(3))


def _writer(args: tuple[str, int]) -> None:
    path, worker = args
    cache = EmbeddingCache("shared", cache_dir=path, max_shards=2)
    for step in range(6):
        names = [f"w{worker}-s{step}-{j}" for j in range(5)]
        cache.add(_hashes(names), _vectors(5, seed=worker * 100 + step))


@pytest.mark.slow
def test_concurrent_writers_with_compaction_lose_nothing(tmp_path):
    ctx = mp.get_context("fork")
    with ctx.Pool(3) as pool:
        pool.map(_writer, [(str(tmp_path), w) for w in range(3)])
    cache = EmbeddingCache("shared", cache_dir=tmp_path)
    for worker in range(3):
        for step in range(6):
            names = [f"w{worker}-s{step}-{j}" for j in range(5)]
            found, got = cache.lookup(_hashes(names))
            assert found.all(), (worker, step)
            np.testing.assert_array_equal(got, _vectors(5, seed=worker * 100 + step))
    assert not [p for p in os.listdir(cache.path) if p.startswith(".tmp-")]


def test_compaction_streams_old_fortran_order_shards_and_the_newest_vector_wins(tmp_path):
    cache = EmbeddingCache("k", cache_dir=tmp_path, max_shards=2)
    old = np.asfortranarray(_vectors(6, seed=1))  # as an older version could have saved it
    np.save(cache.path / "shard-00000000000000000001-old.vectors.npy", old)
    np.save(cache.path / "shard-00000000000000000001-old.hashes.npy", _hashes(list("abcdef")))
    newer = _vectors(2, seed=2)
    cache.add(_hashes(["b", "x"]), newer)
    cache.add(_hashes(["y"]), _vectors(1, seed=3))  # third shard -> compaction
    assert len(list(cache.path.glob("shard-*.hashes.npy"))) == 1
    found, got = cache.lookup(_hashes(["a", "b", "f", "x", "y"]))
    assert found.all() and len(cache) == 8
    np.testing.assert_array_equal(got[[0, 2]], old[[0, 5]])
    np.testing.assert_array_equal(got[1], newer[0])  # "b" re-added later: its newest vector
    np.testing.assert_array_equal(got[3], newer[1])

"""The layout cache: coordinates only (.npy, never pickle), hit, miss, damaged files."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from dfwidgets.layout import LayoutComputer, _key
from dfwidgets.layout_cache import load_coords, save_coords

N = 300


@pytest.fixture()
def emb(fmnist_test_emb):
    return np.ascontiguousarray(fmnist_test_emb[:N])


def fake_umap(calls):
    def fit(self, x):  # stands in for UMAP: the cache logic around it is what is tested
        calls.append(len(x))
        coords = np.asarray(self.pca_embedding_ * 2.0, dtype=np.float32)
        if self.cache:
            from dfwidgets.layout_cache import save_coords
            save_coords(self._cache_paths()[0], coords)
        return coords
    return fit


def test_hit_miss_and_params_in_the_key(emb, tmp_path, monkeypatch):
    calls: list[int] = []
    monkeypatch.setattr(LayoutComputer, "_fit_umap", fake_umap(calls))
    first = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb).wait()
    again = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb).wait()
    assert calls == [N]  # second time: a hit
    np.testing.assert_array_equal(first, again)
    LayoutComputer(cache_dir=tmp_path, n_neighbors=10, progress=False).fit(emb).wait()
    LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb[:-1]).wait()
    assert calls == [N, N, N - 1]  # other parameters / other data: misses
    assert _key(emb, {"a": 1}) != _key(emb, {"a": 2}) != _key(emb[::-1].copy(), {"a": 2})


@pytest.mark.parametrize("damage", ["truncated", "wrong shape", "nan", "garbage", "pickle"])
def test_a_damaged_file_is_detected_and_rebuilt(emb, tmp_path, monkeypatch, caplog, damage):
    calls: list[int] = []
    monkeypatch.setattr(LayoutComputer, "_fit_umap", fake_umap(calls))
    good = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb).wait()
    (path,) = (tmp_path / "layout").glob("*.npy")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:-100])
    elif damage == "wrong shape":
        np.save(path, np.zeros((N, 3), np.float32))
    elif damage == "nan":
        np.save(path, np.full((N, 2), np.nan, np.float32))
    elif damage == "garbage":
        path.write_bytes(b"not a numpy file at all")
    else:  # an object array needs pickle to load: refused, never unpickled
        np.save(path, np.array([{"x": 1}] * N, dtype=object), allow_pickle=True)
    with caplog.at_level(logging.WARNING, logger="dfwidgets.layout_cache"):
        rebuilt = LayoutComputer(cache_dir=tmp_path, progress=False).fit(emb).wait()
    assert calls == [N, N]  # the damaged file was not used: UMAP ran again
    assert "damaged" in caplog.text
    np.testing.assert_array_equal(rebuilt, good)
    assert load_coords(path, N) is not None  # the rebuilt file is good


def test_the_cache_folder_holds_coordinates_only(emb, tmp_path, monkeypatch):
    monkeypatch.setattr(LayoutComputer, "_fit_umap", fake_umap([]))
    for k in (5, 10):
        LayoutComputer(cache_dir=tmp_path, n_neighbors=k, progress=False).fit(emb).wait()
    files = list((tmp_path / "layout").iterdir())
    assert len(files) == 2 and all(p.suffix == ".npy" for p in files)
    for p in files:  # plain float arrays, loadable without pickle
        arr = np.load(p, allow_pickle=False)
        assert arr.dtype == np.float32 and arr.shape == (N, 2)


def test_no_layout_code_loads_pickle():
    root = Path(__file__).resolve().parents[2] / "dfwidgets"
    for name in ("layout.py", "layout_cache.py", "layout_umap.py", "layout_knn.py"):
        text = (root / name).read_text()
        assert "pickle.load" not in text and "allow_pickle=True" not in text, name
        assert "joblib" not in text, name
    assert "np.load(path, allow_pickle=False)" in (root / "layout_cache.py").read_text()


def test_save_is_atomic_and_leaves_no_temp_files(tmp_path):
    path = tmp_path / "x.npy"
    save_coords(path, np.ones((4, 2)))
    assert [p.name for p in tmp_path.iterdir()] == ["x.npy"]
    assert load_coords(path, 4).dtype == np.float32
    assert load_coords(tmp_path / "missing.npy", 4) is None

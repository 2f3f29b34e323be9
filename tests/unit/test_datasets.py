"""Built-in datasets: Fashion-MNIST from Debian's IDX files, scikit-learn digits."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import dfwidgets as dfw
from dfwidgets import datasets
from dfwidgets.data import ImageSource


def test_fashion_mnist_train_shapes_labels_and_classes(fmnist_train: ImageSource) -> None:
    src = fmnist_train
    assert len(src) == 60000
    assert src.array.shape == (60000, 28, 28) and src.array.dtype == np.uint8
    assert src.labels.dtype == np.int64 and src.labels.shape == (60000,)
    assert np.bincount(src.labels).tolist() == [6000] * 10
    assert src.classes == ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                           "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
    assert src.classes[src.labels[0]] == "Ankle boot"
    assert src.ids[0] == "fashion_mnist/train/00000" and src.ids[42] == "fashion_mnist/train/00042"
    img = src[0]
    assert img.mode == "RGB" and img.size == (28, 28)
    # the RGB image carries the grey pixels of the IDX file in every channel
    rgb = np.asarray(img)
    assert (rgb[..., 0] == src.array[0]).all() and (rgb[..., 2] == src.array[0]).all()
    assert src.array.max() == 255 and src.problems.empty


def test_fashion_mnist_test_split_and_all(fmnist_test: ImageSource) -> None:
    assert len(fmnist_test) == 10000
    assert np.bincount(fmnist_test.labels).tolist() == [1000] * 10
    both = datasets.fashion_mnist(split="all")
    assert len(both) == 70000
    assert both.ids[60000] == "fashion_mnist/test/00000"
    assert (both.array[60000] == fmnist_test.array[0]).all()
    assert len(set(both.ids)) == 70000
    assert both.spec == {"kind": "fashion_mnist", "split": "all"}


def test_fashion_mnist_spec_round_trip(fmnist_test: ImageSource) -> None:
    spec = fmnist_test.spec
    assert spec == {"kind": "fashion_mnist", "split": "test"}
    again = ImageSource.from_spec(json.loads(json.dumps(spec)))
    assert again.fingerprint() == fmnist_test.fingerprint()
    assert (again.ids == fmnist_test.ids).all()


def test_fashion_mnist_arrays_are_read_only(fmnist_test: ImageSource) -> None:
    with pytest.raises(ValueError):
        fmnist_test.array[0, 0, 0] = 1


def test_fashion_mnist_reads_a_root_folder_first(tmp_path, fmnist_test: ImageSource) -> None:
    """A user folder with (uncompressed) IDX files takes precedence over Debian's copy."""
    images = fmnist_test.array[:50].copy()
    images[:, 0, 0] = 7  # mark the copy so we can tell where it came from
    labels = fmnist_test.labels[:50].astype(np.uint8)
    header = np.array([0x00000803, 50, 28, 28], dtype=">u4").tobytes()
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(header + images.tobytes())
    lab_header = np.array([0x00000801, 50], dtype=">u4").tobytes()
    with gzip.open(tmp_path / "t10k-labels-idx1-ubyte.gz", "wb") as f:
        f.write(lab_header + labels.tobytes())
    src = datasets.fashion_mnist(split="test", root=tmp_path)
    assert len(src) == 50 and (src.array[:, 0, 0] == 7).all()
    assert (src.labels == fmnist_test.labels[:50]).all()
    assert src.spec["root"] == str(tmp_path.resolve())


def test_truncated_idx_file_is_named(tmp_path) -> None:
    header = np.array([0x00000803, 10, 28, 28], dtype=">u4").tobytes()
    bad = tmp_path / "t10k-images-idx3-ubyte"
    bad.write_bytes(header + bytes(100))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.read_idx(bad)


def test_missing_fashion_mnist_error_names_package_and_root(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "nothing-here")
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))
    datasets._load_fashion_split.cache_clear()
    try:
        with pytest.raises(FileNotFoundError) as err:
            datasets.fashion_mnist(split="test", download=False)
    finally:
        datasets._load_fashion_split.cache_clear()
    message = str(err.value)
    assert "dataset-fashion-mnist" in message and "root=" in message
    assert str(tmp_path / "nothing-here") in message


def test_fashion_mnist_rejects_unknown_split() -> None:
    with pytest.raises(ValueError, match='"train", "test" or "all"'):
        datasets.fashion_mnist(split="validation")


def test_digits() -> None:
    src = dfw.datasets.digits()
    assert len(src) == 1797
    assert src.array.shape == (1797, 8, 8) and src.array.dtype == np.uint8
    assert src.array.min() == 0 and src.array.max() == 255
    assert src.classes == [str(d) for d in range(10)]
    from sklearn.datasets import load_digits

    assert (src.labels == load_digits().target).all()
    assert src.ids[42] == "digits/0042"
    assert src[3].mode == "RGB" and src[3].size == (8, 8)
    assert ImageSource.from_spec(src.spec).fingerprint() == src.fingerprint()


def _idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes holding ``array`` (N,) or (N, H, W)."""
    magic = 0x00000800 + array.ndim
    return np.array([magic, *array.shape], dtype=">u4").tobytes() + array.astype(np.uint8).tobytes()


@pytest.fixture
def no_fashion_mnist_anywhere(tmp_path, monkeypatch):
    """Neither Debian's folder nor the cache hold Fashion-MNIST; the lru cache is empty."""
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "nothing-here")
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))
    datasets._load_fashion_split.cache_clear()
    yield tmp_path
    datasets._load_fashion_split.cache_clear()


@pytest.mark.slow
def test_fashion_mnist_download_without_network_fails_clearly(no_fashion_mnist_anywhere,
                                                              monkeypatch) -> None:
    """The real torchvision download path with the network cut: one clear error."""
    import socket

    def no_network(*args, **kwargs):
        raise OSError("network is switched off for this test")

    monkeypatch.setattr(socket, "getaddrinfo", no_network)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    with pytest.raises(FileNotFoundError) as err:
        datasets.fashion_mnist(split="test")
    message = str(err.value)
    assert "torchvision download" in message and "failed" in message
    assert "dataset-fashion-mnist" in message and "root=" in message
    assert str(no_fashion_mnist_anywhere / "nothing-here") in message


def test_fashion_mnist_download_lands_in_the_cache_and_is_read(no_fashion_mnist_anywhere,
                                                               monkeypatch) -> None:
    """When the download succeeds, the files it leaves in the cache are what is read."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    labels = np.arange(12, dtype=np.uint8) % 10
    calls: list[tuple] = []

    def fake_download(target, *, train: bool) -> None:  # lays files out as torchvision does
        calls.append((target, train))
        raw = target / "FashionMNIST" / "raw"
        raw.mkdir(parents=True)
        (raw / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(images)))
        (raw / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx_bytes(labels)))

    monkeypatch.setattr(datasets, "_download_with_torchvision", fake_download)
    src = datasets.fashion_mnist(split="test")
    cache = no_fashion_mnist_anywhere / "cache" / "fashion-mnist"
    assert calls == [(cache, False)]
    assert len(src) == 12 and (src.array == images).all()
    assert src.labels.tolist() == labels.tolist()
    datasets._load_fashion_split.cache_clear()
    again = datasets.fashion_mnist(split="test")  # now found in the cache: no new download
    assert len(calls) == 1 and (again.array == images).all()

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


@pytest.mark.slow
def test_fashion_mnist_download_fallback_fails_clearly_offline(tmp_path, monkeypatch) -> None:
    """The real torchvision download path: offline it must end in one clear error."""
    monkeypatch.setattr(datasets, "DEBIAN_FASHION_MNIST", tmp_path / "nothing-here")
    monkeypatch.setenv("DFW_CACHE_DIR", str(tmp_path / "cache"))
    datasets._load_fashion_split.cache_clear()
    try:
        src = datasets.fashion_mnist(split="test")
    except FileNotFoundError as err:  # no network (as on the CI machine)
        message = str(err)
        assert "torchvision download" in message and "dataset-fashion-mnist" in message
        assert "root=" in message
    else:  # a machine with network access downloads the real files
        assert len(src) == 10000 and np.bincount(src.labels).tolist() == [1000] * 10
    finally:
        datasets._load_fashion_split.cache_clear()

"""Built-in datasets as :class:`~dfwidgets.data.ImageSource` objects.

- :func:`fashion_mnist`: Zalando's Fashion-MNIST (28x28 grey, 10 classes) from Debian's
  ``dataset-fashion-mnist`` package, a folder you give, the dfwidgets cache, or a
  torchvision download.
- :func:`digits`: scikit-learn's 8x8 handwritten digits (1,797 images), always available.

Both register a rebuilder with :func:`~dfwidgets.data.constructors.register_spec_builder`,
so ``ImageSource.from_spec`` brings them back without importing this module.
Public as :mod:`dfwidgets.datasets` (``dfw.datasets.fashion_mnist(...)``).
"""

from __future__ import annotations

import functools
import gzip
import logging
import os
from pathlib import Path

import numpy as np

from dfwidgets._config import cache_dir
from dfwidgets.data.constructors import register_spec_builder
from dfwidgets.data.source import ImageSource

__all__ = ["FASHION_MNIST_CLASSES", "digits", "fashion_mnist"]

logger = logging.getLogger(__name__)

#: Fashion-MNIST class names, in label order.
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]

#: Where Debian's ``dataset-fashion-mnist`` package puts the IDX files.
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", 60000),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", 10000),
}


def fashion_mnist(split: str = "train", *, root: str | os.PathLike | None = None,
                  download: bool = True) -> ImageSource:
    """Fashion-MNIST as an ImageSource: uint8 ``(N, 28, 28)``, labels and class names.

    ``split``: ``"train"`` (60,000), ``"test"`` (10,000) or ``"all"`` (70,000, train first).
    The IDX files (``.gz`` or not) are looked for in ``root``, then
    ``/usr/share/datasets/fashion-mnist`` (Debian/Ubuntu: ``apt install
    dataset-fashion-mnist``), then ``<cache_dir>/fashion-mnist``; if none has them and
    ``download`` is true, torchvision downloads them into the cache. Ids look like
    ``"fashion_mnist/train/00042"``.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f'fashion_mnist: split must be "train", "test" or "all", not {split!r}.')
    root_str = None if root is None else str(Path(root).expanduser().resolve())
    parts = ["train", "test"] if split == "all" else [split]
    images, labels, ids = [], [], []
    for part in parts:
        imgs, labs = _load_fashion_split(part, root_str, download)
        images.append(imgs)
        labels.append(labs)
        ids.extend(f"fashion_mnist/{part}/{i:05d}" for i in range(len(imgs)))
    array = images[0] if len(images) == 1 else np.concatenate(images)
    array.flags.writeable = False
    src = ImageSource.from_array(array, labels=np.concatenate(labels).astype(np.int64),
                                 classes=FASHION_MNIST_CLASSES, ids=ids)
    src._spec = {"kind": "fashion_mnist", "split": split}
    if root_str is not None:
        src._spec["root"] = root_str
    return src


def digits() -> ImageSource:
    """scikit-learn's handwritten digits: uint8 ``(1797, 8, 8)`` scaled to 0..255,
    classes ``"0"`` .. ``"9"``, ids like ``"digits/0042"``."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    array = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    array.flags.writeable = False
    ids = [f"digits/{i:04d}" for i in range(len(array))]
    src = ImageSource.from_array(array, labels=bunch.target.astype(np.int64),
                                 classes=[str(d) for d in range(10)], ids=ids)
    src._spec = {"kind": "digits"}
    return src


register_spec_builder(
    "fashion_mnist", lambda spec: fashion_mnist(split=spec.get("split", "train"), root=spec.get("root")))
register_spec_builder("digits", lambda spec: digits())


# ---------------------------------------------------------------------- IDX reading
def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed) of unsigned bytes into a uint8 array.

    Returns shape ``(N,)`` for label files and ``(N, H, W)`` for image files.
    """
    path = Path(path)
    data = path.read_bytes()
    if path.suffix == ".gz":
        data = gzip.decompress(data)
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path} is not an IDX file (bad magic number).")
    dtype_code, ndim = data[2], data[3]
    if dtype_code != 0x08:
        raise ValueError(f"{path}: IDX type {dtype_code:#x} is not unsigned bytes (0x08).")
    header = 4 + 4 * ndim
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape))
    if len(data) - header != expected:
        raise ValueError(f"{path}: IDX header says shape {shape} ({expected} bytes) but the file "
                         f"holds {len(data) - header}; the file is truncated or corrupt.")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        for candidate in (folder / name, folder / "FashionMNIST" / "raw" / name):
            if candidate.is_file():
                return candidate
    return None


def _candidate_folders(root: str | None) -> list[Path]:
    folders = [] if root is None else [Path(root)]
    folders += [DEBIAN_FASHION_MNIST, cache_dir(sub="fashion-mnist")]
    return folders


@functools.lru_cache(maxsize=4)
def _load_fashion_split(split: str, root: str | None, download: bool) -> tuple[np.ndarray, np.ndarray]:
    """(images (N, 28, 28) uint8 read-only, labels (N,) uint8) for one split."""
    image_stem, label_stem, count = _FILES[split]
    folders = _candidate_folders(root)
    for folder in folders:
        img_file, lab_file = _find_file(folder, image_stem), _find_file(folder, label_stem)
        if img_file is not None and lab_file is not None:
            logger.debug("reading Fashion-MNIST %s from %s", split, folder)
            return _read_pair(img_file, lab_file, count)
    if download:
        target = cache_dir(sub="fashion-mnist")
        try:
            _download_with_torchvision(target, train=(split == "train"))
        except Exception as exc:
            raise FileNotFoundError(_missing_message(folders, f"the torchvision download into "
                                                     f"{target} failed ({type(exc).__name__}: {exc})")) from exc
        img_file, lab_file = _find_file(target, image_stem), _find_file(target, label_stem)
        if img_file is not None and lab_file is not None:
            return _read_pair(img_file, lab_file, count)
        raise FileNotFoundError(_missing_message(folders, f"torchvision finished but no IDX files "
                                                 f"appeared in {target}"))
    raise FileNotFoundError(_missing_message(folders, "download=False"))


def _read_pair(img_file: Path, lab_file: Path, count: int) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(img_file), read_idx(lab_file)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(f"Fashion-MNIST files {img_file} and {lab_file} do not match: "
                         f"images {images.shape}, labels {labels.shape}.")
    if len(images) != count:
        logger.warning("Fashion-MNIST %s holds %d items, expected %d.", img_file, len(images), count)
    return images, labels


def _download_with_torchvision(target: Path, *, train: bool) -> None:
    """Fetch the split with torchvision (it keeps the .gz files under FashionMNIST/raw)."""
    try:
        from torchvision.datasets import FashionMNIST
    except ImportError as exc:
        raise ImportError("torchvision is needed to download Fashion-MNIST: pip install torchvision") from exc
    import socket

    old = socket.getdefaulttimeout()
    socket.setdefaulttimeout(10)  # fail in seconds, not minutes, when there is no network
    try:
        FashionMNIST(root=str(target), train=train, download=True)
    finally:
        socket.setdefaulttimeout(old)


def _missing_message(folders: list[Path], why: str) -> str:
    looked = ", ".join(str(f) for f in folders)
    return (
        f"Fashion-MNIST not found: looked in {looked}; {why}. Fix it with one of: install "
        "Debian/Ubuntu's package (`sudo apt install dataset-fashion-mnist`), pass "
        "root=<folder with train-images-idx3-ubyte.gz etc.>, or allow download=True with "
        "network access."
    )

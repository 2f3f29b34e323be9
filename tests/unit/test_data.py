"""ImageSource: every adapter, every bad-image case, hashing and its disk cache.

All files are real files written into ``tmp_path``; broken ones are broken for real.
"""

from __future__ import annotations

import json
import os
import pickle
import sqlite3
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from dfwidgets.data import PLACEHOLDER_GREY, ImageSource, file_hashes

GREY = PLACEHOLDER_GREY


# ---------------------------------------------------------------------- helpers
def _noise_jpeg(path: Path, size: tuple[int, int] = (96, 64), seed: int = 0) -> bytes:
    """A real JPEG of random pixels (large enough that truncation breaks the pixel data)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
    return path.read_bytes()


def _solid(path: Path, color: tuple[int, int, int], size: tuple[int, int] = (96, 64)) -> None:
    Image.new("RGB", size, color).save(path)


def _user_warnings(record: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in record if issubclass(w.category, UserWarning)]


@pytest.fixture(autouse=True)
def hash_cache(tmp_path, monkeypatch) -> Path:
    """An isolated cache dir: hash rows of temporary files stay out of the shared cache."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("DFW_CACHE_DIR", str(folder))
    return folder


@pytest.fixture()
def bad_folder(tmp_path) -> Path:
    """A folder of one good image and every kind of broken / unusual file."""
    root = tmp_path / "bad"
    root.mkdir()
    _noise_jpeg(root / "a_good.jpg")
    (root / "b_zero.jpg").write_bytes(b"")
    (root / "c_text.jpg").write_text("this is a text file, not a JPEG\n")
    Image.new("CMYK", (96, 64), (0, 255, 255, 0)).save(root / "d_cmyk.jpg")  # pure red in CMYK
    Image.fromarray(np.full((64, 96), 51400, dtype=np.uint16)).save(root / "e_16bit.png")
    Image.new("RGBA", (96, 64), (255, 0, 0, 128)).save(root / "f_rgba.png")  # half-transparent red
    pal = Image.new("P", (96, 64), 0)
    pal.putpalette([0, 0, 255, 0, 255, 0] + [0] * 762)
    pal.paste(1, (48, 0, 96, 64))  # left half index 0 (blue), right half index 1 (transparent)
    pal.save(root / "g_palette.png", transparency=1)
    (root / "notes.txt").write_text("not picked up: not an image extension")
    (root / ".hidden.jpg").write_bytes(b"")  # hidden files are skipped
    return root


# ---------------------------------------------------------------------- from_array
def test_from_array_grey_and_channels_give_rgb() -> None:
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (5, 12, 10), dtype=np.uint8)
    src = ImageSource.from_array(grey)
    img = src[2]
    assert img.mode == "RGB" and img.size == (10, 12)
    assert (np.asarray(img)[..., 1] == grey[2]).all()
    assert src.array is not None and src.array.shape == (5, 12, 10)
    assert list(src.ids) == ["00000", "00001", "00002", "00003", "00004"]
    assert src.labels is None and src.classes is None and src.paths is None and src.spec is None

    one = ImageSource.from_array(grey[..., None])
    assert (np.asarray(one[0])[..., 0] == grey[0]).all()
    rgb = rng.integers(0, 256, (3, 4, 6, 3), dtype=np.uint8)
    assert (np.asarray(ImageSource.from_array(rgb)[1]) == rgb[1]).all()


def test_from_array_alpha_composites_on_white() -> None:
    rgba = np.zeros((2, 4, 4, 4), dtype=np.uint8)
    rgba[0] = (255, 0, 0, 0)  # fully transparent -> white
    rgba[1] = (255, 0, 0, 255)  # opaque red stays red
    src = ImageSource.from_array(rgba)
    assert np.asarray(src[0])[0, 0].tolist() == [255, 255, 255]
    assert np.asarray(src[1])[0, 0].tolist() == [255, 0, 0]


def test_from_array_converts_unit_floats_and_rejects_bad_input(caplog) -> None:
    floats = np.linspace(0, 1, 2 * 3 * 3).reshape(2, 3, 3).astype(np.float32)
    with caplog.at_level("WARNING", logger="dfwidgets.data"):
        src = ImageSource.from_array(floats)
    assert src.array.dtype == np.uint8 and src.array.max() == 255 and src.array.min() == 0
    assert "scaled to uint8" in caplog.text

    with pytest.raises(ValueError, match=r"values in \[0, 1\].*astype\(np.uint8\)"):
        ImageSource.from_array(floats * 10)
    with pytest.raises(ValueError, match="int64.*arr.astype"):
        ImageSource.from_array(np.zeros((2, 3, 3), dtype=np.int64))
    with pytest.raises(ValueError, match="Rescale"):
        ImageSource.from_array(np.full((2, 3, 3), 4000, dtype=np.uint16))
    with pytest.raises(ValueError, match=r"\(N, H, W\).*arr\[None\]"):
        ImageSource.from_array(np.zeros((28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match=r"transpose\(0, 2, 3, 1\)"):
        ImageSource.from_array(np.zeros((2, 3, 28, 28), dtype=np.uint8))
    with pytest.raises(ValueError, match="0 images"):
        ImageSource.from_array(np.zeros((0, 8, 8), dtype=np.uint8))


def test_indexing_accepts_numpy_and_negative_ints() -> None:
    arr = np.arange(4 * 2 * 2, dtype=np.uint8).reshape(4, 2, 2)
    src = ImageSource.from_array(arr)
    assert np.asarray(src[-1])[0, 0, 0] == arr[3, 0, 0]
    assert np.asarray(src[np.int64(2)])[0, 0, 0] == arr[2, 0, 0]
    with pytest.raises(IndexError, match="out of range for 4"):
        src[4]
    with pytest.raises(IndexError):
        src[-5]
    with pytest.raises(TypeError, match="integers"):
        src[1.0]


# ---------------------------------------------------------------------- labels and ids
def test_labels_names_ints_and_unknown_names() -> None:
    arr = np.zeros((5, 2, 2), dtype=np.uint8)
    src = ImageSource.from_array(arr, labels=["cat", None, "dog", "bird", np.nan],
                                 classes=["dog", "cat"])
    assert src.labels.dtype == np.int64
    assert src.labels.tolist() == [1, -1, 0, 2, -1]
    assert src.classes == ["dog", "cat", "bird"]  # unknown name appended

    ints = ImageSource.from_array(arr, labels=np.array([0, 2, -1, 1, 2]))
    assert ints.classes == ["0", "1", "2"] and ints.labels.tolist() == [0, 2, -1, 1, 2]
    with pytest.raises(ValueError, match=r"\[-1, 1\].*classes="):
        ImageSource.from_array(arr, labels=[0, 1, 2, 0, 0], classes=["a", "b"])
    with pytest.raises(ValueError, match="3 entries but there are 5 images"):
        ImageSource.from_array(arr, labels=["a", "b", "c"])
    with pytest.raises(ValueError, match="mix class names and integers"):
        ImageSource.from_array(arr, labels=["a", 1, "b", None, None])
    with pytest.raises(ValueError, match="ids must be unique.*'x'"):
        ImageSource.from_array(arr, ids=["x", "y", "x", "z", "w"])


# ---------------------------------------------------------------------- folders and paths
def test_from_folder_class_subfolders_become_labels(tmp_path) -> None:
    for cls, color in (("cat", (255, 0, 0)), ("dog", (0, 0, 255))):
        (tmp_path / cls / "deeper").mkdir(parents=True)
        _solid(tmp_path / cls / "1.png", color)
        _solid(tmp_path / cls / "deeper" / "2.jpg", color)
    (tmp_path / ".ipynb_checkpoints").mkdir()
    _solid(tmp_path / ".ipynb_checkpoints" / "x.png", (0, 0, 0))
    src = ImageSource.from_folder(tmp_path)
    assert list(src.ids) == ["cat/1.png", "cat/deeper/2.jpg", "dog/1.png", "dog/deeper/2.jpg"]
    assert src.classes == ["cat", "dog"] and src.labels.tolist() == [0, 0, 1, 1]
    assert np.asarray(src[2])[0, 0].tolist() == [0, 0, 255]
    assert src.problems.empty
    assert src.paths[0] == str(tmp_path / "cat" / "1.png")

    flat = ImageSource.from_folder(tmp_path / "cat", recursive=False)
    assert list(flat.ids) == ["1.png"] and flat.labels is None

    _solid(tmp_path / "loose.png", (0, 255, 0))
    mixed = ImageSource.from_folder(tmp_path)  # one image outside sub-folders: no labels
    assert mixed.labels is None and len(mixed) == 5
    with pytest.raises(ValueError, match=r"loose\.png"):
        ImageSource.from_folder(tmp_path, labels="folders")
    assert ImageSource.from_folder(tmp_path / "dog", labels=None).labels is None


def test_from_folder_clear_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ImageSource.from_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("hi")
    with pytest.raises(ValueError, match="no image files"):
        ImageSource.from_folder(tmp_path / "empty")
    with pytest.raises(ValueError, match='"auto", "folders" or None'):
        ImageSource.from_folder(tmp_path, labels="yes")


def test_bad_files_are_converted_or_listed_with_one_warning(bad_folder) -> None:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_folder(bad_folder)
    names = [Path(p).name for p in src.paths]
    assert names == ["a_good.jpg", "b_zero.jpg", "c_text.jpg", "d_cmyk.jpg", "e_16bit.png",
                     "f_rgba.png", "g_palette.png"]
    messages = _user_warnings(record)
    assert len(messages) == 1, messages
    assert "2 of 7" in messages[0] and "see src.problems" in messages[0]

    problems = src.problems
    assert list(problems.columns) == ["index", "path", "reason"]
    assert problems["index"].tolist() == [1, 2]
    assert problems["path"].tolist() == [str(bad_folder / n) for n in ("b_zero.jpg", "c_text.jpg")]
    reasons = problems["reason"].tolist()
    assert reasons[0].startswith("empty") and reasons[1].startswith("not an image")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        images = [src[i] for i in range(len(src))]
    assert _user_warnings(record) == []  # nothing new was found while loading
    assert all(im.mode == "RGB" for im in images)
    # placeholders: grey, the size of a typical item
    for i in (1, 2):
        assert images[i].size == (96, 64)
        assert np.asarray(images[i]).reshape(-1, 3).tolist()[0] == list(GREY)
    red_from_cmyk = np.asarray(images[3])[10, 10]
    assert red_from_cmyk[0] > 240 and red_from_cmyk[1] < 15 and red_from_cmyk[2] < 15
    assert np.asarray(images[4])[0, 0].tolist() == [200, 200, 200]  # 51400 / 257
    assert np.abs(np.asarray(images[5])[0, 0].astype(int) - [255, 127, 127]).max() <= 1
    palette = np.asarray(images[6])
    assert palette[0, 0].tolist() == [0, 0, 255] and palette[0, 95].tolist() == [255, 255, 255]
    assert len(src.problems) == 2


def test_truncated_jpeg_is_found_when_loaded_and_by_check(tmp_path) -> None:
    good = _noise_jpeg(tmp_path / "a.jpg", size=(200, 150))
    (tmp_path / "b_trunc.jpg").write_bytes(good[: len(good) // 2])
    (tmp_path / "c_trunc.jpg").write_bytes(good[: len(good) // 3])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_folder(tmp_path)
    assert src.problems.empty and _user_warnings(record) == []  # headers are fine

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        img = src[1]
        src[2]
    assert img.size == (200, 150) and np.asarray(img)[0, 0].tolist() == list(GREY)
    messages = _user_warnings(record)
    assert len(messages) == 1 and "see src.problems" in messages[0]
    assert src.problems["index"].tolist() == [1, 2]
    assert all("truncated" in r for r in src.problems["reason"])

    fresh = ImageSource.from_folder(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        found = fresh.check(progress=False)
    assert found["index"].tolist() == [1, 2]
    messages = _user_warnings(record)
    assert len(messages) == 1 and "2 of 3" in messages[0]


def test_exif_orientation_is_applied(tmp_path) -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display", as phone cameras write it
    Image.new("RGB", (40, 20), (255, 0, 0)).save(tmp_path / "phone.jpg", exif=exif)
    src = ImageSource.from_paths([tmp_path / "phone.jpg"])
    assert src[0].size == (20, 40)


def test_decompression_bombs_are_listed_or_loaded_quietly(tmp_path, monkeypatch) -> None:
    _solid(tmp_path / "a_small.png", (0, 255, 0), size=(10, 10))  # 100 px
    _solid(tmp_path / "b_large.png", (0, 255, 0), size=(15, 10))  # 150 px: over the limit
    _solid(tmp_path / "c_bomb.png", (0, 255, 0), size=(30, 30))  # 900 px: over twice the limit
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 120)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_folder(tmp_path)
        large = src[1]
        bomb = src[2]
    messages = [str(w.message) for w in record]
    assert len(messages) == 1 and "1 of 3" in messages[0], messages  # no PIL per-file warnings
    assert src.problems["index"].tolist() == [2]
    assert "decompression bomb" in src.problems["reason"][0]
    assert "MAX_IMAGE_PIXELS" in src.problems["reason"][0]
    assert large.size == (15, 10) and np.asarray(large)[0, 0].tolist() == [0, 255, 0]
    assert np.asarray(bomb)[0, 0].tolist() == list(GREY)


def test_from_paths_missing_unreadable_and_duplicate_paths(tmp_path) -> None:
    _solid(tmp_path / "a.png", (10, 20, 30))
    (tmp_path / "folder.jpg").mkdir()  # a folder with an image name: unreadable as a file
    paths = [tmp_path / "a.png", str(tmp_path / "gone.png"), tmp_path / "a.png",
             tmp_path / "folder.jpg"]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_paths(paths, labels=["x", "y", "x", None])
    messages = _user_warnings(record)
    assert len(messages) == 1 and "2 of 4" in messages[0]
    assert src.ids.tolist() == [str(paths[0]), str(paths[1]), f"{paths[0]}#2", str(paths[3])]
    assert src.classes == ["x", "y"] and src.labels.tolist() == [0, 1, 0, -1]
    assert src.problems["index"].tolist() == [1, 3]
    assert src.problems["reason"][0].startswith("missing")
    assert "is a folder" in src.problems["reason"][1]
    assert np.asarray(src[3])[0, 0].tolist() == list(GREY)
    assert np.asarray(src[1])[0, 0].tolist() == list(GREY)
    assert np.asarray(src[2])[0, 0].tolist() == [10, 20, 30]
    with pytest.raises(TypeError, match="single path"):
        ImageSource.from_paths(tmp_path / "a.png")


def test_from_dataframe_keeps_frame_ids_and_labels(tmp_path) -> None:
    for name, color in (("r.png", (255, 0, 0)), ("g.png", (0, 255, 0))):
        _solid(tmp_path / name, color)
    df = pd.DataFrame(
        {"file": [str(tmp_path / "r.png"), str(tmp_path / "g.png"), None],
         "kind": ["red", None, "blue"], "score": [0.1, 0.2, 0.3]},
        index=["img-r", "img-g", "img-none"],
    )
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_dataframe(df, path_column="file", label_column="kind")
    assert len(_user_warnings(record)) == 1
    assert src.frame is df
    assert src.ids.tolist() == ["img-r", "img-g", "img-none"]
    assert src.classes == ["red", "blue"] and src.labels.tolist() == [0, -1, 1]
    assert src.problems["index"].tolist() == [2] and "no path" in src.problems["reason"][0]
    assert np.asarray(src[1])[0, 0].tolist() == [0, 255, 0]
    sub = src.subset([1, 0])
    assert sub.frame.index.tolist() == ["img-g", "img-r"] and sub.labels.tolist() == [-1, 0]

    int_labels = pd.DataFrame({"path": [str(tmp_path / "r.png")] * 2, "y": [1, 0]})
    int_src = ImageSource.from_dataframe(int_labels, label_column="y")
    assert int_src.labels.tolist() == [1, 0] and int_src.classes == ["0", "1"]
    assert int_src.ids.tolist() == ["0", "1"]
    with_gaps = pd.DataFrame({"path": [str(tmp_path / "r.png")] * 3, "y": [1, np.nan, 0]})
    assert ImageSource.from_dataframe(with_gaps, label_column="y").labels.tolist() == [1, -1, 0]
    with pytest.raises(ValueError, match=r"'kind' is not a column.*\['path', 'y'\]"):
        ImageSource.from_dataframe(int_labels, label_column="kind")


# ---------------------------------------------------------------------- torch
def test_from_torch_tensors_pil_arrays_and_failures(fmnist_test) -> None:
    import torch
    from torch.utils.data import Dataset, TensorDataset

    images = torch.from_numpy(fmnist_test.array[:20].astype(np.float32) / 255.0)[:, None]
    labels = torch.from_numpy(fmnist_test.labels[:20])
    tensor_src = ImageSource.from_torch(TensorDataset(images, labels),
                                        classes=fmnist_test.classes)
    assert len(tensor_src) == 20 and tensor_src.labels.tolist() == fmnist_test.labels[:20].tolist()
    assert tensor_src.classes == fmnist_test.classes
    assert (np.asarray(tensor_src[3])[..., 0] == fmnist_test.array[3]).all()

    class Mixed(Dataset):
        """Items in every supported image type, plus one that fails to load."""

        classes = ("zero", "one")

        def __len__(self) -> int:
            return 5

        def __getitem__(self, i: int):
            if i == 4:
                raise OSError("disk hiccup")
            picture = np.full((6, 8, 3), 40 * i, dtype=np.uint8)
            kinds = [Image.fromarray(picture), torch.from_numpy(picture).permute(2, 0, 1),
                     picture, picture[..., 0]]
            return kinds[i], i % 2

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        src = ImageSource.from_torch(Mixed())  # no .targets: labels come from reading items
        assert src.problems["index"].tolist() == [4]  # found while reading the labels
        images = [src[i] for i in range(5)]
    assert src.labels.tolist() == [0, 1, 0, 1, -1] and src.classes == ["zero", "one"]
    for i in range(4):
        assert images[i].size == (8, 6) and np.asarray(images[i])[0, 0].tolist() == [40 * i] * 3
    assert np.asarray(images[4])[0, 0].tolist() == list(GREY)
    assert src.problems["index"].tolist() == [4] and "disk hiccup" in src.problems["reason"][0]
    assert len(_user_warnings(record)) == 1
    assert src.spec is None
    assert len(src.content_hashes()) == 5


def test_from_torch_uses_targets_of_a_torchvision_image_folder(tmp_path) -> None:
    from torchvision.datasets import ImageFolder

    for cls, color in (("ant", (200, 0, 0)), ("bee", (0, 0, 200))):
        (tmp_path / cls).mkdir()
        for k in range(2):
            _solid(tmp_path / cls / f"{k}.png", color, size=(20, 10))
    folder = ImageFolder(tmp_path)
    src = ImageSource.from_torch(folder)
    assert src.classes == ["ant", "bee"] and src.labels.tolist() == [0, 0, 1, 1]
    assert src[3].size == (20, 10) and np.asarray(src[3])[0, 0].tolist() == [0, 0, 200]
    sub = src.subset([3, 0])
    assert sub.labels.tolist() == [1, 0] and np.asarray(sub[1])[0, 0].tolist() == [200, 0, 0]
    assert sub.content_hashes()[0] == src.content_hashes()[3]


# ---------------------------------------------------------------------- subset, spec, pickle
def test_subset_keeps_ids_labels_problems_and_spec(bad_folder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = ImageSource.from_folder(bad_folder)
    sub = src.subset([2, 0, -1])
    assert sub.ids.tolist() == [src.ids[2], src.ids[0], src.ids[6]]
    assert sub.problems["index"].tolist() == [0]  # c_text.jpg, renumbered
    assert sub.problems["path"].tolist() == [src.paths[2]]
    assert src.subset([5, 1]).problems["index"].tolist() == [1]  # b_zero.jpg
    mask = np.zeros(len(src), dtype=bool)
    mask[[3, 5]] = True
    assert src.subset(mask).ids.tolist() == [src.ids[3], src.ids[5]]
    with pytest.raises(ValueError, match="duplicates"):
        src.subset([1, 1])
    with pytest.raises(IndexError):
        src.subset([100])

    spec = json.loads(json.dumps(sub.spec))
    assert spec["kind"] == "subset" and spec["of"]["kind"] == "folder"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = ImageSource.from_spec(spec)
    assert again.ids.tolist() == sub.ids.tolist()
    assert (again.content_hashes() == sub.content_hashes()).all()


def test_labelled_folder_and_paths_specs_round_trip(tmp_path) -> None:
    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        _solid(tmp_path / cls / "x.png", (1, 2, 3))
    src = ImageSource.from_folder(tmp_path)
    again = ImageSource.from_spec(json.loads(json.dumps(src.spec)))
    assert again.ids.tolist() == src.ids.tolist() and again.labels.tolist() == [0, 1]
    by_paths = ImageSource.from_paths(src.paths, labels=["b", None], ids=["p", "q"])
    rebuilt = ImageSource.from_spec(json.loads(json.dumps(by_paths.spec)))
    assert rebuilt.ids.tolist() == ["p", "q"] and rebuilt.labels.tolist() == [0, -1]
    assert rebuilt.classes == ["b"]
    with pytest.raises(ValueError, match="unknown kind 'zip'"):
        ImageSource.from_spec({"kind": "zip"})


def test_pickle_round_trip_for_dataloader_workers(bad_folder) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        src = ImageSource.from_folder(bad_folder)
    clone = pickle.loads(pickle.dumps(src))
    assert clone.ids.tolist() == src.ids.tolist()
    assert clone.problems.equals(src.problems)
    assert np.asarray(clone[3]).tolist() == np.asarray(src[3]).tolist()


# ---------------------------------------------------------------------- hashing
def test_array_hashes_follow_content() -> None:
    arr = np.zeros((3, 4, 4), dtype=np.uint8)
    arr[1] = 9
    src = ImageSource.from_array(arr)
    hashes = src.content_hashes()
    assert hashes.dtype == np.dtype("S16") and hashes.shape == (3,)
    assert hashes[0] == hashes[2] and hashes[0] != hashes[1]  # same pixels, same hash
    before = src.fingerprint()
    arr2 = arr.copy()
    arr2[2, 0, 0] = 1
    changed = ImageSource.from_array(arr2)
    assert changed.content_hashes()[2] != hashes[2] and changed.fingerprint() != before
    # same bytes in a different shape are a different dataset
    reshaped = ImageSource.from_array(arr.reshape(3, 2, 8))
    assert reshaped.fingerprint() != before
    assert src.subset([0, 1]).fingerprint() != before


def test_file_hashes_are_cached_and_invalidated(tmp_path, hash_cache, monkeypatch) -> None:
    for i in range(4):
        _noise_jpeg(tmp_path / f"{i}.jpg", seed=i)
    src = ImageSource.from_folder(tmp_path)
    first = src.content_hashes()
    first_fingerprint = src.fingerprint()
    import hashlib

    assert first[0] == hashlib.blake2b((tmp_path / "0.jpg").read_bytes(), digest_size=16).digest()
    assert len(set(first.tolist())) == 4
    db = sqlite3.connect(hash_cache / "hashes" / "file_hashes.sqlite")
    assert db.execute("SELECT COUNT(*) FROM file_hash").fetchone()[0] == 4
    db.close()

    hashed: list[str] = []
    real_hash_file = file_hashes.hash_file
    monkeypatch.setattr(file_hashes, "hash_file",
                        lambda p: hashed.append(os.path.basename(p)) or real_hash_file(p))
    again = ImageSource.from_folder(tmp_path).content_hashes()
    assert (again == first).all() and hashed == []  # all from the cache, no file read

    _noise_jpeg(tmp_path / "2.jpg", seed=99)  # the image changes on disk
    st = os.stat(tmp_path / "2.jpg")
    os.utime(tmp_path / "2.jpg", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    hashed.clear()
    changed = src.content_hashes()
    assert hashed == ["2.jpg"]  # only the changed file is read again
    assert changed[2] != first[2] and (changed[[0, 1, 3]] == first[[0, 1, 3]]).all()
    assert src.fingerprint() != first_fingerprint

    (tmp_path / "3.jpg").unlink()
    gone = src.content_hashes()  # a vanished file still gets a (distinct) hash, no error
    assert gone[3] != first[3]

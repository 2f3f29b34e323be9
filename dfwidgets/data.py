"""Image sources: random access to N images, with stable ids and optional labels.

:class:`ImageSource` reads images from a folder, a list of paths, a uint8 array, a torch
``Dataset`` or a pandas DataFrame, always hands out RGB PIL images, and never lets a bad
file stop a run: broken items are listed in :attr:`ImageSource.problems` and replaced by
a grey placeholder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import sqlite3
import stat
import threading
import warnings
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageOps, UnidentifiedImageError

from dfwidgets._config import cache_dir

__all__ = ["IMAGE_EXTENSIONS", "ImageSource"]

logger = logging.getLogger(__name__)

#: File name endings that :meth:`ImageSource.from_folder` treats as images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
     ".pbm", ".pnm", ".jfif", ".jp2", ".ico", ".tga"}
)

PLACEHOLDER_GREY = (128, 128, 128)
_DEFAULT_PLACEHOLDER_SIZE = (64, 64)
_HASH_BYTES = 16
_HASH_CACHE_FILE = "file_hashes.sqlite"
_PROBLEM_COLUMNS = ["index", "path", "reason"]
_IO_THREADS = 8  # file reads wait on the disk (or network share), not the CPU
_PROGRESS_FROM = 5000  # show a progress bar for header checks of this many files or more


class ImageSource:
    """Random access to ``N`` images as RGB PIL images, with ids and optional labels.

    Build one with a ``from_*`` constructor (or :mod:`dfwidgets.datasets`), not directly.

    Attributes:
        ids: ``(N,)`` object array of unique strings, stable across sessions.
        labels: ``(N,)`` int64 array (``-1`` = no label) or ``None``.
        classes: class names (``labels`` index into it) or ``None``.
        paths: file paths (file sources) or ``None``.
        frame: the user's DataFrame (row ``i`` is item ``i``) or ``None``.
        array: uint8 ``(N, H, W[, C])`` for array sources (fast path) or ``None``.
        problems: DataFrame ``[index, path, reason]`` of items that could not be read.
        spec: JSON-able recipe for :meth:`from_spec`, or ``None``.
    """

    def __init__(
        self,
        *,
        kind: str,
        n: int,
        ids: Sequence[str],
        labels: np.ndarray | None = None,
        classes: list[str] | None = None,
        array: np.ndarray | None = None,
        paths: list[str] | None = None,
        dataset: Any = None,
        dataset_indices: np.ndarray | None = None,
        frame: pd.DataFrame | None = None,
        spec: dict | None = None,
    ) -> None:
        self._kind = kind
        self._n = int(n)
        self._ids = _check_ids(ids, self._n)
        self._labels = labels
        self._classes = classes
        self._array = array
        self._paths = paths
        self._dataset = dataset
        self._dataset_indices = dataset_indices
        self._frame = frame
        self._spec = spec
        self._problems: dict[int, tuple[str | None, str]] = {}
        self._placeholder_size: tuple[int, int] | None = None
        self._memo_hashes: np.ndarray | None = None
        self._file_memo: dict[str, tuple[int, int, bytes]] = {}  # abs path -> size, mtime, hash
        self._late_warning_given = False
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_array(
        cls,
        arr: Any,
        *,
        labels: Sequence[Any] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> ImageSource:
        """Images from a uint8 array ``(N, H, W)`` (grey) or ``(N, H, W, C)``, C in 1, 3, 4.

        Float arrays with values in ``[0, 1]`` are scaled to uint8 (with a note in the log);
        any other dtype or shape raises a ``ValueError`` that says how to fix it.
        """
        array = _as_uint8_images(arr)
        n = len(array)
        lab, cls_names = _encode_labels(labels, classes, n)
        ids = _default_ids(n) if ids is None else ids
        return cls(kind="array", n=n, ids=ids, labels=lab, classes=cls_names, array=array)

    @classmethod
    def from_paths(
        cls,
        paths: Iterable[str | os.PathLike],
        *,
        labels: Sequence[Any] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        check: bool = True,
    ) -> ImageSource:
        """Images from a list of file paths.

        ``labels``: one per path (class names, or ints indexing ``classes``; ``None``/-1 =
        unlabeled). ``ids`` default to the paths as given. ``check`` reads every file's
        header now (fast) so missing and non-image files show up in :attr:`problems` at once.
        """
        path_list = _path_strings(paths)
        n = len(path_list)
        if n == 0:
            raise ValueError("from_paths got an empty list of paths; pass at least one image file.")
        lab, cls_names = _encode_labels(labels, classes, n)
        if ids is None:
            ids = _unique_strings(path_list)
        spec = {
            "kind": "paths",
            "paths": [os.path.abspath(p) for p in path_list],
            "labels": None if lab is None else lab.tolist(),
            "classes": cls_names,
            "ids": [str(i) for i in ids],
        }
        src = cls(kind="paths", n=n, ids=ids, labels=lab, classes=cls_names, paths=path_list,
                  spec=spec)
        if check:
            src._check_headers()
        return src

    @classmethod
    def from_folder(
        cls,
        path: str | os.PathLike,
        *,
        labels: str | None = "auto",
        recursive: bool = True,
        check: bool = True,
    ) -> ImageSource:
        """All images under a folder (sorted; hidden files and folders skipped).

        ``labels="auto"`` takes the first sub-folder name as the class when every image
        sits in a sub-folder (``root/cat/1.jpg``), else no labels; ``"folders"`` requires
        that layout; ``None`` never labels. Ids are paths relative to ``path``.
        """
        root = Path(path).expanduser().absolute()
        if not root.exists():
            raise FileNotFoundError(f"from_folder: folder {str(root)!r} does not exist; check the path.")
        if not root.is_dir():
            raise NotADirectoryError(
                f"from_folder: {str(root)!r} is a file, not a folder; use "
                "ImageSource.from_paths([...]) for single files."
            )
        if labels not in ("auto", "folders", None):
            raise ValueError(f'from_folder: labels must be "auto", "folders" or None, not {labels!r}.')
        rel = _list_image_files(root, recursive=recursive)
        if not rel:
            raise ValueError(
                f"from_folder: no image files in {str(root)!r} (looked for "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}{'' if recursive else ', top level only'})."
            )
        in_sub = [len(Path(r).parts) >= 2 for r in rel]
        lab = cls_names = None
        if labels == "folders" and not all(in_sub):
            loose = [r for r, s in zip(rel, in_sub) if not s][:3]
            raise ValueError(
                f'from_folder: labels="folders" needs every image inside a class sub-folder, '
                f"but {loose} sit at the top of {str(root)!r}; move them or use labels=None."
            )
        if labels in ("auto", "folders") and all(in_sub):
            names = [Path(r).parts[0] for r in rel]
            cls_names = sorted(set(names))
            lookup = {c: k for k, c in enumerate(cls_names)}
            lab = np.array([lookup[c] for c in names], dtype=np.int64)
        full = [os.path.join(root, r) for r in rel]
        spec = {"kind": "folder", "path": str(root.resolve()), "labels": labels,
                "recursive": recursive}
        src = cls(kind="folder", n=len(full), ids=rel, labels=lab, classes=cls_names,
                  paths=full, spec=spec)
        if check:
            src._check_headers()
        return src

    @classmethod
    def from_dataframe(
        cls,
        df: pd.DataFrame,
        *,
        path_column: str = "path",
        label_column: str | None = None,
        classes: Sequence[str] | None = None,
        check: bool = True,
    ) -> ImageSource:
        """Images named by a DataFrame's path column; ``src.frame`` keeps the DataFrame.

        ``label_column`` may hold class names or ints (missing values = unlabeled). Ids are
        the DataFrame's index as strings when it is unique, else row positions.
        """
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"from_dataframe needs a pandas DataFrame, got {type(df).__name__}.")
        for col, what in ((path_column, "path_column"), (label_column, "label_column")):
            if col is not None and col not in df.columns:
                raise ValueError(
                    f"from_dataframe: {what}={col!r} is not a column; the columns are "
                    f"{list(df.columns)}. Pass {what}=<name>."
                )
        if len(df) == 0:
            raise ValueError("from_dataframe: the DataFrame has no rows.")
        raw_paths = df[path_column].tolist()
        path_list = ["" if _is_missing(p) else os.fspath(p) for p in raw_paths]
        lab = cls_names = None
        if label_column is not None:
            lab, cls_names = _encode_labels(df[label_column].tolist(), classes, len(df))
        if df.index.is_unique:
            ids = [str(i) for i in df.index]
            if len(set(ids)) != len(ids):
                ids = _default_ids(len(df))
        else:
            ids = _default_ids(len(df))
        spec = {
            "kind": "paths",
            "paths": [os.path.abspath(p) if p else "" for p in path_list],
            "labels": None if lab is None else lab.tolist(),
            "classes": cls_names,
            "ids": ids,
        }
        src = cls(kind="dataframe", n=len(df), ids=ids, labels=lab, classes=cls_names,
                  paths=path_list, frame=df, spec=spec)
        if check:
            src._check_headers()
        return src

    @classmethod
    def from_torch(cls, dataset: Any, *, classes: Sequence[str] | None = None) -> ImageSource:
        """Images from a map-style torch ``Dataset`` whose items are ``(image, label)``.

        The image may be a PIL image, a CHW tensor (float in [0, 1] or uint8) or an HWC /
        HW ndarray. Labels come from ``dataset.targets`` when present (no image decoding),
        else from reading every item once; classes from ``classes`` or ``dataset.classes``.
        """
        try:
            n = len(dataset)
        except TypeError as exc:
            raise TypeError(
                "from_torch needs a map-style Dataset with __len__ and __getitem__ "
                f"(got {type(dataset).__name__}); wrap an IterableDataset in a list first."
            ) from exc
        if n == 0:
            raise ValueError("from_torch: the dataset is empty.")
        if classes is None and getattr(dataset, "classes", None) is not None:
            classes = [str(c) for c in dataset.classes]
        targets = getattr(dataset, "targets", None)
        failed: dict[int, str] = {}
        if targets is not None and len(targets) == n:
            raw = _to_list(targets)
        else:
            raw = []
            for i in range(n):
                try:
                    item = dataset[i]
                except Exception as exc:  # noqa: BLE001 - a broken item must not stop the scan
                    failed[i] = f"dataset item {i} failed: {type(exc).__name__}: {exc}"
                    raw.append(None)
                    continue
                has_label = isinstance(item, (tuple, list)) and len(item) > 1
                raw.append(_to_list(item[1]) if has_label else None)
        if all(r is None for r in raw):
            lab, cls_names = None, (list(classes) if classes is not None else None)
        else:
            lab, cls_names = _encode_labels(raw, classes, n)
        src = cls(kind="torch", n=n, ids=_default_ids(n), labels=lab, classes=cls_names,
                  dataset=dataset, dataset_indices=np.arange(n, dtype=np.int64))
        if failed:
            src._problems.update({i: (None, reason) for i, reason in failed.items()})
            src._warn_summary(len(failed), "(the dataset raised an error)")
        return src

    @classmethod
    def from_spec(cls, spec: dict) -> ImageSource:
        """Rebuild a source from its :attr:`spec` (as stored by a Session)."""
        if not isinstance(spec, dict) or "kind" not in spec:
            raise ValueError(f"from_spec needs a dict with a 'kind' key (from src.spec), got {spec!r}.")
        kind = spec["kind"]
        if kind == "fashion_mnist":
            from dfwidgets import datasets

            return datasets.fashion_mnist(split=spec.get("split", "train"), root=spec.get("root"))
        if kind == "digits":
            from dfwidgets import datasets

            return datasets.digits()
        if kind == "folder":
            return cls.from_folder(spec["path"], labels=spec.get("labels", "auto"),
                                   recursive=spec.get("recursive", True))
        if kind == "paths":
            return cls.from_paths(spec["paths"], labels=spec.get("labels"),
                                  classes=spec.get("classes"), ids=spec.get("ids"))
        if kind == "subset":
            return cls.from_spec(spec["of"]).subset(np.asarray(spec["indices"], dtype=np.int64))
        raise ValueError(
            f"from_spec: unknown kind {kind!r}; expected one of fashion_mnist, digits, "
            "folder, paths, subset."
        )

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        extra = f", {len(self._classes)} classes" if self._classes else ""
        bad = f", {len(self._problems)} problems" if self._problems else ""
        return f"<ImageSource {self._kind}: {self._n} images{extra}{bad}>"

    def __getitem__(self, index: int | np.integer) -> Image.Image:
        """Item ``index`` as an RGB PIL image (a grey placeholder for a bad item)."""
        i = self._position(index)
        if self._array is not None:
            return _array_to_rgb(self._array[i])
        if self._paths is not None:
            return self._load_path(i)
        return self._load_torch(i)

    def _position(self, index: Any) -> int:
        if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"ImageSource indices must be integers, not {type(index).__name__}.")
        i = int(index)
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(f"index {int(index)} is out of range for {self._n} images.")
        return i

    @property
    def ids(self) -> np.ndarray:
        """``(N,)`` object array of unique string ids."""
        return self._ids

    @property
    def labels(self) -> np.ndarray | None:
        """``(N,)`` int64 class indices into :attr:`classes` (``-1`` = none), or ``None``."""
        return self._labels

    @property
    def classes(self) -> list[str] | None:
        """Class names, or ``None`` when the source has no labels."""
        return None if self._classes is None else list(self._classes)

    @property
    def paths(self) -> list[str] | None:
        """File paths (file sources) or ``None``."""
        return None if self._paths is None else list(self._paths)

    @property
    def frame(self) -> pd.DataFrame | None:
        """The user's DataFrame (row ``i`` is item ``i``), or ``None``."""
        return self._frame

    @property
    def array(self) -> np.ndarray | None:
        """uint8 ``(N, H, W[, C])`` for array sources, else ``None``."""
        return self._array

    @property
    def spec(self) -> dict | None:
        """JSON-able recipe to rebuild this source with :meth:`from_spec`, or ``None``."""
        return None if self._spec is None else json.loads(json.dumps(self._spec))

    @property
    def problems(self) -> pd.DataFrame:
        """Items that could not be read: DataFrame ``[index, path, reason]``, by index."""
        with self._lock:
            rows = sorted(self._problems.items())
        return pd.DataFrame(
            {"index": np.array([r[0] for r in rows], dtype=np.int64),
             "path": [r[1][0] for r in rows],
             "reason": [r[1][1] for r in rows]},
            columns=_PROBLEM_COLUMNS,
        )

    # ------------------------------------------------------------------ subsets
    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSource:
        """A new source with items ``indices`` (ints or a boolean mask), keeping ids,
        labels, classes, the frame's rows and known problems."""
        idx = np.asarray(indices)
        if idx.dtype == bool:
            if idx.shape != (self._n,):
                raise ValueError(f"subset: boolean mask has shape {idx.shape}, expected ({self._n},).")
            idx = np.flatnonzero(idx)
        if idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"subset: indices must be integers or a boolean mask, got dtype {idx.dtype}.")
        idx = idx.astype(np.int64).reshape(-1)
        if idx.size and (idx.min() < -self._n or idx.max() >= self._n):
            raise IndexError(f"subset: indices must lie in [-{self._n}, {self._n}); got "
                             f"min {idx.min()}, max {idx.max()}.")
        idx = np.where(idx < 0, idx + self._n, idx)
        if len(np.unique(idx)) != len(idx):
            raise ValueError("subset: indices contain duplicates; ids must stay unique.")
        spec = None
        if self._spec is not None:
            spec = {"kind": "subset", "of": self._spec, "indices": idx.tolist()}
        sub = ImageSource(
            kind=self._kind,
            n=len(idx),
            ids=self._ids[idx],
            labels=None if self._labels is None else self._labels[idx].copy(),
            classes=None if self._classes is None else list(self._classes),
            array=None if self._array is None else self._array[idx],
            paths=None if self._paths is None else [self._paths[i] for i in idx],
            dataset=self._dataset,
            dataset_indices=None if self._dataset_indices is None else self._dataset_indices[idx],
            frame=None if self._frame is None else self._frame.iloc[idx],
            spec=spec,
        )
        if sub._array is not None and not self._array.flags.writeable:
            sub._array.flags.writeable = False
        position = {int(old): new for new, old in enumerate(idx)}
        with self._lock:
            for old, row in self._problems.items():
                if old in position:
                    sub._problems[position[old]] = row
        sub._placeholder_size = self._placeholder_size
        return sub

    # ------------------------------------------------------------------ hashing
    def content_hashes(self) -> np.ndarray:
        """``(N,)`` array of dtype ``S16``: blake2b-128 of each item's content.

        Files: the file's bytes, cached on disk per (path, size, mtime_ns) so a second call
        is fast and a changed file gets a new hash. Arrays: each image's bytes and shape.
        Torch datasets: each decoded image (computed once per source object).
        """
        if self._memo_hashes is not None:
            return self._memo_hashes.copy()
        if self._array is not None:
            base = hashlib.blake2b(repr(self._array.shape[1:]).encode(), digest_size=_HASH_BYTES)
            out = np.empty(self._n, dtype=f"S{_HASH_BYTES}")
            for i, a in enumerate(self._array):
                h = base.copy()
                h.update(np.ascontiguousarray(a).data)
                out[i] = h.digest()
            if not self._array.flags.writeable:  # read-only arrays cannot change under us
                self._memo_hashes = out
            return out.copy()
        if self._paths is not None:
            return _file_hashes(self._paths, memo=self._file_memo)
        out = np.empty(self._n, dtype=f"S{_HASH_BYTES}")
        for i in range(self._n):
            img = np.asarray(self[i])
            out[i] = hashlib.blake2b(img.tobytes() + repr(img.shape).encode(),
                                     digest_size=_HASH_BYTES).digest()
        self._memo_hashes = out
        return out.copy()

    def fingerprint(self) -> str:
        """Hex digest over all content hashes and the item count/shape: a cache key for
        whole-dataset results such as embeddings."""
        h = hashlib.blake2b(digest_size=_HASH_BYTES)
        shape = self._array.shape if self._array is not None else (self._n,)
        h.update(f"dfwidgets-source-v1:{shape}".encode())
        h.update(self.content_hashes().tobytes())
        return h.hexdigest()

    # ------------------------------------------------------------------ checking
    def check(self, *, progress: bool = True) -> pd.DataFrame:
        """Fully decode every item, record failures in :attr:`problems` (one summary
        warning) and return :attr:`problems`."""
        if self._array is not None:
            return self.problems
        with self._lock:
            before = set(self._problems)
        from tqdm.auto import tqdm

        items = range(self._n)
        bar = tqdm(total=self._n, desc="checking images", disable=not progress, unit="img")
        with self._quiet_late():
            if self._paths is not None:
                with ThreadPoolExecutor(max_workers=min(_IO_THREADS, os.cpu_count() or 1)) as pool:
                    for _ in pool.map(self._load_path, items, chunksize=64):
                        bar.update()
            else:
                for i in items:
                    self._load_torch(i)
                    bar.update()
        bar.close()
        with self._lock:
            found = len(set(self._problems) - before)
        if found:
            self._warn_summary(found, "while decoding every image")
        return self.problems

    # ------------------------------------------------------------------ internals
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_lock", None)
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _record(self, i: int, path: str | None, reason: str, *, late: bool) -> None:
        with self._lock:
            new = i not in self._problems
            self._problems[i] = (path, reason)
            warn_now = late and new and not self._late_warning_given
            if warn_now:
                self._late_warning_given = True
        if warn_now:
            warnings.warn(
                f"ImageSource: item {i} ({path or 'dataset item'}) could not be decoded "
                f"({reason}) and was replaced by a grey placeholder; later failures are "
                "recorded silently - see src.problems (src.check() decodes everything).",
                UserWarning,
                stacklevel=4,
            )
        else:
            logger.debug("item %d (%s): %s", i, path, reason)

    @contextlib.contextmanager
    def _quiet_late(self) -> Iterator[None]:
        """Suppress the per-failure warning (the caller gives one summary instead)."""
        before = self._late_warning_given
        self._late_warning_given = True
        try:
            yield
        finally:
            self._late_warning_given = before

    def _warn_summary(self, count: int, when: str) -> None:
        warnings.warn(
            f"ImageSource: {count} of {self._n} images could not be read {when} and are "
            "shown as grey placeholders; see src.problems for the list and reasons.",
            UserWarning,
            stacklevel=3,
        )

    def _placeholder(self) -> Image.Image:
        size = self._placeholder_size or _DEFAULT_PLACEHOLDER_SIZE
        return Image.new("RGB", size, PLACEHOLDER_GREY)

    def _check_headers(self) -> None:
        """Open every file without decoding pixels; record the ones that fail."""
        from tqdm.auto import tqdm

        sizes: list[tuple[int, int]] = []
        found = 0
        paths = self._paths or []
        with ThreadPoolExecutor(max_workers=_IO_THREADS) as pool:  # threads hide disk latency
            probes = list(tqdm(pool.map(_probe_file, paths, chunksize=256), total=len(paths),
                               desc="checking image headers", unit="img", leave=False,
                               disable=len(paths) < _PROGRESS_FROM))
        for i, (p, (size, reason)) in enumerate(zip(paths, probes)):
            if reason is not None:
                self._problems[i] = (p, reason)
                found += 1
            elif size is not None and len(sizes) < 1000:
                sizes.append(size)
        if sizes:
            w = int(np.median([s[0] for s in sizes]))
            h = int(np.median([s[1] for s in sizes]))
            self._placeholder_size = (max(w, 1), max(h, 1))
        if found:
            self._warn_summary(found, "(missing, empty or not images)")

    def _load_path(self, i: int) -> Image.Image:
        assert self._paths is not None
        known = self._problems.get(i)
        if known is not None and not known[1].startswith("decode failed"):
            return self._placeholder()
        path = self._paths[i]
        try:
            img = _open_rgb(path)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded problem
            self._record(i, path, _reason(exc, path), late=True)
            return self._placeholder()
        if known is not None:  # fixed on disk since it failed
            with self._lock:
                self._problems.pop(i, None)
        return img

    def _load_torch(self, i: int) -> Image.Image:
        assert self._dataset_indices is not None
        j = int(self._dataset_indices[i])
        try:
            item = self._dataset[j]
            image = item[0] if isinstance(item, (tuple, list)) else item
            img = _any_to_rgb(image)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded problem
            self._record(i, None, f"dataset item {j} failed: {type(exc).__name__}: {exc}", late=True)
            return self._placeholder()
        if self._placeholder_size is None:
            self._placeholder_size = img.size
        return img


# ---------------------------------------------------------------------- helpers
def _is_missing(value: Any) -> bool:
    """None, NaN, pd.NA or NaT (cheap for the common str/int cases)."""
    if value is None:
        return True
    if isinstance(value, (str, bytes, int, np.integer)):
        return False
    if isinstance(value, (float, np.floating)):
        return math.isnan(value)
    try:
        return bool(pd.isna(value)) if np.ndim(value) == 0 else False
    except (TypeError, ValueError):
        return False


def _to_list(values: Any) -> Any:
    """Tensors/arrays to plain Python values (lists or scalars)."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    if isinstance(values, np.ndarray):
        return values.tolist()
    if isinstance(values, np.generic):
        return values.item()
    return list(values) if isinstance(values, (tuple, list)) else values


def _encode_labels(
    labels: Sequence[Any] | np.ndarray | None, classes: Sequence[str] | None, n: int
) -> tuple[np.ndarray | None, list[str] | None]:
    """Labels (names or ints; None/NaN/-1 = none) -> int64 (N,) and the class list.

    Names not in ``classes`` are appended to it; ints must index ``classes``.
    """
    cls_names = None if classes is None else [str(c) for c in classes]
    if cls_names is not None and len(set(cls_names)) != len(cls_names):
        raise ValueError(f"classes contain duplicates: {cls_names}; class names must be unique.")
    if labels is None:
        return None, cls_names
    if hasattr(labels, "detach"):
        labels = labels.detach().cpu().numpy()
    if isinstance(labels, np.ndarray) and np.issubdtype(labels.dtype, np.integer) and labels.ndim == 1:
        return _encode_int_labels(labels, cls_names, n)
    values = _to_list(labels) if not isinstance(labels, (str, bytes)) else labels
    if isinstance(values, (str, bytes)) or not isinstance(values, list):
        raise TypeError(f"labels must be a sequence with one label per image, got {type(labels).__name__}.")
    if len(values) != n:
        raise ValueError(f"labels has {len(values)} entries but there are {n} images; "
                         "give exactly one label per image (None for unlabeled).")
    out = np.full(n, -1, dtype=np.int64)
    names = list(cls_names) if cls_names is not None else []
    lookup = {c: k for k, c in enumerate(names)}
    ints: list[tuple[int, int]] = []
    for i, v in enumerate(values):
        if _is_missing(v) or (isinstance(v, str) and v == ""):
            continue
        if isinstance(v, (bool, np.bool_)):
            raise TypeError(f"label {i} is a bool ({v!r}); use class names or ints.")
        if isinstance(v, (int, np.integer)) or (isinstance(v, (float, np.floating)) and float(v).is_integer()):
            ints.append((i, int(v)))
            continue
        if isinstance(v, (float, np.floating)):
            raise TypeError(f"label {i} is {v!r}, not a class name or whole number.")
        name = str(v)
        k = lookup.get(name)
        if k is None:
            k = lookup[name] = len(names)
            names.append(name)
        out[i] = k
    if ints:
        if len(ints) < sum(1 for v in values if not _is_missing(v) and v != ""):
            raise ValueError("labels mix class names and integers; use one kind.")
        top = max(v for _, v in ints)
        bad = [v for _, v in ints if v < -1 or (cls_names is not None and v >= len(cls_names))]
        if bad:
            raise ValueError(
                f"integer labels must lie in [-1, {len(cls_names) - 1 if cls_names else 'K-1'}] "
                f"(-1 = unlabeled), got {sorted(set(bad))[:5]}; pass classes= with one name per class."
            )
        if cls_names is None:
            names = [str(k) for k in range(top + 1)] if top >= 0 else []
        for i, v in ints:
            out[i] = v
    if not names and cls_names is None:
        return out, []
    return out, names


def _encode_int_labels(
    labels: np.ndarray, cls_names: list[str] | None, n: int
) -> tuple[np.ndarray, list[str]]:
    """Vectorised path of :func:`_encode_labels` for an int array."""
    if len(labels) != n:
        raise ValueError(f"labels has {len(labels)} entries but there are {n} images; "
                         "give exactly one label per image (-1 for unlabeled).")
    out = labels.astype(np.int64)
    top = int(out.max()) if n else -1
    limit = len(cls_names) if cls_names is not None else None
    bad = out[(out < -1) | ((out >= limit) if limit is not None else False)]
    if bad.size:
        raise ValueError(
            f"integer labels must lie in [-1, {limit - 1 if limit is not None else 'K-1'}] "
            f"(-1 = unlabeled), got {sorted(set(bad.tolist()))[:5]}; pass classes= with one name per class."
        )
    names = cls_names if cls_names is not None else [str(k) for k in range(top + 1)]
    return out, names


def _default_ids(n: int) -> list[str]:
    width = max(5, len(str(max(n - 1, 0))))
    return [f"{i:0{width}d}" for i in range(n)]


def _unique_strings(values: list[str]) -> list[str]:
    seen: dict[str, int] = {}
    out = []
    for v in values:
        count = seen.get(v, 0)
        seen[v] = count + 1
        out.append(v if count == 0 else f"{v}#{count + 1}")
    return out


def _check_ids(ids: Sequence[Any], n: int) -> np.ndarray:
    arr = np.empty(n, dtype=object)
    values = [str(i) for i in _to_list(ids)] if not isinstance(ids, np.ndarray) else [str(i) for i in ids]
    if len(values) != n:
        raise ValueError(f"ids has {len(values)} entries but there are {n} images; give one id per image.")
    if len(set(values)) != n:
        dup = pd.Series(values)[pd.Series(values).duplicated()].unique()[:3].tolist()
        raise ValueError(f"ids must be unique; duplicates include {dup}.")
    arr[:] = values
    return arr


def _path_strings(paths: Iterable[str | os.PathLike]) -> list[str]:
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(
            "from_paths needs a list of file paths, got a single path; use "
            "ImageSource.from_folder(path) for a folder or from_paths([path]) for one file."
        )
    out = []
    for p in paths:
        if _is_missing(p):
            out.append("")
        else:
            out.append(os.fspath(p))
    return out


def _list_image_files(root: Path, *, recursive: bool) -> list[str]:
    """Relative posix paths of image files under root, sorted; hidden entries skipped."""
    found = []
    if recursive:
        for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(root).as_posix()
            prefix = "" if rel == "." else rel + "/"
            found.extend(prefix + f for f in filenames
                         if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS)
    else:
        for entry in os.scandir(root):
            if (entry.is_file() and not entry.name.startswith(".")
                    and os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS):
                found.append(entry.name)
    return sorted(found)


def _bomb_reason(exc: BaseException) -> str:
    return (f"decompression bomb: {exc} Raise PIL.Image.MAX_IMAGE_PIXELS if you trust this file.")


def _reason(exc: BaseException, path: str) -> str:
    """A short, user-facing reason for a failed file."""
    if isinstance(exc, Image.DecompressionBombError):
        return _bomb_reason(exc)
    if isinstance(exc, FileNotFoundError):
        return "missing: file not found"
    if isinstance(exc, PermissionError):
        return "unreadable: permission denied"
    if isinstance(exc, IsADirectoryError):
        return "unreadable: is a folder, not a file"
    if isinstance(exc, UnidentifiedImageError):
        return "not an image: PIL cannot identify the file format"
    return f"decode failed: {type(exc).__name__}: {exc}"


_OPEN_LOCK = threading.Lock()  # warnings.catch_warnings is process-global, not per thread


def _open_quietly(path: str) -> Image.Image:
    """``Image.open`` without PIL's per-file DecompressionBombWarning (over-limit images
    that are below twice the limit still open; larger ones raise DecompressionBombError)."""
    with _OPEN_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        return Image.open(path)


def _probe_file(path: str) -> tuple[tuple[int, int] | None, str | None]:
    """Cheap header check: ((width, height), None) when fine, (None, reason) when not."""
    if not path:
        return None, "missing: no path given"
    try:
        st = os.stat(path)
    except OSError as exc:
        return None, _reason(exc, path)
    if stat.S_ISDIR(st.st_mode):
        return None, "unreadable: is a folder, not a file"
    if st.st_size == 0:
        return None, "empty: zero-byte file"
    try:
        with _open_quietly(path) as img:
            return img.size, None
    except Exception as exc:  # noqa: BLE001 - report, never raise
        return None, _reason(exc, path)


def _open_rgb(path: str) -> Image.Image:
    """Fully decode a file to RGB (EXIF rotation applied); raises on any failure."""
    if not path:
        raise FileNotFoundError("no path given")
    if os.path.getsize(path) == 0:
        raise UnidentifiedImageError("zero-byte file")
    with _open_quietly(path) as img:
        img.load()
        try:
            img = ImageOps.exif_transpose(img)
        except Exception:  # noqa: BLE001 - a bad EXIF block is not worth losing the image
            logger.debug("ignoring bad EXIF orientation in %s", path)
        return _to_rgb(img)


def _to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode -> RGB: alpha composited on white, palettes expanded, CMYK converted,
    16-bit / 32-bit / float grey scaled to 8 bits."""
    mode = img.mode
    if mode == "RGB":
        return img.copy() if img.readonly else img
    if mode == "P":
        img = img.convert("RGBA") if "transparency" in img.info else img.convert("RGB")
        mode = img.mode
        if mode == "RGB":
            return img
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if mode.startswith("I;16") or mode in ("I", "F"):
        a = np.asarray(img).astype(np.float64)
        if mode.startswith("I;16") or (mode == "I" and a.size and a.min() >= 0 and a.max() <= 65535
                                       and a.max() > 255):
            a = a / 257.0
        elif mode == "F" and a.size and a.min() >= 0 and a.max() <= 1:
            a = a * 255.0
        elif a.size and (a.min() < 0 or a.max() > 255):
            lo, hi = float(a.min()), float(a.max())
            a = (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)
        grey = np.clip(np.rint(a), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    return img.convert("RGB")


def _array_to_rgb(a: np.ndarray) -> Image.Image:
    """One uint8 image (H, W) / (H, W, C) -> RGB PIL image."""
    if a.ndim == 2:
        return Image.fromarray(a).convert("RGB")
    c = a.shape[2]
    if c == 3:
        return Image.fromarray(a)
    if c == 1:
        return Image.fromarray(a[:, :, 0]).convert("RGB")
    return _to_rgb(Image.fromarray(a))  # (H, W, 4) -> RGBA, composited on white


def _as_uint8_images(arr: Any) -> np.ndarray:
    """Validate / convert an image array to uint8 (N, H, W) or (N, H, W, C)."""
    if hasattr(arr, "detach"):
        arr = arr.detach().cpu().numpy()
    a = np.asarray(arr)
    if a.ndim not in (3, 4):
        raise ValueError(
            f"from_array needs shape (N, H, W) or (N, H, W, C), got {a.shape}; for a single "
            "image use arr[None]."
        )
    if a.shape[0] == 0:
        raise ValueError("from_array got 0 images.")
    if a.ndim == 4 and a.shape[3] not in (1, 3, 4):
        hint = (" It looks channels-first: use arr.transpose(0, 2, 3, 1)."
                if a.shape[1] in (1, 3, 4) else "")
        raise ValueError(f"from_array: the last axis must be 1, 3 or 4 channels, got shape {a.shape}.{hint}")
    if a.dtype == np.uint8:
        return np.ascontiguousarray(a)
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = (float(np.nanmin(a)), float(np.nanmax(a)))
        if np.isnan(a).any() or lo < 0 or hi > 1:
            raise ValueError(
                f"from_array: float images must hold values in [0, 1] (got min {lo:g}, max {hi:g}"
                f"{', and NaN' if np.isnan(a).any() else ''}); scale them and pass "
                "(arr * 255).round().astype(np.uint8)."
            )
        logger.warning("from_array: float images in [0, 1] were scaled to uint8 0..255.")
        return np.rint(a * 255.0).astype(np.uint8)
    fix = ""
    if np.issubdtype(a.dtype, np.integer) and a.size and a.min() >= 0 and a.max() <= 255:
        fix = " The values fit in 0..255, so arr.astype(np.uint8) works."
    elif np.issubdtype(a.dtype, np.integer):
        fix = " Rescale to 0..255 first, e.g. (arr / arr.max() * 255).astype(np.uint8)."
    raise ValueError(f"from_array needs dtype uint8 (or float in [0, 1]), got {a.dtype}.{fix}")


def _any_to_rgb(image: Any) -> Image.Image:
    """PIL image, CHW tensor (float [0, 1] or uint8) or HWC/HW ndarray -> RGB PIL image."""
    if isinstance(image, Image.Image):
        image.load()
        return _to_rgb(image)
    is_tensor = hasattr(image, "detach")
    if is_tensor:
        image = image.detach().cpu().numpy()
    a = np.asarray(image)
    if a.ndim == 3 and is_tensor and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)  # CHW -> HWC
    elif a.ndim == 3 and a.shape[-1] not in (1, 3, 4) and a.shape[0] in (1, 3, 4):
        a = np.moveaxis(a, 0, -1)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4)):
        raise ValueError(f"cannot read an image of shape {a.shape}; expected HW, HWC or CHW.")
    if np.issubdtype(a.dtype, np.floating):
        lo, hi = float(a.min()), float(a.max())
        if lo >= 0 and hi <= 1:
            a = a * 255.0
        elif hi > lo:  # e.g. normalised tensors: stretch to the visible range
            a = (a - lo) * (255.0 / (hi - lo))
        a = np.clip(np.rint(a), 0, 255).astype(np.uint8)
    elif a.dtype != np.uint8:
        if a.size and a.min() >= 0 and a.max() <= 255:
            a = a.astype(np.uint8)
        else:
            a = np.clip(np.rint(a.astype(np.float64) / max(float(a.max()), 1.0) * 255), 0, 255).astype(np.uint8)
    return _array_to_rgb(np.ascontiguousarray(a))


# ---------------------------------------------------------------------- file hashes
def _hash_file(path: str) -> bytes:
    h = hashlib.blake2b(digest_size=_HASH_BYTES)
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.digest()


def _hash_missing(path: str, reason: str) -> bytes:
    return hashlib.blake2b(f"dfwidgets-missing:{reason}:{path}".encode(),
                           digest_size=_HASH_BYTES).digest()


def _open_hash_db() -> sqlite3.Connection:
    db = sqlite3.connect(cache_dir(sub="hashes") / _HASH_CACHE_FILE, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS file_hash (path TEXT PRIMARY KEY, size INTEGER NOT NULL, "
        "mtime_ns INTEGER NOT NULL, hash BLOB NOT NULL)"
    )
    return db


def _file_hashes(paths: list[str], *, memo: dict[str, tuple[int, int, bytes]]) -> np.ndarray:
    """blake2b-128 of each file's bytes, cached by (absolute path, size, mtime_ns).

    ``memo`` (per source, in memory) is checked first, then the SQLite cache under
    ``cache_dir(sub="hashes")``; only files whose size or mtime changed are read.
    """
    n = len(paths)
    out = np.empty(n, dtype=f"S{_HASH_BYTES}")
    keys: list[tuple[str, int, int] | None] = [None] * n
    misses: list[int] = []
    for i, p in enumerate(paths):
        if not p:
            out[i] = _hash_missing(p, "no path")
            continue
        try:
            st = os.stat(p)
        except OSError as exc:
            out[i] = _hash_missing(p, type(exc).__name__)
            continue
        key = (p if os.path.isabs(p) else os.path.abspath(p), st.st_size, st.st_mtime_ns)
        keys[i] = key
        hit = memo.get(key[0])
        if hit is not None and hit[0] == key[1] and hit[1] == key[2]:
            out[i] = hit[2]
        else:
            misses.append(i)
    if not misses:
        return out
    try:
        db: sqlite3.Connection | None = _open_hash_db()
        known = _lookup_hashes(db, [keys[i][0] for i in misses])  # type: ignore[index,arg-type]
    except sqlite3.Error as exc:  # e.g. a read-only cache folder: hash without the cache
        logger.warning("file hash cache unavailable (%s); hashing every file.", exc)
        db, known = None, {}
    try:
        todo = []
        for i in misses:
            key = keys[i]
            assert key is not None
            hit = known.get(key[0])
            if hit is not None and hit[0] == key[1] and hit[1] == key[2]:
                out[i] = hit[2]
                memo[key[0]] = hit
            else:
                todo.append(i)
        if todo:
            def work(i: int) -> bytes:
                try:
                    return _hash_file(paths[i])
                except OSError as exc:
                    return _hash_missing(paths[i], type(exc).__name__)

            with ThreadPoolExecutor(max_workers=min(_IO_THREADS, os.cpu_count() or 1)) as pool:
                digests = list(pool.map(work, todo, chunksize=64))
            rows = []
            for i, d in zip(todo, digests):
                key = keys[i]
                assert key is not None
                out[i] = d
                memo[key[0]] = (key[1], key[2], d)
                rows.append((key[0], key[1], key[2], d))
            if db is not None:
                try:
                    with db:
                        db.executemany("INSERT OR REPLACE INTO file_hash VALUES (?, ?, ?, ?)", rows)
                except sqlite3.Error as exc:
                    logger.warning("could not update the file hash cache: %s", exc)
    finally:
        if db is not None:
            db.close()
    return out


def _lookup_hashes(db: sqlite3.Connection, wanted: list[str]) -> dict[str, tuple[int, int, bytes]]:
    """Cached (size, mtime_ns, hash) for the wanted absolute paths."""
    wanted_set = set(wanted)
    total = db.execute("SELECT COUNT(*) FROM file_hash").fetchone()[0]
    if total <= 4 * len(wanted_set):  # cheaper to read the whole (small) table
        rows = db.execute("SELECT path, size, mtime_ns, hash FROM file_hash")
        return {r[0]: (r[1], r[2], bytes(r[3])) for r in rows if r[0] in wanted_set}
    known: dict[str, tuple[int, int, bytes]] = {}
    chunk_list = sorted(wanted_set)
    for start in range(0, len(chunk_list), 500):
        chunk = chunk_list[start:start + 500]
        rows = db.execute(
            f"SELECT path, size, mtime_ns, hash FROM file_hash WHERE path IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        known.update({r[0]: (r[1], r[2], bytes(r[3])) for r in rows})
    return known

"""ImageSource: random access to N images as RGB PIL images, with stable ids and labels.

Build one with a ``from_*`` constructor (:mod:`dfwidgets.data.constructors`) or a
built-in dataset (:mod:`dfwidgets.datasets`). A bad file never stops a run: broken items
are listed in :attr:`ImageSource.problems` and replaced by a grey placeholder.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from dfwidgets.data.constructors import SourceConstructors
from dfwidgets.data.decoding import IO_THREADS, any_to_rgb, array_to_rgb, failure_reason, open_rgb
from dfwidgets.data.file_hashes import HASH_BYTES, FileMemo, array_hashes, file_hashes, image_hashes
from dfwidgets.data.label_encoding import check_ids
from dfwidgets.data.problems import ProblemLog

__all__ = ["ImageSource"]


class ImageSource(SourceConstructors):
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
        self._ids = check_ids(ids, self._n)
        self._labels = labels
        self._classes = classes
        self._array = array
        self._paths = paths
        self._dataset = dataset
        self._dataset_indices = dataset_indices
        self._frame = frame
        self._spec = spec
        self._problems = ProblemLog(self._n)
        self._memo_hashes: np.ndarray | None = None
        self._file_memo: FileMemo = {}

    # ------------------------------------------------------------------ basic access
    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        extra = f", {len(self._classes)} classes" if self._classes else ""
        bad = f", {len(self._problems)} problems" if len(self._problems) else ""
        return f"<ImageSource {self._kind}: {self._n} images{extra}{bad}>"

    def __getitem__(self, index: int | np.integer) -> Image.Image:
        """Item ``index`` as an RGB PIL image (a grey placeholder for a bad item)."""
        i = self._position(index)
        if self._array is not None:
            return array_to_rgb(self._array[i])
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
    def kind(self) -> str:
        """How the source was built: "folder", "paths", "dataframe", "array" or "torch"
        (a subset keeps the kind of its parent)."""
        return self._kind

    @property
    def labels_from_folders(self) -> bool:
        """True when :attr:`labels` are the class sub-folder names of ``from_folder``
        (labels a user gave), not ground truth that came with a dataset."""
        return self._kind == "folder" and self._labels is not None

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
        return self._problems.frame()

    def problem(self, index: int) -> str | None:
        """Why item ``index`` could not be read, or ``None`` when it reads fine."""
        found = self._problems.get(self._position(index))
        return None if found is None else found[1]

    def note_problem(self, index: int, reason: str) -> None:
        """Record that item ``index`` could not be read, found by another process (e.g. a
        Ray worker); the first one found this way warns, like a failure found here."""
        i = self._position(index)
        path = None if self._paths is None else self._paths[i]
        self._problems.record(i, path, reason, late=True)

    @property
    def placeholder_size(self) -> tuple[int, int] | None:
        """``(width, height)`` of the grey placeholder for unreadable items (None: 64x64)."""
        return self._problems.placeholder_size

    # ------------------------------------------------------------------ subsets
    def subset(self, indices: Sequence[int] | np.ndarray) -> ImageSource:
        """A new source with items ``indices`` (ints or an ``(N,)`` boolean mask), keeping
        ids, labels, classes, the frame's rows and known problems."""
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
        if sub._array is not None and self._array is not None and not self._array.flags.writeable:
            sub._array.flags.writeable = False
        sub._problems = self._problems.subset(idx)
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
            out = array_hashes(self._array)
            if not self._array.flags.writeable:  # read-only arrays cannot change under us
                self._memo_hashes = out
            return out.copy()
        if self._paths is not None:
            return file_hashes(self._paths, memo=self._file_memo)
        self._memo_hashes = image_hashes(self, self._n)
        return self._memo_hashes.copy()

    def fingerprint(self) -> str:
        """Hex digest over all content hashes and the item count/shape: a cache key for
        whole-dataset results such as embeddings."""
        h = hashlib.blake2b(digest_size=HASH_BYTES)
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
        before = self._problems.indices()
        from tqdm.auto import tqdm

        items = range(self._n)
        bar = tqdm(total=self._n, desc="checking images", disable=not progress, unit="img")
        with self._problems.quiet_late():
            if self._paths is not None:
                with ThreadPoolExecutor(max_workers=min(IO_THREADS, os.cpu_count() or 1)) as pool:
                    for _ in pool.map(self._load_path, items, chunksize=64):
                        bar.update()
            else:
                for i in items:
                    self._load_torch(i)
                    bar.update()
        bar.close()
        found = len(self._problems.indices() - before)
        if found:
            self._problems.warn_summary(found, "while decoding every image")
        return self.problems

    # ------------------------------------------------------------------ loading
    def _load_path(self, i: int) -> Image.Image:
        assert self._paths is not None
        known = self._problems.get(i)
        if known is not None and not known[1].startswith("decode failed"):
            return self._problems.placeholder()
        path = self._paths[i]
        try:
            img = open_rgb(path)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded problem
            self._problems.record(i, path, failure_reason(exc), late=True)
            return self._problems.placeholder()
        if known is not None:  # fixed on disk since it failed
            self._problems.forget(i)
        return img

    def _load_torch(self, i: int) -> Image.Image:
        assert self._dataset_indices is not None
        j = int(self._dataset_indices[i])
        try:
            item = self._dataset[j]
            image = item[0] if isinstance(item, (tuple, list)) else item
            img = any_to_rgb(image)
        except Exception as exc:  # noqa: BLE001 - any failure becomes a recorded problem
            self._problems.record(i, None, f"dataset item {j} failed: {type(exc).__name__}: {exc}",
                                  late=True)
            return self._problems.placeholder()
        if self._problems.placeholder_size is None:
            self._problems.placeholder_size = img.size
        return img


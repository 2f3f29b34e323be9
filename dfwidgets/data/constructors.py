"""The ``from_*`` constructors of :class:`~dfwidgets.data.ImageSource`, and ``from_spec``.

:class:`SourceConstructors` is a mixin: each constructor validates its input, encodes
labels and ids, and calls ``cls(kind=..., ...)``. ``from_spec`` rebuilds a source from its
JSON recipe; built-in datasets register their rebuilders with :func:`register_spec_builder`
(so this module never imports them).
"""

# ruff: noqa: PYI019 - Python 3.10 has no typing.Self; the TypeVar S stands in for it

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd

from dfwidgets.data.decoding import as_uint8_images
from dfwidgets.data.label_encoding import (
    default_ids,
    encode_labels,
    is_missing,
    to_list,
    unique_strings,
)

__all__ = ["IMAGE_EXTENSIONS", "SourceConstructors", "register_spec_builder"]

#: File name endings that :meth:`ImageSource.from_folder` treats as images.
IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
     ".pbm", ".pnm", ".jfif", ".jp2", ".ico", ".tga"}
)

S = TypeVar("S", bound="SourceConstructors")
_SPEC_BUILDERS: dict[str, Callable[[dict], Any]] = {}
_FILE_KINDS = ("folder", "paths", "subset")


def register_spec_builder(kind: str, builder: Callable[[dict], Any]) -> None:
    """Let :meth:`ImageSource.from_spec` rebuild specs with ``spec["kind"] == kind`` by
    calling ``builder(spec)`` (how built-in datasets such as Fashion-MNIST come back)."""
    if kind in _FILE_KINDS:
        raise ValueError(f"spec kind {kind!r} is built in; pick another name.")
    _SPEC_BUILDERS[kind] = builder


class SourceConstructors:
    """Classmethods that build an image source; mixed into ``ImageSource``."""

    _problems: Any  # ProblemLog, set by ImageSource.__init__

    def __init__(self, **kwargs: Any) -> None:  # pragma: no cover - ImageSource defines it
        raise NotImplementedError

    @classmethod
    def from_array(
        cls: type[S],
        arr: Any,
        *,
        labels: Sequence[Any] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
    ) -> S:
        """Images from a uint8 array ``(N, H, W)`` (grey) or ``(N, H, W, C)``, C in 1, 3, 4.

        Float arrays with values in ``[0, 1]`` are scaled to uint8 (with a note in the log);
        any other dtype or shape raises a ``ValueError`` that says how to fix it.
        """
        array = as_uint8_images(arr)
        n = len(array)
        lab, cls_names = encode_labels(labels, classes, n)
        ids = default_ids(n) if ids is None else ids
        return cls(kind="array", n=n, ids=ids, labels=lab, classes=cls_names, array=array)

    @classmethod
    def from_paths(
        cls: type[S],
        paths: Iterable[str | os.PathLike],
        *,
        labels: Sequence[Any] | np.ndarray | None = None,
        classes: Sequence[str] | None = None,
        ids: Sequence[str] | None = None,
        check: bool = True,
    ) -> S:
        """Images from a list of file paths.

        ``labels``: one per path (class names, or ints indexing ``classes``; ``None``/-1 =
        unlabeled). ``ids`` default to the paths as given. ``check`` reads every file's
        header now (fast) so missing and non-image files show up in :attr:`problems` at once.
        """
        path_list = _path_strings(paths)
        n = len(path_list)
        if n == 0:
            raise ValueError("from_paths got an empty list of paths; pass at least one image file.")
        lab, cls_names = encode_labels(labels, classes, n)
        if ids is None:
            ids = unique_strings(path_list)
        return cls._from_files("paths", path_list, ids=ids, labels=lab, classes=cls_names,
                               spec=_paths_spec(path_list, lab, cls_names, ids), check=check)

    @classmethod
    def from_folder(
        cls: type[S],
        path: str | os.PathLike,
        *,
        labels: str | None = "auto",
        recursive: bool = True,
        check: bool = True,
    ) -> S:
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
        return cls._from_files("folder", full, ids=rel, labels=lab, classes=cls_names,
                               spec=spec, check=check)

    @classmethod
    def from_dataframe(
        cls: type[S],
        df: pd.DataFrame,
        *,
        path_column: str = "path",
        label_column: str | None = None,
        classes: Sequence[str] | None = None,
        check: bool = True,
    ) -> S:
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
        path_list = ["" if is_missing(p) else os.fspath(p) for p in df[path_column].tolist()]
        lab = cls_names = None
        if label_column is not None:
            lab, cls_names = encode_labels(df[label_column].tolist(), classes, len(df))
        ids = [str(i) for i in df.index] if df.index.is_unique else default_ids(len(df))
        if len(set(ids)) != len(ids):
            ids = default_ids(len(df))
        return cls._from_files("dataframe", path_list, ids=ids, labels=lab, classes=cls_names,
                               spec=_paths_spec(path_list, lab, cls_names, ids), check=check,
                               frame=df)

    @classmethod
    def _from_files(cls: type[S], kind: str, paths: list[str], *, ids: Sequence[str],
                    labels: np.ndarray | None, classes: list[str] | None, spec: dict,
                    check: bool, frame: pd.DataFrame | None = None) -> S:
        """A file source of ``len(paths)`` images; ``check`` reads every header now."""
        src = cls(kind=kind, n=len(paths), ids=ids, labels=labels, classes=classes,
                  paths=paths, frame=frame, spec=spec)
        if check:
            src._problems.check_headers(paths)
        return src

    @classmethod
    def from_torch(cls: type[S], dataset: Any, *, classes: Sequence[str] | None = None) -> S:
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
            raw = to_list(targets)
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
                raw.append(to_list(item[1]) if has_label else None)
        if all(r is None for r in raw):
            lab, cls_names = None, (list(classes) if classes is not None else None)
        else:
            lab, cls_names = encode_labels(raw, classes, n)
        src = cls(kind="torch", n=n, ids=default_ids(n), labels=lab, classes=cls_names,
                  dataset=dataset, dataset_indices=np.arange(n, dtype=np.int64))
        if failed:
            for i, reason in failed.items():
                src._problems.add(i, None, reason)
            src._problems.warn_summary(len(failed), "(the dataset raised an error)")
        return src

    @classmethod
    def from_spec(cls: type[S], spec: dict) -> S:
        """Rebuild a source from its :attr:`spec` (as stored by a Session)."""
        if not isinstance(spec, dict) or "kind" not in spec:
            raise ValueError(f"from_spec needs a dict with a 'kind' key (from src.spec), got {spec!r}.")
        kind = spec["kind"]
        builder = _SPEC_BUILDERS.get(kind)
        if builder is not None:
            return builder(spec)
        if kind == "folder":
            return cls.from_folder(spec["path"], labels=spec.get("labels", "auto"),
                                   recursive=spec.get("recursive", True))
        if kind == "paths":
            return cls.from_paths(spec["paths"], labels=spec.get("labels"),
                                  classes=spec.get("classes"), ids=spec.get("ids"))
        if kind == "subset":
            return cls.from_spec(spec["of"]).subset(np.asarray(spec["indices"], dtype=np.int64))
        raise ValueError(
            f"from_spec: unknown kind {kind!r}; expected one of "
            f"{', '.join([*_SPEC_BUILDERS, *_FILE_KINDS])}."
        )

    def subset(self: S, indices: Sequence[int] | np.ndarray) -> S:  # pragma: no cover
        raise NotImplementedError  # defined by ImageSource


def _paths_spec(paths: list[str], labels: np.ndarray | None, classes: list[str] | None,
                ids: Sequence[str]) -> dict:
    """The ``from_spec`` recipe of a list of files (absolute paths, labels ``(N,)``, ids)."""
    return {
        "kind": "paths",
        "paths": [os.path.abspath(p) if p else "" for p in paths],
        "labels": None if labels is None else labels.tolist(),
        "classes": classes,
        "ids": [str(i) for i in ids],
    }


def _path_strings(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The paths as strings (``""`` for a missing one); TypeError for a single path."""
    if isinstance(paths, (str, os.PathLike)):
        raise TypeError(
            "from_paths needs a list of file paths, got a single path; use "
            "ImageSource.from_folder(path) for a folder or from_paths([path]) for one file."
        )
    return ["" if is_missing(p) else os.fspath(p) for p in paths]


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

"""Opening a project folder: the source (rebuilt from its recipe), the embeddings file,
the classes seeded from the dataset, the model restored or refitted.

The folder holds ``labels.sqlite`` (labels, history, classes, curve and metadata: the
source recipe and fingerprint, the audit and holdout item ids), ``embeddings.npy``
(float32) and ``model/last_model.npz``.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..store import LabelStore
from .checks import check_strategy

if TYPE_CHECKING:
    from .session import Session

__all__ = ["EMBEDDINGS_FILE", "PROJECT_DIR", "from_folder", "load_or_make_embeddings",
           "model_name", "open_session"]

log = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
PROJECT_DIR = ".dfwidgets"  # Session.from_folder's project, inside the image folder (hidden)


def from_folder(cls: type[Session], folder: str | os.PathLike, *,
                project: str | os.PathLike | None = None, model: Any = None,
                **open_kwargs: Any) -> Session:
    """A Session over the images under ``folder`` (class sub-folders become folder labels,
    see ``session.import_labels("folders")``), in the project folder ``project`` (default
    ``<folder>/.dfwidgets``, hidden so it is never read as images), reopened with
    everything restored when it exists. The first time, embeddings are computed with
    ``model`` (default "ViT-B-32"; "efficientnet_lite0" offline) with a progress bar and
    the embedding cache. ``open_kwargs`` go to :meth:`Session.open`."""
    from ..data import ImageSource

    if "source" in open_kwargs:
        raise TypeError("from_folder builds the source from the folder; use Session.open("
                        "path, source=...) to pass one.")
    root = Path(folder).expanduser()
    source = ImageSource.from_folder(root)
    path = root / PROJECT_DIR if project is None else Path(project).expanduser()
    return cls.open(path, source=source, model=model, **open_kwargs)


def open_session(cls: type[Session], path: str | os.PathLike, *, source: Any, embeddings: Any,
                 model: Any, auto_fit: bool, strategy: str, fit_delay: float,
                 smoothing: float) -> Session:
    """Create or reopen the project folder ``path`` (see :meth:`Session.open`)."""
    if not np.isfinite(smoothing) or smoothing < 0:
        raise ValueError(f"smoothing must be a weight >= 0 (0 = off); got {smoothing}")
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(f"{path} is a file; Session.open needs a project folder.")
    path.mkdir(parents=True, exist_ok=True)
    check_strategy(strategy)
    store = LabelStore(path)
    try:
        return _open(cls, path, store, source=source, embeddings=embeddings, model=model,
                     auto_fit=auto_fit, strategy=strategy, fit_delay=fit_delay,
                     smoothing=smoothing)
    except BaseException:
        store.close()
        raise


def _resolve_source(path: Path, store: LabelStore, source: Any) -> Any:
    from ..data import ImageSource

    saved = store.get_meta("source")
    if source is None:
        if saved is None:
            raise ValueError(
                f"{path} is a new project: pass source= (an ImageSource, e.g. "
                "dfw.datasets.fashion_mnist() or ImageSource.from_folder(...))."
            )
        if saved.get("spec") is None:
            raise ValueError(
                f"The source of {path} was built in memory and cannot be rebuilt; pass "
                "source= again (the same images)."
            )
        source = ImageSource.from_spec(saved["spec"])
    elif not isinstance(source, ImageSource):
        raise TypeError(
            f"source must be an ImageSource, got {type(source).__name__}; wrap it with "
            "ImageSource.from_array / from_paths / from_folder / from_torch / from_dataframe."
        )
    if len(source) == 0:
        raise ValueError("The source has no items; there is nothing to label.")
    return source


def _open(cls: type[Session], path: Path, store: LabelStore, *, source: Any, embeddings: Any,
          model: Any, auto_fit: bool, strategy: str, fit_delay: float,
          smoothing: float) -> Session:
    source = _resolve_source(path, store, source)
    saved = store.get_meta("source")
    fingerprint = source.fingerprint()
    if saved is not None and saved.get("fingerprint") != fingerprint:
        raise ValueError(
            f"{path} was made for another dataset ({saved.get('n')} items, fingerprint "
            f"{str(saved.get('fingerprint'))[:12]}...); this source has {len(source)} items "
            f"(fingerprint {fingerprint[:12]}...). Open a new folder for this source."
        )
    emb = load_or_make_embeddings(path, store, source, fingerprint, embeddings, model)
    name = model_name(model) if model is not None else store.get_meta("model")
    if saved is None:  # only once the embeddings are known to fit the source
        store.set_meta("source", {"spec": source.spec, "fingerprint": fingerprint,
                                  "n": len(source)})
    if model is not None:
        store.set_meta("model", name)
    if store.get_meta("classes_seeded") is None:
        for class_name in source.classes or []:
            store.add_class(str(class_name))
        store.set_meta("classes_seeded", True)
    session = cls(path, source=source, embeddings=emb, store=store, model=name,
                  auto_fit=auto_fit, strategy=strategy, fit_delay=fit_delay,
                  smoothing=smoothing, embedder=None if isinstance(model, str) else model)
    log.info("Session %s: %d items, %d labels, classes %s", path, len(source),
             session._labels.n_labeled(), session.classes)
    restored = session._model_file.restore()  # no refit when the labels are unchanged
    if auto_fit and not restored and session._fit.can_fit(*session._labels.snapshot()[1:])[0]:
        session._fit.request(delay=0.0)  # (re)fit the model in the background
    return session


def model_name(model: Any) -> str:
    """The name saved for an embedder given by name or as an object."""
    return model if isinstance(model, str) else str(getattr(model, "name", model))


def array_hash(arr: np.ndarray) -> str:
    """Content hash of an array (shape, dtype and bytes)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((arr.shape, str(arr.dtype))).encode())
    h.update(memoryview(np.ascontiguousarray(arr)).cast("B"))
    return h.hexdigest()


def load_or_make_embeddings(path: Path, store: LabelStore, source: Any, fingerprint: str,
                            embeddings: Any, model: Any) -> np.ndarray:
    """Validate given embeddings (and save them), load saved ones, or compute them.

    ``embeddings`` may be a Parquet file from ``dfw.embed_to_parquet``: its vectors are
    aligned to the source's items by id (ValueError naming the ids it lacks)."""
    from ..learn._checks import check_embeddings

    if isinstance(embeddings, (str, os.PathLike)):
        from ..embed_parquet import read_embeddings_parquet

        embeddings, parquet_model = read_embeddings_parquet(embeddings, source.ids)
        model = model if model is not None else parquet_model

    file = path / EMBEDDINGS_FILE
    meta = store.get_meta("embeddings")
    same_model = model is None or (meta or {}).get("model") in (None, model_name(model))
    if embeddings is None and file.exists() and meta is not None and same_model:
        if meta.get("source_fingerprint") != fingerprint:
            raise ValueError(
                f"{file} was computed for other images than this source; pass embeddings= "
                "or model= to Session.open to recompute them."
            )
        emb = np.load(file)
        if emb.shape[0] != len(source):
            raise ValueError(f"{file} has {emb.shape[0]} rows but the source has "
                             f"{len(source)} items; pass embeddings= to replace it.")
        return emb
    if embeddings is None:
        if model is None:
            model = store.get_meta("model") or "ViT-B-32"
        from ..embed import embed

        log.info("computing embeddings with %s", model_name(model))
        embeddings = embed(source, model=model)
        store.set_meta("model", model_name(model))
    emb = check_embeddings(embeddings, name="embeddings")
    if emb.shape[0] != len(source):
        raise ValueError(
            f"embeddings have {emb.shape[0]} rows but the source has {len(source)} items; "
            "pass one embedding row per item, in source order."
        )
    digest = array_hash(emb)
    if meta is None or meta.get("hash") != digest or not file.exists():
        tmp = file.with_suffix(".tmp.npy")
        np.save(tmp, emb)
        os.replace(tmp, file)
        store.set_meta("embeddings", {"source_fingerprint": fingerprint, "hash": digest,
                                      "shape": list(emb.shape), "dtype": "float32",
                                      "model": None if model is None else model_name(model)})
    return emb

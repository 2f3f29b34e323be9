"""Embeddings of collections larger than memory, to Parquet, and back by item id.

>>> dfw.embed_to_parquet("photos/", "emb.parquet", model="ViT-B-32", engine="ray")
>>> session = dfw.Session.open("proj/", source=src, embeddings="emb.parquet")

Input: a folder (ids = paths relative to it, as ``ImageSource.from_folder``), a list of
paths (ids = the paths, as ``from_paths``), a Parquet file with a ``path`` column (and an
optional ``id`` column), or a file ImageSource (its ids). Paths are streamed in chunks and
images are decoded a batch at a time, so memory does not grow with the collection.
Output: Parquet rows ``(id, path, vector, problem)``, ``vector`` a fixed-size float32
list, ``problem`` the reason an image could not be read (then its vector is the grey
placeholder's, as in :func:`dfwidgets.embed`) or null. Vectors also go to the embedding
cache, so a rerun after a crash or Ctrl-C computes only what is missing.
"""

from __future__ import annotations

import logging
import os
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dfwidgets.embed import DEFAULT_MODEL, Embedder, _forward, embed, get_embedder

__all__ = ["embed_to_parquet", "read_embeddings_parquet"]

log = logging.getLogger(__name__)

_CHUNK = 4096  # rows per local-engine chunk and per Parquet row group
_META_MODEL = b"dfwidgets.model"


def _write_paths(rows: Iterable[tuple[str, str]], target: Path) -> int:
    """Stream ``(id, path)`` pairs into a Parquet file in chunks -> row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("path", pa.string())])
    count = 0
    with pq.ParquetWriter(target, schema) as writer:
        ids: list[str] = []
        paths: list[str] = []
        for item_id, path in rows:
            ids.append(item_id)
            paths.append(path)
            if len(ids) >= _CHUNK:
                writer.write_table(pa.table({"id": ids, "path": paths}, schema=schema))
                count += len(ids)
                ids, paths = [], []
        if ids or count == 0:
            writer.write_table(pa.table({"id": ids, "path": paths}, schema=schema))
            count += len(ids)
    return count


def _walk_folder(root: Path) -> Iterator[tuple[str, str]]:
    """(relative posix path, full path) of the images under ``root``, folder by folder."""
    from dfwidgets.data.constructors import IMAGE_EXTENSIONS

    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        for f in sorted(filenames):
            if not f.startswith(".") and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS:
                yield prefix + f, os.path.join(dirpath, f)


def _as_path_table(inputs: Any, tmp: Path) -> tuple[Path, int]:
    """The input as a Parquet file with ``id`` and ``path`` columns -> (file, rows)."""
    import pyarrow.parquet as pq

    from dfwidgets.data import ImageSource

    if isinstance(inputs, ImageSource):
        if inputs.paths is None:
            raise TypeError("embed_to_parquet streams files; this ImageSource holds arrays or a "
                            "dataset: use dfw.embed(source) and save the result instead.")
        pairs: Iterable[tuple[str, str]] = zip(map(str, inputs.ids), inputs.paths)
    elif isinstance(inputs, (str, os.PathLike)):
        path = Path(inputs).expanduser()
        if path.is_dir():
            pairs = _walk_folder(path.absolute())
        elif path.suffix.lower() == ".parquet" and path.is_file():
            names = pq.ParquetFile(path).schema_arrow.names
            if "path" not in names:
                raise ValueError(f"{path} has columns {names}; embed_to_parquet needs a 'path' "
                                 "column (and optionally 'id').")
            if "id" in names:
                return path, pq.ParquetFile(path).metadata.num_rows
            pairs = ((str(b), str(b)) for batch in pq.ParquetFile(path).iter_batches(
                columns=["path"], batch_size=_CHUNK) for b in batch.column(0).to_pylist())
        else:
            raise FileNotFoundError(
                f"embed_to_parquet: {str(path)!r} is neither a folder nor a .parquet file of "
                "paths; pass a folder, a list of image paths or a Parquet file with a 'path' column."
            )
    else:
        pairs = ((os.fspath(p), os.fspath(p)) for p in inputs)
    target = tmp / "paths.parquet"
    n = _write_paths(pairs, target)
    return target, n


def _chunks(table: Path) -> Iterator[tuple[list[str], list[str]]]:
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(table).iter_batches(columns=["id", "path"], batch_size=_CHUNK):
        yield ([str(x) for x in batch.column(0).to_pylist()],
               [str(x) for x in batch.column(1).to_pylist()])


class _Writer:
    """Parquet ``(id, path, vector, problem)`` written a row group (``_CHUNK`` rows) at a
    time: small batches are buffered, so memory is bounded and the row groups are few."""

    def __init__(self, out: Path, dim: int, model_name: str) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        self.pa, self.dim = pa, dim
        self.schema = pa.schema([("id", pa.string()), ("path", pa.string()),
                                 ("vector", pa.list_(pa.float32(), dim)),
                                 ("problem", pa.string())],
                                metadata={_META_MODEL: model_name.encode()})
        self.tmp = out.with_name(out.name + ".partial")
        self.out = out
        self.writer = pq.ParquetWriter(self.tmp, self.schema)
        self.rows = 0
        self.buffered: list[Any] = []  # pyarrow tables not yet written
        self.buffered_rows = 0

    def write(self, ids: Any, paths: Any, vectors: np.ndarray, problems: Any) -> None:
        """Add rows: ids, paths, problems (B,), vectors (B, D) float32."""
        pa = self.pa
        flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1))
        vec = pa.FixedSizeListArray.from_arrays(flat, self.dim)
        probs = [p if p else None for p in problems]
        self.buffered.append(pa.table([pa.array([str(i) for i in ids], pa.string()),
                                       pa.array([str(p) for p in paths], pa.string()), vec,
                                       pa.array(probs, pa.string())], schema=self.schema))
        self.buffered_rows += len(vectors)
        self.rows += len(vectors)
        if self.buffered_rows >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.buffered:
            self.writer.write_table(self.pa.concat_tables(self.buffered).combine_chunks())
        self.buffered, self.buffered_rows = [], 0

    def close(self, *, ok: bool) -> None:
        if ok:
            self._flush()
        self.buffered = []
        self.writer.close()
        if ok:
            os.replace(self.tmp, self.out)  # a reader never sees half a file
        else:
            self.tmp.unlink(missing_ok=True)


def embed_to_parquet(paths_or_folder: Any, out: str | os.PathLike, *,
                     model: str | Embedder = DEFAULT_MODEL, pretrained: str | None = None,
                     engine: str = "local", batch_size: int = 64, actors: int | None = None,
                     gpus_per_actor: float | None = None, cache_dir: str | os.PathLike | None = None,
                     device: str | None = None, progress: bool = True) -> pd.DataFrame:
    """Embed a folder / list of paths / Parquet file of paths into Parquet ``out``.

    Streams: paths in chunks, images a batch at a time (memory does not grow with the
    input). Vectors go to ``out`` as ``(id, path, vector, problem)`` rows and to the
    embedding cache (a rerun computes only what is missing). ``engine="ray"`` runs on
    the Ray cluster ``ray.init()`` / ``$RAY_ADDRESS`` joins (``actors``, ``gpus_per_actor``
    as in :func:`dfwidgets.embed`). Returns the unreadable items: DataFrame
    ``[id, path, reason]`` (also in ``out``'s ``problem`` column; one warning with the count).
    """
    if engine not in ("local", "ray"):
        raise ValueError(f'engine must be "local" or "ray", got {engine!r}')
    if engine == "ray":
        from dfwidgets.embed_ray import require_ray

        require_ray()
    out = Path(out).expanduser()
    out.parent.mkdir(parents=True, exist_ok=True)
    embedder = get_embedder(model, pretrained=pretrained, device=device)
    with tempfile.TemporaryDirectory(prefix="dfw-paths-") as tmp:
        table, n = _as_path_table(paths_or_folder, Path(tmp))
        if n == 0:
            raise ValueError("embed_to_parquet: no images in the input.")
        writer = _Writer(out, embedder.dim, str(embedder.name))
        problems: list[tuple[str, str, str]] = []
        ok = False
        try:
            if engine == "ray":
                _stream_ray(table, n, writer, problems, embedder=embedder, model=model,
                            pretrained=pretrained, batch_size=batch_size, actors=actors,
                            gpus_per_actor=gpus_per_actor, cache_dir=cache_dir, progress=progress)
            else:
                _stream_local(table, n, writer, problems, model=embedder, batch_size=batch_size,
                              cache_dir=cache_dir, device=device, progress=progress)
            ok = True
        finally:
            writer.close(ok=ok)
    frame = pd.DataFrame(problems, columns=["id", "path", "reason"])
    if len(frame):
        warnings.warn(f"embed_to_parquet: {len(frame)} of {n} images could not be read and were "
                      "embedded as grey placeholders; see the returned DataFrame (or the "
                      f"'problem' column of {out.name}).", UserWarning, stacklevel=2)
    log.info("wrote %d embeddings to %s", n, out)
    return frame


def _stream_local(table: Path, n: int, writer: _Writer, problems: list, *, model: Any,
                  batch_size: int, cache_dir: Any, device: str | None, progress: bool) -> None:
    from tqdm.auto import tqdm

    from dfwidgets.data import ImageSource

    bar = tqdm(total=n, unit="img", desc="embedding to Parquet", disable=not progress)
    try:
        for ids, paths in _chunks(table):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # one summary at the end
                src = ImageSource.from_paths(paths, ids=ids)
                vectors = embed(src, model=model, batch_size=batch_size, cache_dir=cache_dir,
                                device=device, progress=False)
            reasons = [""] * len(ids)
            for row in src.problems.itertuples():
                reasons[int(row.index)] = str(row.reason)
                problems.append((ids[int(row.index)], paths[int(row.index)], str(row.reason)))
            writer.write(ids, paths, vectors, reasons)
            bar.update(len(ids))
    finally:
        bar.close()


def _stream_ray(table: Path, n: int, writer: _Writer, problems: list, *, embedder: Any,
                model: Any, pretrained: str | None, batch_size: int, actors: int | None,
                gpus_per_actor: float | None, cache_dir: Any, progress: bool) -> None:
    from tqdm.auto import tqdm

    from dfwidgets.embed_cache import EmbeddingCache
    from dfwidgets.embed_ray import RayOptions, embed_rows, require_ray

    ray = require_ray()
    store = EmbeddingCache(embedder.cache_key, cache_dir=cache_dir)
    snapshot = store.snapshot()
    rows = ray.data.read_parquet(str(table)).select_columns(["id", "path"])
    options = RayOptions(batch_size=batch_size, actors=actors, gpus_per_actor=gpus_per_actor)
    bar = tqdm(total=n, unit="img", desc=f"embedding [{embedder.name}] on Ray", disable=not progress)
    new_hashes: list[np.ndarray] = []
    new_vectors: list[np.ndarray] = []

    def flush() -> None:
        if new_hashes:
            store.add(np.concatenate(new_hashes), np.concatenate(new_vectors))
        new_hashes.clear()
        new_vectors.clear()

    try:
        for batch in embed_rows(rows, mode="stream", embedder=embedder, model=model,
                                pretrained=pretrained, make_embedder=get_embedder,
                                forward=_forward, options=options, known=snapshot.known):
            vectors = np.array(batch["vector"], dtype=np.float32)
            computed = np.asarray(batch["computed"], dtype=bool)
            hashes = np.asarray(batch["hash"], dtype="S16")
            bad = np.array([bool(p) for p in batch["problem"]], dtype=bool)
            if (~computed).any():
                _found, cached = snapshot.lookup(hashes[~computed])
                vectors[~computed] = cached if cached is not None else 0.0
            keep = computed & ~bad  # placeholders are not cached under a file's hash
            if keep.any():
                new_hashes.append(hashes[keep])
                new_vectors.append(vectors[keep])
            if sum(len(h) for h in new_hashes) >= _CHUNK:
                flush()
            for k in np.flatnonzero(bad):
                problems.append((str(batch["id"][k]), str(batch["path"][k]), str(batch["problem"][k])))
            writer.write(batch["id"], batch["path"], vectors, batch["problem"])
            bar.update(len(vectors))
    finally:
        bar.close()
        flush()


def read_embeddings_parquet(path: str | os.PathLike, ids: np.ndarray) -> tuple[np.ndarray, str | None]:
    """Vectors of Parquet ``path`` (from :func:`embed_to_parquet`) aligned to ``ids`` (N,)
    -> ``((N, D) float32, model name or None)``; ValueError naming the missing ids."""
    import pyarrow.parquet as pq

    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"embeddings file {str(path)!r} does not exist; make it with "
                                "dfw.embed_to_parquet(images, path, model=...).")
    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    if "id" not in names or "vector" not in names:
        raise ValueError(f"{path} has columns {names}; expected 'id' and 'vector' "
                         "(as written by dfw.embed_to_parquet).")
    table = pf.read(columns=["id", "vector"])
    file_ids = pd.Index([str(i) for i in table.column("id").to_pylist()])
    if not file_ids.is_unique:
        dup = file_ids[file_ids.duplicated()][:3].tolist()
        raise ValueError(f"{path} repeats ids (e.g. {dup}); each item must appear once.")
    where = file_ids.get_indexer([str(i) for i in ids])
    missing = np.flatnonzero(where < 0)
    if len(missing):
        shown = ", ".join(repr(str(ids[i])) for i in missing[:5])
        raise ValueError(
            f"{path} has no vector for {len(missing)} of {len(ids)} items of the source "
            f"(e.g. {shown}); embed them with dfw.embed_to_parquet (a rerun adds only what is "
            "missing from the cache) or open the project with a source of the embedded items."
        )
    column = table.column("vector").combine_chunks()
    dim = column.type.list_size if hasattr(column.type, "list_size") else None
    flat = column.values.to_numpy(zero_copy_only=False).astype(np.float32, copy=False)
    vectors = flat.reshape(len(file_ids), dim if dim and dim > 0 else -1)
    meta = pf.schema_arrow.metadata or {}
    model = meta.get(_META_MODEL)
    return np.ascontiguousarray(vectors[where]), (model.decode() if model else None)

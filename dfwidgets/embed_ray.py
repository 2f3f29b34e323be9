"""The ``engine="ray"`` of :func:`dfwidgets.embed` and :func:`dfwidgets.embed_to_parquet`.

A Ray Data pipeline: rows (item position, path) -> **decode** (file bytes -> RGB -> the
embedder's transform -> float32 pixels) on CPU tasks feeding GPU actors, or inside CPU actors
(``RayOptions.decode``) -> the **model** in an actor pool (one embedder per actor,
``gpus_per_actor`` GPUs each when the cluster has them) -> the driver,
which writes vectors to the content-addressed embedding cache every few thousand rows (an
interrupted run keeps what it computed) and shows a progress bar over completed rows.
Actors that die are restarted and their batches retried by Ray (``max_restarts`` /
``max_task_retries``). Unreadable files become grey placeholders with a reason, exactly as
in the local engine. Works with ``ray.init()`` on a laptop or any cluster that
``ray.init()`` / ``RAY_ADDRESS`` points at.

This module never imports :mod:`dfwidgets.embed`: the caller passes ``make_embedder``
(``get_embedder``) and ``forward`` so the engine stays below the front end.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import logging
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from dfwidgets.embed_ray_import import iri_grammar_on_first_use as _iri_grammar_on_first_use
from dfwidgets.embed_ray_import import stand_in_on_pythonpath

__all__ = ["RAY_INSTALL_HINT", "RayOptions", "compute_ray", "embed_rows", "ray_available", "require_ray"]

log = logging.getLogger(__name__)

RAY_INSTALL_HINT = 'pip install "dfwidgets[ray]"'
_RETRIES = 4  # actor restarts / task retries after a worker dies
_DECODE_CPUS = 0.5  # decoding is light; a different request also keeps it a separate stage
FLUSH_EVERY = 4096  # rows between writes to the embedding cache (resumable)
# Ray Data's default (128 MiB) gathers a task's whole output into one block: the driver
# then got every row at the end (no progress, nothing cached before a crash) and its peak
# memory grew with the input. 1 MiB blocks reach the driver a few hundred rows at a time.
BLOCK_BYTES = 1 << 20


def ray_available() -> bool:
    """True when Ray Data can be imported."""
    try:
        with _iri_grammar_on_first_use():
            import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


def require_ray() -> Any:
    """Import Ray (connecting with ``ray.init()`` if no cluster is joined yet) -> ``ray``.

    Raises ImportError naming the extra when Ray Data is not installed.
    """
    try:
        with _iri_grammar_on_first_use():
            import ray
            import ray.data
    except ImportError as exc:
        raise ImportError(
            f'engine="ray" needs Ray Data, which is not installed here: {RAY_INSTALL_HINT} '
            '(or pip install "ray[data]"); engine="local" needs nothing more.'
        ) from exc
    if not ray.is_initialized():
        log.info("starting / joining Ray with ray.init() (RAY_ADDRESS=cluster address)")
        with stand_in_on_pythonpath():  # Ray's processes import Ray: see embed_ray_import
            ray.init(include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    return ray


class RayOptions:
    """How the pipeline is laid out: ``actors`` model replicas (default: one per GPU of the
    cluster, else one per 2 CPUs), ``gpus_per_actor`` (default 1 when the cluster has GPUs,
    else 0), ``threads`` torch threads per CPU actor, ``batch_size`` rows per model call,
    ``decode``: ``"tasks"`` (CPU tasks feed the actors) or ``"actors"`` (each actor decodes
    its own batches: no extra worker processes, each of which imports Ray and torch).
    Default: tasks when the actors use GPUs, else actors (CPU actors and decode tasks would
    share the same cores)."""

    def __init__(self, *, batch_size: int = 64, actors: int | None = None,
                 gpus_per_actor: float | None = None, threads: int | None = None,
                 decode: str | None = None) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if actors is not None and actors < 1:
            raise ValueError(f"actors must be >= 1, got {actors}")
        if decode not in (None, "tasks", "actors"):
            raise ValueError(f'decode must be "tasks", "actors" or None, got {decode!r}')
        self.batch_size, self.actors, self.gpus_per_actor, self.threads = (
            batch_size, actors, gpus_per_actor, threads)
        self.decode = decode

    def resolve(self, ray: Any) -> tuple[int, float, int | None, str]:
        """(actors, gpus per actor, torch threads, decode) for the cluster ``ray`` is on."""
        res = ray.cluster_resources()
        gpus, cpus = float(res.get("GPU", 0)), float(res.get("CPU", 1))
        per = self.gpus_per_actor if self.gpus_per_actor is not None else (1.0 if gpus else 0.0)
        if self.actors is not None:
            actors = self.actors
        elif per > 0:
            actors = max(1, int(gpus // per))
        else:
            actors = max(1, int(cpus // 2))
        threads = self.threads
        if threads is None and per == 0:
            threads = max(1, int(cpus // actors))
        return actors, per, threads, self.decode or ("tasks" if per > 0 else "actors")


# ----------------------------------------------------------------------------- decode tasks
def _pixels_of(transform: Any, images: list[Any]) -> np.ndarray:
    import torch

    return torch.stack([transform(im) for im in images]).numpy().astype(np.float32, copy=False)


def decode_batch(batch: dict[str, np.ndarray], *, transform: Any, mode: str, data_ref: Any = None,
                 known_ref: Any = None, placeholder_size: tuple[int, int] | None = None
                 ) -> dict[str, np.ndarray]:
    """One batch of rows -> the same rows with ``pixels`` (float32 bytes, ``b""`` = nothing
    to compute), ``shape`` (3,) and ``problem`` ("" or the reason). Modes: ``"array"``
    (rows ``pos`` into a uint8 array in the object store), ``"files"`` (rows ``path`` and
    ``known``: a reason found earlier), ``"stream"`` (rows ``path``; the file's content
    hash is computed here and rows already in the cache, ``known_ref``, are skipped),
    ``"source"`` (rows ``item`` into a whole ImageSource in the object store)."""
    import ray
    from PIL import Image

    from dfwidgets.data.decoding import PLACEHOLDER_GREY, array_to_rgb, failure_reason, open_rgb
    from dfwidgets.data.file_hashes import hash_file

    n = len(next(iter(batch.values())))
    out = {k: v for k, v in batch.items() if k != "known"}
    problems = [""] * n
    compute = np.ones(n, dtype=bool)
    size = tuple(placeholder_size) if placeholder_size else (64, 64)

    def placeholder() -> Any:
        return Image.new("RGB", size, PLACEHOLDER_GREY)

    if mode == "array":
        array = ray.get(data_ref)[np.asarray(batch["pos"], dtype=np.int64)]
        if hasattr(transform, "batch_from_uint8"):  # the local engine's vectorised path
            pixels = transform.batch_from_uint8(array).numpy().astype(np.float32, copy=False)
        else:
            pixels = _pixels_of(transform, [array_to_rgb(a) for a in array])
    elif mode == "source":
        source = ray.get(data_ref)
        images = []
        for k, item in enumerate(batch["item"]):
            images.append(source[int(item)])
            problems[k] = source.problem(int(item)) or ""
        pixels = _pixels_of(transform, images)
    else:
        hashes = []
        known = ray.get(known_ref) if known_ref is not None else None
        images = []
        for k, path in enumerate(batch["path"]):
            path = str(path)
            if mode == "stream":
                try:
                    digest = hash_file(path)
                except OSError as exc:
                    digest = hashlib.blake2b(f"dfwidgets-missing:{path}".encode(), digest_size=16).digest()
                    problems[k] = failure_reason(exc)
                hashes.append(digest)
                if known is not None and len(known) and not problems[k]:
                    at = int(np.searchsorted(known, digest))
                    if at < len(known) and known[at] == digest:
                        compute[k] = False
                        continue
            reason = "" if mode == "stream" else str(batch["known"][k])
            if problems[k] or (reason and not reason.startswith("decode failed")):
                problems[k] = problems[k] or reason
                images.append(placeholder())
                continue
            try:
                images.append(open_rgb(path))
            except Exception as exc:  # noqa: BLE001 - any failure becomes a reported problem
                problems[k] = failure_reason(exc)
                images.append(placeholder())
        pixels = _pixels_of(transform, images) if images else np.zeros((0, 3, 1, 1), np.float32)
        if mode == "stream":
            out["hash"] = np.array(hashes, dtype="S16")
    flat = np.empty(n, dtype=object)
    rows = iter(pixels)
    for k in range(n):
        flat[k] = next(rows).tobytes() if compute[k] else b""
    out["pixels"] = flat
    out["shape"] = np.tile(np.asarray(pixels.shape[1:], dtype=np.int32), (n, 1))
    out["problem"] = np.array(problems, dtype=object)
    return out


# ----------------------------------------------------------------------------- model actors
class EmbedActor:
    """One embedder per actor: rows with ``pixels`` -> rows with ``vector`` (D,) float32
    (zeros where nothing was computed) and ``computed``. With ``decode`` (the keyword
    arguments of :func:`decode_batch` but the transform) the actor decodes the rows first."""

    def __init__(self, make_embedder: Callable[..., Any], model: Any, pretrained: str | None,
                 forward: Callable[..., None], threads: int | None,
                 decode: dict[str, Any] | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(int(threads))
        device = "cuda" if torch.cuda.is_available() else "cpu"
        self.embedder = make_embedder(model, pretrained=pretrained, device=device)
        self.device = getattr(self.embedder, "device", None) or device
        self.forward, self.decode = forward, decode

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        if self.decode is not None:
            batch = decode_batch(batch, transform=self.embedder.transform, **self.decode)
        pixels, shapes = batch["pixels"], batch["shape"]
        n = len(pixels)
        todo = np.flatnonzero([len(p) > 0 for p in pixels])
        vectors = np.zeros((n, self.embedder.dim), dtype=np.float32)
        if len(todo):
            shape = tuple(int(s) for s in shapes[todo[0]])
            x = np.stack([np.frombuffer(pixels[i], dtype=np.float32) for i in todo])
            done: list[np.ndarray] = []
            self.forward(self.embedder, iter([torch.from_numpy(x.reshape(len(todo), *shape))]),
                         self.device, done.append)
            vectors[todo] = done[0]
        computed = np.zeros(n, dtype=bool)
        computed[todo] = True
        out = {k: v for k, v in batch.items() if k not in ("pixels", "shape")}
        out["vector"], out["computed"] = vectors, computed
        return out


def _map_kwargs(actors: int, gpus: float) -> dict[str, Any]:
    """Actor pool arguments for this Ray version: a fixed pool of ``actors``; restarts and
    retries after a worker dies (Ray Data's default since 2.x, set explicitly where the
    version still takes them as remote args)."""
    import ray.data

    kwargs: dict[str, Any] = {"compute": ray.data.ActorPoolStrategy(size=actors)}
    if gpus > 0:
        kwargs["num_gpus"] = gpus
    else:
        kwargs["num_cpus"] = 1
    params = inspect.signature(ray.data.Dataset.map_batches).parameters
    takes_remote_args = any(p.kind is p.VAR_KEYWORD for p in params.values())
    if takes_remote_args:
        kwargs.update(max_restarts=_RETRIES, max_task_retries=_RETRIES)
    return kwargs


@contextlib.contextmanager
def _quiet_ray_data(dataset: Any = None) -> Iterator[None]:
    """Our tqdm bar instead of Ray Data's own progress bars and execution banners; small
    blocks (``BLOCK_BYTES``), so results stream to the driver in bounded pieces. Applied to
    the current DataContext and to ``dataset``'s (a Dataset keeps the one it was made with)."""
    import ray.data

    settings: dict[str, Any] = {"enable_progress_bars": False, "print_on_execution_start": False,
                                "target_max_block_size": BLOCK_BYTES}
    contexts = [ray.data.DataContext.get_current()]
    if dataset is not None and getattr(dataset, "context", None) is not None:
        contexts.append(dataset.context)
    saved: list[tuple[Any, dict[str, Any]]] = []
    for ctx in contexts:
        if any(ctx is c for c, _ in saved):
            continue
        keys = [k for k in (*settings, "target_min_block_size") if hasattr(ctx, k)]
        saved.append((ctx, {k: getattr(ctx, k) for k in keys}))
        for k in keys:
            setattr(ctx, k, settings[k] if k in settings else min(getattr(ctx, k), BLOCK_BYTES))
    ray_log = logging.getLogger("ray.data")
    level = ray_log.level
    ray_log.setLevel(max(level, logging.WARNING))
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*ray_remote_args.*deprecated.*")
            yield
    finally:
        for ctx, values in saved:
            for k, v in values.items():
                setattr(ctx, k, v)
        ray_log.setLevel(level)


def embed_rows(rows: Any, *, mode: str, embedder: Any, model: Any, pretrained: str | None,
               make_embedder: Callable[..., Any], forward: Callable[..., None],
               options: RayOptions, data: Any = None, known: np.ndarray | None = None,
               placeholder_size: tuple[int, int] | None = None) -> Iterator[dict[str, np.ndarray]]:
    """Run the pipeline over ``rows`` (a ``ray.data.Dataset`` with ``pos`` and, for file
    modes, ``path`` columns) and yield result batches (numpy dicts with ``pos``,
    ``vector`` (B,D), ``computed``, ``problem``, and ``hash`` in stream mode), in
    completion order, as they finish. ``embedder``: the driver's instance (its transform
    goes to the decode tasks, if any); ``model``/``pretrained``: what each actor builds.
    Decoding runs in CPU tasks or in the model actors (``options.decode``)."""
    ray = require_ray()
    actors, gpus, threads, decode = options.resolve(ray)
    decode_kwargs = {"mode": mode, "placeholder_size": placeholder_size,
                     "data_ref": ray.put(data) if data is not None else None,
                     "known_ref": ray.put(known) if known is not None and len(known) else None}
    log.info("Ray pipeline: %d model actor(s), %s GPU each, batch %d, decoding in %s",
             actors, gpus, options.batch_size, decode)
    actor_kwargs = {"make_embedder": make_embedder, "model": model, "pretrained": pretrained,
                    "forward": forward, "threads": threads}
    with _quiet_ray_data(rows):
        if decode == "tasks":  # next to CPU actors: only the CPUs they leave (no new workers)
            spare = float(ray.cluster_resources().get("CPU", 1)) - (0 if gpus else actors)
            limit = {} if gpus else {"compute": ray.data.TaskPoolStrategy(size=max(1, int(spare)))}
            rows = rows.map_batches(decode_batch, batch_size=options.batch_size,
                                    num_cpus=_DECODE_CPUS, **limit,
                                    fn_kwargs={"transform": embedder.transform, **decode_kwargs})
        else:  # nested in a dict, the refs reach decode_batch unresolved (it ray.get()s them)
            actor_kwargs["decode"] = decode_kwargs
        ds = rows.map_batches(EmbedActor, batch_size=options.batch_size,
                              fn_constructor_kwargs=actor_kwargs, **_map_kwargs(actors, gpus))
        yield from ds.iter_batches(batch_size=None, batch_format="numpy")


# ----------------------------------------------------------------------------- ImageSource
def compute_ray(embedder: Any, source: Any, indices: np.ndarray, *, model: Any,
                pretrained: str | None, make_embedder: Callable[..., Any],
                forward: Callable[..., None], options: RayOptions, progress: bool,
                on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None,
                flush_every: int | None = None) -> np.ndarray:
    """Items ``indices`` of an ImageSource -> (len(indices), D) vectors, like the local
    engine's ``_compute``; ``on_chunk(positions, vectors)`` every ``flush_every`` rows
    (positions into ``indices``, completion order) and once more on the way out, also
    on an error or Ctrl-C. Failures found by workers are recorded in ``source.problems``."""
    import pyarrow as pa
    from tqdm.auto import tqdm

    ray = require_ray()
    flush_every = flush_every or FLUSH_EVERY
    n = len(indices)
    out = np.zeros((n, embedder.dim), dtype=np.float32)
    cols: dict[str, Any] = {"pos": np.arange(n, dtype=np.int64)}
    data = None
    if getattr(source, "array", None) is not None:
        mode, data = "array", np.ascontiguousarray(source.array[indices])
    elif getattr(source, "paths", None) is not None:
        paths = source.paths
        mode = "files"
        cols["path"] = [paths[int(i)] for i in indices]
        cols["known"] = [source.problem(int(i)) or "" for i in indices]
    else:
        mode, data = "source", source
        cols["item"] = np.asarray(indices, dtype=np.int64)
    table = pa.table(cols)
    step = max(options.batch_size, min(8 * options.batch_size, -(-n // 8)))
    rows = ray.data.from_arrow([table.slice(s, step) for s in range(0, n, step)])
    bar = tqdm(total=n, unit="img", desc=f"embedding [{embedder.name}] on Ray",
               disable=not progress, leave=False)
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending and on_chunk is not None:
            pos = np.concatenate(pending)
            on_chunk(pos, out[pos])
        pending.clear()

    try:
        for batch in embed_rows(rows, mode=mode, embedder=embedder, model=model,
                                pretrained=pretrained, make_embedder=make_embedder,
                                forward=forward, options=options, data=data,
                                placeholder_size=getattr(source, "placeholder_size", None)):
            pos = np.asarray(batch["pos"], dtype=np.int64)
            out[pos] = batch["vector"]
            for k in np.flatnonzero([bool(r) for r in batch["problem"]]):
                if source.problem(int(indices[pos[k]])) is None:
                    source.note_problem(int(indices[pos[k]]), str(batch["problem"][k]))
            pending.append(pos)
            bar.update(len(pos))
            if sum(len(p) for p in pending) >= flush_every:
                flush()
    finally:
        bar.close()
        flush()
    return out

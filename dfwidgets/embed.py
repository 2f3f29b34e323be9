"""Image (and text) embeddings: one small protocol, three kinds of embedder, a disk cache.

>>> emb = dfw.embed(src, model="efficientnet_lite0")    # (N, 512) float32, L2-normalised
>>> txt = dfw.embed_text(["a photo of a sneaker"], model="ViT-B-32")

Embedders: ``"efficientnet_lite0"`` (offline ImageNet backbone, ships with dfwidgets),
``"pixels"`` (raw-pixel baseline), any open_clip architecture name (default
``"ViT-B-32"`` / ``laion2b_s34b_b79k``; ``pretrained=`` a tag or a local checkpoint file).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import PIL.Image

from dfwidgets._config import select_device
from dfwidgets._embedders.base import Embedder, text_unsupported

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

__all__ = ["Embedder", "embed", "embed_images", "embed_text", "get_embedder", "text_unsupported"]

DEFAULT_MODEL = "ViT-B-32"
OFFLINE_MODEL = "efficientnet_lite0"
_FLUSH_EVERY = 4096  # computed vectors are written to the cache in chunks (resumable)


_EMBEDDERS: dict[tuple, Any] = {}
_EMBEDDERS_LOCK = threading.Lock()


def get_embedder(model: str | Embedder = DEFAULT_MODEL, *, pretrained: str | None = None,
                 device: str | None = None) -> Embedder:
    """Return the embedder for ``model`` (reused across calls; weights load on first use).

    ``model``: ``"efficientnet_lite0"`` | ``"pixels"`` | an open_clip name | a path to an
    open_clip ViT-B-32 checkpoint | an object implementing :class:`Embedder`.
    ``pretrained``: open_clip tag, local checkpoint path, or ``"random"``.
    Raises ``ConnectionError`` within seconds when open_clip weights are neither cached
    nor downloadable, with the ways out in the message.
    """
    if not isinstance(model, str):
        missing = [a for a in ("name", "cache_key", "dim", "module", "transform") if not hasattr(model, a)]
        if missing:
            raise TypeError(
                f"model must be a name (e.g. 'efficientnet_lite0') or an Embedder; "
                f"{type(model).__name__} lacks {missing}"
            )
        return model
    device = select_device(device)
    key: tuple = (model, pretrained, device)
    for candidate in (model, pretrained):
        if candidate and os.path.isfile(os.path.expanduser(candidate)):
            st = os.stat(os.path.expanduser(candidate))
            key += (st.st_size, st.st_mtime_ns)
    with _EMBEDDERS_LOCK:
        if key in _EMBEDDERS:
            return _EMBEDDERS[key]
    embedder = _make_embedder(model, pretrained=pretrained, device=device)
    with _EMBEDDERS_LOCK:
        return _EMBEDDERS.setdefault(key, embedder)


def _make_embedder(model: str, *, pretrained: str | None, device: str) -> Embedder:
    name = model.strip()
    if name.lower() in ("efficientnet_lite0", "efficientnet-lite0"):
        _no_pretrained(name, pretrained)
        from dfwidgets._embedders.efficientnet_lite0 import EfficientNetLite0Embedder

        return EfficientNetLite0Embedder(device=device)
    if name.lower() == "pixels":
        _no_pretrained(name, pretrained)
        from dfwidgets._embedders.pixels import PixelEmbedder

        return PixelEmbedder(device=device)
    from dfwidgets._embedders.open_clip import OpenClipEmbedder, looks_like_path

    if looks_like_path(name):
        if pretrained is not None:
            raise ValueError(
                f"model={name!r} is a checkpoint path and pretrained={pretrained!r} is also "
                "given; pass model=<open_clip architecture>, pretrained=<checkpoint path>"
            )
        log.info("model is a checkpoint path: loading it as open_clip %s", DEFAULT_MODEL)
        return OpenClipEmbedder(DEFAULT_MODEL, pretrained=name, device=device)
    return OpenClipEmbedder(name, pretrained=pretrained, device=device)


def _no_pretrained(name: str, pretrained: str | None) -> None:
    if pretrained is not None:
        raise ValueError(
            f"model={name!r} has fixed packaged weights; pretrained={pretrained!r} applies only "
            "to open_clip models. Drop the pretrained argument."
        )


# ----------------------------------------------------------------------------- images
def _as_source(source: Any):
    from dfwidgets.data import ImageSource

    if isinstance(source, ImageSource):
        return source
    if isinstance(source, np.ndarray):
        return ImageSource.from_array(source)
    if isinstance(source, (list, tuple)) and all(isinstance(p, (str, os.PathLike)) for p in source):
        return ImageSource.from_paths([os.fspath(p) for p in source])
    raise TypeError(
        f"embed() needs an ImageSource (dfw.ImageSource.from_folder/from_paths/from_array/...), "
        f"a uint8 array or a list of paths, not {type(source).__name__}"
    )


class _ItemDataset:
    """Items ``indices`` of an ImageSource through the embedder's transform (a map-style
    dataset for torch's DataLoader)."""

    def __init__(self, source: Any, indices: np.ndarray, transform: Callable) -> None:
        self.source, self.indices, self.transform = source, indices, transform

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(self.source[int(self.indices[i])])


def _batches(embedder: Embedder, source: Any, indices: np.ndarray, *, batch_size: int,
             num_workers: int | None) -> Iterator[torch.Tensor]:
    """Preprocessed (B,3,S,S) batches for ``indices``, in order."""
    transform = embedder.transform
    array = getattr(source, "array", None)
    if array is not None and hasattr(transform, "batch_from_uint8"):
        # arrays: vectorised resize in torch, no per-item PIL round trip, no workers
        for start in range(0, len(indices), batch_size):
            yield transform.batch_from_uint8(array[indices[start:start + batch_size]])
        return
    if num_workers is None:
        num_workers = 0 if array is not None else min(2, os.cpu_count() or 1)
    if len(indices) < 2 * batch_size:
        num_workers = 0  # starting workers costs more than it saves
    from torch.utils.data import DataLoader

    loader = DataLoader(
        _ItemDataset(source, indices, transform), batch_size=batch_size, shuffle=False,
        num_workers=num_workers, persistent_workers=False,
    )
    yield from loader


def _forward(embedder: Embedder, batches: Iterator[torch.Tensor], device: str,
             on_batch: Callable[[np.ndarray], None]) -> None:
    import torch

    module = embedder.module
    use_half = device.startswith("cuda")
    with torch.inference_mode():
        for x in batches:
            x = x.to(device, non_blocking=True)
            with torch.autocast("cuda", dtype=torch.float16, enabled=use_half):
                feats = module(x)
            feats = torch.nn.functional.normalize(feats.float(), dim=1)
            on_batch(feats.cpu().numpy().astype(np.float32, copy=False))


def _compute(embedder: Embedder, source: Any, indices: np.ndarray, *, batch_size: int,
             num_workers: int | None, device: str, progress: bool,
             on_chunk: Callable[[np.ndarray, np.ndarray], None] | None = None) -> np.ndarray:
    """(len(indices), D) normalised vectors; ``on_chunk(positions, vectors)`` is called
    every few thousand items (so an interrupted run keeps what it computed)."""
    from tqdm.auto import tqdm

    out = np.empty((len(indices), embedder.dim), dtype=np.float32)
    done = 0
    flushed = 0
    bar = tqdm(total=len(indices), unit="img", desc=f"embedding [{embedder.name}]",
               disable=not progress, leave=False)

    def on_batch(vectors: np.ndarray) -> None:
        nonlocal done, flushed
        if vectors.shape[1] != embedder.dim:
            raise RuntimeError(f"{embedder.name} produced {vectors.shape[1]} dims, expected {embedder.dim}")
        out[done:done + len(vectors)] = vectors
        done += len(vectors)
        bar.update(len(vectors))
        if on_chunk is not None and done - flushed >= _FLUSH_EVERY:
            on_chunk(np.arange(flushed, done), out[flushed:done])
            flushed = done

    try:
        _forward(embedder, _batches(embedder, source, indices, batch_size=batch_size,
                                    num_workers=num_workers), device, on_batch)
    finally:
        bar.close()
        if on_chunk is not None and done > flushed:
            on_chunk(np.arange(flushed, done), out[flushed:done])
    return out


def embed(source: Any, model: str | Embedder = DEFAULT_MODEL, *, pretrained: str | None = None,
          batch_size: int = 64, num_workers: int | None = None, cache: bool = True,
          cache_dir: str | os.PathLike | None = None, device: str | None = None,
          progress: bool = True, engine: str = "local", actors: int | None = None,
          gpus_per_actor: float | None = None) -> np.ndarray:
    """Embed every item of ``source`` -> (N, D) float32, rows L2-normalised.

    ``source``: an ImageSource (or a uint8 (N,H,W[,C]) array / list of paths).
    With ``cache=True`` vectors are stored on disk under the embedder's ``cache_key`` and
    each item's content hash (``cache_dir`` > ``$DFW_CACHE_DIR`` > user cache): unchanged
    items come from disk, new or changed ones are computed. ``num_workers``: DataLoader
    workers for decoding files (default min(2, CPUs); array sources use a vectorised path).
    Unreadable items are embedded as grey placeholders (one warning with the count).
    ``engine="ray"``: decoding on Ray tasks and the model in ``actors`` Ray actors
    (``gpus_per_actor`` GPUs each; defaults: one actor per GPU, else per 2 CPUs) on the
    cluster ``ray.init()`` / ``$RAY_ADDRESS`` joins; same cache, same vectors (see
    :mod:`dfwidgets.embed_ray`). Needs ``pip install "dfwidgets[ray]"``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if engine not in ("local", "ray"):
        raise ValueError(f'engine must be "local" or "ray", got {engine!r}')
    if engine == "ray":
        from dfwidgets.embed_ray import RayOptions, require_ray

        require_ray()  # ImportError naming the extra before any work
        ray_options = RayOptions(batch_size=batch_size, actors=actors, gpus_per_actor=gpus_per_actor)
    src = _as_source(source)
    embedder = get_embedder(model, pretrained=pretrained, device=device)
    device = getattr(embedder, "device", None) or select_device(device)  # where its module lives
    n = len(src)
    if n == 0:
        return np.zeros((0, embedder.dim), dtype=np.float32)

    def run(embedder: Embedder, source: Any, indices: np.ndarray, **kwargs: Any) -> np.ndarray:
        if engine == "ray":
            from dfwidgets.embed_ray import compute_ray

            return compute_ray(embedder, source, indices, model=model, pretrained=pretrained,
                               make_embedder=get_embedder, forward=_forward, options=ray_options,
                               progress=progress, on_chunk=kwargs.get("on_chunk"))
        return _compute(embedder, source, indices, **kwargs)

    if not cache:
        result = run(embedder, src, np.arange(n), batch_size=batch_size,
                     num_workers=num_workers, device=device, progress=progress)
    else:
        from dfwidgets.embed_cache import EmbeddingCache

        store = EmbeddingCache(embedder.cache_key, cache_dir=cache_dir)
        hashes = src.content_hashes()
        found, result = store.lookup(hashes)
        if result is None:
            result = np.zeros((n, embedder.dim), dtype=np.float32)
        missing = np.flatnonzero(~found)
        if len(missing):
            # identical images (same hash) are computed once
            unique_hashes, first, inverse = np.unique(hashes[missing], return_index=True,
                                                      return_inverse=True)
            order = np.argsort(first)  # compute in source order (sequential reads)
            rank = np.empty_like(order)
            rank[order] = np.arange(len(order))
            todo, todo_hashes = missing[first[order]], unique_hashes[order]
            log.info("embedding %d of %d items with %s (%d cached)", len(todo), n,
                     embedder.name, n - len(missing))
            vectors = run(
                embedder, src, todo, batch_size=batch_size, num_workers=num_workers,
                device=device, progress=progress,
                on_chunk=lambda pos, vec: store.add(todo_hashes[pos], vec),
            )
            result[missing] = vectors[rank[inverse.reshape(-1)]]
        else:
            log.info("all %d embeddings from cache %s", n, store.path)
    problems = src.problems
    if len(problems):
        warnings.warn(
            f"embed: {len(problems)} of {n} images could not be read and were embedded as grey "
            "placeholders; see source.problems for which and why.", UserWarning, stacklevel=2,
        )
    return result


def embed_images(images: Sequence[Any], model: str | Embedder = DEFAULT_MODEL, *,
                 pretrained: str | None = None, device: str | None = None,
                 batch_size: int = 64) -> np.ndarray:
    """Embed a few query images (PIL images, paths or uint8 arrays) -> (B,D), no cache."""
    embedder = get_embedder(model, pretrained=pretrained, device=device)
    device = getattr(embedder, "device", None) or select_device(device)  # where its module lives
    if isinstance(images, (PIL.Image.Image, str, os.PathLike)):
        images = [images]
    pil = []
    for i, im in enumerate(images):
        if isinstance(im, PIL.Image.Image):
            pil.append(im.convert("RGB"))
        elif isinstance(im, (str, os.PathLike)):
            try:
                with PIL.Image.open(im) as f:
                    pil.append(f.convert("RGB"))
            except (OSError, ValueError) as exc:
                raise ValueError(f"embed_images: image {i} ('{im}') cannot be read: {exc}") from exc
        elif isinstance(im, np.ndarray) and im.dtype == np.uint8 and im.ndim in (2, 3):
            pil.append(PIL.Image.fromarray(im).convert("RGB"))
        else:
            raise TypeError(
                f"embed_images: image {i} is a {type(im).__name__}; pass PIL images, file paths "
                "or uint8 arrays (H,W) / (H,W,3)"
            )
    import torch

    out: list[np.ndarray] = []
    batches = (torch.stack([embedder.transform(p) for p in pil[s:s + batch_size]])
               for s in range(0, len(pil), batch_size))
    _forward(embedder, batches, device, out.append)
    return np.concatenate(out) if out else np.zeros((0, embedder.dim), dtype=np.float32)


def embed_text(texts: Sequence[str] | str, model: str | Embedder = DEFAULT_MODEL, *,
               pretrained: str | None = None, device: str | None = None) -> np.ndarray:
    """Embed texts with an open_clip text tower -> (T,D) float32, L2-normalised.

    Raises ValueError for image-only models (efficientnet_lite0, pixels).
    """
    embedder = get_embedder(model, pretrained=pretrained, device=device)
    if not getattr(embedder, "supports_text", False):
        raise text_unsupported(embedder.name)
    return embedder.embed_text([texts] if isinstance(texts, str) else list(texts))


class _CallableModule(types.ModuleType):
    """``dfwidgets.embed`` is both this module and the function ``embed``: Python's import
    system sets the attribute ``dfwidgets.embed`` to the module whenever something imports
    ``dfwidgets.embed`` first, so the module itself forwards calls to :func:`embed`."""

    def __call__(self, *args: Any, **kwargs: Any) -> np.ndarray:
        return embed(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule

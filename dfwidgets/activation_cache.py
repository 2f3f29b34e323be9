"""On-disk cache of a backbone's activations at a cut point, for fast fine-tuning.

Fine-tuning trains only the tail of the backbone; the frozen front is run once per image
and view, and its output is kept here, keyed by the item's content hash, the model (its
cache key), the input resolution, the cut point and the augmented view. A changed image
gets a new content hash, so its activations are recomputed, never reused.

Layout: ``<cache_dir>/activations/<slug>-<sha1(key)[:12]>/`` with ``key.txt`` and shards
of two ``.npy`` files each (no pickle): ``shard-<id>.acts.npy`` (M,F) float16 or float32, written
first, then ``shard-<id>.hashes.npy`` (M,) "S16", whose presence marks the shard complete.
Files are written to a temporary name and ``os.replace``-d, so readers never see half a
shard.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from ._config import cache_dir as _cache_dir

__all__ = ["ActivationCache", "activation_key", "item_hashes"]

_HASH = np.dtype("S16")


def activation_key(model_key: str, *, image_size: int, cut: int, view: int,
                   dtype: str = "float16", version: int = 1) -> str:
    """The cache key of one model / resolution / cut point / view / stored dtype."""
    return (f"act-v{version}/{model_key}/size{int(image_size)}/cut{int(cut)}/view{int(view)}"
            f"/{dtype}")


def item_hashes(images: Any) -> np.ndarray:
    """(N,) "S16" content hashes: an ImageSource's own ``content_hashes()``, else
    blake2b-128 of each PIL image's mode, size and pixels (paths are opened)."""
    from .data import ImageSource

    if isinstance(images, ImageSource):
        return images.content_hashes()
    from .exported_model import _open_image

    out = np.empty(len(images), dtype=_HASH)
    for i, item in enumerate(images):
        im = _open_image(item)
        h = hashlib.blake2b(digest_size=16)
        h.update(f"{im.mode}:{im.size}".encode())
        h.update(im.tobytes())
        out[i] = h.digest()
    return out


class ActivationCache:
    """Flattened activations (M,F) for one key (``dtype``: float16 for training views,
    float32 where predictions must match the full model exactly), by content hash."""

    def __init__(self, key: str, *, cache_dir: str | os.PathLike | None = None,
                 dtype: Any = np.float16) -> None:
        self.dtype = np.dtype(dtype)
        if not key:
            raise ValueError("ActivationCache needs a non-empty key (see activation_key()).")
        self.key = key
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", key)[-60:].strip("_")
        digest = hashlib.sha1(key.encode()).hexdigest()[:12]
        self.path = _cache_dir(cache_dir, sub="activations") / f"{slug}-{digest}"
        self.path.mkdir(parents=True, exist_ok=True)
        if not (self.path / "key.txt").exists():
            self._atomic(self.path / "key.txt", lambda f: f.write(key.encode()))

    def _shards(self) -> list[Path]:
        return sorted(self.path.glob("shard-*.hashes.npy"))

    def lookup(self, hashes: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """``found`` (N,) bool and activations (N,F) float16 (zero rows where not found;
        None when nothing is cached) for content ``hashes`` (N,) "S16"."""
        hashes = np.asarray(hashes, dtype=_HASH)
        found = np.zeros(len(hashes), dtype=bool)
        out = None
        want = {h: i for i, h in enumerate(hashes.tolist())}
        for hashes_file in reversed(self._shards()):  # newest first
            try:
                cached = np.load(hashes_file, allow_pickle=False)
                acts = np.load(str(hashes_file).replace(".hashes.npy", ".acts.npy"),
                               mmap_mode="r", allow_pickle=False)
            except FileNotFoundError:
                continue
            if out is None:
                out = np.zeros((len(hashes), acts.shape[1]), dtype=self.dtype)
            rows, pos = [], []
            for r, h in enumerate(cached.tolist()):
                i = want.get(h)
                if i is not None and not found[i]:
                    rows.append(r)
                    pos.append(i)
                    found[i] = True
            if rows and acts.shape[1] == out.shape[1]:
                order = np.argsort(rows)
                out[np.asarray(pos)[order]] = acts[np.asarray(rows)[order]]
            elif rows:
                found[pos] = False  # another width under the same key: ignore it
            if found.all():
                break
        # identical images share a hash: copy to every position that asked for it
        if out is not None and len(want) < len(hashes):
            first = np.asarray([want[h] for h in hashes.tolist()])
            found, out = found[first], out[first]
        return found, out

    def add(self, hashes: np.ndarray, acts: np.ndarray) -> None:
        """Store activations ``acts`` (M,F) (as ``dtype``) under ``hashes`` (M,) "S16"."""
        hashes = np.asarray(hashes, dtype=_HASH)
        acts = np.asarray(acts, dtype=self.dtype)
        if acts.ndim != 2 or len(acts) != len(hashes):
            raise ValueError(f"add() needs hashes (M,) and acts (M,F); got {hashes.shape}, {acts.shape}")
        if not len(hashes):
            return
        stem = f"shard-{time.time_ns():020d}-{uuid.uuid4().hex[:8]}"
        self._atomic(self.path / f"{stem}.acts.npy", lambda f: np.save(f, acts))
        self._atomic(self.path / f"{stem}.hashes.npy", lambda f: np.save(f, hashes))

    def clear(self) -> None:
        """Delete every cached activation of this key."""
        for hashes_file in self._shards():
            hashes_file.unlink(missing_ok=True)
            Path(str(hashes_file).replace(".hashes.npy", ".acts.npy")).unlink(missing_ok=True)

    def _atomic(self, target: Path, write: Any) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.path, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.chmod(tmp, 0o644)
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __repr__(self) -> str:
        return f"ActivationCache(key={self.key!r}, path='{self.path}')"

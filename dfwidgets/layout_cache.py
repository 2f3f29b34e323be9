"""The layout cache: 2-D coordinates as ``.npy`` files keyed by content, nothing else.

No model and no pickle is stored or read (``np.load(..., allow_pickle=False)``): a cached
file can hold numbers only. A file that is unreadable, truncated, of the wrong shape or
dtype, or holds NaN/inf is reported, removed and rebuilt by the caller.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import numpy as np

__all__ = ["content_key", "load_coords", "save_coords"]

log = logging.getLogger(__name__)

_HASH_CHUNK = 1 << 24  # 16 MB at a time: no copy of the whole array


def content_key(x: np.ndarray, params: dict, version: str) -> str:
    """32 hex digits over the bytes of ``x`` (N, D), its shape/dtype and ``params``."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((x.shape, str(x.dtype), sorted(params.items()), version)).encode())
    flat = np.ascontiguousarray(x).reshape(-1).view(np.uint8)
    for lo in range(0, flat.size, _HASH_CHUNK):
        h.update(flat[lo:lo + _HASH_CHUNK].data)
    return h.hexdigest()


def load_coords(path: Path, n: int) -> np.ndarray | None:
    """(n, 2) float32 from ``path``, or None when it is missing; a damaged file (unreadable,
    truncated, wrong shape/dtype, not finite) is logged, removed and None returned."""
    if not path.exists():
        return None
    try:
        coords = np.load(path, allow_pickle=False)
        problem = None
        if not isinstance(coords, np.ndarray) or coords.shape != (n, 2):
            problem = f"shape {getattr(coords, 'shape', None)} instead of ({n}, 2)"
        elif coords.dtype.kind != "f":
            problem = f"dtype {coords.dtype} instead of float32"
        elif not np.isfinite(coords).all():
            problem = "NaN or inf coordinates"
    except Exception as exc:  # noqa: BLE001 - any unreadable file is rebuilt
        problem = f"unreadable ({type(exc).__name__}: {exc})"
    if problem is None:
        log.info("layout loaded from cache %s", path)
        return coords.astype(np.float32)
    log.warning("layout cache %s is damaged (%s): removed, the layout is computed again",
                path, problem)
    try:
        path.unlink()
    except OSError:
        pass
    return None


def save_coords(path: Path, coords: np.ndarray) -> None:
    """Write (N, 2) float32 ``coords`` to ``path`` atomically (temp file + rename)."""
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npy")
    np.save(tmp, np.asarray(coords, dtype=np.float32), allow_pickle=False)
    os.replace(tmp, path)
